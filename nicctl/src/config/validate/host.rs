//! Hosts, and how many instances each may hold (one VF each).
use super::*;

pub(super) fn check_hosts(c: &mut Checker<'_>, raw: &RawFile) -> Vec<Host> {
    if raw.host.is_empty() {
        return vec![Host {
            name: model::DEFAULT_HOST.to_string(),
            underlay: model::host_underlay(0),
        }];
    }
    for name in raw.host.keys() {
        c.name("host", name);
    }
    if raw.host.len() > model::MAX_HOSTS {
        c.err(
            "host",
            format!(
                "{} hosts, the underlay numbering (192.0.2.1 on) has room for {}",
                raw.host.len(),
                model::MAX_HOSTS
            ),
        );
    }
    let hosts: Vec<Host> = raw
        .host
        .iter()
        .enumerate()
        .map(|(i, (name, h))| Host {
            name: name.clone(),
            underlay: h
                .underlay
                .as_ref()
                .and_then(|u| c.parse(&format!("host.{name}.underlay"), u, text::parse_ip))
                .unwrap_or_else(|| model::host_underlay(i)),
        })
        .collect();
    // Past the numbering's room, that error says it all.
    for (i, h) in hosts.iter().enumerate().take(model::MAX_HOSTS) {
        if let Some(other) = hosts[..i].iter().find(|o| o.underlay == h.underlay) {
            c.err(
                format!("host.{}.underlay", h.name),
                format!(
                    "{} is host {}'s underlay address too",
                    h.underlay, other.name
                ),
            );
        }
    }
    hosts
}

pub(super) fn check_vf_counts(
    c: &mut Checker<'_>,
    raw: &RawFile,
    hosts: &[Host],
    instances: &[Option<Instance>],
    limits: &Limits,
) {
    for (h, host) in hosts.iter().enumerate() {
        let on: Vec<&str> = instances
            .iter()
            .flatten()
            .filter(|i| i.host == h)
            .map(|i| i.name.as_str())
            .collect();
        if on.len() > limits.vfs as usize {
            let place = if raw.host.is_empty() {
                "instance".to_string()
            } else {
                format!("host.{}", host.name)
            };
            c.err(
                place,
                format!(
                    "{} instances on host {} but the NIC has {} VFs",
                    on.len(),
                    host.name,
                    limits.vfs
                ),
            );
        }
    }
}
