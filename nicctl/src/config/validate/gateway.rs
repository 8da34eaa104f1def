//! Gateways: kind and the addresses behind the edge.
use super::*;

pub(super) fn check_gateways(c: &mut Checker<'_>, raw: &RawFile, limits: &Limits) -> Vec<Gateway> {
    let gateways: Vec<Gateway> = raw
        .gateway
        .iter()
        .enumerate()
        .map(|(index, (name, g))| {
            c.name("gateway", name);
            let place = format!("gateway.{name}");
            let written = g.kind.get_ref().as_str();
            let kind = match GatewayKind::ALL.iter().find(|k| k.name() == written) {
                Some(&kind) => kind,
                None => {
                    c.err_at(
                        format!("{place}.kind"),
                        &g.kind,
                        format!("unknown gateway kind {written:?} (internet, vpn or nat)"),
                    );
                    GatewayKind::Internet
                }
            };
            let hosts = g
                .hosts
                .iter()
                .enumerate()
                .filter_map(|(i, h)| {
                    c.parse(&format!("{place}.hosts[{i}]"), h, text::parse_interface)
                })
                .collect();
            let underlay = g
                .underlay
                .as_ref()
                .and_then(|u| c.parse(&format!("{place}.underlay"), u, text::parse_ip))
                .unwrap_or_else(|| model::gateway_underlay(index));
            Gateway {
                name: name.clone(),
                kind,
                hosts,
                underlay,
            }
        })
        .collect();
    // Past the numbering's room, that error says it all.
    for (i, g) in gateways.iter().enumerate().take(model::MAX_GATEWAYS) {
        if let Some(other) = gateways[..i].iter().find(|o| o.underlay == g.underlay) {
            c.err(
                format!("gateway.{}.underlay", g.name),
                format!(
                    "{} is gateway {}'s underlay address too",
                    g.underlay, other.name
                ),
            );
        }
    }
    if gateways.len() > model::MAX_GATEWAYS {
        c.err(
            "gateway",
            format!(
                "{} gateways, the underlay numbering (203.0.113.1 on) has room for {}",
                gateways.len(),
                model::MAX_GATEWAYS
            ),
        );
    }
    c.capacity("gateway", "gateways", gateways.len(), limits.gateways);
    gateways
}
