//! Receive coalescing: consecutive TCP segments of one flow that arrive from the uplink in
//! one batch, bound for one VF that takes super-frames (`CONTROL.RX_GSO`), reach it as one
//! super-frame ([`RxFlags::GSO_TCP4`](shared_regs::desc::RxFlags::GSO_TCP4) with the
//! segments' mss), as Linux's GRO and a NIC's hardware GRO do. The VM's stack then handles,
//! and acknowledges, one frame where the wire carried several.
//!
//! Only what can be cut again into the very same segments coalesces (so an appliance VM
//! forwarding the super-frame sends what it received): IPv4 without options, DF set, TCP
//! with payload and no flag but ACK and PSH, every header byte equal but the lengths,
//! identification, sequence number and checksums, sequence numbers back to back, every
//! segment but the last exactly the first's payload long (and at least
//! [`MIN_TSO_MSS`], what a VF's TSO takes back), a PSH only on the last. Every
//! segment's IPv4 and TCP checksums are checked: one that fails goes alone, and the VM's
//! stack drops it as it would have.
use crate::offload::{
    fill_super_frame_headers, fold, get16, get32, pseudo_header, sum, ETHERTYPE_IPV4, IP, IP_FRAG,
    IP_PROTO, IP_TOTAL_LEN, PROTO_TCP, TCP_FLAGS, TCP_PSH, TCP_SEQ,
};
use shared_regs::desc::MIN_TSO_MSS;

/// The only IPv4 header that coalesces: version 4, 20 bytes.
const IPV4_NO_OPTIONS: u8 = 0x45;
const IPV4_HEADER: usize = 20;
/// Where the TCP header starts in a frame that coalesces.
const TCP: usize = IP + IPV4_HEADER;
/// The fragment field of a segment that coalesces: DF, no offset, no MF.
const DF_ONLY: u16 = 0x4000;
const TCP_ACK: u8 = 0x10;
const TCP_DOFF: usize = 12;
const TCP_WINDOW: usize = 14;
const TCP_URGENT: usize = 18;

/// A TCP/IPv4 segment that may join a super-frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    /// Ethernet, IPv4 and TCP header bytes.
    header_len: usize,
    /// TCP payload bytes: the rest of the frame.
    payload_len: usize,
    seq: u32,
    flags: u8,
    /// One's complement sum of the payload, folded.
    payload_sum: u16,
}

impl Segment {
    /// `frame` as a segment that may coalesce (see the module), checksums checked. `None`
    /// for any other frame: it goes alone.
    fn parse(frame: &[u8]) -> Option<Segment> {
        if frame.get(12..14)? != ETHERTYPE_IPV4
            || *frame.get(IP)? != IPV4_NO_OPTIONS
            || get16(frame, IP_FRAG)? != DF_ONLY
            || *frame.get(IP_PROTO)? != PROTO_TCP
        {
            return None;
        }
        // No Ethernet padding: a segment's payload is the rest of the frame.
        let total = usize::from(get16(frame, IP_TOTAL_LEN)?);
        if IP.checked_add(total)? != frame.len() || fold(sum(frame.get(IP..TCP)?, 0)) != 0xffff {
            return None;
        }
        let doff = usize::from(*frame.get(TCP.checked_add(TCP_DOFF)?)? >> 4).checked_mul(4)?;
        let header_len = TCP.checked_add(doff)?;
        let flags = *frame.get(TCP.checked_add(TCP_FLAGS)?)?;
        if doff < 20 || header_len >= frame.len() || flags & !TCP_PSH != TCP_ACK {
            return None;
        }
        let payload = frame.get(header_len..)?;
        let payload_sum = fold(sum(payload, 0));
        let l4_len = total.checked_sub(IPV4_HEADER)?;
        let header_sum = sum(
            frame.get(TCP..header_len)?,
            pseudo_header(frame, PROTO_TCP, l4_len)?,
        );
        if fold(header_sum.wrapping_add(u64::from(payload_sum))) != 0xffff {
            return None;
        }
        Some(Segment {
            header_len,
            payload_len: payload.len(),
            seq: get32(frame, TCP.checked_add(TCP_SEQ)?)?,
            flags,
            payload_sum,
        })
    }
}

/// Header bytes every segment of a super-frame shares with the first, as ranges of the
/// frame: Ethernet, IPv4 version/length/TOS, fragment field/TTL/protocol, addresses and
/// ports, acknowledgment number and data offset, window, urgent pointer and options.
fn same_headers(first: &[u8], next: &[u8], header_len: usize) -> bool {
    let shared = [
        (0, IP.saturating_add(2)),
        (IP_FRAG, IP_FRAG.saturating_add(4)),
        (IP.saturating_add(12), TCP.saturating_add(4)),
        (TCP.saturating_add(8), TCP.saturating_add(TCP_FLAGS)),
        (TCP.saturating_add(TCP_WINDOW), TCP.saturating_add(16)),
        (TCP.saturating_add(TCP_URGENT), header_len),
    ];
    shared.iter().all(
        |&(from, to)| match (first.get(from..to), next.get(from..to)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    )
}

/// Segments that coalesce into one super-frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    /// Frames taken, at least two.
    pub count: usize,
    /// The super-frame's length: the first frame's headers and every payload.
    pub len: usize,
    /// Ethernet, IPv4 and TCP header bytes (the first frame's).
    pub header_len: usize,
    /// The first segment's payload length, which every other but the last has.
    pub mss: u16,
    /// The TCP flags of the super-frame: the first's, with the last's PSH.
    flags: u8,
    /// One's complement sum of the super-frame's payload.
    payload_sum: u64,
}

impl Run {
    /// The longest run of segments at the start of `frames` (`None` where a frame is not
    /// bound for the VF at hand) whose super-frame is at most `room` bytes. `None` unless at
    /// least two coalesce.
    pub(crate) fn find<'a>(
        frames: impl Iterator<Item = Option<&'a [u8]>>,
        room: usize,
    ) -> Option<Run> {
        let mut frames = frames.peekable();
        let first_frame = frames.next()??;
        // A frame with none after it for this VF is no run: its payload is not summed for
        // nothing (the last of most batches).
        frames.peek()?.as_ref()?;
        let first = Segment::parse(first_frame)?;
        // Below the least TSO mss, a VM forwarding the super-frame could not hand it back
        // to a VF to cut: such segments go as they came.
        if first.flags & TCP_PSH != 0
            || first_frame.len() > room
            || first.payload_len < usize::from(MIN_TSO_MSS)
        {
            return None;
        }
        let mut run = Run {
            count: 1,
            len: first_frame.len(),
            header_len: first.header_len,
            mss: u16::try_from(first.payload_len).ok()?,
            flags: first.flags,
            payload_sum: u64::from(first.payload_sum),
        };
        let mut last = first;
        for frame in frames {
            let Some(frame) = frame else { break };
            let Some(next) = Segment::parse(frame) else {
                break;
            };
            let len = run.len.saturating_add(next.payload_len);
            if last.flags & TCP_PSH != 0
                || last.payload_len != first.payload_len
                || next.header_len != first.header_len
                || next.payload_len > first.payload_len
                || next.seq != last.seq.wrapping_add(last.payload_len as u32)
                || len > room
                || !same_headers(first_frame, frame, first.header_len)
            {
                break;
            }
            // A piece starting at an odd offset adds its sum byte-swapped (RFC 1071).
            let at = run.len.saturating_sub(run.header_len);
            let piece = if at % 2 == 1 {
                next.payload_sum.swap_bytes()
            } else {
                next.payload_sum
            };
            run.payload_sum = run.payload_sum.wrapping_add(u64::from(piece));
            run.flags |= next.flags & TCP_PSH;
            run.len = len;
            run.count = run.count.saturating_add(1);
            last = next;
        }
        (run.count >= 2).then_some(run)
    }

    /// The payload of `frame`, one of the run's segments.
    pub(crate) fn payload<'f>(&self, frame: &'f [u8]) -> Option<&'f [u8]> {
        frame.get(self.header_len..)
    }

    /// Turns `header`, the first segment's headers, into the super-frame's: IPv4 length
    /// and checksum, TCP flags and checksum.
    pub(crate) fn finish(&self, header: &mut [u8]) -> Option<()> {
        fill_super_frame_headers(
            header,
            IPV4_HEADER,
            self.header_len,
            self.len,
            self.flags,
            self.payload_sum,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offload::fill_ip_checksum;
    use crate::testing::{ethernet, ipv4};
    use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, TcpPacket};
    use std::net::Ipv4Addr;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 9);

    /// A TCP/IPv4 frame with good checksums, DF set, 12 bytes of options.
    fn segment(seq: u32, payload: &[u8], flags: u8, id: u16) -> Vec<u8> {
        let doff = 32;
        let mut tcp = vec![0u8; doff];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&77u32.to_be_bytes());
        tcp[12] = ((doff / 4) as u8) << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
        tcp[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        tcp.extend_from_slice(payload);
        let mut f = ethernet(
            [2; 6],
            [4; 6],
            0x0800,
            &ipv4(A, B, IpProtocol::Tcp, 64, &tcp),
        );
        f[IP + 4..IP + 6].copy_from_slice(&id.to_be_bytes());
        f[IP + 6..IP + 8].copy_from_slice(&DF_ONLY.to_be_bytes());
        fill_ip_checksum(&mut f, 20).unwrap();
        let l4 = f.len() - TCP;
        f[TCP + 16..TCP + 18].fill(0);
        let c = !fold(sum(&f[TCP..], pseudo_header(&f, 6, l4).unwrap()));
        f[TCP + 16..TCP + 18].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn find(frames: &[Vec<u8>], room: usize) -> Option<Run> {
        Run::find(frames.iter().map(|f| Some(f.as_slice())), room)
    }

    /// The super-frame of `run`, built as the rings do.
    fn build(run: &Run, frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = frames[0].clone();
        for f in &frames[1..run.count] {
            out.extend_from_slice(run.payload(f).unwrap());
        }
        run.finish(&mut out[..run.header_len]).unwrap();
        out
    }

    fn payload_of(n: usize, from: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(from))
            .collect()
    }

    #[test]
    fn back_to_back_segments_become_one_super_frame_with_good_checksums() {
        for mss in [1000, 999] {
            let frames: Vec<_> = (0..3u32)
                .map(|i| {
                    let last = i == 2;
                    segment(
                        1000 + i * mss as u32,
                        &payload_of(if last { 10 } else { mss }, i as u8),
                        if last { 0x18 } else { 0x10 },
                        7 + i as u16,
                    )
                })
                .collect();
            let run = find(&frames, 65535).unwrap();
            assert_eq!((run.count, run.mss), (3, mss as u16));
            let sf = build(&run, &frames);
            assert_eq!(sf.len(), run.len);
            let ip = Ipv4Packet::new_checked(&sf[IP..]).unwrap();
            assert!(ip.verify_checksum(), "mss {mss}");
            assert_eq!(usize::from(ip.total_len()), sf.len() - IP);
            assert_eq!(ip.ident(), 7);
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(
                tcp.verify_checksum(&IpAddress::Ipv4(A), &IpAddress::Ipv4(B)),
                "mss {mss}"
            );
            assert!(tcp.psh() && tcp.ack());
            assert_eq!(tcp.seq_number().0, 1000);
            let mut want = payload_of(mss, 0);
            want.extend(payload_of(mss, 1));
            want.extend(payload_of(10, 2));
            assert_eq!(tcp.payload(), &want[..]);
            assert_eq!(ip.next_header(), IpProtocol::Tcp);
        }
    }

    #[test]
    fn what_could_not_be_cut_back_into_the_same_segments_stays_apart() {
        let seg = |seq, n, flags| segment(seq, &payload_of(n, 0), flags, 1);
        let two = |second: Vec<u8>| find(&[seg(0, 100, 0x10), second], 65535).map(|r| r.count);
        assert_eq!(two(seg(100, 100, 0x10)), Some(2));
        // A gap, a longer second segment, a flag other than ACK and PSH.
        assert_eq!(two(seg(101, 100, 0x10)), None);
        assert_eq!(two(seg(100, 101, 0x10)), None);
        assert_eq!(two(seg(100, 100, 0x11)), None);
        // Headers that differ: window, TTL, options.
        let mut w = seg(100, 100, 0x10);
        w[TCP + 15] ^= 1;
        assert_eq!(two(w), None);
        // A bad TCP checksum, a bad IPv4 checksum.
        let mut c = seg(100, 100, 0x10);
        c[TCP + 16] ^= 1;
        assert_eq!(two(c), None);
        let mut c = seg(100, 100, 0x10);
        c[IP + 10] ^= 1;
        assert_eq!(two(c), None);
        // PSH on the first, a short first: each ends the run where it stands.
        assert_eq!(find(&[seg(0, 100, 0x18), seg(100, 100, 0x10)], 65535), None);
        assert_eq!(
            find(
                &[seg(0, 100, 0x10), seg(100, 50, 0x10), seg(150, 50, 0x10)],
                65535
            )
            .map(|r| r.count),
            Some(2)
        );
        // No room for the second; a frame for another VF ends it.
        let f = [seg(0, 100, 0x10), seg(100, 100, 0x10)];
        assert_eq!(find(&f, f[0].len() + 99), None);
        let other = [Some(f[0].as_slice()), None, Some(f[1].as_slice())];
        assert_eq!(Run::find(other.into_iter(), 65535), None);
        // No DF; a pure ACK.
        let mut nodf = seg(100, 100, 0x10);
        nodf[IP + 6] = 0;
        fill_ip_checksum(&mut nodf, 20).unwrap();
        assert_eq!(two(nodf), None);
        assert_eq!(find(&[seg(0, 0, 0x10), seg(0, 0, 0x10)], 65535), None);
        // Segments shorter than the least TSO mss: a VM forwarding their super-frame could
        // not hand it back to a VF to cut (`MIN_TSO_MSS`).
        let small = usize::from(MIN_TSO_MSS);
        let pair = |n: usize| find(&[seg(0, n, 0x10), seg(n as u32, n, 0x10)], 65535);
        assert_eq!(pair(small - 1), None);
        assert_eq!(pair(small).map(|r| r.mss), Some(MIN_TSO_MSS));
    }
}
