//! The `offload` fuzz target: one frame from VF 0 with TX offload flags (checksum, TSO) and
//! an mss, through the real rings of a [`FakeNic`] on the VPC of
//! [`crate::testing::vpc::nic_with_uplink`], toward a VF of the same or the other subnet
//! (with or without `CONTROL.RX_GSO`), a remote host, the internet gateway, a blackhole, the
//! subnet gateway, an address nobody has, or VF 0 itself. What every VF and the uplink
//! receive is checked against what `shared_regs::desc` promises for offloads.
extern crate std;

use crate::offload::{fold, sum};
use crate::platform::{Function, Platform};
use crate::testing::{vpc, FakeNic};
use core::net::Ipv4Addr;
use shared_regs::desc::{RxFlags, TxFlags, TxStatus, MIN_TSO_MSS};
use shared_regs::stats::Counter;
use shared_regs::VF_MAX_FRAME;
use std::vec;
use std::vec::Vec;

/// Bytes before the frame: flags kind, garbage flags (2), mss (2), choices.
pub const HEADER: usize = 6;
/// Bytes of header fields a structured frame takes after [`HEADER`].
pub const FIELDS: usize = 16;
/// Where the frame goes, by input bits 2-4 of byte 5: VF 1 (same subnet), VF 2 (other
/// subnet), the remote instance, the internet, the blackhole, the subnet gateway, an
/// address without a mapping, VF 0 itself.
pub const DESTINATIONS: [Ipv4Addr; 8] = [
    Ipv4Addr::new(10, 0, 1, 11),
    Ipv4Addr::new(10, 0, 2, 20),
    Ipv4Addr::new(10, 0, 2, 30),
    Ipv4Addr::new(198, 51, 100, 7),
    Ipv4Addr::new(10, 0, 8, 1),
    Ipv4Addr::new(10, 0, 1, 1),
    Ipv4Addr::new(10, 0, 3, 5),
    Ipv4Addr::new(10, 0, 1, 10),
];
/// The VFs of the VPC; VF 0 sends.
const VFS: u16 = 3;
const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
const SPORT: u16 = 40000;
const DPORT: u16 = 5201;
/// Polls a frame of up to 65,535 one-byte segments may take (8 a batch), and some.
const MAX_POLLS: usize = 20_000;

/// What the input bytes ask for.
#[derive(Clone, Debug)]
pub struct Input {
    pub flags: TxFlags,
    pub mss: u16,
    pub rx_gso: bool,
    pub dst: usize,
    pub frame: Vec<u8>,
}

/// Reads an input: byte 0 picks the flags (none, CSUM, TSO, both, or bytes 1-2 as they
/// are), bytes 3-4 the mss (big-endian), byte 5 bit 0 `RX_GSO` on every VF, bit 1 a
/// structured frame (else the rest is the frame), bits 2-4 the destination, bits 5-6 the
/// destination MAC, bit 7 a source address VF 0 does not own.
pub fn parse(data: &[u8]) -> Input {
    let mut head = [0u8; HEADER];
    for (h, b) in head.iter_mut().zip(data) {
        *h = *b;
    }
    let rest = data.get(HEADER..).unwrap_or(&[]);
    let flags = match head[0] % 5 {
        0 => TxFlags::empty(),
        1 => TxFlags::CSUM,
        2 => TxFlags::TSO,
        3 => TxFlags::CSUM | TxFlags::TSO,
        _ => TxFlags::from_bits_retain(u16::from_be_bytes([head[1], head[2]])),
    };
    let mss = u16::from_be_bytes([head[3], head[4]]);
    let choice = head[5];
    let dst = usize::from((choice >> 2) & 7);
    let mut frame = if choice & 2 != 0 {
        structured(rest, dst, (choice >> 5) & 3, choice & 0x80 != 0)
    } else {
        rest.to_vec()
    };
    frame.truncate(usize::from(u16::MAX));
    Input {
        flags,
        mss,
        rx_gso: choice & 1 != 0,
        dst,
        frame,
    }
}

/// An Ethernet/IPv4 frame from VF 0 built from [`FIELDS`] bytes of `rest` (missing ones are
/// 0), its payload the bytes after them repeated to the length they ask for.
fn structured(rest: &[u8], dst: usize, mac: u8, foreign_src: bool) -> Vec<u8> {
    let mut s = [0u8; FIELDS];
    for (f, b) in s.iter_mut().zip(rest) {
        *f = *b;
    }
    let source = rest.get(FIELDS..).unwrap_or(&[]);
    let ip_opts = usize::from(s[0] % 11) * 4;
    let l4_opts = usize::from(s[1] % 11) * 4;
    let lies = s[2];
    let nibbles = s[3];
    let total_lie = u16::from_be_bytes([s[4], s[5]]);
    let tcp_flags = s[6];
    let proto = match s[7] % 8 {
        0..=4 => 6u8,
        5 => 17,
        6 => 1,
        _ => s[7],
    };
    let id = u16::from_be_bytes([s[8], s[9]]);
    let seq = u32::from_be_bytes([s[10], s[11], s[12], s[13]]);
    let payload_len = usize::from(u16::from_be_bytes([s[14], s[15]]));
    let payload: Vec<u8> = (0..payload_len)
        .map(|i| {
            if source.is_empty() {
                (i * 7 + i / 251) as u8
            } else {
                source[i % source.len()]
            }
        })
        .collect();
    let mut l4 = match proto {
        6 => {
            let mut t = vec![0u8; 20 + l4_opts];
            t[0..2].copy_from_slice(&SPORT.to_be_bytes());
            t[2..4].copy_from_slice(&DPORT.to_be_bytes());
            t[4..8].copy_from_slice(&seq.to_be_bytes());
            t[8..12].copy_from_slice(&77u32.to_be_bytes());
            let doff = if lies & 2 != 0 {
                nibbles >> 4
            } else {
                ((20 + l4_opts) / 4) as u8
            };
            t[12] = doff << 4;
            t[13] = tcp_flags;
            t[14..16].copy_from_slice(&512u16.to_be_bytes());
            t[16..18].copy_from_slice(&0xabcdu16.to_be_bytes());
            // NOPs, the last option word a timestamp's kind and length when there is room.
            t[20..].fill(1);
            if l4_opts >= 12 {
                t[22] = 8;
                t[23] = 10;
            }
            t
        }
        17 => {
            let mut u = vec![0u8; 8];
            u[0..2].copy_from_slice(&SPORT.to_be_bytes());
            u[2..4].copy_from_slice(&DPORT.to_be_bytes());
            u[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
            u[6..8].copy_from_slice(&0x1234u16.to_be_bytes());
            u
        }
        _ => vec![8, 0, 0, 0, 0, 1, 0, 1],
    };
    l4.extend_from_slice(&payload);
    let ihl = 20 + ip_opts;
    let mut ip = vec![0u8; ihl];
    let ihl_nibble = if lies & 1 != 0 {
        nibbles & 0x0f
    } else {
        (ihl / 4) as u8
    };
    ip[0] = 0x40 | ihl_nibble;
    let total = if lies & 4 != 0 {
        total_lie
    } else {
        (ihl + l4.len()).min(usize::from(u16::MAX)) as u16
    };
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    let mut frag = 0u16;
    if lies & 0x10 != 0 {
        frag |= 0x4000;
    }
    if lies & 0x20 != 0 {
        frag |= 0x2000;
    }
    if lies & 0x40 != 0 {
        frag |= 0x0010;
    }
    ip[6..8].copy_from_slice(&frag.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    let src = if foreign_src {
        Ipv4Addr::new(10, 0, 1, 99)
    } else {
        SRC
    };
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&DESTINATIONS[dst].octets());
    ip[20..].fill(1);
    let csum = !fold(sum(&ip, 0));
    let csum = if lies & 8 != 0 { csum ^ 0x0101 } else { csum };
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let dst_mac = match mac {
        0 => vpc::GW1_MAC,
        1 => match dst {
            0 => vpc::MAC1,
            1 => vpc::MAC2,
            7 => vpc::MAC0,
            _ => vpc::GW1_MAC,
        },
        2 => [0xff; 6],
        _ => vpc::MAC1,
    };
    let mut f = crate::testing::ethernet(dst_mac, vpc::MAC0, 0x0800, &ip);
    f.extend_from_slice(&l4);
    if lies & 0x80 != 0 {
        f.extend_from_slice(&[0xee; 7][..usize::from(nibbles & 7)]);
    }
    f
}

/// Where a frame was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Vf(u16),
    /// The inner frame of what the uplink sent.
    Uplink,
}

/// A frame some port received.
#[derive(Clone, Debug)]
pub struct Received {
    pub port: Port,
    pub frame: Vec<u8>,
    pub flags: RxFlags,
    pub mss: u16,
}

/// What an input did, for tests to see what the generator reaches.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub status: u16,
    pub received: Vec<Received>,
    /// Segments of a cut super-frame checked against it.
    pub segments: usize,
    /// Super-frames delivered whole.
    pub whole: usize,
    /// Destinations whose segments were checked to make up the whole payload.
    pub complete: usize,
}

/// The offload target: see the module's documentation and [`parse`].
pub fn offload(data: &[u8]) -> Outcome {
    let input = parse(data);
    // The NIC's tables in memory this input owns: a leaked one an input ran libFuzzer out
    // of memory after 15,000 inputs.
    let mut memory = crate::testing::OwnedMemory::new(crate::testing::Sizes::default());
    let mut nic = FakeNic::in_memory(&mut memory);
    vpc::program(&mut nic);
    vpc::program_uplink(&mut nic);
    if input.rx_gso {
        for vf in 0..VFS {
            nic.platform
                .write_reg(Function::Vf(vf), shared_regs::vf::CONTROL, 0);
            nic.poll();
            nic.attach_vf_with(vf, true);
        }
    }
    nic.post_with(0, &input.frame, input.flags, input.mss);
    let received = run(&mut nic);
    let status = nic
        .tx_status(0, 0)
        .expect("the TX descriptor was left without a status");
    assert!(
        [TxStatus::Ok, TxStatus::BadDescriptor, TxStatus::DmaError]
            .iter()
            .any(|s| *s as u16 == status),
        "TX status {status} is not one of the ABI's"
    );
    check(&mut nic, &input, status, received)
}

/// Lets the firmware run, taking what every VF and the uplink receive as it goes (so that
/// no RX ring overflows however many segments a super-frame has).
fn run(nic: &mut FakeNic) -> Vec<Received> {
    let mut got = Vec::new();
    for _ in 0..MAX_POLLS {
        let busy = nic.fw.poll(&mut nic.platform);
        for vf in 0..VFS {
            while let Some((frame, flags, mss)) = nic.recv_with(vf) {
                got.push(Received {
                    port: Port::Vf(vf),
                    frame,
                    flags,
                    mss,
                });
            }
        }
        for f in core::mem::take(&mut nic.platform.uplink_out) {
            let (_, _, inner) = vpc::outer(&f);
            got.push(Received {
                port: Port::Uplink,
                frame: inner.to_vec(),
                flags: RxFlags::empty(),
                mss: 0,
            });
        }
        if !busy {
            return got;
        }
    }
    panic!("firmware still busy after {MAX_POLLS} polls");
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The headers of an IPv4 frame as the checks read them.
#[derive(Clone, Copy, Debug)]
struct Ip {
    ihl: usize,
    total: usize,
    proto: u8,
    fragment: bool,
}

/// The IPv4 header of `frame`, if it has one with a sane length (total length within the
/// frame).
fn ip_of(frame: &[u8]) -> Option<Ip> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let total = usize::from(be16(frame, 16));
    if ihl < 20 || total < ihl || 14 + total > frame.len() {
        return None;
    }
    Some(Ip {
        ihl,
        total,
        proto: frame[23],
        fragment: be16(frame, 20) & 0x3fff != 0,
    })
}

fn ip_checksum_ok(frame: &[u8], ip: &Ip) -> bool {
    fold(sum(&frame[14..14 + ip.ihl], 0)) == 0xffff
}

/// Whether the TCP or UDP checksum of an IPv4 frame that is not a fragment holds, over the
/// L4 length its IPv4 header gives; `None` for other frames.
fn l4_checksum_ok(frame: &[u8]) -> Option<bool> {
    let ip = ip_of(frame)?;
    let l4_len = ip.total - ip.ihl;
    let min = match ip.proto {
        6 => 20,
        17 => 8,
        _ => return None,
    };
    if ip.fragment || l4_len < min {
        return None;
    }
    let l4 = &frame[14 + ip.ihl..14 + ip.total];
    let pseudo = sum(&frame[26..34], u64::from(ip.proto)) + l4_len as u64;
    let ok = fold(sum(l4, pseudo)) == 0xffff;
    // UDP's 0 is "no checksum", never what a device that computed it writes.
    Some(ok && !(ip.proto == 17 && be16(l4, 6) == 0))
}

/// The Ethernet, IPv4 and TCP header length and IPv4 header length of a frame the ABI takes
/// as a super-frame: TCP/IPv4, not a fragment, both headers whole within the frame.
fn super_headers(frame: &[u8]) -> Option<(usize, usize)> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    if ihl < 20 || be16(frame, 20) & 0x3fff != 0 || frame[23] != 6 {
        return None;
    }
    let doff = usize::from(*frame.get(14 + ihl + 12)? >> 4) * 4;
    let header = 14 + ihl + doff;
    (doff >= 20 && header <= frame.len()).then_some((header, ihl))
}

/// True for a TCP/IPv4 frame of the flow the input sent (addresses and ports), not a
/// fragment.
fn of_flow(frame: &[u8], sent: &[u8], sent_ihl: usize) -> bool {
    let Some(ip) = ip_of(frame) else {
        return false;
    };
    let tcp = 14 + ip.ihl;
    ip.proto == 6
        && !ip.fragment
        && ip.total >= ip.ihl + 20
        && frame[26..34] == sent[26..34]
        && frame[tcp..tcp + 4] == sent[14 + sent_ihl..14 + sent_ihl + 4]
}

fn check(nic: &mut FakeNic, input: &Input, status: u16, received: Vec<Received>) -> Outcome {
    let sent = &input.frame;
    let offload = input.flags.intersects(TxFlags::CSUM | TxFlags::TSO);
    let tso = input.flags.contains(TxFlags::TSO);
    let headers = super_headers(sent);
    let ok = status == TxStatus::Ok as u16;
    // The descriptor's fate as `TxStatus` documents it.
    let mss_ok = input.mss >= MIN_TSO_MSS;
    if tso && (headers.is_none() || !mss_ok) {
        assert_eq!(
            status,
            TxStatus::BadDescriptor as u16,
            "TSO of what is not a TCP/IPv4 super-frame (or mss below {MIN_TSO_MSS}) was taken"
        );
    }
    // A super-frame the device cuts, as (header length, IPv4 header length, payload).
    let mut cut = None;
    if let (true, Some((h, ihl)), true) = (tso, headers, mss_ok) {
        let payload = sent.len() - h;
        let segment = h + payload.min(usize::from(input.mss));
        if segment > VF_MAX_FRAME {
            assert_eq!(
                status,
                TxStatus::BadDescriptor as u16,
                "a super-frame with segments longer than a VF frame was taken"
            );
        } else {
            assert!(ok, "a good super-frame got status {status}");
            cut = Some((h, ihl, payload));
        }
    }
    let mut out = Outcome {
        status,
        ..Outcome::default()
    };
    // Per destination: (payload bytes in arrival order, the offsets they were at).
    let mut flows: Vec<(Port, Vec<u8>, Vec<usize>)> = Vec::new();
    let mut fragments_at: Vec<Port> = Vec::new();
    for r in &received {
        let f = &r.frame;
        let gso = r.flags.contains(RxFlags::GSO_TCP4);
        assert!(
            gso || f.len() <= VF_MAX_FRAME,
            "a {}-byte frame on {:?} without GSO_TCP4",
            f.len(),
            r.port
        );
        if r.flags.contains(RxFlags::CSUM_VALID) {
            assert!(offload, "CSUM_VALID on a frame sent without offloads");
            assert_eq!(
                l4_checksum_ok(f),
                Some(true),
                "CSUM_VALID on a frame whose TCP/UDP checksum is wrong: {f:02x?}"
            );
        }
        if offload {
            if let Some(ip) = ip_of(f) {
                if matches!(ip.proto, 6 | 17) {
                    assert!(ip_checksum_ok(f, &ip), "IPv4 checksum on {:?}", r.port);
                }
            }
            assert_ne!(
                l4_checksum_ok(f),
                Some(false),
                "an offloaded TCP/UDP frame on {:?} with a wrong checksum: {f:02x?}",
                r.port
            );
        }
        if let Some(ip) = ip_of(f) {
            if ip.fragment {
                fragments_at.push(r.port);
            }
        }
        if gso {
            let Port::Vf(_) = r.port else {
                panic!("GSO_TCP4 on the uplink");
            };
            assert!(input.rx_gso, "GSO_TCP4 to a VF without RX_GSO");
            let (h, ihl, _) = cut.expect("GSO_TCP4 for what is not a super-frame");
            out.whole += 1;
            whole_frame(f, r.mss, input.mss, sent, h, ihl);
            continue;
        }
        let Some((h, ihl, payload)) = cut else {
            continue;
        };
        if !of_flow(f, sent, ihl) {
            continue;
        }
        out.segments += 1;
        let (off, data) = segment(f, sent, h, ihl, payload, input.mss);
        match flows.iter_mut().find(|(p, _, _)| *p == r.port) {
            Some((_, bytes, offs)) => {
                bytes.extend_from_slice(data);
                offs.push(off);
            }
            None => flows.push((r.port, data.to_vec(), vec![off])),
        }
    }
    if out.whole > 0 {
        assert_eq!(out.whole, 1, "a super-frame delivered whole twice");
        assert!(flows.is_empty(), "a super-frame delivered whole and cut");
    }
    if let (Some((h, _, payload)), true) = (cut, ok) {
        let sender = nic.counters(0);
        let sender_clean = sender.drops() == 0 && sender.get(Counter::Replies) == 0;
        for (port, bytes, offs) in &flows {
            let drops = match port {
                Port::Vf(vf) => nic.counters(*vf).drops(),
                Port::Uplink => nic.counters(shared_regs::entry::UPLINK_FUNCTION).drops(),
            };
            if drops != 0 || !sender_clean || fragments_at.contains(port) {
                continue;
            }
            out.complete += 1;
            let mut next = 0;
            for off in offs {
                assert_eq!(*off, next, "segments to {port:?} out of order: {offs:?}");
                next += usize::from(input.mss).min(payload - off);
            }
            assert!(
                bytes[..] == sent[h..],
                "the segments to {port:?} carry {} of the {} payload bytes ({:?}, mss {}, \
                 IPv4 total length {} of a {}-byte frame)",
                bytes.len(),
                payload,
                input.flags,
                input.mss,
                be16(sent, 16),
                sent.len()
            );
        }
    }
    out.received = received;
    out
}

/// Checks one segment of a cut super-frame against the super-frame; returns its payload's
/// offset and bytes.
fn segment<'f>(
    f: &'f [u8],
    sent: &[u8],
    h: usize,
    ihl: usize,
    payload: usize,
    mss: u16,
) -> (usize, &'f [u8]) {
    let ip = ip_of(f).unwrap();
    assert_eq!(ip.ihl, ihl, "a segment's IPv4 header length");
    assert_eq!(14 + ip.total, f.len(), "a segment's IPv4 total length");
    assert!(f.len() >= h, "a segment shorter than its headers");
    let tcp = 14 + ihl;
    let n = f.len() - h;
    assert!(n <= usize::from(mss), "a segment of {n} bytes, mss {mss}");
    let off = be32(f, tcp + 4).wrapping_sub(be32(sent, tcp + 4)) as usize;
    assert!(
        off <= payload && n <= payload - off,
        "a segment at {off} of {n} bytes in a payload of {payload}"
    );
    assert_eq!(&f[h..], &sent[h + off..h + off + n], "segment at {off}");
    assert_eq!(off % usize::from(mss), 0, "a segment at {off}, mss {mss}");
    let index = (off / usize::from(mss)) as u16;
    assert_eq!(
        be16(f, 18),
        be16(sent, 18).wrapping_add(index),
        "identification of segment {index}"
    );
    // Headers as sent but for what each segment has of its own.
    let first = off == 0;
    let last = off + n == payload;
    let mut flags = sent[tcp + 13];
    if !last {
        flags &= !0x09;
    }
    if !first {
        flags &= !0x80;
    }
    assert_eq!(f[tcp + 13], flags, "TCP flags of the segment at {off}");
    let same = |a: usize, b: usize| f[a..b] == sent[a..b];
    assert!(
        same(12, 16) && same(20, 24) && same(26, tcp + 4) && same(tcp + 8, tcp + 13),
        "a segment's headers differ from the super-frame's"
    );
    assert!(same(tcp + 14, tcp + 16) && same(tcp + 18, h));
    (off, &f[h..])
}

/// Checks a super-frame delivered whole: the reported mss, the bytes as sent but for the
/// Ethernet addresses, the IPv4 total length and both checksums, which must hold.
fn whole_frame(f: &[u8], got_mss: u16, mss: u16, sent: &[u8], h: usize, ihl: usize) {
    assert_eq!(got_mss, mss, "GSO_TCP4 with the wrong mss");
    assert_eq!(f.len(), sent.len(), "a whole super-frame's length");
    let ip = ip_of(f).expect("a whole super-frame's IPv4 header");
    assert_eq!(14 + ip.total, f.len(), "a whole super-frame's IPv4 length");
    assert!(
        ip_checksum_ok(f, &ip),
        "a whole super-frame's IPv4 checksum"
    );
    assert_eq!(
        l4_checksum_ok(f),
        Some(true),
        "a whole super-frame's TCP checksum"
    );
    let tcp = 14 + ihl;
    let same = |a: usize, b: usize| f[a..b] == sent[a..b];
    assert!(
        same(12, 16) && same(18, 24) && same(26, tcp + 16) && same(tcp + 18, sent.len()),
        "a whole super-frame differs from what was sent"
    );
    assert!(h <= f.len());
}
