//! Frame-level tests of routing targets, VXLAN both ways, MTU, per-VF addresses and flags,
//! and TRACE, through the real rings, uplink and admin queue of a [`FakeNic`].
pub(crate) use crate::testing::vpc::{nic_with_uplink as nic, outer};
use crate::testing::*;
use crate::Platform;
use core::net::Ipv4Addr;
use shared_regs::admin::{AdminCmd, Opcode, Status};
use shared_regs::entry::*;
use shared_regs::stats::Counter;
use shared_regs::trace::{StepKind, TraceHeader, TraceStep, TraceVerdict};
use shared_regs::Le16;
use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet};
use zerocopy::FromBytes;

use crate::testing::vpc::{
    GW1_MAC, IGW_HOST, IGW_MAC, MAC0, NEXT_HOP_MAC, REMOTE_HOST, REMOTE_MAC, UPLINK, UPLINK_MAC,
    VNI,
};
const UPLINK_FN: u16 = UPLINK_FUNCTION;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub(super) fn routed(dst: &str, payload_len: usize) -> std::vec::Vec<u8> {
    ipv4_frame(
        GW1_MAC,
        MAC0,
        ip("10.0.1.10"),
        ip(dst),
        IpProtocol::Icmp,
        64,
        &icmp_echo_request(9, 1, &std::vec![0x5a; payload_len]),
    )
}

#[test]
fn f14_remote_instance_is_reached_over_vxlan() {
    let mut nic = nic();
    let sent = routed("10.0.2.30", 32);
    nic.send(0, &sent);
    assert_eq!(nic.platform.uplink_out.len(), 1);
    let f = nic.platform.uplink_out.remove(0);
    let (dst, vni, inner) = outer(&f);
    assert_eq!((dst, vni), (REMOTE_HOST, VNI));
    assert_eq!(&inner[0..6], &REMOTE_MAC);
    assert_eq!(&inner[6..12], &MAC0);
    assert_eq!(&inner[12..], &sent[12..], "inner IPv4 unchanged (F11)");
    assert_eq!(nic.counters(UPLINK_FN).get(Counter::TxPackets), 1);
}

#[test]
fn f08_gateway_target_is_reached_over_vxlan_with_the_gateway_mac() {
    let mut nic = nic();
    nic.send(0, &routed("198.51.100.1", 32));
    let f = nic.platform.uplink_out.remove(0);
    let (dst, vni, inner) = outer(&f);
    assert_eq!((dst, vni), (IGW_HOST, VNI));
    assert_eq!(&inner[0..6], &IGW_MAC);
}

#[test]
fn f08_blackhole_route_drops_silently() {
    let mut nic = nic();
    nic.send(0, &routed("10.0.8.5", 8));
    assert!(nic.platform.uplink_out.is_empty());
    assert_eq!(nic.recv(0), None);
    assert_eq!(nic.counters(0).get(Counter::DropBlackhole), 1);
    assert_eq!(nic.counters(0).drops(), 1);
}

#[test]
fn f13_oversize_with_df_to_gateway_gets_frag_needed() {
    let mut nic = nic();
    let sent = routed("198.51.100.1", 2972); // IPv4 total 3000
    nic.send(0, &sent);
    assert!(nic.platform.uplink_out.is_empty());
    let r = nic.recv(0).expect("ICMP frag-needed");
    assert_eq!((&r[0..6], &r[6..12]), (&MAC0[..], &GW1_MAC[..]));
    let ip4 = Ipv4Packet::new_checked(&r[14..]).unwrap();
    assert!(ip4.verify_checksum());
    assert_eq!(ip4.src_addr(), ip("10.0.1.1"));
    assert_eq!(ip4.dst_addr(), ip("10.0.1.10"));
    let icmp = Icmpv4Packet::new_checked(ip4.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.msg_type(), Icmpv4Message::DstUnreachable);
    assert_eq!(icmp.msg_code(), 4);
    assert_eq!(&ip4.payload()[6..8], &1500u16.to_be_bytes(), "next-hop MTU");
    assert_eq!(
        &ip4.payload()[8..36],
        &sent[14..42],
        "quotes header + 8 bytes"
    );
}

#[test]
fn f13_oversize_without_df_is_fragmented() {
    let mut nic = nic();
    let mut sent = routed("198.51.100.1", 2972);
    clear_dont_frag(&mut sent);
    nic.send(0, &sent);
    let frags = core::mem::take(&mut nic.platform.uplink_out);
    assert_eq!(frags.len(), 3);
    let mut payload = std::vec::Vec::new();
    for (i, f) in frags.iter().enumerate() {
        let (dst, _, inner) = outer(f);
        assert_eq!(dst, IGW_HOST);
        let p = Ipv4Packet::new_checked(&inner[14..]).unwrap();
        assert!(p.verify_checksum());
        assert!(usize::from(p.total_len()) <= 1500);
        assert_eq!(usize::from(p.frag_offset()), payload.len());
        assert_eq!(p.more_frags(), i < 2);
        payload.extend_from_slice(p.payload());
    }
    assert_eq!(
        &payload[..],
        &sent[34..],
        "fragments reassemble to the original"
    );
}

fn from_remote(outer_src: u32, vni: u32, src: &str, dst: &str) -> std::vec::Vec<u8> {
    let inner = ipv4_frame(
        MAC0,
        REMOTE_MAC,
        ip(src),
        ip(dst),
        IpProtocol::Udp,
        7,
        &udp(1000, 2000, b"over the underlay"),
    );
    vxlan_frame(
        UPLINK_MAC,
        NEXT_HOP_MAC,
        Ipv4Addr::from(outer_src),
        Ipv4Addr::from(UPLINK),
        vni,
        &inner,
    )
}

#[test]
fn f15_vxlan_from_the_mapped_host_is_delivered() {
    let mut nic = nic();
    let f = from_remote(REMOTE_HOST, VNI, "10.0.2.30", "10.0.1.10");
    nic.platform.uplink_in.push_back(f.clone());
    nic.poll();
    let got = nic.recv(0).expect("delivered to VF0");
    assert_eq!(&got[0..6], &MAC0);
    assert_eq!(&got[6..12], &GW1_MAC, "other subnet: the gateway MAC (F12)");
    assert_eq!(
        &got[12..],
        &f[50 + 12..],
        "inner packet unchanged, TTL 7 kept"
    );
}

#[test]
fn f15_vxlan_from_a_gateway_is_delivered() {
    let mut nic = nic();
    nic.platform
        .uplink_in
        .push_back(from_remote(IGW_HOST, VNI, "198.51.100.1", "10.0.1.10"));
    nic.poll();
    assert!(nic.recv(0).is_some());
}

#[test]
fn f15_unknown_vni_is_foreign() {
    let mut nic = nic();
    nic.platform
        .uplink_in
        .push_back(from_remote(REMOTE_HOST, 999, "10.0.2.30", "10.0.1.10"));
    nic.poll();
    assert_eq!(nic.recv(0), None);
    assert_eq!(nic.counters(UPLINK_FN).get(Counter::DropUplinkForeign), 1);
    assert_eq!(nic.counters(UPLINK_FN).drops(), 1);
}

#[test]
fn f15_a_udp_length_that_disagrees_with_the_datagram_is_foreign() {
    // Longer than the IPv4 packet carries, or too short for the VXLAN header: not a VXLAN
    // datagram, whatever the bytes after it say.
    for udp_len in [0x7FFFu16, 15] {
        let mut nic = nic();
        let mut f = from_remote(REMOTE_HOST, VNI, "10.0.2.30", "10.0.1.10");
        f[38..40].copy_from_slice(&udp_len.to_be_bytes());
        nic.platform.uplink_in.push_back(f);
        nic.poll();
        assert_eq!(nic.recv(0), None);
        assert_eq!(nic.counters(UPLINK_FN).get(Counter::DropUplinkForeign), 1);
        assert_eq!(nic.counters(UPLINK_FN).drops(), 1);
    }
}

#[test]
fn f15_inner_source_from_the_wrong_host_is_spoofed() {
    let mut nic = nic();
    nic.platform
        .uplink_in
        .push_back(from_remote(0xC000_0263, VNI, "10.0.2.30", "10.0.1.10"));
    nic.poll();
    assert_eq!(nic.recv(0), None);
    assert_eq!(nic.counters(UPLINK_FN).get(Counter::DropDecapSpoof), 1);
}

#[test]
fn f15_unmapped_inner_destination_is_dropped() {
    let mut nic = nic();
    nic.platform
        .uplink_in
        .push_back(from_remote(REMOTE_HOST, VNI, "10.0.2.30", "10.0.1.99"));
    nic.poll();
    assert_eq!(nic.counters(UPLINK_FN).get(Counter::DropNoMapping), 1);
}

#[test]
fn f15_a_middlebox_with_its_check_off_takes_traffic_for_others_from_another_host() {
    // An `eni:` route (F8) or a frame to its MAC (F7) on another host sends the packet here
    // with the appliance's MAC and a destination that is not the appliance's.
    let mut nic = nic();
    let f = from_remote(REMOTE_HOST, VNI, "10.0.2.30", "198.51.100.7");
    nic.platform.uplink_in.push_back(f.clone());
    nic.poll();
    assert_eq!(nic.recv(0), None, "check on: not a middlebox");
    assert_eq!(nic.counters(UPLINK_FN).get(Counter::DropNoMapping), 1);

    let flags = VfFlagsEntry {
        vf: Le16::new(0),
        flags: Le16::new(0),
    };
    nic.admin(Opcode::VfFlagsSet, &flags).unwrap();
    nic.platform.uplink_in.push_back(f.clone());
    nic.poll();
    let got = nic.recv(0).expect("delivered to the middlebox VF0");
    assert_eq!(&got[0..6], &MAC0);
    assert_eq!(&got[12..], &f[50 + 12..], "inner packet unchanged");

    // F15's other checks still hold: a spoofed inner source, another VPC's VNI.
    let spoofed = from_remote(0xC000_0263, VNI, "10.0.2.30", "198.51.100.7");
    nic.platform.uplink_in.push_back(spoofed);
    nic.poll();
    assert_eq!(nic.recv(0), None);
    assert_eq!(nic.counters(UPLINK_FN).get(Counter::DropDecapSpoof), 1);
    // A MAC that is no VF's: nowhere to go.
    let mut stray = from_remote(REMOTE_HOST, VNI, "10.0.2.30", "198.51.100.7");
    stray[50..56].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    nic.platform.uplink_in.push_back(stray);
    nic.poll();
    assert_eq!(nic.recv(0), None);
    assert_eq!(nic.counters(UPLINK_FN).get(Counter::DropNoMapping), 2);
}

#[test]
fn underlay_arp_for_this_host_is_answered() {
    let mut nic = nic();
    let req = arp_request(NEXT_HOP_MAC, ip("192.0.2.254"), Ipv4Addr::from(UPLINK));
    nic.platform.uplink_in.push_back(req);
    nic.poll();
    let r = nic.platform.uplink_out.remove(0);
    assert_eq!(&r[0..6], &NEXT_HOP_MAC);
    assert_eq!(&r[22..28], &UPLINK_MAC, "sha");
    assert_eq!(&r[28..32], &UPLINK.to_be_bytes(), "spa");
}

#[test]
fn f05_secondary_address_is_a_valid_source_and_destination() {
    let mut nic = nic();
    let a = VfAddrEntry {
        vf: Le16::new(0),
        ip: [10, 0, 1, 50],
        ..Default::default()
    };
    nic.admin(Opcode::VfAddrAdd, &a).unwrap();
    assert_eq!(nic.admin(Opcode::VfAddrAdd, &a), Err(Status::Exists));
    let f = ipv4_frame(
        [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0b],
        MAC0,
        ip("10.0.1.50"),
        ip("10.0.1.11"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"from a secondary"),
    );
    nic.send(0, &f);
    assert!(nic.recv(1).is_some());
    nic.admin(Opcode::VfAddrDel, &a).unwrap();
    nic.send(0, &f);
    assert_eq!(nic.recv(1), None);
    assert_eq!(nic.counters(0).get(Counter::DropSrcIp), 1);
}

#[test]
fn f05_check_off_lets_an_appliance_forward_others_traffic() {
    let mut nic = nic();
    let flags = VfFlagsEntry {
        vf: Le16::new(0),
        flags: Le16::new(0),
    };
    nic.admin(Opcode::VfFlagsSet, &flags).unwrap();
    let f = ipv4_frame(
        [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0b],
        MAC0,
        ip("10.0.1.77"),
        ip("10.0.1.11"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"forwarded"),
    );
    nic.send(0, &f);
    assert!(nic.recv(1).is_some());
}

#[test]
fn trace_reports_each_decision_and_sends_nothing() {
    let mut nic = nic();
    let frame = routed("10.0.2.20", 4);
    nic.platform
        .dma_write(crate::Function::Pf, 0x9000, &frame)
        .unwrap();
    let q = TraceQuery {
        port: Le16::new(0),
        frame_len: Le16::new(frame.len() as u16),
    };
    let mut cmd = AdminCmd::new(Opcode::Trace, &q);
    cmd.buf_addr.set(0x9000);
    cmd.buf_len.set(4096);
    let done = nic.submit(cmd);
    assert_eq!(done.completion(), Some(Ok(())));
    let mut raw = std::vec![0u8; done.result.get() as usize];
    nic.platform
        .dma_read(crate::Function::Pf, 0x9000, &mut raw)
        .unwrap();
    let (hdr, rest) = TraceHeader::read_from_prefix(&raw).unwrap();
    assert_eq!(hdr.verdict, TraceVerdict::ToVf as u8);
    assert_eq!(hdr.port.get(), 2);
    let n = usize::from(hdr.step_count);
    let steps = <[TraceStep]>::ref_from_bytes(&rest[..n * 20]).unwrap();
    let kinds: std::vec::Vec<_> = steps
        .iter()
        .map(|s| StepKind::from_u8(s.kind).unwrap())
        .collect();
    assert!(kinds.contains(&StepKind::Route), "{kinds:?}");
    assert!(kinds.contains(&StepKind::Mapping), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&StepKind::Rewrite));
    assert_eq!(
        &rest[n * 20..n * 20 + 6],
        &[0x02, 0x00, 0x0a, 0x00, 0x02, 0x14]
    );
    assert_eq!(nic.recv(2), None, "dry run: nothing delivered");
    assert_eq!(
        nic.counters(0).get(Counter::TxPackets),
        0,
        "nothing counted"
    );
}
