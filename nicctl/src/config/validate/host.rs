//! Hosts, and how many instances each may hold (one VF each).
use super::*;

pub(super) fn check_hosts(c: &mut Checker<'_>, raw: &RawFile) -> Vec<Host> {
    if raw.host.is_empty() {
        return vec![Host {
            name: model::DEFAULT_HOST.to_string(),
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
    raw.host
        .keys()
        .map(|name| Host { name: name.clone() })
        .collect()
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
