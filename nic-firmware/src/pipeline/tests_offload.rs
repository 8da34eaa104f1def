//! VF offloads through the real rings of a [`FakeNic`]: checksums completed, TCP
//! super-frames cut into segments that every rule then judges (F13 and F14 included), and
//! delivered whole to a VF that takes them.
use super::tests::vpc_nic;
use super::tests_uplink;
use crate::platform::{Function, Platform};
use crate::testing::*;
use core::net::Ipv4Addr;
use shared_regs::desc::{RxFlags, TxFlags, TxStatus, MIN_TSO_MSS};
use shared_regs::stats::Counter;
use shared_regs::vf;
use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};

const GW1_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
const GW2_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x02, 0x01];
const MAC0: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0a];
const MAC2: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x02, 0x14];
const VF0: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
const VF2: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 20);
/// TCP payload a segment for a 9001-byte MTU with 12 bytes of TCP options.
const MSS: u16 = 9001 - 20 - 20 - 12;
const FIN_PSH_ACK: u8 = 0x19;

/// A TCP/IPv4 frame from VF 0 to `dst` as a VM with offloads hands it over: IPv4 total
/// length over the whole super-frame, TCP checksum not filled in.
fn tcp_super(dst: Ipv4Addr, payload: &[u8], flags: u8) -> Vec<u8> {
    let mut tcp = vec![0u8; 32];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&1_000_000u32.to_be_bytes());
    tcp[8..12].copy_from_slice(&77u32.to_be_bytes());
    tcp[12] = 8 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
    // NOP, NOP, timestamps.
    tcp[20..24].copy_from_slice(&[1, 1, 8, 10]);
    tcp.extend_from_slice(payload);
    let ip = ipv4(VF0, dst, IpProtocol::Tcp, 64, &tcp);
    let mut f = ethernet(GW1_MAC, MAC0, 0x0800, &ip);
    f[14 + 20 + 16] = 0xab;
    f
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Checks both checksums and the IPv4 length of a TCP frame; returns its payload.
fn tcp_payload(frame: &[u8]) -> Vec<u8> {
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert!(ip.verify_checksum(), "IPv4 checksum");
    assert_eq!(usize::from(ip.total_len()), frame.len() - 14);
    let tcp = TcpPacket::new_checked(&frame[34..]).unwrap();
    let (s, d) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    assert!(tcp.verify_checksum(&s, &d), "TCP checksum");
    tcp.payload().to_vec()
}

fn drain(nic: &mut FakeNic, vf: u16) -> Vec<(Vec<u8>, RxFlags, u16)> {
    std::iter::from_fn(|| nic.recv_with(vf)).collect()
}

fn reattach_with_rx_gso(nic: &mut FakeNic, vf: u16) {
    nic.platform.write_reg(Function::Vf(vf), vf::CONTROL, 0);
    nic.poll();
    nic.attach_vf_with(vf, true);
}

#[test]
fn every_vf_is_offered_the_offloads() {
    let mut nic = vpc_nic();
    let offered = nic.platform.read_reg(Function::Vf(1), vf::OFFLOADS);
    assert_eq!(offered, crate::offload::OFFERED.bits());
    assert!(vf::Offloads::from_bits_retain(offered).contains(vf::Offloads::TSO4));
}

#[test]
fn a_super_frame_reaches_a_vf_without_rx_gso_as_valid_segments() {
    let mut nic = vpc_nic();
    let payload = data(40_000);
    let sent = tcp_super(VF2, &payload, FIN_PSH_ACK);
    nic.send_with(0, &sent, TxFlags::TSO, MSS);
    assert_eq!(nic.tx_status(0, 0), Some(TxStatus::Ok as u16));
    let got = drain(&mut nic, 2);
    assert_eq!(got.len(), 40_000usize.div_ceil(usize::from(MSS)));
    let mut joined = Vec::new();
    for (i, (seg, flags, _)) in got.iter().enumerate() {
        assert_eq!(*flags, RxFlags::DONE | RxFlags::CSUM_VALID);
        // F12: rewritten to the receiver's MAC from its subnet gateway's.
        assert_eq!(&seg[0..6], &MAC2);
        assert_eq!(&seg[6..12], &GW2_MAC);
        assert!(seg.len() <= shared_regs::VF_MAX_FRAME);
        let fin = seg[14 + 20 + 13] & 0x01 != 0;
        assert_eq!(fin, i == got.len() - 1, "FIN only on the last segment");
        joined.extend(tcp_payload(seg));
    }
    assert_eq!(joined, payload);
    let (tx, rx) = (nic.counters(0), nic.counters(2));
    assert_eq!(tx.get(Counter::TxPackets), 1);
    assert_eq!(tx.get(Counter::TxBytes), sent.len() as u64);
    assert_eq!(rx.get(Counter::RxPackets), got.len() as u64);
    assert_eq!(rx.drops(), 0);
}

#[test]
fn a_super_frame_goes_whole_with_the_headers_the_pipeline_judged() {
    // A VM rewrites its source address once the device has read (and the pipeline judged)
    // the first segment's headers: what goes whole must still be what was judged.
    let mut nic = vpc_nic();
    reattach_with_rx_gso(&mut nic, 2);
    let payload = data(30_000);
    let sent = tcp_super(VF2, &payload, FIN_PSH_ACK);
    let src_ip = 0x10_0000 + 14 + 12;
    // Reads covering it: the descriptor's header fetch (parse), then the first segment's.
    nic.platform.tamper = Some(Tamper {
        func: Function::Vf(0),
        iova: src_ip,
        bytes: vec![10, 0, 2, 99],
        after: 2,
    });
    nic.send_with(0, &sent, TxFlags::TSO, MSS);
    let got = drain(&mut nic, 2);
    assert!(nic.platform.tamper.is_none(), "the buffer was rewritten");
    assert_eq!(got.len(), 1);
    let (frame, flags, _) = &got[0];
    assert!(flags.contains(RxFlags::GSO_TCP4));
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert_eq!(ip.src_addr(), VF0, "a source the pipeline never saw");
    assert_eq!(tcp_payload(frame), payload);
    // FIN and PSH, cleared in the first segment, are the super-frame's again.
    assert_eq!(frame[14 + 20 + 13], FIN_PSH_ACK);
}

#[test]
fn a_batch_longer_than_the_firmware_acts_on_loses_no_segment() {
    // A NIC configured with a 128-frame batch: the firmware carries out 64 verdicts a
    // round, so no round may load more segments than that. 100 segments of 200 bytes to a
    // remote host: the uplink queues them all.
    let mut nic = FakeNic::new(Sizes {
        batch: 128,
        ..Sizes::default()
    });
    crate::testing::vpc::program(&mut nic);
    crate::testing::vpc::program_uplink(&mut nic);
    let remote = Ipv4Addr::new(10, 0, 2, 30);
    let payload = data(20_000);
    nic.send_with(
        0,
        &tcp_super(remote, &payload, FIN_PSH_ACK),
        TxFlags::TSO,
        200,
    );
    let sent: Vec<Vec<u8>> = std::mem::take(&mut nic.platform.uplink_out);
    let joined: Vec<u8> = sent
        .iter()
        .flat_map(|f| tcp_payload(tests_uplink::outer(f).2))
        .collect();
    assert_eq!(sent.len(), 100);
    assert_eq!(joined, payload);
    assert_eq!(nic.tx_status(0, 0), Some(TxStatus::Ok as u16));
}

#[test]
fn a_super_frame_whose_buffer_faults_half_way_is_the_senders_dma_error() {
    use shared_regs::desc::TxDesc;
    use zerocopy::{FromBytes, IntoBytes};
    let mut nic = vpc_nic();
    reattach_with_rx_gso(&mut nic, 2);
    let sent = tcp_super(VF2, &data(30_000), FIN_PSH_ACK);
    nic.post_with(0, &sent, TxFlags::TSO, MSS);
    // Move the frame to the end of VF 0's DMA space, which it overruns by 10 KB: the
    // first segment reads fine, the whole copy faults part-way.
    let at = (DMA_SPACE - 20_000) as u64;
    let f = Function::Vf(0);
    nic.platform.dma_write(f, at, &sent[..20_000]).unwrap();
    let mut raw = [0u8; 16];
    nic.platform.dma_read(f, 0, &mut raw).unwrap();
    let mut d = TxDesc::read_from_bytes(&raw).unwrap();
    d.addr.set(at);
    nic.platform.dma_write(f, 0, d.as_bytes()).unwrap();
    nic.poll();
    assert_eq!(nic.tx_status(0, 0), Some(TxStatus::DmaError as u16));
    assert_eq!(nic.counters(0).get(Counter::DropDmaError), 1);
    assert_eq!(nic.counters(2).drops(), 0, "the receiver did nothing wrong");
    assert_eq!(nic.counters(2).get(Counter::RxPackets), 0);
    assert!(nic.recv_with(2).is_none());
    // The VF goes on: its next frame is delivered.
    nic.send_with(0, &tcp_super(VF2, &data(100), 0x18), TxFlags::CSUM, 0);
    assert_eq!(tcp_payload(&nic.recv_with(2).unwrap().0), data(100));
}

#[test]
fn a_super_frame_goes_whole_to_a_vf_that_takes_them() {
    let mut cut = vpc_nic();
    let mut whole = vpc_nic();
    reattach_with_rx_gso(&mut whole, 2);
    let payload = data(60_000);
    let sent = tcp_super(VF2, &payload, FIN_PSH_ACK);
    cut.send_with(0, &sent, TxFlags::TSO, MSS);
    whole.send_with(0, &sent, TxFlags::TSO, MSS);
    let segments = drain(&mut cut, 2);
    let got = drain(&mut whole, 2);
    assert_eq!(got.len(), 1);
    let (frame, flags, mss) = &got[0];
    assert_eq!(
        *flags,
        RxFlags::DONE | RxFlags::CSUM_VALID | RxFlags::GSO_TCP4
    );
    assert_eq!(*mss, MSS);
    assert_eq!(frame.len(), sent.len());
    assert_eq!(tcp_payload(frame), payload);
    // The same Ethernet rewrite as each segment, the same IPv4 and TCP headers as sent
    // but for the checksums.
    assert_eq!(&frame[..14], &segments[0].0[..14]);
    let mut expect = sent.clone();
    expect[..14].copy_from_slice(&frame[..14]);
    for at in [24, 25, 50, 51] {
        expect[at] = frame[at];
    }
    assert_eq!(frame, &expect);
    assert_eq!(whole.tx_status(0, 0), Some(TxStatus::Ok as u16));
    assert_eq!(whole.counters(2).get(Counter::RxPackets), 1);
    assert_eq!(whole.counters(2).drops(), 0);
    // A small super-frame, one segment long, is a plain frame with its checksum done.
    whole.send_with(0, &tcp_super(VF2, &data(100), 0x18), TxFlags::TSO, MSS);
    let (small, flags, _) = whole.recv_with(2).unwrap();
    assert_eq!(flags, RxFlags::DONE | RxFlags::CSUM_VALID);
    assert_eq!(tcp_payload(&small), data(100));
}

#[test]
fn a_small_mss_spans_batches_and_what_follows_waits_its_turn() {
    // To a remote host: the uplink takes every segment, where a VF's ring holds 15.
    let mut nic = tests_uplink::nic();
    let remote = Ipv4Addr::new(10, 0, 2, 30);
    let payload = data(60_000);
    // 112 segments: more than a batch holds.
    nic.post_with(0, &tcp_super(remote, &payload, 0x18), TxFlags::TSO, 536);
    nic.post_with(0, &tcp_super(remote, b"after", 0x18), TxFlags::CSUM, 0);
    nic.poll();
    let out = std::mem::take(&mut nic.platform.uplink_out);
    assert_eq!(out.len(), 60_000usize.div_ceil(536) + 1);
    let inner: Vec<Vec<u8>> = out
        .iter()
        .map(|f| tcp_payload(tests_uplink::outer(f).2))
        .collect();
    let (last, rest) = inner.split_last().unwrap();
    assert_eq!(rest.concat(), payload);
    assert_eq!(last, b"after");
    assert_eq!(nic.tx_status(0, 0), Some(TxStatus::Ok as u16));
    assert_eq!(nic.tx_status(0, 1), Some(TxStatus::Ok as u16));
    assert_eq!(nic.counters(0).get(Counter::TxPackets), 2);
}

#[test]
fn checksum_offload_fills_udp_and_tcp_and_marks_them_valid() {
    let mut nic = vpc_nic();
    let mut udp_frame = ethernet(
        GW1_MAC,
        MAC0,
        0x0800,
        &ipv4(VF0, VF2, IpProtocol::Udp, 64, &udp(1000, 2000, &data(999))),
    );
    udp_frame[14 + 20 + 6] = 0x12;
    nic.send_with(0, &udp_frame, TxFlags::CSUM, 0);
    let (got, flags, _) = nic.recv_with(2).unwrap();
    assert_eq!(flags, RxFlags::DONE | RxFlags::CSUM_VALID);
    let ip = Ipv4Packet::new_checked(&got[14..]).unwrap();
    let u = UdpPacket::new_checked(ip.payload()).unwrap();
    let (s, d) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    assert!(u.verify_checksum(&s, &d));
    // Without the flag the bytes go as they are and nothing is claimed.
    nic.send(0, &udp_frame);
    let (got, flags, _) = nic.recv_with(2).unwrap();
    assert_eq!(flags, RxFlags::DONE);
    assert_eq!(got[14 + 20 + 6], 0x12);
}

#[test]
fn bad_offload_descriptors_are_refused_and_counted() {
    let mut nic = vpc_nic();
    let frame = tcp_super(VF2, &data(20_000), 0x10);
    // Not TCP.
    let mut not_tcp = frame.clone();
    not_tcp[14 + 9] = 17;
    nic.send_with(0, &not_tcp, TxFlags::TSO, MSS);
    assert_eq!(nic.tx_status(0, 0), Some(TxStatus::BadDescriptor as u16));
    // mss 0, and one below the least a TCP sends: a descriptor may not make the device cut
    // thousands of segments (1 byte each would be 20,000 here).
    nic.send_with(0, &frame, TxFlags::TSO, 0);
    assert_eq!(nic.tx_status(0, 1), Some(TxStatus::BadDescriptor as u16));
    nic.send_with(0, &frame, TxFlags::TSO, MIN_TSO_MSS - 1);
    assert_eq!(nic.tx_status(0, 2), Some(TxStatus::BadDescriptor as u16));
    assert_eq!(nic.counters(0).get(Counter::DropMalformed), 3);
    // Segments longer than a VF frame (F13).
    nic.send_with(0, &frame, TxFlags::TSO, 9001);
    assert_eq!(nic.tx_status(0, 3), Some(TxStatus::BadDescriptor as u16));
    // A frame longer than a VF frame without TSO, checksum offload or not.
    nic.send_with(0, &frame, TxFlags::CSUM, 0);
    assert_eq!(nic.tx_status(0, 4), Some(TxStatus::BadDescriptor as u16));
    assert_eq!(nic.counters(0).get(Counter::DropOversize), 2);
    assert!(nic.recv(2).is_none());
    // The least mss is taken.
    nic.send_with(
        0,
        &tcp_super(VF2, &data(500), 0x10),
        TxFlags::TSO,
        MIN_TSO_MSS,
    );
    assert_eq!(nic.tx_status(0, 5), Some(TxStatus::Ok as u16));
}

#[test]
fn f14_segments_to_a_remote_host_are_each_encapsulated() {
    let mut nic = tests_uplink::nic();
    let payload = data(30_000);
    let sent = tcp_super(Ipv4Addr::new(10, 0, 2, 30), &payload, 0x18);
    nic.send_with(0, &sent, TxFlags::TSO, MSS);
    let out = std::mem::take(&mut nic.platform.uplink_out);
    assert_eq!(out.len(), 30_000usize.div_ceil(usize::from(MSS)));
    let mut joined = Vec::new();
    for f in &out {
        let (_, _, inner) = tests_uplink::outer(f);
        assert!(inner.len() <= shared_regs::VF_MAX_FRAME);
        joined.extend(tcp_payload(inner));
    }
    assert_eq!(joined, payload);
}

#[test]
fn f13_segments_to_a_gateway_fit_1500_or_get_frag_needed() {
    let mut nic = tests_uplink::nic();
    let internet = Ipv4Addr::new(198, 51, 100, 7);
    // The VM's stack learned the path's MSS (1460 less the timestamps): every segment
    // fits the gateway's 1500.
    let payload = data(20_000);
    nic.send_with(0, &tcp_super(internet, &payload, 0x18), TxFlags::TSO, 1448);
    let out = std::mem::take(&mut nic.platform.uplink_out);
    assert_eq!(out.len(), 20_000usize.div_ceil(1448));
    let mut joined = Vec::new();
    for f in &out {
        let (_, _, inner) = tests_uplink::outer(f);
        assert!(inner.len() - 14 <= 1500);
        joined.extend(tcp_payload(inner));
    }
    assert_eq!(joined, payload);
    // Segments of the VF's MTU toward the gateway carry DF: each gets the subnet
    // gateway's "fragmentation needed" (F13), as a plain frame of that size would.
    nic.send_with(0, &tcp_super(internet, &payload, 0x18), TxFlags::TSO, MSS);
    assert!(nic.platform.uplink_out.is_empty());
    let replies = drain(&mut nic, 0);
    assert_eq!(replies.len(), 20_000usize.div_ceil(usize::from(MSS)));
    for (r, flags, _) in &replies {
        assert_eq!(*flags, RxFlags::DONE, "an ICMP reply claims no offload");
        let ip = Ipv4Packet::new_checked(&r[14..]).unwrap();
        assert_eq!(ip.next_header(), IpProtocol::Icmp);
        assert_eq!(&ip.payload()[..2], &[3, 4]);
        assert_eq!(u16::from_be_bytes([ip.payload()[6], ip.payload()[7]]), 1500);
    }
}

#[test]
fn a_super_frame_of_one_segment_gets_a_segments_headers() {
    // The super-frame's payload is what its buffer holds after the headers, whatever its
    // IPv4 total length says (the fuzzer's find: one segment long, it went as a plain frame,
    // cut to the IPv4 length or dropped as malformed, where a longer one is cut right).
    let payload = data(1000);
    for total in [0u16, 20 + 32 + 500, 20 + 32 + 1000 + 3, u16::MAX] {
        let mut nic = vpc_nic();
        let mut sent = tcp_super(VF2, &payload, 0x18);
        sent[16..18].copy_from_slice(&total.to_be_bytes());
        // The header checksum is the device's to fill too, as for every segment.
        sent[24..26].copy_from_slice(&[0, 0]);
        nic.send_with(0, &sent, TxFlags::TSO, MSS);
        assert_eq!(nic.tx_status(0, 0), Some(TxStatus::Ok as u16));
        let (got, flags, _) = nic.recv_with(2).expect("the one segment");
        assert_eq!(flags, RxFlags::DONE | RxFlags::CSUM_VALID);
        assert_eq!(tcp_payload(&got), payload, "IPv4 total length {total}");
    }
}

/// TCP segment `i` of a stream from the remote instance 10.0.2.30 to VF 0, as its host's
/// NIC puts it on the wire in VXLAN: `MSS` bytes of payload (fewer for `short`), DF set,
/// both checksums good, the IPv4 identification counting up.
fn remote_segment(port: u16, i: u32, payload: &[u8], flags: u8) -> Vec<u8> {
    use crate::testing::vpc::{REMOTE_HOST, REMOTE_MAC, UPLINK, UPLINK_MAC};
    let mut tcp = vec![0u8; 32];
    tcp[0..2].copy_from_slice(&port.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    let seq = 5_000u32.wrapping_add(i * u32::from(MSS));
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&77u32.to_be_bytes());
    tcp[12] = 8 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
    tcp[20..24].copy_from_slice(&[1, 1, 8, 10]);
    tcp.extend_from_slice(payload);
    let mut ip = ipv4(Ipv4Addr::new(10, 0, 2, 30), VF0, IpProtocol::Tcp, 63, &tcp);
    {
        let mut p = Ipv4Packet::new_checked(&mut ip[..]).unwrap();
        p.set_ident(100 + i as u16);
        p.set_dont_frag(true);
        p.fill_checksum();
        let mut t = TcpPacket::new_checked(p.payload_mut()).unwrap();
        t.fill_checksum(
            &IpAddress::Ipv4(Ipv4Addr::new(10, 0, 2, 30)),
            &IpAddress::Ipv4(VF0),
        );
    }
    let inner = ethernet(MAC0, REMOTE_MAC, 0x0800, &ip);
    vxlan_frame(
        UPLINK_MAC,
        crate::testing::vpc::NEXT_HOP_MAC,
        Ipv4Addr::from(REMOTE_HOST),
        Ipv4Addr::from(UPLINK),
        crate::testing::vpc::VNI,
        &inner,
    )
}

#[test]
fn segments_from_the_uplink_reach_a_vf_with_rx_gso_as_one_super_frame() {
    let payload = data(4 * usize::from(MSS) + 123);
    let pieces: Vec<&[u8]> = payload.chunks(usize::from(MSS)).collect();
    let wire: Vec<Vec<u8>> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let last = i == pieces.len() - 1;
            remote_segment(40000, i as u32, p, if last { 0x18 } else { 0x10 })
        })
        .collect();
    let mut apart = tests_uplink::nic();
    let mut joined = tests_uplink::nic();
    reattach_with_rx_gso(&mut joined, 0);
    for nic in [&mut apart, &mut joined] {
        nic.platform.uplink_in.extend(wire.iter().cloned());
        nic.poll();
    }
    let segments = drain(&mut apart, 0);
    assert_eq!(segments.len(), wire.len(), "without RX_GSO each goes alone");
    let got = drain(&mut joined, 0);
    assert_eq!(got.len(), 1);
    let (frame, flags, mss) = &got[0];
    assert_eq!(
        *flags,
        RxFlags::DONE | RxFlags::CSUM_VALID | RxFlags::GSO_TCP4
    );
    assert_eq!(*mss, MSS);
    assert_eq!(tcp_payload(frame), payload);
    // The first segment as delivered alone, but for the lengths and checksums; the last's
    // PSH.
    let first = &segments[0].0;
    let mut expect = first[..66].to_vec();
    for at in [16, 17, 24, 25, 47, 50, 51] {
        expect[at] = frame[at];
    }
    assert_eq!(&frame[..66], &expect[..]);
    assert_eq!(frame[47], 0x18, "ACK and the last segment's PSH");
    assert_eq!(frame.len(), 66 + payload.len());
    let rx = joined.counters(0);
    assert_eq!(rx.get(Counter::RxPackets), 1);
    assert_eq!(rx.get(Counter::RxBytes), frame.len() as u64);
    assert_eq!(rx.drops(), 0);
}

#[test]
fn coalescing_keeps_the_order_of_the_wire_and_leaves_what_does_not_follow() {
    let mut nic = tests_uplink::nic();
    reattach_with_rx_gso(&mut nic, 0);
    let full = data(usize::from(MSS));
    let mut bad = remote_segment(40000, 2, &full, 0x10);
    let n = bad.len();
    bad[n - 1] ^= 0xff; // a corrupted payload byte: the TCP checksum fails
    let wire = vec![
        remote_segment(40000, 0, &full, 0x10),
        remote_segment(40000, 1, &full, 0x10),
        remote_segment(40001, 0, &full, 0x10), // another flow between
        bad,
        remote_segment(40000, 3, &full, 0x10),
        remote_segment(40000, 4, &full, 0x10),
    ];
    nic.platform.uplink_in.extend(wire);
    nic.poll();
    let got: Vec<(usize, bool, u16)> = drain(&mut nic, 0)
        .iter()
        .map(|(f, flags, _)| {
            let port = u16::from_be_bytes([f[34], f[35]]);
            (f.len(), flags.contains(RxFlags::GSO_TCP4), port)
        })
        .collect();
    let one = 66 + usize::from(MSS);
    assert_eq!(
        got,
        vec![
            (66 + 2 * usize::from(MSS), true, 40000),
            (one, false, 40001),
            (one, false, 40000),
            (66 + 2 * usize::from(MSS), true, 40000),
        ]
    );
}

#[test]
fn a_receive_buffer_that_faults_half_way_loses_the_run_counted_once_a_segment() {
    use shared_regs::desc::RxDesc;
    use zerocopy::IntoBytes;
    let mut nic = tests_uplink::nic();
    reattach_with_rx_gso(&mut nic, 0);
    let full = data(usize::from(MSS));
    // The first RX buffer ends in the first segment's room: the second's payload faults.
    let mut d = RxDesc::default();
    d.addr.set((DMA_SPACE - 9100) as u64);
    d.buf_len.set(u16::MAX);
    nic.platform
        .dma_write(Function::Vf(0), RX_RING_IOVA, d.as_bytes())
        .unwrap();
    nic.platform
        .uplink_in
        .extend((0..3).map(|i| remote_segment(40000, i, &full, 0x10)));
    nic.poll();
    assert_eq!(drain(&mut nic, 0).len(), 0);
    assert_eq!(nic.counters(0).get(Counter::DropDmaError), 3);
    assert_eq!(nic.counters(0).drops(), 3);
}
