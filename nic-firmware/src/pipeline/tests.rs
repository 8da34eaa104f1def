//! Frame-level tests of the pipeline through the real rings and admin queue of a
//! [`FakeNic`]. Each is named after the rule of spec/vpc-forwarding.md it checks.
use crate::testing::*;
use core::net::Ipv4Addr;
use shared_regs::stats::Counter;
use smoltcp::wire::{ArpOperation, IpProtocol};

use crate::testing::vpc::{GW1_MAC, GW2_MAC, MAC0, MAC1, MAC2};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub(crate) use crate::testing::vpc::nic as vpc_nic;

/// Asserts that exactly one drop counter of `function` moved, and that it is `reason`.
fn assert_one_drop(nic: &mut FakeNic, function: u16, reason: Counter) {
    let c = nic.counters(function);
    assert_eq!(c.get(reason), 1, "{} of function {function}", reason.name());
    assert_eq!(c.drops(), 1, "drops of function {function}: {c:?}");
}

fn assert_nothing_received(nic: &mut FakeNic) {
    for vf in 0..3 {
        assert_eq!(nic.recv(vf), None, "VF{vf} received a frame");
    }
}

/// Ethernet dst, src; ARP op, sha, spa, tha, tpa.
type ArpFields = ([u8; 6], [u8; 6], u16, [u8; 6], [u8; 4], [u8; 6], [u8; 4]);

fn arp_reply_fields(frame: &[u8]) -> ArpFields {
    let a = &frame[14..42];
    (
        frame[0..6].try_into().unwrap(),
        frame[6..12].try_into().unwrap(),
        u16::from_be_bytes([a[6], a[7]]),
        a[8..14].try_into().unwrap(),
        a[14..18].try_into().unwrap(),
        a[18..24].try_into().unwrap(),
        a[24..28].try_into().unwrap(),
    )
}

#[test]
fn f03a_arp_for_gateway_is_answered_with_gateway_mac() {
    let mut nic = vpc_nic();
    nic.send(0, &arp_request(MAC0, ip("10.0.1.10"), ip("10.0.1.1")));
    let reply = nic.recv(0).expect("ARP reply");
    assert_eq!(reply.len(), 60);
    let (dst, src, op, sha, spa, tha, tpa) = arp_reply_fields(&reply);
    assert_eq!((dst, src, op), (MAC0, GW1_MAC, 2));
    assert_eq!((sha, spa), (GW1_MAC, [10, 0, 1, 1]));
    assert_eq!((tha, tpa), (MAC0, [10, 0, 1, 10]));
    assert!(reply[42..].iter().all(|&b| b == 0));
    assert_eq!(nic.counters(0).get(Counter::Replies), 1);
    assert_nothing_received(&mut nic);
}

#[test]
fn f03b_arp_for_same_subnet_instance_gets_its_mac() {
    let mut nic = vpc_nic();
    nic.send(0, &arp_request(MAC0, ip("10.0.1.10"), ip("10.0.1.11")));
    let (_, src, op, sha, spa, ..) = arp_reply_fields(&nic.recv(0).expect("ARP reply"));
    assert_eq!((src, op, sha, spa), (MAC1, 2, MAC1, [10, 0, 1, 11]));
    // No ARP reaches the instance asked about.
    assert_eq!(nic.recv(1), None);
}

#[test]
fn f03c_arp_for_unassigned_address_gets_no_reply() {
    let mut nic = vpc_nic();
    nic.send(0, &arp_request(MAC0, ip("10.0.1.10"), ip("10.0.1.99")));
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::ArpUnanswered);
}

#[test]
fn f03c_arp_for_reserved_address_gets_no_reply() {
    let mut nic = vpc_nic();
    nic.send(0, &arp_request(MAC0, ip("10.0.1.10"), ip("10.0.1.2")));
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::ArpUnanswered);
}

#[test]
fn f03d_arp_outside_subnet_is_answered_with_gateway_mac() {
    let mut nic = vpc_nic();
    nic.send(
        0,
        &arp_request(MAC0, ip("10.0.1.10"), ip("169.254.169.254")),
    );
    let (_, _, _, sha, spa, ..) = arp_reply_fields(&nic.recv(0).expect("ARP reply"));
    assert_eq!((sha, spa), (GW1_MAC, [169, 254, 169, 254]));
}

#[test]
fn f03e_arp_for_own_address_gets_no_reply() {
    let mut nic = vpc_nic();
    // An RFC 5227 probe: sender address 0.0.0.0, target the VF's own address.
    nic.send(0, &arp_request(MAC0, ip("0.0.0.0"), ip("10.0.1.10")));
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::ArpIgnored);
}

#[test]
fn f03_arp_reply_from_vm_is_consumed() {
    let mut nic = vpc_nic();
    let payload = arp(
        ArpOperation::Reply,
        MAC0,
        ip("10.0.1.10"),
        MAC1,
        ip("10.0.1.11"),
    );
    nic.send(0, &ethernet(MAC1, MAC0, ETHERTYPE_ARP, &payload));
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::ArpIgnored);
}

#[test]
fn f03_malformed_arp_is_dropped() {
    let mut nic = vpc_nic();
    let mut frame = arp_request(MAC0, ip("10.0.1.10"), ip("10.0.1.1"));
    frame[14 + 4] = 8; // hlen
    nic.send(0, &frame);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropMalformed);
}

#[test]
fn f01_ipv6_frame_is_dropped() {
    let mut nic = vpc_nic();
    nic.send(0, &ethernet(MAC1, MAC0, ETHERTYPE_IPV6, &[0x60; 60]));
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropEthertype);
}

#[test]
fn f02_frame_with_foreign_source_mac_is_dropped() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        MAC1,
        MAC2,
        ip("10.0.1.10"),
        ip("10.0.1.11"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"x"),
    );
    nic.send(0, &f);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropSrcMac);
}

#[test]
fn f04_bad_header_checksum_is_dropped() {
    let mut nic = vpc_nic();
    let mut f = ipv4_frame(
        MAC1,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.1.11"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"x"),
    );
    f[14 + 10] ^= 0xff;
    nic.send(0, &f);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropMalformed);
}

#[test]
fn f04_ethernet_padding_is_removed() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        MAC1,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.1.11"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"x"),
    );
    let mut padded = f.clone();
    padded.resize(60, 0);
    nic.send(0, &padded);
    assert_eq!(nic.recv(1).expect("delivered").len(), f.len());
}

#[test]
fn f05_spoofed_source_ip_is_dropped() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        MAC1,
        MAC0,
        ip("10.0.1.99"),
        ip("10.0.1.11"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"x"),
    );
    nic.send(0, &f);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropSrcIp);
}

#[test]
fn f06_broadcast_is_dropped() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        BROADCAST,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.1.255"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"x"),
    );
    nic.send(0, &f);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropBcastMcast);
}

#[test]
fn f07_unknown_destination_mac_is_dropped() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        [2, 9, 9, 9, 9, 9],
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.1.11"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"x"),
    );
    nic.send(0, &f);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropDstMac);
}

#[test]
fn f11_f12_same_subnet_delivery_keeps_ttl_and_bytes() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        MAC1,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.1.11"),
        IpProtocol::Udp,
        1,
        &udp(5000, 6000, b"hello"),
    );
    nic.send(0, &f);
    let got = nic.recv(1).expect("delivered to VF1");
    assert_eq!(&got[0..6], &MAC1);
    assert_eq!(&got[6..12], &MAC0);
    assert_eq!(&got[12..], &f[12..]);
    assert_eq!(got[14 + 8], 1, "TTL");
    let c = nic.counters(1);
    assert_eq!(
        (c.get(Counter::RxPackets), c.get(Counter::RxBytes)),
        (1, f.len() as u64)
    );
}

#[test]
fn f08_f12_cross_subnet_delivery_uses_receiving_gateway_mac() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        GW1_MAC,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.2.20"),
        IpProtocol::Icmp,
        1,
        &icmp_echo_request(7, 1, b"ping"),
    );
    nic.send(0, &f);
    let got = nic.recv(2).expect("delivered to VF2");
    assert_eq!(&got[0..6], &MAC2);
    assert_eq!(&got[6..12], &GW2_MAC);
    assert_eq!(&got[12..], &f[12..]);
}

#[test]
fn f08_no_mapping_is_dropped() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        GW1_MAC,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.2.99"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"x"),
    );
    nic.send(0, &f);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropNoMapping);
}

#[test]
fn f08_no_route_is_dropped() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        GW1_MAC,
        MAC0,
        ip("10.0.1.10"),
        ip("8.8.8.8"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"x"),
    );
    nic.send(0, &f);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropNoRoute);
}

#[test]
fn f10_ping_to_own_gateway_is_answered() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        GW1_MAC,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.1.1"),
        IpProtocol::Icmp,
        5,
        &icmp_echo_request(0x1234, 9, b"abcdef"),
    );
    nic.send(0, &f);
    let r = nic.recv(0).expect("echo reply");
    assert_eq!((&r[0..6], &r[6..12]), (&MAC0[..], &GW1_MAC[..]));
    let ipv4 = smoltcp::wire::Ipv4Packet::new_checked(&r[14..]).unwrap();
    assert!(ipv4.verify_checksum());
    assert_eq!(ipv4.src_addr(), ip("10.0.1.1"));
    assert_eq!(ipv4.dst_addr(), ip("10.0.1.10"));
    assert_eq!(ipv4.hop_limit(), 64);
    let icmp = smoltcp::wire::Icmpv4Packet::new_checked(ipv4.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.msg_type(), smoltcp::wire::Icmpv4Message::EchoReply);
    assert_eq!((icmp.echo_ident(), icmp.echo_seq_no()), (0x1234, 9));
    assert_eq!(icmp.data(), b"abcdef");
}

#[test]
fn f10_ping_to_other_subnets_gateway_is_dropped() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        GW1_MAC,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.2.1"),
        IpProtocol::Icmp,
        64,
        &icmp_echo_request(1, 1, b""),
    );
    nic.send(0, &f);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropForeignGateway);
}

#[test]
fn f10_udp_to_gateway_is_dropped() {
    let mut nic = vpc_nic();
    let f = ipv4_frame(
        GW1_MAC,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.1.1"),
        IpProtocol::Udp,
        64,
        &udp(1, 53, b"q"),
    );
    nic.send(0, &f);
    assert_nothing_received(&mut nic);
    assert_one_drop(&mut nic, 0, Counter::DropToGateway);
}
