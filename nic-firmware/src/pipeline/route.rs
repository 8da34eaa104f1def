//! F7 same-subnet delivery by MAC, F8 route tables, mapping resolution, and delivery: to a
//! local VF with the F5 destination check and the F12 rewrite, or over VXLAN (F13, F14).
use super::ipv4::{is_echo_request, Ipv4Info};
use super::trace::{Step, Tracer};
use super::vxlan::{self, Encap};
use super::{eth, mtu, Hints, Port, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::lpm::Target;
use crate::tables::mapping::{Location, Mapping, MappingKey};
use crate::tables::Tables;
use shared_regs::stats::Counter;
use shared_regs::trace::{DstMacClass, MappedTo, MtuAction};

/// IPv4 MTU toward gateway targets (F13).
pub const GATEWAY_MTU: u16 = 1500;

/// A mapping lookup, traced.
pub(super) fn lookup<T: Tracer>(
    tables: &Tables<'_>,
    vni: u32,
    ip: u32,
    hints: &Hints,
    tr: &mut T,
) -> Option<Mapping> {
    let found = hints.mapping(tables, MappingKey { vni, ip });
    let to = found.map(|m| match m.location {
        Location::LocalVf(vf) => MappedTo::LocalVf { vf },
        Location::Remote { underlay_ip } => MappedTo::Remote {
            underlay: underlay_ip.into(),
        },
        // This NIC answers for every subnet gateway, so the gateway is at this host.
        Location::Gateway => MappedTo::Gateway {
            underlay: tables.uplink.map_or(0, |u| u.underlay_ip).into(),
        },
        Location::Broadcast => MappedTo::Broadcast,
        Location::Vpc(vpc) => MappedTo::VniAnchor { vpc },
    });
    let ip = ip.into();
    tr.step(match to {
        Some(to) => Step::MappingHit { vni, ip, to },
        None => Step::MappingMiss { vni, ip },
    });
    found
}

/// F7: a frame to a MAC other than the gateway's goes straight to the instance of the
/// sender's subnet with that MAC, without a route lookup (F5 then applies at the receiver).
pub(super) fn same_subnet_by_mac<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    dst_mac: [u8; 6],
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    hints: &Hints,
    tr: &mut T,
) -> Verdict {
    // The usual case: the destination address belongs to the instance with that MAC, local
    // or remote; one mapping lookup finds it.
    if sender.subnet.contains(ip.dst) {
        if let Some(m) = lookup(tables, sender.vpc.vni, ip.dst, hints, tr) {
            let instance = matches!(m.location, Location::LocalVf(_) | Location::Remote { .. });
            if instance && m.mac == dst_mac {
                tr.step(Step::DstMac {
                    vf: None,
                    class: DstMacClass::Instance,
                });
                return deliver(tables, sender, sender.vpc.vni, m, ip, frame, tr);
            }
        }
    }
    // Otherwise the MAC alone decides: a local VF of the same subnet, whatever the address
    // (an appliance as next hop).
    let by_mac = tables
        .vfs
        .iter()
        .position(|c| c.is_some_and(|c| c.mac == dst_mac && c.subnet == sender.cfg.subnet))
        .and_then(|i| u16::try_from(i).ok());
    match by_mac {
        Some(vf) => {
            tr.step(Step::DstMac {
                vf: Some(vf),
                class: DstMacClass::Instance,
            });
            deliver_to_vf(tables, sender, vf, ip, frame, tr)
        }
        None => sender.drop(Counter::DropDstMac),
    }
}

/// F8: longest-prefix match in the sender subnet's route table.
pub(super) fn routed<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    hints: &Hints,
    tr: &mut T,
) -> Verdict {
    let table = sender.subnet.route_table;
    let Some(route) = hints.route(tables, table, ip.dst) else {
        tr.step(Step::RouteMiss {
            table,
            dst: ip.dst.into(),
        });
        return sender.drop(Counter::DropNoRoute);
    };
    tr.step(Step::RouteHit {
        table,
        dst: ip.dst.into(),
        prefix: route.prefix.into(),
        len: route.len,
        target: route.target.into(),
    });
    let (vni, addr) = match route.target {
        Target::Local => (sender.vpc.vni, ip.dst),
        Target::Peering(peer) => match tables.vpc(peer) {
            Some(p) => (p.vni, ip.dst),
            None => return sender.drop(Counter::DropNoRoute),
        },
        Target::Instance(target_ip) => (sender.vpc.vni, target_ip),
        Target::Blackhole => return sender.drop(Counter::DropBlackhole),
        Target::Gateway(id) => return to_gateway(tables, sender, id, ip, frame, tr),
    };
    match lookup(tables, vni, addr, hints, tr) {
        Some(m) => deliver(tables, sender, vni, m, ip, frame, tr),
        None => sender.drop(Counter::DropNoMapping),
    }
}

/// Delivers to where a mapping points.
fn deliver<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    vni: u32,
    m: Mapping,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    match m.location {
        Location::LocalVf(vf) => deliver_to_vf(tables, sender, vf, ip, frame, tr),
        Location::Vpc(_) => sender.drop(Counter::DropNoMapping),
        // F6: another subnet's broadcast address, reached through a route.
        Location::Broadcast => sender.drop(Counter::DropBcastMcast),
        Location::Remote { underlay_ip } => {
            eth::set_macs(frame.data_mut(), m.mac, sender.cfg.mac);
            let mtu = tables
                .uplink
                .map_or(0, |u| u.mtu.saturating_sub(vxlan::OVERHEAD as u16));
            let encap = Encap::new(underlay_ip, vni, ip, frame.data());
            encapsulate(tables, sender, encap, mtu, ip, frame, tr)
        }
        Location::Gateway => {
            // F10: another subnet's gateway answers nobody.
            let echo = is_echo_request(ip, frame.data());
            tr.step(Step::Gateway {
                ip: ip.dst.into(),
                own_subnet: false,
                echo,
            });
            if echo {
                sender.drop(Counter::DropForeignGateway)
            } else {
                sender.drop(Counter::DropToGateway)
            }
        }
    }
}

/// F8 gateway target: VXLAN to the gateway with the VPC's VNI, MTU 1500 (F13).
fn to_gateway<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    id: u16,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let Some(gw) = tables.gateway(id) else {
        return sender.drop(Counter::DropNoRoute);
    };
    eth::set_macs(frame.data_mut(), gw.mac, sender.cfg.mac);
    let encap = Encap::new(gw.underlay_ip, sender.vpc.vni, ip, frame.data());
    encapsulate(tables, sender, encap, GATEWAY_MTU, ip, frame, tr)
}

/// F13 then F14: fits, frag-needed, or fragments; then encapsulation in place.
fn encapsulate<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    encap: Encap,
    mtu: u16,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let Some(uplink) = tables.uplink else {
        return sender.drop(Counter::DropNoRoute);
    };
    let fits = ip.total_len <= usize::from(mtu);
    let action = match (fits, ip.dont_frag) {
        (true, _) => MtuAction::Fits,
        (false, true) => MtuAction::FragNeeded,
        (false, false) => MtuAction::Fragment,
    };
    tr.step(Step::Mtu {
        len: u16::try_from(ip.total_len).unwrap_or(u16::MAX),
        mtu,
        action,
    });
    match action {
        MtuAction::Fits => {}
        MtuAction::FragNeeded => {
            return if mtu::write_frag_needed(sender, ip, mtu, frame) {
                Verdict::Reply { vf: sender.vf }
            } else {
                sender.drop(Counter::DropMalformed)
            }
        }
        MtuAction::Fragment => return Verdict::Fragment { encap, mtu },
    }
    tr.step(Step::Encap {
        underlay: encap.underlay_dst.into(),
        vni: encap.vni,
        src_port: encap.src_port,
    });
    if vxlan::encapsulate(frame, &uplink, &encap) {
        Verdict::ToUplink
    } else {
        sender.drop(Counter::DropOversize)
    }
}

/// Who sent a frame that is delivered to a local VF, for F12.
#[derive(Clone, Copy)]
pub(super) enum Origin {
    /// A local VF in subnet `subnet` with MAC `mac`.
    Local { subnet: u16, mac: [u8; 6] },
    /// A remote instance (or gateway) by inner source address, in VPC `vni`; its MAC is the
    /// inner frame's source MAC, already in place.
    Remote { src_ip: u32, vni: u32 },
}

fn deliver_to_vf<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    vf: u16,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let origin = Origin::Local {
        subnet: sender.cfg.subnet,
        mac: sender.cfg.mac,
    };
    to_local_vf(tables, sender.port(), origin, vf, ip.dst, frame, tr)
}

/// F5 at the receiver, then F12. `from` is the port a drop for lack of a VF is counted on.
pub(super) fn to_local_vf<T: Tracer>(
    tables: &Tables<'_>,
    from: Port,
    origin: Origin,
    vf: u16,
    dst_ip: u32,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let (Some(dst), Some(subnet)) = (
        tables.vf(vf),
        tables.vf(vf).and_then(|d| tables.subnet(d.subnet)),
    ) else {
        return Verdict::drop(from, Counter::DropNoMapping);
    };
    tr.step(Step::DstIp {
        vf,
        check: dst.src_dst_check,
        dst: dst_ip.into(),
    });
    if dst.src_dst_check && !dst.owns(dst_ip) {
        return Verdict::drop(Port::Vf(vf), Counter::DropDstIp);
    }
    let same_subnet_mac = match origin {
        Origin::Local { subnet, mac } => (subnet == dst.subnet).then_some(mac),
        Origin::Remote { src_ip, vni } => {
            let same_vpc = tables.vpc(subnet.vpc).is_some_and(|v| v.vni == vni);
            let src_mac = eth::Header::parse(frame.data()).map(|h| h.src);
            if same_vpc && subnet.contains(src_ip) {
                src_mac
            } else {
                None
            }
        }
    };
    let same_subnet = same_subnet_mac.is_some();
    tr.step(Step::Rewrite { vf, same_subnet });
    eth::set_macs(
        frame.data_mut(),
        dst.mac,
        same_subnet_mac.unwrap_or(subnet.gateway_mac),
    );
    Verdict::ToVf { vf }
}
