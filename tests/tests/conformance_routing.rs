//! F8 (route tables), F10 (the gateway as a limited router), F11 (TTL) and F12 (L2 rewrite)
//! of spec/vpc-forwarding.md, end to end through the simulated NIC and its uplink.
use host_driver::RouteTarget;
use shared_regs::stats::Counter;
use smoltcp::wire::{Icmpv4Message, IpProtocol};
use std::net::Ipv4Addr;
use tests::frames::{icmp_echo_request, ipv4_frame, udp};
use tests::topo::*;
use tests::wire::{
    assert_delivered, icmp, macs, tcp_syn, udp_frame, Icmp, Ipv4Header, Vxlan, TTL_AT,
};
use tests::Testbed;

/// VF0 (web) sends a UDP packet to `dst` through its gateway.
fn routed_from_vf0(dst: Ipv4Addr) -> Vec<u8> {
    udp_frame(GW_WEB, MAC0, IP0, dst, b"routed")
}

/// Sends `f` from `vf`, takes the VXLAN frame off the uplink, checks F14 toward
/// `underlay`/`vni`, and checks the inner frame: `inner_dst` <- the VF's MAC, packet
/// unchanged.
fn expect_vxlan(
    tb: &mut Testbed,
    vf: u16,
    f: &[u8],
    underlay: Ipv4Addr,
    vni: u32,
    inner_dst: [u8; 6],
) -> Vxlan {
    tb.send(vf, f);
    let v = Vxlan::parse(&tb.recv_uplink());
    v.assert_f14(underlay, vni);
    assert_delivered(&v.inner, f, inner_dst, macs(f).1);
    tb.assert_nothing_out();
    tb.assert_no_drops();
    v
}

#[test]
fn f08_local_route_delivers_to_a_local_vf() {
    let mut tb = standard();
    let f = routed_from_vf0(IP2);
    tb.send(0, &f);
    assert_delivered(&tb.recv(2), &f, MAC2, GW_DB);
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f08_local_route_encapsulates_to_the_remote_host() {
    let mut tb = standard();
    expect_vxlan(
        &mut tb,
        0,
        &routed_from_vf0(R_DB_IP),
        HOST2,
        VNI_A,
        R_DB_MAC,
    );
}

#[test]
fn f08_igw_target_is_reached_over_vxlan_with_its_mac() {
    let mut tb = standard();
    expect_vxlan(
        &mut tb,
        0,
        &routed_from_vf0(INTERNET),
        IGW_HOST,
        VNI_A,
        IGW_MAC,
    );
}

#[test]
fn f08_vgw_target_is_reached_over_vxlan_with_its_mac() {
    let mut tb = standard();
    expect_vxlan(
        &mut tb,
        0,
        &routed_from_vf0(ON_PREMISES),
        VGW_HOST,
        VNI_A,
        VGW_MAC,
    );
}

#[test]
fn f08_natgw_target_is_reached_over_vxlan_with_its_mac() {
    let mut tb = standard();
    expect_vxlan(
        &mut tb,
        0,
        &routed_from_vf0(VIA_NAT),
        NATGW_HOST,
        VNI_A,
        NATGW_MAC,
    );
}

#[test]
fn f08_each_subnet_uses_its_own_route_table() {
    let mut tb = standard();
    // Table 0 (web) has no default route; table 1 (db) sends it to the NAT gateway.
    let from_db = udp_frame(GW_DB, MAC2, IP2, NOWHERE, b"default route");
    expect_vxlan(&mut tb, 2, &from_db, NATGW_HOST, VNI_A, NATGW_MAC);
    tb.send(0, &routed_from_vf0(NOWHERE));
    tb.expect_drop(vf(0), Counter::DropNoRoute);
}

#[test]
fn f08_longest_prefix_wins() {
    let mut tb = standard();
    tb.add_route(
        TABLE_A_MAIN,
        cidr(ip(198, 51, 100, 128), 25),
        RouteTarget::Gateway(VGW),
    );
    tb.add_route(
        TABLE_A_MAIN,
        cidr(ip(198, 51, 100, 200), 32),
        RouteTarget::Blackhole,
    );
    let low = routed_from_vf0(ip(198, 51, 100, 7));
    expect_vxlan(&mut tb, 0, &low, IGW_HOST, VNI_A, IGW_MAC);
    let high = routed_from_vf0(ip(198, 51, 100, 129));
    expect_vxlan(&mut tb, 0, &high, VGW_HOST, VNI_A, VGW_MAC);
    tb.send(0, &routed_from_vf0(ip(198, 51, 100, 200)));
    tb.expect_drop(vf(0), Counter::DropBlackhole);
}

#[test]
fn f08_route_changes_apply_to_the_next_packet() {
    let mut tb = standard();
    tb.send(0, &routed_from_vf0(NOWHERE));
    tb.expect_drop(vf(0), Counter::DropNoRoute);
    tb.add_route(
        TABLE_A_MAIN,
        cidr(ip(0, 0, 0, 0), 0),
        RouteTarget::Gateway(IGW),
    );
    expect_vxlan(
        &mut tb,
        0,
        &routed_from_vf0(NOWHERE),
        IGW_HOST,
        VNI_A,
        IGW_MAC,
    );
    tb.driver
        .del_route(TABLE_A_MAIN, cidr(ip(0, 0, 0, 0), 0))
        .expect("ROUTE_DEL");
    tb.send(0, &routed_from_vf0(NOWHERE));
    tb.expect_drop(vf(0), Counter::DropNoRoute);
}

#[test]
fn f08_the_local_route_cannot_be_removed_or_overridden() {
    let mut tb = standard();
    let local = cidr(ip(10, 0, 0, 0), 16);
    tb.driver
        .del_route(TABLE_A_MAIN, local)
        .expect_err("the local route cannot be deleted");
    tb.driver
        .add_route(TABLE_A_MAIN, local, RouteTarget::Blackhole)
        .expect_err("nor replaced");
    let f = routed_from_vf0(IP2);
    tb.send(0, &f);
    assert_delivered(&tb.recv(2), &f, MAC2, GW_DB);
}

#[test]
fn f08_pcx_route_delivers_into_the_peer_vpc() {
    let mut tb = standard();
    let f = routed_from_vf0(IP5);
    tb.send(0, &f);
    assert_delivered(&tb.recv(5), &f, MAC5, GW_C);
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f08_pcx_route_to_a_remote_instance_uses_the_peer_vni() {
    let mut tb = standard();
    expect_vxlan(&mut tb, 0, &routed_from_vf0(R_C_IP), HOST2, VNI_C, R_C_MAC);
}

#[test]
fn f08_eni_route_delivers_to_the_middlebox() {
    let mut tb = standard();
    let f = routed_from_vf0(VIA_MIDDLEBOX);
    tb.send(0, &f);
    assert_delivered(&tb.recv(3), &f, MAC3, GW_DB);
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f08_eni_route_to_a_remote_middlebox_encapsulates_to_its_host() {
    let mut tb = standard();
    tb.add_route(
        TABLE_A_MAIN,
        cidr(ip(10, 97, 0, 0), 16),
        RouteTarget::Instance(R_DB_IP),
    );
    // Inner destination MAC: the middlebox's; inner destination IP: unchanged.
    let f = routed_from_vf0(ip(10, 97, 0, 1));
    expect_vxlan(&mut tb, 0, &f, HOST2, VNI_A, R_DB_MAC);
}

#[test]
fn f08_blackhole_route_drops_silently() {
    let mut tb = standard();
    tb.send(0, &routed_from_vf0(BLACKHOLED));
    tb.expect_drop(vf(0), Counter::DropBlackhole);
}

#[test]
fn f08_no_matching_route_drops_silently() {
    let mut tb = standard();
    tb.send(0, &routed_from_vf0(NOWHERE));
    tb.expect_drop(vf(0), Counter::DropNoRoute);
}

#[test]
fn f08_local_route_without_a_mapping_drops() {
    let mut tb = standard();
    tb.send(0, &routed_from_vf0(ip(10, 0, 2, 99)));
    tb.expect_drop(vf(0), Counter::DropNoMapping);
}

#[test]
fn f08_pcx_route_without_a_mapping_in_the_peer_drops() {
    let mut tb = standard();
    tb.send(0, &routed_from_vf0(ip(10, 1, 1, 99)));
    tb.expect_drop(vf(0), Counter::DropNoMapping);
}

fn ping(dst_mac: [u8; 6], dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    ipv4_frame(
        dst_mac,
        MAC0,
        IP0,
        dst,
        IpProtocol::Icmp,
        ttl,
        &icmp_echo_request(0x1234, 9, b"gateway, are you there?"),
    )
}

#[test]
fn f10_ping_to_the_own_gateway_gets_an_echo_reply() {
    let mut tb = standard();
    tb.send(0, &ping(GW_WEB, GW_WEB_IP, 5));
    let r = tb.recv(0);
    assert_eq!(macs(&r), (MAC0, GW_WEB), "from the gateway MAC to the VM");
    let ip4 = Ipv4Header::of(&r);
    assert_eq!((ip4.src, ip4.dst), (GW_WEB_IP, IP0));
    assert_eq!(ip4.ttl, 64, "the gateway's own TTL");
    let m = Icmp::of(&r);
    assert_eq!((m.msg_type, m.code), (Icmpv4Message::EchoReply, 0));
    assert_eq!(
        m.rest_of_header,
        [0x12, 0x34, 0, 9],
        "same identifier and sequence"
    );
    assert_eq!(m.data, b"gateway, are you there?", "same payload");
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f10_ping_to_another_subnets_gateway_is_dropped() {
    let mut tb = standard();
    tb.send(0, &ping(GW_WEB, GW_DB_IP, 64));
    tb.expect_drop(vf(0), Counter::DropForeignGateway);
}

#[test]
fn f10_ping_to_a_peer_vpcs_gateway_is_dropped_though_a_route_carries_it() {
    let mut tb = standard();
    // 10.1.0.0/16 is routed to VPC C by peering; its gateway answers nobody else.
    tb.send(0, &ping(GW_WEB, GW_C_IP, 64));
    tb.expect_drop(vf(0), Counter::DropForeignGateway);
}

#[test]
fn f10_udp_to_the_gateway_is_dropped() {
    let mut tb = standard();
    let dns_query = ipv4_frame(
        GW_WEB,
        MAC0,
        IP0,
        GW_WEB_IP,
        IpProtocol::Udp,
        64,
        &udp(40000, 53, b"q"),
    );
    tb.send(0, &dns_query);
    tb.expect_drop(vf(0), Counter::DropToGateway);
}

#[test]
fn f10_tcp_to_the_gateway_is_dropped() {
    let mut tb = standard();
    let syn = ipv4_frame(
        GW_WEB,
        MAC0,
        IP0,
        GW_WEB_IP,
        IpProtocol::Tcp,
        64,
        &tcp_syn(40000, 22),
    );
    tb.send(0, &syn);
    tb.expect_drop(vf(0), Counter::DropToGateway);
}

#[test]
fn f10_icmp_other_than_echo_request_to_the_gateway_is_dropped() {
    let mut tb = standard();
    let echo_reply = icmp(0, 0, &[0x12, 0x34, 0, 1, b'x']);
    let f = ipv4_frame(
        GW_WEB,
        MAC0,
        IP0,
        GW_WEB_IP,
        IpProtocol::Icmp,
        64,
        &echo_reply,
    );
    tb.send(0, &f);
    tb.expect_drop(vf(0), Counter::DropToGateway);
}

#[test]
fn f10_udp_to_another_subnets_gateway_is_dropped() {
    let mut tb = standard();
    tb.send(0, &routed_from_vf0(GW_DB_IP));
    tb.expect_drop(vf(0), Counter::DropToGateway);
}

#[test]
fn f11_ttl_1_and_0_arrive_unchanged_and_nothing_comes_back() {
    let mut tb = standard();
    for ttl in [1, 0] {
        let f = ipv4_frame(
            GW_WEB,
            MAC0,
            IP0,
            IP2,
            IpProtocol::Udp,
            ttl,
            &udp(1, 2, b"ttl"),
        );
        tb.send(0, &f);
        let got = tb.recv(2);
        assert_eq!(got[TTL_AT], ttl, "TTL not decremented");
        assert_delivered(&got, &f, MAC2, GW_DB);
        // No ICMP time exceeded for the sender, nothing anywhere else.
        tb.assert_nothing_out();
    }
    tb.assert_no_drops();
}

#[test]
fn f11_ttl_1_crosses_vpcs_and_the_underlay_unchanged() {
    let mut tb = standard();
    let to_peer = ipv4_frame(
        GW_WEB,
        MAC0,
        IP0,
        IP5,
        IpProtocol::Icmp,
        1,
        &icmp_echo_request(1, 1, b"x"),
    );
    tb.send(0, &to_peer);
    let got = tb.recv(5);
    assert_eq!(got[TTL_AT], 1);
    assert_delivered(&got, &to_peer, MAC5, GW_C);
    for dst in [R_DB_IP, INTERNET] {
        let f = ipv4_frame(GW_WEB, MAC0, IP0, dst, IpProtocol::Udp, 1, &udp(1, 2, b"x"));
        tb.send(0, &f);
        let v = Vxlan::parse(&tb.recv_uplink());
        assert_eq!(v.inner[TTL_AT], 1, "inner TTL 1 to {dst}");
        assert_eq!(&v.inner[12..], &f[12..], "inner IPv4 header unchanged");
    }
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f12_same_subnet_keeps_the_senders_mac() {
    let mut tb = standard();
    let f = udp_frame(MAC1, MAC0, IP0, IP1, b"neighbour");
    tb.send(0, &f);
    assert_delivered(&tb.recv(1), &f, MAC1, MAC0);
    // Routed through the gateway MAC to a same-subnet neighbour: still the sender's MAC.
    let f = udp_frame(GW_WEB, MAC0, IP0, IP1, b"via the gateway");
    tb.send(0, &f);
    assert_delivered(&tb.recv(1), &f, MAC1, MAC0);
}

#[test]
fn f12_other_subnet_gets_the_receiving_gateways_mac() {
    let mut tb = standard();
    let f = udp_frame(GW_DB, MAC2, IP2, IP0, b"db to web");
    tb.send(2, &f);
    assert_delivered(&tb.recv(0), &f, MAC0, GW_WEB);
    let f = udp_frame(GW_C, MAC5, IP5, IP2, b"peer to db");
    tb.send(5, &f);
    assert_delivered(&tb.recv(2), &f, MAC2, GW_DB);
}
