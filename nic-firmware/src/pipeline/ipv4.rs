//! IPv4 from a VF: F4 validity, then the rules in the order they decide: the VF's MTU
//! (F13), DHCP (F9), broadcast and multicast (F6), F5's source check, the own gateway (F10),
//! the destination MAC (F7), routing (F8).
use super::trace::{Step, Tracer};
use super::{dhcp, eth, mtu, route, subnet_gateway, Hints, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::Tables;
use shared_regs::stats::Counter;
use shared_regs::trace::DstMacClass;
use shared_regs::ETH_HEADER_LEN;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr};

/// The IPv4 header fields the pipeline decides on (host byte order addresses).
///
/// F11 (no TTL decrement, no time-exceeded) holds by construction, and this is where:
/// forwarding decides on this copy of the header and never writes the IPv4 header of a
/// packet it passes on. The only writes to a forwarded frame are its Ethernet addresses
/// (F12 in [`super::deliver`], the inner MACs of F14) and the headers encapsulation puts in
/// front of it ([`super::vxlan`]). The IPv4 headers the firmware does write are those of its
/// own answers ([`super::dhcp`], the echo reply of [`super::subnet_gateway`], the
/// frag-needed of [`super::mtu`]) and of F13's fragments, which change only total length,
/// flags, offset and checksum (RFC 791); TTL is copied.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ipv4Info {
    pub src: u32,
    pub dst: u32,
    pub protocol: IpProtocol,
    pub header_len: usize,
    pub total_len: usize,
    pub dont_frag: bool,
    /// True for a fragment other than the first (no L4 header).
    pub later_fragment: bool,
}

impl Ipv4Info {
    /// The L4 bytes of the packet in `frame` (empty for later fragments).
    pub fn l4<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        if self.later_fragment {
            return &[];
        }
        eth::payload(frame)
            .get(self.header_len..self.total_len)
            .unwrap_or(&[])
    }
}

/// F4: parses and validates the IPv4 header of `payload`.
pub(super) fn parse(payload: &[u8]) -> Option<Ipv4Info> {
    let ip = Ipv4Packet::new_checked(payload).ok()?;
    if ip.version() != 4
        || ip.header_len() < 20
        || !sums_to_ones(payload.get(..usize::from(ip.header_len()))?)
    {
        return None;
    }
    Some(Ipv4Info {
        src: u32::from(ip.src_addr()),
        dst: u32::from(ip.dst_addr()),
        protocol: ip.next_header(),
        header_len: usize::from(ip.header_len()),
        total_len: usize::from(ip.total_len()),
        dont_frag: ip.dont_frag(),
        later_fragment: ip.frag_offset() != 0,
    })
}

/// F4 on a frame: validates the header and strips Ethernet padding. `None`: malformed.
pub(super) fn validate<T: Tracer>(frame: &mut FrameBuf, tr: &mut T) -> Option<Ipv4Info> {
    let ip = parse(eth::payload(frame.data()))?;
    frame.truncate(ETH_HEADER_LEN.saturating_add(ip.total_len));
    tr.step(Step::Ipv4 {
        src: ip.src.into(),
        dst: ip.dst.into(),
        protocol: ip.protocol.into(),
        total_len: u16::try_from(ip.total_len).unwrap_or(u16::MAX),
    });
    Some(ip)
}

/// True when `bytes` (a header with its checksum field) sum to all ones (RFC 1071): the
/// check done here rather than by smoltcp's `verify_checksum`, which a fuzzing build turns
/// into "always valid" and so would let the fuzzers see a firmware that is not the real one.
pub(super) fn sums_to_ones(bytes: &[u8]) -> bool {
    crate::offload::fold(crate::offload::sum(bytes, 0)) == 0xffff
}

/// RFC 1071: the ones' complement sum of a header given as big-endian 32-bit words,
/// folded to 16 bits. The end-around carries fold a sum of 32-bit words to the same value
/// as a sum of 16-bit words: a valid header sums to all ones, and a header whose checksum
/// field is zero takes the complement as its checksum.
#[inline(always)]
pub(super) fn ones_complement_sum(words: impl IntoIterator<Item = u32>) -> u16 {
    let mut sum: u64 = words.into_iter().map(u64::from).sum();
    sum = (sum & 0xffff_ffff).wrapping_add(sum >> 32);
    sum = (sum & 0xffff).wrapping_add(sum >> 16);
    sum = (sum & 0xffff).wrapping_add(sum >> 16);
    sum = (sum & 0xffff).wrapping_add(sum >> 16);
    sum as u16
}

/// Bytes of an IPv4 header without options.
pub(super) const HEADER_LEN: usize = 20;

/// Writes an IPv4 header without options at the start of `buf` (TTL 64, ident 0, a valid
/// checksum) for `payload_len` bytes of `protocol`: the header of every packet the NIC
/// makes itself. False when `buf` is shorter than a header.
pub(super) fn write_header(
    buf: &mut [u8],
    src: u32,
    dst: u32,
    protocol: IpProtocol,
    payload_len: usize,
    dont_frag: bool,
) -> bool {
    let Some(header) = buf.get_mut(..HEADER_LEN) else {
        return false;
    };
    let mut pkt = Ipv4Packet::new_unchecked(header);
    let repr = Ipv4Repr {
        src_addr: src.into(),
        dst_addr: dst.into(),
        next_header: protocol,
        payload_len,
        hop_limit: 64,
    };
    repr.emit(&mut pkt, &ChecksumCapabilities::default());
    if !dont_frag {
        pkt.set_dont_frag(false);
        pkt.fill_checksum();
    }
    true
}

/// F6: addresses no unicast route leads to.
fn is_bcast_mcast_ip(dst: u32, sender: &Sender<'_>) -> bool {
    dst == u32::MAX || dst >> 28 == 0xE || dst == sender.subnet.broadcast()
}

pub(super) fn from_vf<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    hdr: &eth::Header,
    frame: &mut FrameBuf,
    hints: &Hints,
    tr: &mut T,
) -> Verdict {
    let Some(ip) = validate(frame, tr) else {
        return sender.drop(Counter::DropMalformed);
    };
    // F13: a VF frame cannot be longer, but a forged total length is still refused here.
    if mtu::exceeds_vf_mtu(ip.total_len) {
        return sender.drop(Counter::DropOversize);
    }
    // F9 before F6: DHCP is the one broadcast the gateway answers.
    if dhcp::is_client_message(&ip, frame.data()) && dhcp::is_for_server(sender, &ip) {
        return dhcp::serve(sender, &ip, frame, tr);
    }
    if eth::is_group(&hdr.dst) || is_bcast_mcast_ip(ip.dst, sender) {
        tr.step(Step::BcastMcast { dst: ip.dst.into() });
        return sender.drop(Counter::DropBcastMcast);
    }
    if sender.cfg.src_dst_check && !sender.owns(ip.src) {
        return sender.drop(Counter::DropSrcIp);
    }
    tr.step(Step::SrcIp {
        vf: sender.vf,
        check: sender.cfg.src_dst_check,
        src: ip.src.into(),
    });
    if ip.dst == sender.subnet.gateway_ip() {
        return subnet_gateway::to_own_gateway(sender, &ip, frame, tr);
    }
    if hdr.dst == sender.subnet.gateway_mac {
        tr.step(Step::DstMac {
            vf: None,
            class: DstMacClass::Gateway,
        });
        return route::routed(tables, sender, &ip, frame, hints, tr);
    }
    route::same_subnet_by_mac(tables, sender, hdr.dst, &ip, frame, hints, tr)
}
