//! F14: VXLAN encapsulation (RFC 7348) toward remote hosts and gateways.
use super::ipv4::{self, Ipv4Info};
use super::trace::{Step, Tracer};
use super::{mtu, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::offload::{PROTO_TCP, PROTO_UDP};
use crate::tables::{Tables, Uplink};
use crate::wire;
use shared_regs::stats::Counter;
use shared_regs::ETH_HEADER_LEN;
use smoltcp::wire::UDP_HEADER_LEN;

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
    /// Encapsulation of the IPv4 packet `ip` in `frame` toward `underlay_dst`. Inlined:
    /// out of line, its caller had to lay `ip` out in memory first.
    #[inline(always)]
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
#[inline(always)]
fn flow_port(ip: &Ipv4Info, frame: &[u8]) -> u16 {
    let protocol = u8::from(ip.protocol);
    flow_port_of(ip.src, ip.dst, protocol, ports(protocol, ip.l4(frame)))
}

/// The first word of `l4` (source and destination port) for TCP and UDP; 0 for other
/// protocols and for an L4 header cut short (a later fragment's is empty).
#[inline(always)]
pub(super) fn ports(protocol: u8, l4: &[u8]) -> u32 {
    match protocol {
        PROTO_TCP | PROTO_UDP => l4
            .get(..4)
            .and_then(|p| p.try_into().ok())
            .map_or(0, u32::from_be_bytes),
        _ => 0,
    }
}

/// [`flow_port`] of the addresses, protocol and first L4 word (0 without ports).
#[inline(always)]
pub(super) fn flow_port_of(src: u32, dst: u32, protocol: u8, ports: u32) -> u16 {
    let h = (u64::from(src) << 32 | u64::from(dst)) ^ (u64::from(ports) << 8) ^ u64::from(protocol);
    0xC000 | (crate::tables::mapping::fmix64_round(h) as u16 & 0x3FFF)
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
///
/// Every encapsulated packet pays for this, so the 50 bytes are written directly rather
/// than through smoltcp's emitters (about a fifth of a cached packet's instructions);
/// a test holds them byte for byte to what smoltcp emits: outer IPv4 without options, TTL
/// 64, DF, identification 0 and a valid checksum; UDP checksum 0 (RFC 7348 allows it over
/// IPv4, and the inner packet carries its own); VXLAN with the I flag.
pub fn write_outer(frame: &mut [u8], uplink: &Uplink, e: &Encap) -> bool {
    let Ok(ip_len) = u16::try_from(frame.len().saturating_sub(ETH_HEADER_LEN)) else {
        return false;
    };
    let Some(outer) = frame.get_mut(..OVERHEAD) else {
        return false;
    };
    let udp_len = ip_len.saturating_sub(ipv4::HEADER_LEN as u16);
    let [s0, s1, s2, s3] = uplink.underlay_ip.to_be_bytes();
    let [d0, d1, d2, d3] = e.underlay_dst.to_be_bytes();
    let [l0, l1] = ip_len.to_be_bytes();
    let ip = [
        0x45, 0, l0, l1, 0, 0, 0x40, 0, 64, 17, 0, 0, s0, s1, s2, s3, d0, d1, d2, d3,
    ];
    let [c0, c1] = ipv4_checksum(&ip).to_be_bytes();
    let [m0, m1, m2, m3, m4, m5] = uplink.next_hop_mac;
    let [n0, n1, n2, n3, n4, n5] = uplink.mac;
    let [u0, u1] = udp_len.to_be_bytes();
    let [p0, p1] = e.src_port.to_be_bytes();
    let [q0, q1] = wire::vxlan::UDP_PORT.to_be_bytes();
    let [_, v0, v1, v2] = e.vni.to_be_bytes();
    #[rustfmt::skip]
    let headers: [u8; OVERHEAD] = [
        // Ethernet: next hop, this host, IPv4.
        m0, m1, m2, m3, m4, m5, n0, n1, n2, n3, n4, n5, 0x08, 0x00,
        // IPv4: IHL 5, length, ident 0, DF, TTL 64, UDP, checksum, addresses.
        0x45, 0, l0, l1, 0, 0, 0x40, 0, 64, 17, c0, c1, s0, s1, s2, s3, d0, d1, d2, d3,
        // UDP: ports, length, checksum 0.
        p0, p1, q0, q1, u0, u1, 0, 0,
        // VXLAN: I flag, VNI.
        0x08, 0, 0, 0, v0, v1, v2, 0,
    ];
    outer.copy_from_slice(&headers);
    true
}

/// RFC 1071: the checksum of a 20-byte IPv4 header whose checksum field is zero.
#[inline(always)]
fn ipv4_checksum(header: &[u8; 20]) -> u16 {
    !ipv4::ones_complement_sum(
        header
            .chunks_exact(4)
            .map(|w| w.try_into().map_or(0, u32::from_be_bytes)),
    )
}

/// Encapsulates the inner frame in `frame` in place, using its headroom.
pub fn encapsulate(frame: &mut FrameBuf, uplink: &Uplink, e: &Encap) -> bool {
    frame.push_front(OVERHEAD).is_some() && write_outer(frame.data_mut(), uplink, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use crate::wire::{VxlanPacket, VxlanRepr};
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::IpProtocol;
    use smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, Ipv4Address,
        UdpPacket, UdpRepr,
    };

    /// The outer headers as smoltcp's emitters write them: what `write_outer` must equal.
    fn reference(frame: &mut [u8], uplink: &Uplink, e: &Encap) -> bool {
        if frame.len() < OVERHEAD || u16::try_from(frame.len() - ETH_HEADER_LEN).is_err() {
            return false;
        }
        let (l2, rest) = frame.split_at_mut(ETH_HEADER_LEN);
        let (l3, datagram) = rest.split_at_mut(ipv4::HEADER_LEN);
        EthernetRepr {
            src_addr: EthernetAddress(uplink.mac),
            dst_addr: EthernetAddress(uplink.next_hop_mac),
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut EthernetFrame::new_unchecked(l2));
        let (src, dst) = (uplink.underlay_ip, e.underlay_dst);
        assert!(ipv4::write_header(
            l3,
            src,
            dst,
            IpProtocol::Udp,
            datagram.len(),
            true
        ));
        let vxlan = VxlanRepr { vni: e.vni };
        let payload_len = datagram.len() - UDP_HEADER_LEN;
        UdpRepr {
            src_port: e.src_port,
            dst_port: wire::vxlan::UDP_PORT,
        }
        .emit(
            &mut UdpPacket::new_unchecked(datagram),
            &IpAddress::from(Ipv4Address::from(src)),
            &IpAddress::from(Ipv4Address::from(dst)),
            payload_len,
            |payload| vxlan.emit(&mut VxlanPacket::new_unchecked(payload)),
            &ChecksumCapabilities::ignored(),
        );
        true
    }

    #[test]
    fn outer_headers_are_what_smoltcp_emits() {
        let mut rng = Rng(5);
        for _ in 0..2000 {
            let mac = |rng: &mut Rng| {
                let b = rng.next_u64().to_be_bytes();
                [b[0], b[1], b[2], b[3], b[4], b[5]]
            };
            let uplink = Uplink {
                mac: mac(&mut rng),
                next_hop_mac: mac(&mut rng),
                underlay_ip: rng.next_u32(),
                mtu: 9000,
            };
            let e = Encap {
                underlay_dst: rng.next_u32(),
                vni: rng.next_u32() & 0xff_ffff,
                src_port: rng.next_u32() as u16,
            };
            let len = match rng.below(4) {
                0 => rng.below(OVERHEAD as u64 + 2) as usize,
                1 => 65_535 + ETH_HEADER_LEN - 1 + rng.below(3) as usize,
                _ => OVERHEAD + rng.below(9000) as usize,
            };
            let inner: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            let (mut fast, mut slow) = (inner.clone(), inner.clone());
            let ok = write_outer(&mut fast, &uplink, &e);
            assert_eq!(ok, reference(&mut slow, &uplink, &e), "length {len}");
            if ok {
                assert_eq!(fast, slow, "length {len}");
            }
        }
    }
}
