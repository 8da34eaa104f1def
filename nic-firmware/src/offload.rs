//! VF offloads (ABI 1.5, `shared_regs::desc`): TCP and UDP checksums completed for the VM,
//! TCP super-frames cut into segments, and super-frames delivered whole to a local VF that
//! takes them.
//!
//! Cutting happens as the frames are fetched (the DMA engine's job on a real NIC): each
//! segment is an ordinary frame of the batch, so every rule and counter of the pipeline
//! applies to it and a frame buffer never holds more than one VF frame. Only the first
//! segment of a super-frame is cut before the pipeline has decided; when its verdict is a
//! local VF that takes super-frames, the rest is never cut (see `rings`).
use shared_regs::desc::MIN_TSO_MSS;
use shared_regs::vf::Offloads;
use shared_regs::ETH_HEADER_LEN;

/// What every VF is offered.
pub const OFFERED: Offloads = Offloads::TX_CSUM
    .union(Offloads::TSO4)
    .union(Offloads::RX_CSUM)
    .union(Offloads::RX_GSO);

/// Longest Ethernet + IPv4 + TCP header of a super-frame (both with all their options).
pub const MAX_HEADER: usize = ETH_HEADER_LEN + 60 + 60;

pub(crate) const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;
/// Offsets from the start of the frame.
pub(crate) const IP: usize = ETH_HEADER_LEN;
pub(crate) const IP_TOTAL_LEN: usize = IP + 2;
const IP_ID: usize = IP + 4;
pub(crate) const IP_FRAG: usize = IP + 6;
pub(crate) const IP_PROTO: usize = IP + 9;
pub(crate) const IP_CSUM: usize = IP + 10;
const IP_SRC: usize = IP + 12;
/// Offsets from the start of the TCP header.
pub(crate) const TCP_SEQ: usize = 4;
pub(crate) const TCP_FLAGS: usize = 13;
pub(crate) const TCP_CSUM: usize = 16;
const UDP_CSUM: usize = 6;

/// The one's complement sum of `data` (RFC 1071) added to `acc`, unfolded. `data` of odd
/// length is padded with a zero byte, so only the last piece of a sum may be odd.
///
/// Whole payloads go through it (a super-frame delivered whole), so it adds 8 bytes at a
/// time in the host's byte order and turns the folded result big-endian once (RFC 1071's
/// byte-order independence), with slice patterns rather than a copy a word.
pub fn sum(data: &[u8], acc: u64) -> u64 {
    let mut native = 0u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        if let &[a, b, c, d, e, f, g, h] = w {
            let x = u64::from_ne_bytes([a, b, c, d, e, f, g, h]);
            // Two 32-bit halves: at most 2^13 words a super-frame, no overflow.
            native = native.wrapping_add(x & 0xffff_ffff).wrapping_add(x >> 32);
        }
    }
    let folded = fold(native);
    let mut acc = acc.wrapping_add(u64::from(if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    }));
    let mut tail = [0u8; 8];
    for (t, b) in tail.iter_mut().zip(words.remainder()) {
        *t = *b;
    }
    let x = u64::from_be_bytes(tail);
    acc = acc.wrapping_add(x & 0xffff_ffff).wrapping_add(x >> 32);
    acc
}

/// Folds a sum to 16 bits (not inverted).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff).wrapping_add(acc >> 16);
    }
    acc as u16
}

pub(crate) fn get16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) -> Option<()> {
    b.get_mut(at..at.checked_add(2)?)?
        .copy_from_slice(&v.to_be_bytes());
    Some(())
}

pub(crate) fn get32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut w = [0u8; 4];
    w.copy_from_slice(s);
    Some(u32::from_be_bytes(w))
}

/// Sum of the IPv4 pseudo-header of an L4 segment of `l4_len` bytes.
pub(crate) fn pseudo_header(frame: &[u8], proto: u8, l4_len: usize) -> Option<u64> {
    let addrs = frame.get(IP_SRC..IP_SRC.checked_add(8)?)?;
    let len = u16::try_from(l4_len).ok()?;
    Some(sum(addrs, u64::from(proto)).wrapping_add(u64::from(len)))
}

/// Recomputes the IPv4 header checksum of `frame`.
pub(crate) fn fill_ip_checksum(frame: &mut [u8], ihl: usize) -> Option<()> {
    put16(frame, IP_CSUM, 0)?;
    let c = !fold(sum(frame.get(IP..IP.checked_add(ihl)?)?, 0));
    put16(frame, IP_CSUM, c)
}

/// IPv4 header length of `frame`, when it is IPv4 with protocol `proto`-able headers: a
/// version 4 header of at least 20 bytes, not a fragment.
fn ipv4_unfragmented(frame: &[u8]) -> Option<(usize, u8)> {
    if frame.get(12..14)? != ETHERTYPE_IPV4 {
        return None;
    }
    let vihl = *frame.get(IP)?;
    let ihl = usize::from(vihl & 0x0f).checked_mul(4)?;
    if vihl >> 4 != 4 || ihl < 20 || get16(frame, IP_FRAG)? & 0x3fff != 0 {
        return None;
    }
    Some((ihl, *frame.get(IP_PROTO)?))
}

/// [`TxFlags::CSUM`](shared_regs::desc::TxFlags::CSUM): fills the TCP or UDP checksum of an
/// IPv4 frame that is not a fragment, over the L4 length its IPv4 header gives. True when
/// it did; other frames are left as they are (the pipeline judges them).
pub fn complete_checksum(frame: &mut [u8]) -> bool {
    fill_l4_checksum(frame).is_some()
}

fn fill_l4_checksum(frame: &mut [u8]) -> Option<()> {
    let (ihl, proto) = ipv4_unfragmented(frame)?;
    let total = usize::from(get16(frame, IP_TOTAL_LEN)?);
    let l4 = IP.checked_add(ihl)?;
    let l4_len = total.checked_sub(ihl)?;
    let end = l4.checked_add(l4_len)?;
    let at = match proto {
        PROTO_TCP if l4_len >= 20 => l4.checked_add(TCP_CSUM)?,
        PROTO_UDP if l4_len >= 8 => l4.checked_add(UDP_CSUM)?,
        _ => return None,
    };
    if end > frame.len() {
        return None;
    }
    put16(frame, at, 0)?;
    let acc = sum(frame.get(l4..end)?, pseudo_header(frame, proto, l4_len)?);
    let c = !fold(acc);
    // UDP sends a computed 0 as all ones (0 means "no checksum").
    put16(
        frame,
        at,
        if c == 0 && proto == PROTO_UDP {
            0xffff
        } else {
            c
        },
    )
}

/// The headers of a TCP/IPv4 super-frame, as the VF's driver handed it over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuperFrame {
    /// IOVA of the frame in the VF's DMA space.
    pub addr: u64,
    /// Whole frame, headers included.
    pub len: u16,
    /// Ethernet, IPv4 and TCP header bytes.
    pub header_len: u16,
    /// IPv4 header bytes.
    pub ihl: u8,
    /// TCP payload bytes a segment.
    pub mss: u16,
    /// Payload bytes already cut into segments.
    pub cut: u16,
    /// Segments cut so far.
    pub segments: u16,
    /// The TCP flags the VF handed over (a segment keeps FIN and PSH only if last, CWR
    /// only if first): what a super-frame delivered whole carries again.
    pub tcp_flags: u8,
}

impl SuperFrame {
    /// Checks the headers read from the start of a super-frame of `len` bytes (`head`: its
    /// first [`MAX_HEADER`] bytes, or all of it if shorter). `None` when it is not a TCP/IPv4
    /// frame whose headers it holds whole, or `mss` is below [`MIN_TSO_MSS`].
    pub fn parse(addr: u64, len: u16, mss: u16, head: &[u8]) -> Option<SuperFrame> {
        let (ihl, proto) = ipv4_unfragmented(head)?;
        let tcp = IP.checked_add(ihl)?;
        let doff = usize::from(*head.get(tcp.checked_add(12)?)? >> 4).checked_mul(4)?;
        let header_len = tcp.checked_add(doff)?;
        if proto != PROTO_TCP || doff < 20 || header_len > usize::from(len) || mss < MIN_TSO_MSS {
            return None;
        }
        Some(SuperFrame {
            addr,
            len,
            header_len: u16::try_from(header_len).ok()?,
            ihl: u8::try_from(ihl).ok()?,
            mss,
            cut: 0,
            segments: 0,
            tcp_flags: *head.get(tcp.checked_add(TCP_FLAGS)?)?,
        })
    }

    /// TCP payload bytes of the whole frame.
    pub fn payload(&self) -> u16 {
        self.len.saturating_sub(self.header_len)
    }

    /// True when its payload fits one segment: that segment, cut as any other, is sent as
    /// a plain frame.
    pub fn single(&self) -> bool {
        self.payload() <= self.mss
    }

    /// True once every payload byte has been cut.
    pub fn done(&self) -> bool {
        self.cut >= self.payload()
    }

    /// Payload bytes of the next segment.
    pub fn next_len(&self) -> u16 {
        self.payload().saturating_sub(self.cut).min(self.mss)
    }

    /// Turns `seg`, which holds the super-frame's headers followed by the next segment's
    /// payload, into that segment: IPv4 length, identification and checksum, TCP sequence
    /// number, flags and checksum. Then counts it cut.
    pub fn finish_segment(&mut self, seg: &mut [u8]) -> Option<()> {
        let n = self.next_len();
        let first = self.cut == 0;
        let last = self.cut.checked_add(n)? >= self.payload();
        let ihl = usize::from(self.ihl);
        let tcp = IP.checked_add(ihl)?;
        let l4_len = usize::from(self.header_len)
            .checked_sub(tcp)?
            .checked_add(usize::from(n))?;
        put16(
            seg,
            IP_TOTAL_LEN,
            u16::try_from(ihl.checked_add(l4_len)?).ok()?,
        )?;
        put16(seg, IP_ID, get16(seg, IP_ID)?.wrapping_add(self.segments))?;
        fill_ip_checksum(seg, ihl)?;
        let seq = get32(seg, tcp.checked_add(TCP_SEQ)?)?.wrapping_add(u32::from(self.cut));
        seg.get_mut(tcp.checked_add(TCP_SEQ)?..tcp.checked_add(TCP_SEQ + 4)?)?
            .copy_from_slice(&seq.to_be_bytes());
        let flags = seg.get_mut(tcp.checked_add(TCP_FLAGS)?)?;
        if !last {
            *flags &= !(TCP_FIN | TCP_PSH);
        }
        if !first {
            *flags &= !TCP_CWR;
        }
        let at = tcp.checked_add(TCP_CSUM)?;
        put16(seg, at, 0)?;
        let end = tcp.checked_add(l4_len)?;
        let acc = sum(seg.get(tcp..end)?, pseudo_header(seg, PROTO_TCP, l4_len)?);
        put16(seg, at, !fold(acc))?;
        self.cut = self.cut.checked_add(n)?;
        self.segments = self.segments.wrapping_add(1);
        Some(())
    }

    /// Fills the headers of the super-frame delivered whole: `header` holds the first
    /// segment's headers as the pipeline judged and rewrote them, and `payload_sum` is
    /// [`sum`] over the whole payload. Sets the IPv4 length to the frame's, the TCP flags
    /// to those the VF handed over, and both checksums.
    pub fn finish_whole(&self, header: &mut [u8], payload_sum: u64) -> Option<()> {
        fill_super_frame_headers(
            header,
            usize::from(self.ihl),
            usize::from(self.header_len),
            usize::from(self.len),
            self.tcp_flags,
            payload_sum,
        )
    }
}

/// Fills the headers of a TCP/IPv4 super-frame of `len` bytes, delivered whole or
/// coalesced: `header` holds its Ethernet, IPv4 (`ihl` bytes) and TCP headers
/// (`header_len` bytes in all), and `payload_sum` is [`sum`] over its whole payload. Sets
/// the IPv4 length and checksum, the TCP flags to `tcp_flags` and the TCP checksum.
pub(crate) fn fill_super_frame_headers(
    header: &mut [u8],
    ihl: usize,
    header_len: usize,
    len: usize,
    tcp_flags: u8,
    payload_sum: u64,
) -> Option<()> {
    let tcp = IP.checked_add(ihl)?;
    *header.get_mut(tcp.checked_add(TCP_FLAGS)?)? = tcp_flags;
    let l4_len = len.checked_sub(tcp)?;
    put16(
        header,
        IP_TOTAL_LEN,
        u16::try_from(ihl.checked_add(l4_len)?).ok()?,
    )?;
    fill_ip_checksum(header, ihl)?;
    let at = tcp.checked_add(TCP_CSUM)?;
    put16(header, at, 0)?;
    let tcp_header = header.get(tcp..header_len)?;
    let acc = sum(tcp_header, pseudo_header(header, PROTO_TCP, l4_len)?);
    put16(header, at, !fold(acc.wrapping_add(payload_sum)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ethernet, ipv4, udp};
    use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, TcpPacket, TcpSeqNumber, UdpPacket};
    use std::net::Ipv4Addr;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 9);

    /// A TCP/IPv4 frame whose TCP checksum is garbage.
    fn tcp_frame(payload: &[u8], flags: u8, options: usize) -> Vec<u8> {
        let doff = 20 + options;
        let mut tcp = vec![0u8; doff];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0xfffff000u32.to_be_bytes());
        tcp[8..12].copy_from_slice(&77u32.to_be_bytes());
        tcp[12] = ((doff / 4) as u8) << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
        tcp[16..18].copy_from_slice(&0xdeadu16.to_be_bytes());
        for (i, b) in tcp[20..].iter_mut().enumerate() {
            *b = if i == 0 { 1 } else { 1 + i as u8 };
        }
        tcp.extend_from_slice(payload);
        let ip = ipv4(A, B, IpProtocol::Tcp, 64, &tcp);
        ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], 0x0800, &ip)
    }

    fn tcp_ok(frame: &[u8]) -> TcpPacket<&[u8]> {
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum(), "IPv4 checksum");
        assert_eq!(usize::from(ip.total_len()), frame.len() - 14);
        let tcp = TcpPacket::new_checked(&frame[14 + usize::from(ip.header_len())..]).unwrap();
        let (s, d) = (
            IpAddress::Ipv4(ip.src_addr()),
            IpAddress::Ipv4(ip.dst_addr()),
        );
        assert!(tcp.verify_checksum(&s, &d), "TCP checksum");
        tcp
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn sums_match_rfc1071_whatever_the_split() {
        let data = payload(1001);
        let whole = fold(sum(&data, 0));
        for split in [0, 2, 4, 6, 100, 1000] {
            let (a, b) = data.split_at(split);
            assert_eq!(fold(sum(b, sum(a, 0))), whole, "split at {split}");
        }
        // Against the plain definition: big-endian 16-bit words, an odd byte padded.
        let naive = |d: &[u8]| {
            let words = d
                .chunks(2)
                .map(|w| u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0)));
            fold(words.sum())
        };
        for n in (0..80).chain([1001, 8999, 9000, 65535]) {
            let d = payload(n);
            assert_eq!(fold(sum(&d, 0)), naive(&d), "{n} bytes");
        }
        let ones = vec![0xff; 65535];
        assert_eq!(fold(sum(&ones, 0)), naive(&ones));
        // The worked example of RFC 1071 section 3.
        let ex = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&ex, 0)), 0xddf2);
    }

    #[test]
    fn checksums_are_completed_for_tcp_and_udp_only() {
        let mut f = tcp_frame(&payload(333), 0x18, 12);
        assert!(complete_checksum(&mut f));
        tcp_ok(&f);
        let mut u = ethernet(
            [2; 6],
            [4; 6],
            0x0800,
            &ipv4(A, B, IpProtocol::Udp, 64, &udp(53, 5353, &payload(101))),
        );
        u[14 + 20 + 6] ^= 0x55;
        assert!(complete_checksum(&mut u));
        let ip = Ipv4Packet::new_checked(&u[14..]).unwrap();
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        let (s, d) = (
            IpAddress::Ipv4(ip.src_addr()),
            IpAddress::Ipv4(ip.dst_addr()),
        );
        assert!(udp.verify_checksum(&s, &d));
        // ICMP, a fragment and a truncated frame are left alone.
        let icmp = ethernet(
            [2; 6],
            [4; 6],
            0x0800,
            &ipv4(A, B, IpProtocol::Icmp, 64, &[8, 0, 0, 0, 0, 1, 0, 1]),
        );
        let mut i2 = icmp.clone();
        assert!(!complete_checksum(&mut i2));
        assert_eq!(i2, icmp);
        let mut frag = f.clone();
        frag[IP_FRAG] |= 0x20;
        assert!(!complete_checksum(&mut frag));
        let mut short = f[..60].to_vec();
        assert!(!complete_checksum(&mut short));
    }

    /// Cuts `frame` as the rings do, returning the segments.
    fn cut(frame: &[u8], mss: u16) -> Vec<Vec<u8>> {
        let head = &frame[..frame.len().min(MAX_HEADER)];
        let mut sf = SuperFrame::parse(0, frame.len() as u16, mss, head).unwrap();
        let h = usize::from(sf.header_len);
        let mut out = Vec::new();
        while !sf.done() {
            let n = usize::from(sf.next_len());
            let from = h + usize::from(sf.cut);
            let mut seg = frame[..h].to_vec();
            seg.extend_from_slice(&frame[from..from + n]);
            sf.finish_segment(&mut seg).unwrap();
            out.push(seg);
        }
        out
    }

    #[test]
    fn a_super_frame_is_cut_into_valid_segments() {
        let data = payload(20_000);
        // PSH and FIN on the super-frame, CWR too (ECN): see where each ends up.
        let frame = tcp_frame(&data, 0x80 | 0x10 | 0x08 | 0x01, 12);
        let segs = cut(&frame, 1448);
        assert_eq!(segs.len(), 20_000usize.div_ceil(1448));
        let mut joined = Vec::new();
        let ip0 = Ipv4Packet::new_checked(&frame[14..]).unwrap().ident();
        for (i, s) in segs.iter().enumerate() {
            let tcp = tcp_ok(s);
            let ip = Ipv4Packet::new_checked(&s[14..]).unwrap();
            assert_eq!(ip.ident(), ip0.wrapping_add(i as u16));
            assert_eq!(
                tcp.seq_number(),
                TcpSeqNumber(0xfffff000u32 as i32) + joined.len(),
                "sequence numbers wrap"
            );
            assert_eq!(tcp.options().len(), 12, "options are copied");
            let last = i == segs.len() - 1;
            assert_eq!(tcp.fin(), last);
            assert_eq!(tcp.psh(), last);
            assert_eq!(s[14 + 20 + 13] & TCP_CWR != 0, i == 0);
            assert!(tcp.ack());
            assert!(tcp.payload().len() <= 1448);
            joined.extend_from_slice(tcp.payload());
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn the_whole_frame_gets_right_checksums() {
        let data = payload(60_001);
        let mut frame = tcp_frame(&data, 0x18, 0);
        let head = frame[..MAX_HEADER].to_vec();
        let sf = SuperFrame::parse(0, frame.len() as u16, 8948, &head).unwrap();
        let h = usize::from(sf.header_len);
        // Summed in chunks as the DMA copy does.
        let mut acc = 0;
        for c in frame[h..].chunks(9280) {
            acc = sum(c, acc);
        }
        sf.finish_whole(&mut frame[..h], acc).unwrap();
        let tcp = tcp_ok(&frame);
        assert_eq!(tcp.payload(), &data[..]);
    }

    #[test]
    fn what_is_not_a_super_frame_is_refused() {
        let f = tcp_frame(&payload(100), 0x10, 0);
        let ok = |f: &[u8], mss| SuperFrame::parse(0, f.len() as u16, mss, f).is_some();
        assert!(ok(&f, 1000));
        assert!(!ok(&f, 0), "mss 0");
        assert!(!ok(&f, MIN_TSO_MSS - 1), "mss below the least a TCP sends");
        assert!(ok(&f, MIN_TSO_MSS));
        assert!(!ok(&f[..40], 1000), "headers cut short");
        let mut udp = f.clone();
        udp[IP_PROTO] = PROTO_UDP;
        assert!(!ok(&udp, 1000));
        let mut frag = f.clone();
        frag[IP_FRAG + 1] = 1;
        assert!(!ok(&frag, 1000));
        let mut v6 = f.clone();
        v6[12] = 0x86;
        assert!(!ok(&v6, 1000));
        let mut doff = f.clone();
        doff[14 + 20 + 12] = 0x40;
        assert!(!ok(&doff, 1000));
    }
}
