//! F7 same-subnet delivery by MAC, F8 route tables, and mapping resolution: where a packet
//! goes. Getting it there is [`super::deliver`] (a local VF), [`super::vxlan`] (the uplink)
//! or [`super::subnet_gateway`] (another subnet's gateway).
use super::deliver::deliver_to_vf;
use super::ipv4::Ipv4Info;
use super::trace::{Step, Tracer};
use super::vxlan::{self, Encap};
use super::{eth, mtu, subnet_gateway, Hints, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::lpm::Target;
use crate::tables::mapping::{Location, Mapping, MappingKey};
use crate::tables::Tables;
use shared_regs::stats::Counter;
use shared_regs::trace::{DstMacClass, MappedTo};

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
    // "Another instance": a frame to the sender's own MAC is no one's to deliver.
    if dst_mac == sender.cfg.mac {
        return sender.drop(Counter::DropDstMac);
    }
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
    let by_mac = tables.vf_with_mac(dst_mac, |c| c.subnet == sender.cfg.subnet);
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
            let mtu = mtu::to_remote_host(tables.uplink);
            let encap = Encap::new(underlay_ip, vni, ip, frame.data());
            vxlan::to_uplink(tables, sender, encap, mtu, ip, frame, tr)
        }
        Location::Gateway => subnet_gateway::to_foreign_gateway(sender, ip, frame, tr),
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
    vxlan::to_uplink(tables, sender, encap, mtu::GATEWAY_MTU, ip, frame, tr)
}
