//! F14: VXLAN encapsulation (RFC 7348) toward remote hosts and gateways.
use super::ipv4::{self, Ipv4Info};
use super::trace::{Step, Tracer};
use super::{mtu, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::{Tables, Uplink};
use crate::wire::{self, VxlanPacket, VxlanRepr};
use shared_regs::stats::Counter;
use shared_regs::ETH_HEADER_LEN;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Address, UdpPacket, UdpRepr, UDP_HEADER_LEN,
};

/// Bytes VXLAN puts in front of the inner Ethernet frame: outer Ethernet, IPv4, UDP, VXLAN.
pub const OVERHEAD: usize =
    ETH_HEADER_LEN + ipv4::HEADER_LEN + UDP_HEADER_LEN + wire::vxlan::HEADER_LEN;

/// Where and how to encapsulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encap {
    /// Outer destination (remote host or gateway), host byte order.
    pub underlay_dst: u32,
    pub vni: u32,
    /// UDP source port: a hash of the inner flow, so the underlay can spread flows (ECMP).
    pub src_port: u16,
}

impl Encap {
    /// Encapsulation of the IPv4 packet `ip` in `frame` toward `underlay_dst`.
    pub(super) fn new(underlay_dst: u32, vni: u32, ip: &Ipv4Info, frame: &[u8]) -> Encap {
        Encap {
            underlay_dst,
            vni,
            src_port: flow_port(ip, frame),
        }
    }
}

/// 49152 + a hash of the inner 5-tuple (addresses and protocol only for fragments and
/// protocols without ports), in 49152..=65535.
fn flow_port(ip: &Ipv4Info, frame: &[u8]) -> u16 {
    let proto = u8::from(ip.protocol);
    let ports = match ip.protocol {
        IpProtocol::Tcp | IpProtocol::Udp => ip
            .l4(frame)
            .get(..4)
            .and_then(|p| p.try_into().ok())
            .map_or(0, u32::from_be_bytes),
        _ => 0,
    };
    let mut h =
        (u64::from(ip.src) << 32 | u64::from(ip.dst)) ^ (u64::from(ports) << 8) ^ u64::from(proto);
    // The murmur3 finaliser: every input bit moves every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    0xC000 | (h as u16 & 0x3FFF)
}

/// F14 toward `encap.underlay_dst` on a path of `mtu` bytes: F13 first (fits,
/// frag-needed, or fragments), then encapsulation in place.
pub(super) fn to_uplink<T: Tracer>(
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
    if let Some(verdict) = mtu::too_long(sender, encap, mtu, ip, frame, tr) {
        return verdict;
    }
    tr.step(Step::Encap {
        underlay: encap.underlay_dst.into(),
        vni: encap.vni,
        src_port: encap.src_port,
    });
    if encapsulate(frame, &uplink, &encap) {
        Verdict::ToUplink
    } else {
        sender.drop(Counter::DropOversize)
    }
}

/// Writes the outer headers into the first [`OVERHEAD`] bytes of `frame`, in front of the
/// inner Ethernet frame that fills the rest. False if `frame` is shorter than the outer
/// headers, or too long for one outer IPv4 packet.
pub fn write_outer(frame: &mut [u8], uplink: &Uplink, e: &Encap) -> bool {
    if frame.len() < OVERHEAD || u16::try_from(frame.len().saturating_sub(ETH_HEADER_LEN)).is_err()
    {
        return false;
    }
    let Some((l2, rest)) = frame.split_at_mut_checked(ETH_HEADER_LEN) else {
        return false;
    };
    let Some((l3, datagram)) = rest.split_at_mut_checked(ipv4::HEADER_LEN) else {
        return false;
    };
    EthernetRepr {
        src_addr: EthernetAddress(uplink.mac),
        dst_addr: EthernetAddress(uplink.next_hop_mac),
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(l2));
    let (src, dst) = (uplink.underlay_ip, e.underlay_dst);
    if !ipv4::write_header(l3, src, dst, IpProtocol::Udp, datagram.len(), true) {
        return false;
    }
    let vxlan = VxlanRepr { vni: e.vni };
    // The length check above keeps the datagram within 16 bits, as `emit` needs.
    let payload_len = datagram.len().saturating_sub(UDP_HEADER_LEN);
    let udp = UdpRepr {
        src_port: e.src_port,
        dst_port: wire::vxlan::UDP_PORT,
    };
    udp.emit(
        &mut UdpPacket::new_unchecked(datagram),
        &IpAddress::from(Ipv4Address::from(src)),
        &IpAddress::from(Ipv4Address::from(dst)),
        payload_len,
        |payload| vxlan.emit(&mut VxlanPacket::new_unchecked(payload)),
        // Checksum 0: RFC 7348 allows it over IPv4, and the inner packet carries its own.
        &ChecksumCapabilities::ignored(),
    );
    true
}

/// Encapsulates the inner frame in `frame` in place, using its headroom.
pub fn encapsulate(frame: &mut FrameBuf, uplink: &Uplink, e: &Encap) -> bool {
    frame.push_front(OVERHEAD).is_some() && write_outer(frame.data_mut(), uplink, e)
}
