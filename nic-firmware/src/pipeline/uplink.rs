//! Frames from the uplink: ARP for this host's underlay address, and F15 decapsulation.
use super::deliver::{to_local_vf, Origin};
use super::route::lookup;
use super::trace::{Step, Tracer};
use super::vxlan::OVERHEAD;
use super::{eth, ipv4, mtu, Hints, Port, Verdict};
use crate::frame::FrameBuf;
use crate::tables::mapping::Location;
use crate::tables::{Tables, Uplink};
use crate::wire::{self, VxlanPacket, VxlanRepr};
use shared_regs::stats::Counter;
use shared_regs::trace::DstMacClass;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, IpProtocol, Ipv4Address, UdpPacket, UdpRepr,
};

fn drop(reason: Counter) -> Verdict {
    Verdict::drop(Port::Uplink, reason)
}

/// A frame from the uplink, whose Ethernet header is `outer` (`None`: too short).
pub(super) fn from_uplink<T: Tracer>(
    tables: &Tables<'_>,
    outer: Option<eth::Header>,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let Some(uplink) = tables.uplink else {
        return drop(Counter::DropUplinkForeign);
    };
    let Some(outer) = outer else {
        return drop(Counter::DropMalformed);
    };
    match outer.ethertype {
        eth::ETHERTYPE_ARP => underlay_arp(&uplink, frame),
        eth::ETHERTYPE_IPV4 if outer.dst == uplink.mac => decapsulate(tables, &uplink, frame, tr),
        _ => drop(Counter::DropUplinkForeign),
    }
}

/// Answers ARP requests for this host's underlay address, so underlay routers and the
/// Linux vxlan devices of gateways can reach it; every other ARP is not ours.
fn underlay_arp(uplink: &Uplink, frame: &mut FrameBuf) -> Verdict {
    let data = frame.data_mut();
    let Ok(mut packet) = ArpPacket::new_checked(eth::payload_mut(data)) else {
        return drop(Counter::DropMalformed);
    };
    let underlay_ip = Ipv4Address::from(uplink.underlay_ip);
    let (sha, spa) = match ArpRepr::parse(&packet) {
        Ok(ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) if target_protocol_addr == underlay_ip => (source_hardware_addr, source_protocol_addr),
        _ => return drop(Counter::DropUplinkForeign),
    };
    ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(uplink.mac),
        source_protocol_addr: underlay_ip,
        target_hardware_addr: sha,
        target_protocol_addr: spa,
    }
    .emit(&mut packet);
    eth::set_macs(data, sha.0, uplink.mac);
    Verdict::ToUplink
}

/// The outer headers of a VXLAN frame for this host, and the VPC its VNI names.
struct Outer {
    src: u32,
    vni: u32,
    vpc: u16,
}

/// F15: only VXLAN to this host's underlay address and a known VNI.
fn outer_headers(tables: &Tables<'_>, uplink: &Uplink, frame: &[u8]) -> Option<Outer> {
    let ip = ipv4::parse(eth::payload(frame))?;
    if ip.dst != uplink.underlay_ip || ip.protocol != IpProtocol::Udp || ip.later_fragment {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.l4(frame)).ok()?;
    let (src, dst) = (Ipv4Address::from(ip.src), Ipv4Address::from(ip.dst));
    // The UDP checksum is not verified: RFC 7348 senders over IPv4 send 0, and the inner
    // packet carries its own.
    let ignored = ChecksumCapabilities::ignored();
    let udp_repr = UdpRepr::parse(&udp, &src.into(), &dst.into(), &ignored).ok()?;
    if udp_repr.dst_port != wire::vxlan::UDP_PORT {
        return None;
    }
    let VxlanRepr { vni } =
        VxlanRepr::parse(&VxlanPacket::new_checked(udp.payload()).ok()?).ok()?;
    let vpc = match tables.mappings.get(crate::admin::vni_anchor(vni))?.location {
        Location::Vpc(id) => id,
        _ => return None,
    };
    // The inner frame must start right after the 8-byte VXLAN header: no IP options on
    // the outer header.
    if ip.header_len != 20 {
        return None;
    }
    Some(Outer {
        src: ip.src,
        vni,
        vpc,
    })
}

fn decapsulate<T: Tracer>(
    tables: &Tables<'_>,
    uplink: &Uplink,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let Some(outer) = outer_headers(tables, uplink, frame.data()) else {
        return drop(Counter::DropUplinkForeign);
    };
    if !frame.pop_front(OVERHEAD) {
        return drop(Counter::DropMalformed);
    }
    let inner_dst_mac = match eth::Header::parse(frame.data()) {
        Some(h) if h.ethertype == eth::ETHERTYPE_IPV4 => h.dst,
        Some(_) => return drop(Counter::DropEthertype),
        None => return drop(Counter::DropMalformed),
    };
    let Some(inner) = ipv4::validate(frame, tr) else {
        return drop(Counter::DropMalformed);
    };
    tr.step(Step::Decap {
        outer_src: outer.src.into(),
        vni: outer.vni,
        inner_src: inner.src.into(),
        inner_dst: inner.dst.into(),
    });
    if mtu::exceeds_vf_mtu(inner.total_len) {
        return drop(Counter::DropOversize);
    }
    let vf = match lookup(tables, outer.vni, inner.dst, &Hints::NONE, tr).map(|m| m.location) {
        Some(Location::LocalVf(vf)) => vf,
        _ => match middlebox(tables, outer.vpc, inner_dst_mac) {
            Some(vf) => {
                tr.step(Step::DstMac {
                    vf: Some(vf),
                    class: DstMacClass::Instance,
                });
                vf
            }
            None => return drop(Counter::DropNoMapping),
        },
    };
    if !plausible_source(tables, &outer, inner.src, tr) {
        return drop(Counter::DropDecapSpoof);
    }
    let origin = Origin::Remote {
        src_ip: inner.src,
        vni: outer.vni,
    };
    to_local_vf(tables, Port::Uplink, origin, vf, inner.dst, frame, tr)
}

/// F15 for a middlebox: a packet whose inner destination is no local instance's address
/// may still be for the local VF of VPC `vpc` that the inner frame is addressed to, when
/// that VF has its source/destination check off. That is how an `eni:` route (F8) or a
/// frame to an appliance's MAC (F7) reaches an appliance on another host; a VF with its
/// check on takes only its own addresses, so for it the packet stays `drop_no_mapping`.
fn middlebox(tables: &Tables<'_>, vpc: u16, dst_mac: [u8; 6]) -> Option<u16> {
    tables.vf_with_mac(dst_mac, |c| {
        !c.src_dst_check && tables.subnet(c.subnet).is_some_and(|n| n.vpc == vpc)
    })
}

/// F15: the inner source lives on the outer source host in this VPC, or in a VPC that
/// peers with it (a peered sender encapsulates with the destination's VNI); or the outer
/// source is a gateway this VPC routes to.
fn plausible_source<T: Tracer>(
    tables: &Tables<'_>,
    outer: &Outer,
    inner_src: u32,
    tr: &mut T,
) -> bool {
    let on_outer_host = |m: Option<crate::tables::mapping::Mapping>| {
        matches!(m.map(|m| m.location),
            Some(Location::Remote { underlay_ip }) if underlay_ip == outer.src)
    };
    if on_outer_host(lookup(tables, outer.vni, inner_src, &Hints::NONE, tr)) {
        return true;
    }
    let trusted = tables.vpc(outer.vpc).map_or(0, |v| v.gateway_mask);
    let from_gateway = tables.gateways.iter().enumerate().any(|(id, g)| {
        g.is_some_and(|g| g.underlay_ip == outer.src)
            && trusted
                & 1u64
                    .checked_shl(u32::try_from(id).unwrap_or(u32::MAX))
                    .unwrap_or(0)
                != 0
    });
    if from_gateway {
        return true;
    }
    tables
        .vpcs
        .iter()
        .enumerate()
        .filter_map(|(id, v)| Some((u16::try_from(id).ok()?, (*v)?)))
        .filter(|(id, _)| *id != outer.vpc)
        .any(|(id, v)| {
            tables.peers(id, outer.vpc)
                && on_outer_host(lookup(tables, v.vni, inner_src, &Hints::NONE, tr))
        })
}
