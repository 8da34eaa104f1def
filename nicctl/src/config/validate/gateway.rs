//! Gateways: kind and the addresses behind the edge.
use super::*;

pub(super) fn check_gateways(c: &mut Checker<'_>, raw: &RawFile, limits: &Limits) -> Vec<Gateway> {
    let gateways: Vec<Gateway> = raw
        .gateway
        .iter()
        .map(|(name, g)| {
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
            Gateway {
                name: name.clone(),
                kind,
                hosts,
            }
        })
        .collect();
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
