//! F13, every MTU the NIC enforces. A VF's MTU is 9001 both ways (`exceeds_vf_mtu`; the
//! VF rings refuse a longer frame before it is parsed). The path to a gateway target has MTU
//! [`GATEWAY_MTU`], the path to a remote host the uplink's less the VXLAN overhead
//! (`to_remote_host`). A packet longer than its path (`too_long`): with DF the subnet
//! gateway answers ICMP "fragmentation needed" (type 3 code 4) with the next-hop MTU;
//! without DF the packet is cut into fragments per RFC 791 ([`fragment`]), each then
//! encapsulated.
use super::ipv4::{self, Ipv4Info};
use super::trace::{Step, Tracer};
use super::vxlan::{self, Encap};
use super::{eth, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::Uplink;
use shared_regs::stats::Counter;
use shared_regs::trace::MtuAction;
use shared_regs::{ETH_HEADER_LEN, VF_MTU};
use smoltcp::wire::{Icmpv4Packet, IpProtocol, Ipv4Packet};

/// Bytes of the offending datagram an ICMP error quotes after its header (RFC 792).
const QUOTED_PAYLOAD: usize = 8;
/// IPv4 + ICMP header bytes of the error itself.
const ERROR_HEADERS: usize = 20 + 8;

/// IPv4 MTU toward gateway targets.
pub const GATEWAY_MTU: u16 = 1500;

/// True for a packet longer than a VF's MTU (9001), from a VF or to one: an oversize drop.
pub(super) fn exceeds_vf_mtu(total_len: usize) -> bool {
    total_len > VF_MTU as usize
}

/// The MTU of the path to a remote host: the uplink's, less what VXLAN puts in front.
pub(super) fn to_remote_host(uplink: Option<Uplink>) -> u16 {
    uplink.map_or(0, |u| u.mtu.saturating_sub(vxlan::OVERHEAD as u16))
}

/// The verdict on a packet too long for a path of `mtu` bytes toward `encap`: with DF the
/// gateway's frag-needed, without it fragments. `None` when it fits.
pub(super) fn too_long<T: Tracer>(
    sender: &Sender<'_>,
    encap: Encap,
    mtu: u16,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Option<Verdict> {
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
        MtuAction::Fits => None,
        MtuAction::FragNeeded => Some(if write_frag_needed(sender, ip, mtu, frame) {
            Verdict::Reply { vf: sender.vf }
        } else {
            sender.drop(Counter::DropMalformed)
        }),
        MtuAction::Fragment => Some(Verdict::Fragment { encap, mtu }),
    }
}

/// Turns the packet in `frame` into the gateway's ICMP frag-needed for the sender, in place.
fn write_frag_needed(sender: &Sender<'_>, ip: &Ipv4Info, mtu: u16, frame: &mut FrameBuf) -> bool {
    let quoted = ip
        .header_len
        .saturating_add(QUOTED_PAYLOAD)
        .min(ip.total_len);
    let Some(total) = ERROR_HEADERS.checked_add(quoted) else {
        return false;
    };
    let data = frame.data_mut();
    let from = ETH_HEADER_LEN;
    let to = ETH_HEADER_LEN.saturating_add(ERROR_HEADERS);
    if from.saturating_add(quoted) > data.len() || to.saturating_add(quoted) > data.len() {
        return false;
    }
    data.copy_within(from..from.saturating_add(quoted), to);
    eth::set_macs(data, sender.cfg.mac, sender.subnet.gateway_mac);
    let Some(ip_bytes) = data.get_mut(ETH_HEADER_LEN..ETH_HEADER_LEN.saturating_add(total)) else {
        return false;
    };
    let (src, payload_len) = (
        sender.subnet.gateway_ip(),
        total.saturating_sub(ipv4::HEADER_LEN),
    );
    if !ipv4::write_header(ip_bytes, src, ip.src, IpProtocol::Icmp, payload_len, false) {
        return false;
    }
    let Some(icmp_bytes) = ip_bytes.get_mut(ipv4::HEADER_LEN..) else {
        return false;
    };
    let mut icmp = Icmpv4Packet::new_unchecked(icmp_bytes);
    icmp.set_msg_type(smoltcp::wire::Icmpv4Message::DstUnreachable);
    icmp.set_msg_code(4);
    // Bytes 4..8: unused (16 bits), next-hop MTU (16 bits), RFC 1191.
    icmp.set_echo_ident(0);
    icmp.set_echo_seq_no(mtu);
    icmp.fill_checksum();
    frame.truncate(ETH_HEADER_LEN.saturating_add(total));
    true
}

/// Largest inner frame a fragment may make: inner Ethernet plus a full-MTU packet.
const MAX_FRAGMENT_FRAME: usize = ETH_HEADER_LEN + 1500;

/// Cuts the inner IPv4 packet of `inner` (an Ethernet frame) into fragments of at most
/// `mtu` bytes, encapsulates each and hands it to `send`. Returns the number sent, or
/// `None` when the packet cannot be fragmented (header too long for the MTU, malformed).
pub fn fragment(
    inner: &[u8],
    uplink: &Uplink,
    encap: &Encap,
    mtu: u16,
    mut send: impl FnMut(&[u8]),
) -> Option<usize> {
    let mtu = usize::from(mtu).min(MAX_FRAGMENT_FRAME - ETH_HEADER_LEN);
    let eth_hdr = inner.get(..ETH_HEADER_LEN)?;
    let ip = Ipv4Packet::new_checked(inner.get(ETH_HEADER_LEN..)?).ok()?;
    let header_len = usize::from(ip.header_len());
    let header = ip.as_ref().get(..header_len)?;
    let payload = ip.payload();
    // Fragment payloads are multiples of 8 bytes, except the last.
    let chunk = mtu.checked_sub(header_len)? & !7;
    if chunk == 0 {
        return None;
    }
    let base_offset = usize::from(ip.frag_offset());
    let more_after = ip.more_frags();
    let mut buf = [0u8; vxlan::OVERHEAD + MAX_FRAGMENT_FRAME];
    let mut sent = 0usize;
    for (i, part) in payload.chunks(chunk).enumerate() {
        let offset = base_offset.checked_add(i.checked_mul(chunk)?)?;
        let last = offset.checked_add(part.len())? >= base_offset.checked_add(payload.len())?;
        let ip_len = header_len.checked_add(part.len())?;
        let inner_len = ETH_HEADER_LEN.checked_add(ip_len)?;
        let frame_len = vxlan::OVERHEAD.checked_add(inner_len)?;
        let wire = buf.get_mut(..frame_len)?;
        let (l2, l3) = wire
            .get_mut(vxlan::OVERHEAD..)?
            .split_at_mut_checked(ETH_HEADER_LEN)?;
        l2.copy_from_slice(eth_hdr);
        let (hdr, data) = l3.split_at_mut_checked(header_len)?;
        hdr.copy_from_slice(header);
        data.copy_from_slice(part);
        let mut pkt = Ipv4Packet::new_unchecked(&mut *l3);
        pkt.set_total_len(u16::try_from(ip_len).ok()?);
        pkt.set_more_frags(!last || more_after);
        pkt.set_frag_offset(u16::try_from(offset).ok()?);
        pkt.fill_checksum();
        if !vxlan::write_outer(wire, uplink, encap) {
            return None;
        }
        send(wire);
        sent = sent.checked_add(1)?;
    }
    Some(sent)
}
