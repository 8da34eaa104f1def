//! F14: VXLAN encapsulation (RFC 7348) toward remote hosts and gateways.
use super::ipv4::{self, Ipv4Info};
use crate::frame::FrameBuf;
use crate::tables::Uplink;
use smoltcp::wire::IpProtocol;

/// Bytes VXLAN puts in front of the inner Ethernet frame: outer Ethernet, IPv4, UDP, VXLAN.
pub const OVERHEAD: usize = 14 + 20 + 8 + 8;
/// The VXLAN UDP port.
pub const PORT: u16 = 4789;
/// The VXLAN header's "I" flag: the VNI is valid.
pub const FLAG_VNI: u8 = 0x08;

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

/// Writes the outer headers for an inner frame of `inner_len` bytes into `out`, which must
/// be [`OVERHEAD`] bytes long. False if it is not.
pub fn write_outer(out: &mut [u8], uplink: &Uplink, e: &Encap, inner_len: usize) -> bool {
    let Ok(out) = <&mut [u8; OVERHEAD]>::try_from(out) else {
        return false;
    };
    let (Ok(ip_len), Ok(udp_len)) = (
        u16::try_from(inner_len.saturating_add(OVERHEAD - 14)),
        u16::try_from(inner_len.saturating_add(16)),
    ) else {
        return false;
    };
    out[0..6].copy_from_slice(&uplink.next_hop_mac);
    out[6..12].copy_from_slice(&uplink.mac);
    out[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let payload_len = usize::from(ip_len).saturating_sub(ipv4::HEADER_LEN);
    let header = &mut out[14..34];
    ipv4::write_header(
        header,
        uplink.underlay_ip,
        e.underlay_dst,
        IpProtocol::Udp,
        payload_len,
        true,
    );
    out[34..36].copy_from_slice(&e.src_port.to_be_bytes());
    out[36..38].copy_from_slice(&PORT.to_be_bytes());
    out[38..40].copy_from_slice(&udp_len.to_be_bytes());
    // Checksum 0: RFC 7348 allows it over IPv4, and the inner packet carries its own.
    out[40..42].copy_from_slice(&[0, 0]);
    out[42..46].copy_from_slice(&[FLAG_VNI, 0, 0, 0]);
    out[46..50].copy_from_slice(&(e.vni << 8).to_be_bytes());
    true
}

/// Encapsulates the inner frame in `frame` in place, using its headroom.
pub fn encapsulate(frame: &mut FrameBuf, uplink: &Uplink, e: &Encap) -> bool {
    let inner_len = frame.len();
    match frame.push_front(OVERHEAD) {
        Some(out) => write_outer(out, uplink, e, inner_len),
        None => false,
    }
}
