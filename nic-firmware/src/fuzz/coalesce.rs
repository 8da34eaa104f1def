//! The `coalesce` fuzz target: receive coalescing (`crate::coalesce`) must be exact. Up to
//! [`MAX_FRAMES`] frames arrive from the uplink (VXLAN from the remote host of
//! [`vpc::nic_with_uplink`]), mostly TCP segments of one or two flows from the instance
//! 10.0.2.30 to VF 0, now and then to VF 1, VF 2 or an address no VF has, in polls the input
//! splits them into. Two [`FakeNic`]s take the same frames: on A no VF takes super-frames, on
//! B VF 0 and (unless the input says otherwise) VF 1 do (`CONTROL.RX_GSO`), in RX buffers
//! of 64 KiB or, as the input chooses, fewer (but never too short for a frame). Each VF of B
//! must receive what the same VF of A received, in the same order, once every `GSO_TCP4`
//! super-frame is cut back into segments of its mss as a VM's stack cuts it (CWR only on
//! the first, FIN and PSH only on the last): byte for byte but for the IPv4 identification
//! and the checksums, the segments' own checksums right (the firmware checks them before it
//! coalesces) and the super-frame's right over the whole frame, an mss of at least
//! `MIN_TSO_MSS`, at least two segments, at most its RX buffer, IPv4 without options and DF
//! only, TCP flags ACK or ACK|PSH. A frame without `GSO_TCP4` is A's frame, flags and mss
//! included. Every counter but B's `rx_packets` and `rx_bytes` is A's, and those count B's
//! frames; what leaves on the uplink is the same.
extern crate std;

use crate::platform::{Function, Platform};
use crate::testing::vpc::{self, GW1_MAC, GW2_MAC, MAC0, MAC1, MAC2, REMOTE_MAC};
use crate::testing::{FakeNic, OwnedMemory, Rng, Sizes};
use core::net::Ipv4Addr;
use shared_regs::desc::{RxFlags, MIN_TSO_MSS};
use shared_regs::entry::UPLINK_FUNCTION;
use shared_regs::stats::Counter;
use std::vec;
use std::vec::Vec;

/// Bytes before the frame records: the mss and options (byte 0), a custom mss (1-2), the
/// first sequence number (3), what every segment has (4).
pub const HEADER: usize = 5;
/// Bytes of one frame's record.
pub const RECORD: usize = 7;
/// Frames an input sends at most (three uplink batches).
pub const MAX_FRAMES: usize = 24;
/// The mss byte 0 bits 0-2 pick (7: bytes 1-2).
pub const MSS: [u16; 7] = [1448, 1448, 8949, 536, 1, 7, 999];
/// The VFs of the VPC.
const VFS: u16 = 3;
const REMOTE: [u8; 4] = [10, 0, 2, 30];
const SPORTS: [u16; 2] = [40000, 40001];
const DPORT: u16 = 5201;
/// A segment's payload at most (a frame longer than the uplink takes is cut).
const MAX_PAYLOAD: usize = 9300;
/// TCP flags a record's byte 4 picks besides ACK and ACK|PSH.
pub const ODD_FLAGS: [u8; 16] = [
    0x11, 0x19, 0x02, 0x12, 0x30, 0x90, 0x50, 0x14, 0x04, 0x00, 0x08, 0xff, 0x18, 0x10, 0x01, 0x38,
];
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const TCP_CWR: u8 = 0x80;
const MAX_POLLS: usize = 1000;
/// The sizes of RX buffers a VF with `RX_GSO` may post: every one holds any frame the
/// uplink takes (so that B drops no frame A delivers), not every super-frame.
pub const RX_BUF: [u16; 4] = [u16::MAX, 32768, 16000, crate::frame::MAX_FRAME as u16];

/// What the input bytes ask for.
#[derive(Clone, Debug)]
pub struct Input {
    /// Uplink frames, by the poll they are put on the wire before.
    pub groups: Vec<Vec<Vec<u8>>>,
    /// Which VFs of B take super-frames.
    pub rx_gso: [bool; VFS as usize],
    /// The size of their RX buffers.
    pub rx_buf: u16,
}

/// What every segment of an input has.
struct Stream {
    mss: usize,
    tcp_opts: Vec<u8>,
    frag: u16,
    ip_opts: Vec<u8>,
    tos: u8,
    /// Ethernet padding to 60 bytes.
    pad: bool,
}

/// A TCP flow's state at the sender.
#[derive(Clone, Copy)]
struct Flow {
    next: u32,
    last: u32,
    id: u16,
}

/// The fields of one inner TCP/IPv4 frame.
struct Segment {
    dst_mac: [u8; 6],
    tos: u8,
    id: u16,
    frag: u16,
    ttl: u8,
    proto: u8,
    ip_opts: Vec<u8>,
    dst: [u8; 4],
    sport: u16,
    seq: u32,
    ack: u32,
    /// The low nibble of the data offset byte (reserved bits, NS).
    doff_low: u8,
    flags: u8,
    window: u16,
    urgent: u16,
    tcp_opts: Vec<u8>,
    payload: Vec<u8>,
}

impl Segment {
    /// The Ethernet frame, both checksums right.
    fn frame(&self) -> Vec<u8> {
        let ihl = 20 + self.ip_opts.len();
        let doff = 20 + self.tcp_opts.len();
        let mut f = Vec::with_capacity(14 + ihl + doff + self.payload.len());
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&REMOTE_MAC);
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (ihl + doff + self.payload.len()) as u16;
        f.push(0x40 | (ihl / 4) as u8);
        f.push(self.tos);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&self.id.to_be_bytes());
        f.extend_from_slice(&self.frag.to_be_bytes());
        f.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        f.extend_from_slice(&REMOTE);
        f.extend_from_slice(&self.dst);
        f.extend_from_slice(&self.ip_opts);
        f.extend_from_slice(&self.sport.to_be_bytes());
        f.extend_from_slice(&DPORT.to_be_bytes());
        f.extend_from_slice(&self.seq.to_be_bytes());
        f.extend_from_slice(&self.ack.to_be_bytes());
        f.push(((doff / 4) as u8) << 4 | self.doff_low);
        f.push(self.flags);
        f.extend_from_slice(&self.window.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&self.urgent.to_be_bytes());
        f.extend_from_slice(&self.tcp_opts);
        f.extend_from_slice(&self.payload);
        fill_checksums(&mut f);
        f
    }
}

/// The one's complement sum of `data` (an odd last byte padded), folded: RFC 1071, written
/// apart from the firmware's.
fn ones(data: &[u8]) -> u16 {
    let mut acc: u64 = data
        .chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The IPv4 header length of `f` and the end of its IPv4 packet (14 + total length).
fn ip_bounds(f: &[u8]) -> (usize, usize) {
    (usize::from(f[14] & 0x0f) * 4, 14 + usize::from(be16(f, 16)))
}

/// The sum of the TCP/IPv4 pseudo-header and the TCP bytes of `f` (to its IPv4 length).
fn tcp_sum(f: &[u8]) -> u16 {
    let (ihl, end) = ip_bounds(f);
    let l4 = &f[14 + ihl..end];
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&f[26..34]);
    pseudo[9] = f[23];
    pseudo[10..].copy_from_slice(&(l4.len() as u16).to_be_bytes());
    add(ones(&pseudo), ones(l4))
}

/// Fills the IPv4 and TCP checksums of a frame [`Segment::frame`] built.
fn fill_checksums(f: &mut [u8]) {
    let (ihl, _) = ip_bounds(f);
    let tcp = 14 + ihl;
    f[24..26].fill(0);
    let ip = !ones(&f[14..tcp]);
    f[24..26].copy_from_slice(&ip.to_be_bytes());
    f[tcp + 16..tcp + 18].fill(0);
    let c = !tcp_sum(f);
    f[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
}

fn ip_checksum_ok(f: &[u8]) -> bool {
    let (ihl, _) = ip_bounds(f);
    ones(&f[14..14 + ihl]) == 0xffff
}

fn tcp_checksum_ok(f: &[u8]) -> bool {
    tcp_sum(f) == 0xffff
}

/// Reads an input: byte 0 bits 0-2 the mss ([`MSS`], 7: bytes 1-2 modulo 8,950), bits 3-4
/// the TCP options every segment carries (timestamps, none or 40 bytes), bit 5 VF 1 of B
/// without `RX_GSO`, bit 6 sequence numbers that wrap, bit 7 IPv4 identifications that
/// wrap; byte 3 the first sequence number; byte 4 what every segment has: bits 0-2 its
/// fragment field (0-3 DF, 4 none, 5 MF, 6 DF and an offset, 7 DF and MF), bit 3 IPv4
/// options, bit 4 ECN's ECT(0), bit 5 Ethernet padding to 60 bytes; bits 6-7 the size of
/// the RX buffers B's VFs with `RX_GSO` post ([`RX_BUF`]). Then a record of [`RECORD`] bytes
/// a frame:
/// - byte 0: bit 7 a new poll before the frame; the rest what goes wrong with it: mostly
///   nothing (0-87), a header field that differs (88-101, which by byte 5), a flipped byte
///   (102-113, where by bytes 5-6: a checksum fails), something else (by byte 5: DF off,
///   IPv4 options, Ethernet padding, a fragment, an inner or outer frame of garbage, another
///   protocol, other TCP options);
/// - byte 1: bits 0-1 the flow (3: the second), bits 2-4 the destination (0-4 VF 0, 5 VF 1,
///   6 VF 2, 7 by bits 5-6 an address without a mapping, the subnet gateway, the internet,
///   the blackhole);
/// - byte 2: the payload length: mostly the mss (0-191), shorter (192-223, 232-247), none
///   (224-231) or longer (248-255);
/// - byte 3: the sequence number: mostly back to back (0-215), the previous one again
///   (216-223) or up to 16 bytes off (224-255);
/// - byte 4: the TCP flags: ACK (0-183), ACK|PSH (184-215) or one of [`ODD_FLAGS`];
/// - bytes 5-6: what the first byte's mishap needs.
pub fn parse(data: &[u8]) -> Input {
    let mut h = [0u8; HEADER];
    for (x, b) in h.iter_mut().zip(data) {
        *x = *b;
    }
    let mss = usize::from(match h[0] & 7 {
        7 => u16::from_be_bytes([h[1], h[2]]) % 8950,
        k => MSS[usize::from(k)],
    });
    let tcp_opts: Vec<u8> = match (h[0] >> 3) & 3 {
        0 | 1 => vec![1, 1, 8, 10, 0, 0, 1, h[3], 0, 0, 0, 9],
        2 => Vec::new(),
        _ => {
            let mut o = vec![
                2, 4, 0x23, 0x1c, 1, 3, 3, 7, 4, 2, 8, 10, 0, 1, 2, h[3], 0, 0, 0, 5,
            ];
            o.resize(40, 1);
            o
        }
    };
    let seq0 = if h[0] & 0x40 != 0 {
        0u32.wrapping_sub(u32::from(h[3]) * 97 + 1)
    } else {
        5000 + u32::from(h[3]) * 1000
    };
    let id0 = if h[0] & 0x80 != 0 { 0xfff8 } else { 100 };
    let stream = Stream {
        frag: match h[4] & 7 {
            0..=3 => 0x4000,
            4 => 0,
            5 => 0x2000,
            6 => 0x4010,
            _ => 0x6000,
        },
        ip_opts: if h[4] & 8 != 0 {
            vec![0x94, 4, 0, 0, 1, 1, 1, 0]
        } else {
            Vec::new()
        },
        tos: if h[4] & 0x10 != 0 { 2 } else { 0 },
        pad: h[4] & 0x20 != 0,
        tcp_opts,
        mss,
    };
    let mut flows = [
        Flow {
            next: seq0,
            last: seq0,
            id: id0,
        },
        Flow {
            next: seq0.wrapping_add(0x1000_0000),
            last: seq0.wrapping_add(0x1000_0000),
            id: id0.wrapping_add(1000),
        },
    ];
    let mut groups: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
    let records = data.get(HEADER..).unwrap_or(&[]).chunks_exact(RECORD);
    for (i, r) in records.take(MAX_FRAMES).enumerate() {
        if r[0] & 0x80 != 0 && !groups.last().unwrap().is_empty() {
            groups.push(Vec::new());
        }
        let f = uplink_frame(r, i, &stream, &mut flows);
        groups.last_mut().unwrap().push(f);
    }
    groups.retain(|g| !g.is_empty());
    Input {
        groups,
        rx_gso: [true, h[0] & 0x20 == 0, false],
        rx_buf: RX_BUF[usize::from(h[4] >> 6)],
    }
}

/// Payload bytes from sequence number `seq` on.
fn payload(seq: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|k| (seq.wrapping_add(k).wrapping_mul(0x9e37_79b1) >> 24) as u8)
        .collect()
}

/// Bytes of garbage made from `seed`.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// The frame of record `r` (the `i`-th) as the uplink receives it; see [`parse`].
fn uplink_frame(r: &[u8], i: usize, stream: &Stream, flows: &mut [Flow; 2]) -> Vec<u8> {
    let mss = stream.mss;
    let (what, place, len, step, flags, p, q) = (r[0] & 0x7f, r[1], r[2], r[3], r[4], r[5], r[6]);
    let flow = usize::from(place & 3 == 3);
    let (dst, dst_mac) = match (place >> 2) & 7 {
        0..=4 => ([10, 0, 1, 10], MAC0),
        5 => ([10, 0, 1, 11], MAC1),
        6 => ([10, 0, 2, 20], MAC2),
        _ => match (place >> 5) & 3 {
            0 => ([10, 0, 3, 5], GW2_MAC),
            1 => ([10, 0, 1, 1], GW1_MAC),
            2 => ([198, 51, 100, 7], GW1_MAC),
            _ => ([10, 0, 8, 1], GW1_MAC),
        },
    };
    let payload_len = match len {
        0..=191 => mss,
        192..=223 => mss * usize::from(len - 192) / 32,
        224..=231 => 0,
        232..=247 => mss.saturating_sub(1 + usize::from(q)),
        _ => mss + usize::from(len - 247),
    }
    .min(MAX_PAYLOAD);
    let st = &mut flows[flow];
    let seq = match step {
        0..=215 => st.next,
        216..=223 => st.last,
        _ => st.next.wrapping_add_signed(i32::from(step) - 240),
    };
    st.last = seq;
    st.next = seq.wrapping_add(payload_len as u32);
    st.id = st.id.wrapping_add(1);
    let flags = match flags {
        0..=183 => TCP_ACK,
        184..=215 => TCP_ACK | TCP_PSH,
        _ => ODD_FLAGS[usize::from(flags - 216) % ODD_FLAGS.len()],
    };
    let mut s = Segment {
        dst_mac,
        tos: stream.tos,
        id: st.id,
        frag: stream.frag,
        ttl: 63,
        proto: 6,
        ip_opts: stream.ip_opts.clone(),
        dst,
        sport: SPORTS[flow],
        seq,
        ack: 77 + flow as u32,
        doff_low: 0,
        flags,
        window: 512,
        urgent: 0,
        tcp_opts: stream.tcp_opts.clone(),
        payload: payload(seq, payload_len),
    };
    let seed = u64::from_be_bytes([0, 0, 0, 0, i as u8, p, q, what]);
    // What happens to the built frame: a flipped byte, padding, a cut, garbage.
    enum After {
        Nothing,
        Flip(usize, u8),
        Pad(usize),
        Cut(usize),
        InnerGarbage,
        OuterGarbage,
        OuterFlip(usize),
    }
    let mut after = After::Nothing;
    match what {
        0..=87 => {}
        88..=101 => match p % 10 {
            0 => s.ttl ^= q | 1,
            1 => s.tos ^= q | 1,
            2 => s.window ^= u16::from(q | 1) << (p & 8),
            3 => s.ack ^= u32::from(q | 1),
            4 => s.urgent ^= u16::from(q | 1),
            5 if !s.tcp_opts.is_empty() => {
                let n = s.tcp_opts.len();
                s.tcp_opts[usize::from(q) % n] ^= 1 << (p & 7);
            }
            5 => s.tos ^= 1,
            // A difference coalescing allows.
            6 => s.id = u16::from_be_bytes([p, q]),
            7 => s.dst_mac[5] ^= q | 1,
            8 => s.ack = s.ack.wrapping_add(u32::from(q) << 8),
            _ => s.doff_low = (q & 0x0f) | 1,
        },
        102..=113 => after = After::Flip(usize::from(u16::from_be_bytes([p, q])), 1 << (q & 7)),
        _ => match p % 8 {
            0 => s.frag ^= 0x4000 | u16::from(q & 0x20) << 8,
            1 => {
                s.ip_opts = vec![1; 4 * (1 + usize::from(q % 10))];
                *s.ip_opts.last_mut().unwrap() = 0;
            }
            2 => after = After::Pad(1 + usize::from(q % 16)),
            3 => {
                s.frag = if q & 1 != 0 {
                    0x2000 | u16::from(q >> 1)
                } else {
                    0x4000 | u16::from(q)
                }
            }
            4 => {
                after = if q & 1 != 0 {
                    After::InnerGarbage
                } else {
                    After::Cut(usize::from(q))
                }
            }
            5 => {
                after = if q & 1 != 0 {
                    After::OuterGarbage
                } else {
                    After::OuterFlip(usize::from(q >> 1) % 50)
                }
            }
            6 => s.proto = if q == 6 { 17 } else { q },
            _ => {
                if s.tcp_opts.len() <= 36 {
                    s.tcp_opts.extend_from_slice(&[1, 1, 1, 1]);
                } else {
                    s.tcp_opts.truncate(36);
                }
            }
        },
    }
    let mut inner = s.frame();
    if stream.pad && inner.len() < 60 {
        inner.resize(60, 0);
    }
    match after {
        After::Flip(at, bit) => {
            let n = inner.len();
            inner[at % n] ^= bit;
        }
        After::Pad(n) => inner.resize(inner.len() + n, 0),
        After::Cut(n) => inner.truncate(n),
        After::InnerGarbage => {
            let n = inner.len().min(14 + 4 * usize::from(q));
            let g = garbage(seed, n - 14);
            inner.truncate(14);
            inner.extend_from_slice(&g);
        }
        After::OuterGarbage => return garbage(seed, usize::from(q) * 2),
        After::Nothing | After::OuterFlip(_) => {}
    }
    let mut outer = crate::testing::vxlan_frame(
        vpc::UPLINK_MAC,
        vpc::NEXT_HOP_MAC,
        Ipv4Addr::from(vpc::REMOTE_HOST),
        Ipv4Addr::from(vpc::UPLINK),
        vpc::VNI,
        &inner,
    );
    if let After::OuterFlip(at) = after {
        outer[at] ^= 1 << (p & 7);
    }
    outer
}

/// A frame a VF received: the frame, its flags and mss.
pub type Received = (Vec<u8>, RxFlags, u16);

/// What an input did, for tests to see what the generator reaches.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Frames sent on the uplink.
    pub sent: usize,
    /// Frames A's VFs received.
    pub delivered: usize,
    /// Super-frames B's VFs received.
    pub super_frames: usize,
    /// The segments they held.
    pub coalesced: usize,
    /// Super-frames that one more segment would not have fitted in the RX buffer.
    pub near_full: usize,
    /// Those of them in an RX buffer shorter than 65,535 bytes.
    pub short_buffer: usize,
}

/// The coalesce target: see the module's documentation and [`parse`].
pub fn coalesce(data: &[u8]) -> Outcome {
    let input = parse(data);
    let mut out = Outcome {
        sent: input.groups.iter().map(Vec::len).sum(),
        ..Outcome::default()
    };
    if out.sent == 0 {
        return out;
    }
    // Each NIC's tables in memory this input owns (see the offload target).
    let mut mem_a = OwnedMemory::new(Sizes::default());
    let mut mem_b = OwnedMemory::new(Sizes::default());
    let mut a = FakeNic::in_memory(&mut mem_a);
    let mut b = FakeNic::in_memory(&mut mem_b);
    for nic in [&mut a, &mut b] {
        vpc::program(nic);
        vpc::program_uplink(nic);
    }
    for vf in 0..VFS {
        if input.rx_gso[usize::from(vf)] {
            b.platform
                .write_reg(Function::Vf(vf), shared_regs::vf::CONTROL, 0);
            b.poll();
            b.attach_vf_with(vf, true);
            shrink_rx_buffers(&mut b, vf, input.rx_buf);
        }
    }
    let (got_a, wire_a) = run(&mut a, &input.groups);
    let (got_b, wire_b) = run(&mut b, &input.groups);
    assert!(
        wire_a == wire_b,
        "the uplink sent {} frames without RX_GSO, {} with",
        wire_a.len(),
        wire_b.len()
    );
    for vf in 0..VFS {
        let (ga, gb) = (&got_a[usize::from(vf)], &got_b[usize::from(vf)]);
        out.delivered += ga.len();
        let room = input.rx_gso[usize::from(vf)].then_some(usize::from(input.rx_buf));
        same_after_cutting(vf, ga, gb, room, &mut out);
        let (ca, cb) = (a.counters(vf), b.counters(vf));
        for &c in Counter::ALL {
            if ![Counter::RxPackets, Counter::RxBytes].contains(&c) {
                assert_eq!(ca.get(c), cb.get(c), "VF {vf}: {}", c.name());
            }
        }
        assert_eq!(ca.get(Counter::RxPackets), ga.len() as u64, "VF {vf}: A");
        assert_eq!(cb.get(Counter::RxPackets), gb.len() as u64, "VF {vf}: B");
        let bytes = |g: &[Received]| g.iter().map(|r| r.0.len() as u64).sum::<u64>();
        assert_eq!(ca.get(Counter::RxBytes), bytes(ga), "VF {vf}: A bytes");
        assert_eq!(cb.get(Counter::RxBytes), bytes(gb), "VF {vf}: B bytes");
    }
    let (ua, ub) = (a.counters(UPLINK_FUNCTION), b.counters(UPLINK_FUNCTION));
    for &c in Counter::ALL {
        assert_eq!(ua.get(c), ub.get(c), "uplink: {}", c.name());
    }
    out
}

/// Makes the RX buffers VF `vf`'s driver posted `len` bytes long.
fn shrink_rx_buffers(nic: &mut FakeNic<'_>, vf: u16, len: u16) {
    use shared_regs::desc::{RxDesc, DESC_SIZE};
    use zerocopy::{FromBytes, IntoBytes};
    let f = Function::Vf(vf);
    let size = nic.platform.read_reg(f, shared_regs::vf::RX_SIZE);
    for i in 0..u64::from(size) {
        let at = crate::testing::RX_RING_IOVA + i * DESC_SIZE as u64;
        let mut raw = [0u8; DESC_SIZE];
        nic.platform.dma_read(f, at, &mut raw).unwrap();
        let mut d = RxDesc::read_from_bytes(&raw).unwrap();
        d.buf_len.set(len);
        nic.platform.dma_write(f, at, d.as_bytes()).unwrap();
    }
}

/// Puts each group of frames on the uplink and lets the firmware run until it has nothing
/// left to do, taking what every VF receives after each poll (so that no RX ring fills):
/// per VF what it received, and what the uplink sent.
fn run(nic: &mut FakeNic<'_>, groups: &[Vec<Vec<u8>>]) -> (Vec<Vec<Received>>, Vec<Vec<u8>>) {
    let mut got = vec![Vec::new(); usize::from(VFS)];
    let mut wire = Vec::new();
    for group in groups {
        nic.platform.uplink_in.extend(group.iter().cloned());
        let mut idle = false;
        for _ in 0..MAX_POLLS {
            let busy = nic.fw.poll(&mut nic.platform);
            for vf in 0..VFS {
                while let Some(r) = nic.recv_with(vf) {
                    got[usize::from(vf)].push(r);
                }
            }
            wire.append(&mut nic.platform.uplink_out);
            if !busy {
                idle = true;
                break;
            }
        }
        assert!(idle, "firmware still busy after {MAX_POLLS} polls");
        assert!(nic.platform.uplink_in.is_empty(), "frames left on the wire");
    }
    (got, wire)
}

/// B's frames `b` for VF `vf` must be A's `a` once every super-frame is cut back. `room`:
/// the length of the VF's RX buffers when it takes super-frames.
fn same_after_cutting(
    vf: u16,
    a: &[Received],
    b: &[Received],
    room: Option<usize>,
    out: &mut Outcome,
) {
    let mut next = 0;
    for (i, (f, flags, mss)) in b.iter().enumerate() {
        if !flags.contains(RxFlags::GSO_TCP4) {
            let Some((want, want_flags, want_mss)) = a.get(next) else {
                panic!("VF {vf}: B's frame {i} is not one A received: {f:02x?}");
            };
            assert!(
                f == want && flags == want_flags && mss == want_mss,
                "VF {vf}: B's frame {i} ({flags:?}, mss {mss}) is not A's frame {next} \
                 ({want_flags:?}, mss {want_mss}):\n{f:02x?}\n{want:02x?}"
            );
            next += 1;
            continue;
        }
        let Some(room) = room else {
            panic!("VF {vf}: GSO_TCP4 to a VF without RX_GSO");
        };
        assert!(
            f.len() <= room,
            "VF {vf}: a {}-byte super-frame in a {room}-byte buffer",
            f.len()
        );
        assert!(
            flags.contains(RxFlags::DONE),
            "VF {vf}: a super-frame without DONE"
        );
        assert!(
            *mss >= MIN_TSO_MSS,
            "VF {vf}: a super-frame of mss {mss}, which no VF's TSO takes back"
        );
        let segments = cut(vf, f, *mss);
        let n = segments.len();
        let Some(want) = a.get(next..next + n) else {
            panic!(
                "VF {vf}: B's super-frame {i} cuts into {n} segments, A has {} frames from \
                 its frame {next} on",
                a.len() - next.min(a.len())
            );
        };
        for (k, (seg, (w, w_flags, _))) in segments.iter().zip(want).enumerate() {
            assert!(
                !w_flags.contains(RxFlags::GSO_TCP4),
                "VF {vf}: GSO_TCP4 to a VF without RX_GSO"
            );
            // What A's frame may have of its own: the IPv4 identification and checksum,
            // and its TCP checksum in the other of one's complement's two forms (0x0000 and
            // 0xffff), checked below. (A segment's TCP header starts at byte 34: its IPv4
            // header is the super-frame's.)
            let mask = |f: &[u8]| {
                let mut f = f.to_vec();
                if f.len() >= 34 + 18 {
                    f[18..20].fill(0);
                    f[24..26].fill(0);
                    f[34 + 16..34 + 18].fill(0);
                }
                f
            };
            assert!(
                mask(seg) == mask(w),
                "VF {vf}: segment {k} of {n} cut from B's super-frame {i} (mss {mss}) is not \
                 A's frame {}:\n{:02x?}\n{w:02x?}",
                next + k,
                seg
            );
            assert!(
                ip_checksum_ok(w) && tcp_checksum_ok(w),
                "VF {vf}: a segment with a wrong checksum was coalesced: {w:02x?}"
            );
        }
        out.super_frames += 1;
        out.coalesced += n;
        if f.len() + usize::from(*mss) > room {
            out.near_full += 1;
            if room < usize::from(u16::MAX) {
                out.short_buffer += 1;
            }
        }
        next += n;
    }
    assert_eq!(
        next,
        a.len(),
        "VF {vf}: A received {} frames B's do not account for",
        a.len() - next.min(a.len())
    );
}

/// Checks a super-frame VF `vf` received and cuts it into segments of `mss` payload bytes
/// as a VM's stack does: each with the super-frame's headers, its own IPv4 total length,
/// sequence number and TCP flags (CWR only on the first, FIN and PSH only on the last), and
/// its TCP checksum; the IPv4 identification and checksum as the super-frame's.
fn cut(vf: u16, f: &[u8], mss: u16) -> Vec<Vec<u8>> {
    assert!(
        f.len() >= 54 && f.len() <= usize::from(u16::MAX),
        "VF {vf}: a {}-byte super-frame",
        f.len()
    );
    assert_eq!(&f[12..14], &[0x08, 0x00], "VF {vf}: a super-frame not IPv4");
    assert_eq!(f[14], 0x45, "VF {vf}: a super-frame with IPv4 options");
    assert_eq!(
        14 + usize::from(be16(f, 16)),
        f.len(),
        "VF {vf}: a super-frame's IPv4 total length"
    );
    assert_eq!(
        be16(f, 20),
        0x4000,
        "VF {vf}: a super-frame's fragment field"
    );
    assert_eq!(f[23], 6, "VF {vf}: a super-frame not TCP");
    assert!(ip_checksum_ok(f), "VF {vf}: a super-frame's IPv4 checksum");
    let doff = usize::from(f[34 + 12] >> 4) * 4;
    let h = 34 + doff;
    assert!(
        doff >= 20 && h < f.len(),
        "VF {vf}: a super-frame's TCP header"
    );
    assert!(tcp_checksum_ok(f), "VF {vf}: a super-frame's TCP checksum");
    let flags = f[34 + 13];
    assert_eq!(
        flags & !TCP_PSH,
        TCP_ACK,
        "VF {vf}: a super-frame's TCP flags {flags:#04x}"
    );
    let mss = usize::from(mss);
    let payload = f.len() - h;
    assert!(
        mss > 0 && payload > mss,
        "VF {vf}: a super-frame of {payload} payload bytes, mss {mss}"
    );
    let seq = be32(f, 34 + 4);
    f[h..]
        .chunks(mss)
        .enumerate()
        .map(|(k, piece)| {
            let last = (k + 1) * mss >= payload;
            let mut s = f[..h].to_vec();
            s.extend_from_slice(piece);
            let total = (s.len() - 14) as u16;
            s[16..18].copy_from_slice(&total.to_be_bytes());
            s[38..42].copy_from_slice(&seq.wrapping_add((k * mss) as u32).to_be_bytes());
            let mut fl = flags;
            if k != 0 {
                fl &= !TCP_CWR;
            }
            if !last {
                fl &= !(TCP_FIN | TCP_PSH);
            }
            s[34 + 13] = fl;
            fill_checksums(&mut s);
            s
        })
        .collect()
}
