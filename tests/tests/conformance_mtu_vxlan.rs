//! F13 (MTU), F14 (VXLAN encapsulation) and F15 (decapsulation) of
//! spec/vpc-forwarding.md, end to end through VF rings and the uplink of the simulated NIC.
use shared_regs::stats::Counter;
use smoltcp::wire::{Icmpv4Message, IpProtocol};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use tests::frames::{ethernet, ipv4_frame, udp, vxlan_frame, ETHERTYPE_IPV6};
use tests::topo::*;
use tests::wire::{edit_ipv4, from_host, macs, Icmp, Ipv4Header, Vxlan, ETH, VXLAN_OVERHEAD};
use tests::Testbed;

/// A UDP/IPv4 frame whose IPv4 packet is `total` bytes long.
fn sized(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    total: usize,
) -> Vec<u8> {
    let payload: Vec<u8> = (0..total - 28).map(|i| i as u8).collect();
    let f = ipv4_frame(
        dst_mac,
        src_mac,
        src,
        dst,
        IpProtocol::Udp,
        64,
        &udp(4000, 5000, &payload),
    );
    assert_eq!(f.len(), ETH + total);
    f
}

/// The same frame without DF, with IPv4 identification `ident`.
fn without_df(mut f: Vec<u8>, ident: u16) -> Vec<u8> {
    edit_ipv4(&mut f, |p| {
        p.set_dont_frag(false);
        p.set_ident(ident);
    });
    f
}

/// Takes `n` frames off the uplink and checks that they are F14 frames toward `underlay`
/// whose inner packets are fragments of at most `mtu` bytes reassembling to `sent`.
fn expect_fragments(tb: &Testbed, sent: &[u8], n: usize, underlay: Ipv4Addr, mtu: usize) {
    let original = Ipv4Header::of(sent);
    let mut payload = Vec::new();
    for i in 0..n {
        let v = Vxlan::parse(&tb.recv_uplink());
        v.assert_f14(underlay, VNI_A);
        assert_eq!(macs(&v.inner).1, MAC0, "inner source MAC");
        let h = Ipv4Header::of(&v.inner);
        assert!(
            h.total_len <= mtu,
            "fragment {i}: {} > {mtu} bytes",
            h.total_len
        );
        assert!(v.outer.total_len <= h.total_len + 50);
        assert_eq!(
            (h.src, h.dst, h.protocol, h.ttl, h.ident),
            (
                original.src,
                original.dst,
                original.protocol,
                original.ttl,
                original.ident
            ),
            "fragment {i} keeps the header fields"
        );
        assert!(!h.dont_frag);
        assert_eq!(
            usize::from(h.frag_offset),
            payload.len(),
            "fragment {i} offset"
        );
        assert_eq!(h.more_frags, i + 1 < n, "fragment {i} MF");
        payload.extend_from_slice(&v.inner[ETH + h.header_len..]);
    }
    assert_eq!(
        payload,
        &sent[ETH + 20..],
        "fragments reassemble to the original"
    );
    assert_eq!(
        tb.uplink.recv(std::time::Duration::ZERO),
        None,
        "no more fragments"
    );
}

#[test]
fn f13_largest_vf_packet_is_delivered_whole() {
    let mut tb = standard();
    let f = sized(GW_WEB, MAC0, IP0, IP2, 9001);
    tb.send(0, &f);
    let got = tb.recv(2);
    assert_eq!(got.len(), 9015);
    assert_eq!(&got[12..], &f[12..]);
    // And to a remote host it fits the 9216-byte uplink in one frame.
    let f = sized(GW_WEB, MAC0, IP0, R_DB_IP, 9001);
    tb.send(0, &f);
    let v = Vxlan::parse(&tb.recv_uplink());
    v.assert_f14(HOST2, VNI_A);
    assert_eq!(&v.inner[12..], &f[12..]);
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f13_vf_packet_longer_than_9001_is_dropped() {
    let mut tb = standard();
    // The VF hands the NIC a 9016-byte frame: an IPv4 packet of 9002 bytes.
    tb.send(0, &sized(GW_WEB, MAC0, IP0, IP2, 9002));
    tb.expect_drop(vf(0), Counter::DropOversize);
}

#[test]
fn f13_uplink_inner_packet_longer_than_9001_is_dropped() {
    let mut tb = standard();
    let inner = sized(MAC0, R_WEB_MAC, R_WEB_IP, IP0, 9002);
    tb.send_uplink(&from_host(HOST2, VNI_A, &inner));
    tb.expect_drop(UPLINK, Counter::DropOversize);
    // 9001 bytes pass.
    let inner = sized(MAC0, R_WEB_MAC, R_WEB_IP, IP0, 9001);
    tb.send_uplink(&from_host(HOST2, VNI_A, &inner));
    assert_eq!(tb.recv(0), inner);
}

#[test]
fn f13_df_packet_over_1500_to_a_gateway_gets_frag_needed() {
    let mut tb = standard();
    let sent = sized(GW_WEB, MAC0, IP0, INTERNET, 1501);
    tb.send(0, &sent);
    let r = tb.recv(0);
    assert_eq!(macs(&r), (MAC0, GW_WEB), "from the gateway MAC");
    let h = Ipv4Header::of(&r);
    assert_eq!(
        (h.src, h.dst),
        (GW_WEB_IP, IP0),
        "from the subnet gateway IP"
    );
    let m = Icmp::of(&r);
    assert_eq!((m.msg_type, m.code), (Icmpv4Message::DstUnreachable, 4));
    assert_eq!(
        &m.rest_of_header[2..],
        &1500u16.to_be_bytes(),
        "next-hop MTU"
    );
    assert_eq!(
        m.data,
        &sent[ETH..ETH + 28],
        "quotes the header and 8 bytes"
    );
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f13_packet_of_1500_to_a_gateway_is_sent_whole() {
    let mut tb = standard();
    let sent = sized(GW_WEB, MAC0, IP0, INTERNET, 1500);
    tb.send(0, &sent);
    let v = Vxlan::parse(&tb.recv_uplink());
    v.assert_f14(IGW_HOST, VNI_A);
    assert_eq!(&v.inner[12..], &sent[12..]);
    tb.assert_nothing_out();
}

#[test]
fn f13_packet_over_1500_without_df_to_a_gateway_is_fragmented() {
    let mut tb = standard();
    let sent = without_df(sized(GW_WEB, MAC0, IP0, INTERNET, 4000), 0x7777);
    tb.send(0, &sent);
    expect_fragments(&tb, &sent, 3, IGW_HOST, 1500);
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f13_uplink_mtu_limits_encapsulation() {
    let mut tb = standard();
    tb.set_uplink(1400);
    let inner_mtu = 1400 - VXLAN_OVERHEAD;
    let df = sized(GW_WEB, MAC0, IP0, R_DB_IP, 2000);
    tb.send(0, &df);
    let m = Icmp::of(&tb.recv(0));
    assert_eq!((m.msg_type, m.code), (Icmpv4Message::DstUnreachable, 4));
    assert_eq!(
        &m.rest_of_header[2..],
        &(inner_mtu as u16).to_be_bytes(),
        "next-hop MTU: the uplink's less the VXLAN overhead"
    );
    let no_df = without_df(df, 0x1234);
    tb.send(0, &no_df);
    expect_fragments(&tb, &no_df, 2, HOST2, inner_mtu);
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f14_encapsulation_has_every_field_of_rfc_7348() {
    let mut tb = standard();
    let sent = ipv4_frame(
        GW_WEB,
        MAC0,
        IP0,
        R_DB_IP,
        IpProtocol::Udp,
        9,
        &udp(33000, 443, b"to another host"),
    );
    tb.send(0, &sent);
    let out = tb.recv_uplink();
    assert_eq!(out.len(), sent.len() + VXLAN_OVERHEAD);
    let v = Vxlan::parse(&out);
    v.assert_f14(HOST2, VNI_A);
    assert_eq!(
        macs(&v.inner),
        (R_DB_MAC, MAC0),
        "inner MACs: mapping's <- VF's"
    );
    assert_eq!(&v.inner[12..], &sent[12..], "inner IPv4 unchanged");
    let up = tb.counters(UPLINK);
    assert_eq!(up.get(Counter::TxPackets), 1);
    assert_eq!(up.get(Counter::TxBytes), out.len() as u64);
}

#[test]
fn f14_udp_source_port_follows_the_inner_flow() {
    let mut tb = standard();
    let flow = |sport: u16| {
        ipv4_frame(
            GW_WEB,
            MAC0,
            IP0,
            R_DB_IP,
            IpProtocol::Udp,
            64,
            &udp(sport, 443, b"x"),
        )
    };
    let mut ports = BTreeSet::new();
    for sport in 40000..40016 {
        tb.send(0, &flow(sport));
        let first = Vxlan::parse(&tb.recv_uplink()).src_port;
        tb.send(0, &flow(sport));
        let again = Vxlan::parse(&tb.recv_uplink()).src_port;
        assert_eq!(first, again, "one flow, one source port");
        assert!(first >= 49152);
        ports.insert(first);
    }
    assert!(ports.len() > 1, "flows spread over source ports: {ports:?}");
}

/// An inner frame from `src` (with `src_mac`) to `dst` on VF `dst_mac`, TTL 7.
fn inner(src_mac: [u8; 6], src: Ipv4Addr, dst_mac: [u8; 6], dst: Ipv4Addr) -> Vec<u8> {
    ipv4_frame(
        dst_mac,
        src_mac,
        src,
        dst,
        IpProtocol::Udp,
        7,
        &udp(1000, 2000, b"over the underlay"),
    )
}

#[test]
fn f15_from_the_mapped_host_in_the_same_subnet_keeps_the_senders_mac() {
    let mut tb = standard();
    let i = inner(R_WEB_MAC, R_WEB_IP, MAC0, IP0);
    let f = from_host(HOST2, VNI_A, &i);
    tb.send_uplink(&f);
    let got = tb.recv(0);
    assert_eq!(macs(&got), (MAC0, R_WEB_MAC));
    assert_eq!(&got[12..], &i[12..], "inner packet unchanged, TTL 7 kept");
    tb.assert_nothing_out();
    tb.assert_no_drops();
    let up = tb.counters(UPLINK);
    assert_eq!(
        (up.get(Counter::RxPackets), up.get(Counter::RxBytes)),
        (1, f.len() as u64)
    );
    let rx = tb.counters(vf(0));
    assert_eq!(
        (rx.get(Counter::RxPackets), rx.get(Counter::RxBytes)),
        (1, i.len() as u64)
    );
}

#[test]
fn f15_from_the_mapped_host_in_another_subnet_gets_the_gateway_mac() {
    let mut tb = standard();
    let i = inner(R_DB_MAC, R_DB_IP, MAC0, IP0);
    tb.send_uplink(&from_host(HOST2, VNI_A, &i));
    let got = tb.recv(0);
    assert_eq!(macs(&got), (MAC0, GW_WEB));
    assert_eq!(&got[12..], &i[12..]);
}

#[test]
fn f15_from_a_gateway_is_delivered_with_the_gateway_mac() {
    let mut tb = standard();
    for (host, mac) in [(IGW_HOST, IGW_MAC), (NATGW_HOST, NATGW_MAC)] {
        let i = inner(mac, ip(198, 51, 100, 1), MAC2, IP2);
        tb.send_uplink(&from_host(host, VNI_A, &i));
        let got = tb.recv(2);
        assert_eq!(macs(&got), (MAC2, GW_DB));
        assert_eq!(&got[12..], &i[12..]);
    }
    tb.assert_no_drops();
}

#[test]
fn f15_udp_that_is_not_vxlan_is_foreign() {
    let mut tb = standard();
    let dns = ipv4_frame(
        UPLINK_MAC,
        NEXT_HOP_MAC,
        HOST2,
        HOST,
        IpProtocol::Udp,
        64,
        &udp(5353, 53, b"q"),
    );
    tb.send_uplink(&dns);
    tb.expect_drop(UPLINK, Counter::DropUplinkForeign);
}

#[test]
fn f15_vxlan_to_another_underlay_address_is_foreign() {
    let mut tb = standard();
    let i = inner(R_WEB_MAC, R_WEB_IP, MAC0, IP0);
    let f = vxlan_frame(UPLINK_MAC, NEXT_HOP_MAC, HOST2, ip(192, 0, 2, 9), VNI_A, &i);
    tb.send_uplink(&f);
    tb.expect_drop(UPLINK, Counter::DropUplinkForeign);
}

#[test]
fn f15_vxlan_to_another_mac_is_foreign() {
    let mut tb = standard();
    let i = inner(R_WEB_MAC, R_WEB_IP, MAC0, IP0);
    let f = vxlan_frame(
        [0x02, 0xaa, 0, 0, 0, 0x99],
        NEXT_HOP_MAC,
        HOST2,
        HOST,
        VNI_A,
        &i,
    );
    tb.send_uplink(&f);
    tb.expect_drop(UPLINK, Counter::DropUplinkForeign);
}

#[test]
fn f15_unknown_vni_is_foreign() {
    let mut tb = standard();
    let i = inner(R_WEB_MAC, R_WEB_IP, MAC0, IP0);
    tb.send_uplink(&from_host(HOST2, 999, &i));
    tb.expect_drop(UPLINK, Counter::DropUplinkForeign);
}

#[test]
fn f15_vxlan_without_the_i_flag_is_foreign() {
    let mut tb = standard();
    let i = inner(R_WEB_MAC, R_WEB_IP, MAC0, IP0);
    let mut f = from_host(HOST2, VNI_A, &i);
    f[42] = 0;
    tb.send_uplink(&f);
    tb.expect_drop(UPLINK, Counter::DropUplinkForeign);
}

#[test]
fn f15_ipv6_on_the_uplink_is_foreign() {
    let mut tb = standard();
    let mut v6 = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
    v6.extend_from_slice(&[0; 32]);
    tb.send_uplink(&ethernet(UPLINK_MAC, NEXT_HOP_MAC, ETHERTYPE_IPV6, &v6));
    tb.expect_drop(UPLINK, Counter::DropUplinkForeign);
}

#[test]
fn f15_unmapped_inner_destination_is_dropped() {
    let mut tb = standard();
    let i = inner(R_WEB_MAC, R_WEB_IP, MAC0, ip(10, 0, 1, 99));
    tb.send_uplink(&from_host(HOST2, VNI_A, &i));
    tb.expect_drop(UPLINK, Counter::DropNoMapping);
}

#[test]
fn f15_inner_destination_that_is_not_a_local_vf_is_dropped() {
    let mut tb = standard();
    // An instance on yet another host, and the subnet gateway: neither is a local VF.
    for dst in [R_DB3_IP, GW_WEB_IP] {
        let i = inner(R_WEB_MAC, R_WEB_IP, MAC0, dst);
        tb.send_uplink(&from_host(HOST2, VNI_A, &i));
        tb.expect_drop(UPLINK, Counter::DropNoMapping);
    }
}

#[test]
fn f15_inner_source_mapped_to_another_host_is_spoofed() {
    let mut tb = standard();
    // 10.0.2.30 lives on HOST2, but this comes from HOST3.
    let i = inner(R_DB_MAC, R_DB_IP, MAC0, IP0);
    tb.send_uplink(&from_host(HOST3, VNI_A, &i));
    tb.expect_drop(UPLINK, Counter::DropDecapSpoof);
}

#[test]
fn f15_unmapped_or_local_inner_source_is_spoofed() {
    let mut tb = standard();
    for src in [ip(10, 0, 2, 77), IP1] {
        let i = inner(R_DB_MAC, src, MAC0, IP0);
        tb.send_uplink(&from_host(HOST2, VNI_A, &i));
        tb.expect_drop(UPLINK, Counter::DropDecapSpoof);
    }
}

#[test]
fn f15_delivery_applies_the_destination_check() {
    let mut tb = standard();
    // A mapping points 10.0.1.60 at VF0, which does not own that address.
    let stray = ip(10, 0, 1, 60);
    tb.driver
        .add_mapping(
            VNI_A,
            stray,
            MAC0,
            host_driver::MappingLocationSpec::LocalVf(0),
        )
        .expect("MAPPING_ADD");
    let i = inner(R_WEB_MAC, R_WEB_IP, MAC0, stray);
    tb.send_uplink(&from_host(HOST2, VNI_A, &i));
    tb.expect_drop(vf(0), Counter::DropDstIp);
}

#[test]
fn f15_instance_of_a_peered_vpc_on_its_mapped_host_is_delivered() {
    let mut tb = standard();
    // VPC C peers with VPC A: its instance on HOST2 sends with VPC A's VNI (F8 pcx).
    let i = inner(R_C_MAC, R_C_IP, MAC0, IP0);
    tb.send_uplink(&from_host(HOST2, VNI_A, &i));
    let got = tb.recv(0);
    assert_eq!(
        macs(&got),
        (MAC0, GW_WEB),
        "another VPC: the gateway MAC (F12)"
    );
    assert_eq!(&got[12..], &i[12..]);
    tb.assert_no_drops();
}

#[test]
fn f15_instance_of_an_unpeered_vpc_is_not_a_plausible_source() {
    let mut tb = standard();
    // 10.1.1.40 is VPC C's, on HOST2; VPC B has no peering with C, so HOST2 cannot send
    // it into VPC B.
    let i = inner(R_C_MAC, R_C_IP, MAC4, IP4);
    tb.send_uplink(&from_host(HOST2, VNI_B, &i));
    tb.expect_drop(UPLINK, Counter::DropDecapSpoof);
}

#[test]
fn f15_gateway_of_another_vpc_is_not_a_plausible_source() {
    let mut tb = standard();
    // The internet gateway serves VPC A (table 0 routes to it); no route of VPC B does.
    let i = inner(IGW_MAC, INTERNET, MAC4, IP4);
    tb.send_uplink(&from_host(IGW_HOST, VNI_B, &i));
    tb.expect_drop(UPLINK, Counter::DropDecapSpoof);
}
