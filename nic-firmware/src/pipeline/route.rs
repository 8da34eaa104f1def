//! F7 same-subnet delivery by MAC, F8 route tables, mapping resolution, and delivery with
//! the F5 destination check and the F12 L2 rewrite.
use super::ipv4::{is_echo_request, Ipv4Info};
use super::{eth, Port, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::lpm::Target;
use crate::tables::mapping::{Location, MappingKey};
use crate::tables::Tables;
use shared_regs::stats::Counter;

/// F7: a frame to a MAC other than the gateway's goes straight to the same-subnet instance
/// with that MAC and address, without a route lookup.
pub(super) fn same_subnet_by_mac(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    dst_mac: [u8; 6],
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
) -> Verdict {
    let key = MappingKey {
        vni: sender.vpc.vni,
        ip: ip.dst,
    };
    match tables.mappings.get(key) {
        Some(m) if m.mac == dst_mac && sender.subnet.contains(ip.dst) => {
            deliver(tables, sender, m.location, ip, frame)
        }
        _ => sender.drop(Counter::DropDstMac),
    }
}

/// F8: longest-prefix match in the sender subnet's route table.
pub(super) fn routed(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
) -> Verdict {
    let Some(route) = tables.routes.lookup(sender.subnet.route_table, ip.dst) else {
        return sender.drop(Counter::DropNoRoute);
    };
    let (vni, addr) = match route.target {
        Target::Local => (sender.vpc.vni, ip.dst),
        Target::Peering(peer) => match tables.vpc(peer) {
            Some(p) => (p.vni, ip.dst),
            None => return sender.drop(Counter::DropNoRoute),
        },
        Target::Instance(target_ip) => (sender.vpc.vni, target_ip),
        Target::Blackhole => return sender.drop(Counter::DropBlackhole),
        // F14 (VXLAN to gateways) is not in this firmware yet.
        Target::Gateway(_) => return sender.drop(Counter::DropUnsupported),
    };
    match tables.mappings.get(MappingKey { vni, ip: addr }) {
        Some(m) => deliver(tables, sender, m.location, ip, frame),
        None => sender.drop(Counter::DropNoMapping),
    }
}

/// Delivers to where a mapping points.
fn deliver(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    location: Location,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
) -> Verdict {
    match location {
        Location::LocalVf(vf) => deliver_to_vf(tables, sender, vf, ip, frame),
        // F14 (VXLAN to remote hosts) is not in this firmware yet.
        Location::Remote { .. } => sender.drop(Counter::DropUnsupported),
        Location::Gateway => {
            // F10: another subnet's gateway answers nobody.
            if is_echo_request(ip, frame.data()) {
                sender.drop(Counter::DropForeignGateway)
            } else {
                sender.drop(Counter::DropToGateway)
            }
        }
    }
}

/// F5 at the receiver, then F12.
fn deliver_to_vf(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    vf: u16,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
) -> Verdict {
    let Some(dst) = tables.vf(vf) else {
        return sender.drop(Counter::DropNoMapping);
    };
    if dst.src_dst_check && ip.dst != dst.primary_ip {
        return Verdict::drop(Port::Vf(vf), Counter::DropDstIp);
    }
    let src_mac = if dst.subnet == sender.cfg.subnet {
        sender.cfg.mac
    } else {
        match tables.subnet(dst.subnet) {
            Some(s) => s.gateway_mac,
            None => return sender.drop(Counter::DropNoMapping),
        }
    };
    eth::set_macs(frame.data_mut(), dst.mac, src_mac);
    Verdict::ToVf { vf }
}
