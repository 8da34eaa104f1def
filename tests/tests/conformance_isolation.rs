//! F16 (isolation) and F17 (counters) of spec/vpc-forwarding.md, end to end through the
//! simulated NIC: two VPCs with the same CIDR on one NIC, a peering, and the counters of
//! every VF and the uplink.
use host_driver::trace::Verdict as TraceVerdict;
use host_driver::{RouteTarget, StatsFunction};
use shared_regs::stats::Counter;
use shared_regs::vf as vf_regs;
use smoltcp::wire::{DhcpMessageType, IpProtocol};
use tests::frames::{
    arp_request, ethernet, icmp_echo_request, ipv4_frame, udp, BROADCAST, ETHERTYPE_IPV6,
};
use tests::topo::*;
use tests::wire::{assert_delivered, from_host, udp_frame, Arp, DhcpClient, VXLAN_OVERHEAD};

#[test]
fn f16_the_same_address_in_two_vpcs_reaches_only_its_own_vpc() {
    let mut tb = standard();
    // 10.0.1.10 is VF0 in VPC A and VF4 in VPC B.
    let in_a = udp_frame(MAC0, MAC1, IP1, IP0, b"A to A");
    tb.send(1, &in_a);
    assert_delivered(&tb.recv(0), &in_a, MAC0, MAC1);
    let in_b = udp_frame(MAC4, MAC6, IP6, IP4, b"B to B");
    tb.send(6, &in_b);
    assert_delivered(&tb.recv(4), &in_b, MAC4, MAC6);
    // ARP for the shared address is answered inside each VPC.
    tb.send(1, &arp_request(MAC1, IP1, IP0));
    Arp::assert_reply(&tb.recv(1), (MAC1, IP1), IP0, MAC0);
    tb.send(6, &arp_request(MAC6, IP6, IP4));
    Arp::assert_reply(&tb.recv(6), (MAC6, IP6), IP4, MAC4);
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f16_vpc_a_cannot_reach_vpc_b() {
    let mut tb = standard();
    // By VPC B's MAC: not an instance of VF1's subnet.
    tb.send(1, &udp_frame(MAC4, MAC1, IP1, IP4, b"x"));
    tb.expect_drop(vf(1), Counter::DropDstMac);
    // By VPC B's gateway MAC: not VF1's gateway.
    tb.send(1, &udp_frame(GW_B, MAC1, IP1, IP4, b"x"));
    tb.expect_drop(vf(1), Counter::DropDstMac);
}

#[test]
fn f16_vpc_b_cannot_reach_vpc_a() {
    let mut tb = standard();
    // 10.0.2.20 exists only in VPC A: VPC B's local route finds no mapping.
    tb.send(4, &udp_frame(GW_B, MAC4, IP4, IP2, b"x"));
    tb.expect_drop(vf(4), Counter::DropNoMapping);
    // VPC A's instance MAC.
    tb.send(4, &udp_frame(MAC1, MAC4, IP4, IP1, b"x"));
    tb.expect_drop(vf(4), Counter::DropDstMac);
    // VPC C is peered with A, not with B.
    tb.send(4, &udp_frame(GW_B, MAC4, IP4, IP5, b"x"));
    tb.expect_drop(vf(4), Counter::DropNoRoute);
}

#[test]
fn f16_the_vni_on_the_uplink_selects_the_vpc() {
    let mut tb = standard();
    // 10.0.1.40 on HOST2 exists in both VPCs, and so does 10.0.1.10 here.
    let to_a = udp_frame(MAC0, R_WEB_MAC, R_WEB_IP, IP0, b"VNI 100");
    tb.send_uplink(&from_host(HOST2, VNI_A, &to_a));
    assert_delivered(&tb.recv(0), &to_a, MAC0, R_WEB_MAC);
    let to_b = udp_frame(MAC4, R_B_MAC, R_B_IP, IP4, b"VNI 200");
    tb.send_uplink(&from_host(HOST2, VNI_B, &to_b));
    assert_delivered(&tb.recv(4), &to_b, MAC4, R_B_MAC);
    // 10.0.2.20 is in VPC A only: under VNI 200 it maps to nothing.
    let stray = udp_frame(MAC2, R_B_MAC, R_B_IP, IP2, b"wrong VPC");
    tb.send_uplink(&from_host(HOST2, VNI_B, &stray));
    tb.expect_drop(UPLINK, Counter::DropNoMapping);
}

#[test]
fn f16_vpcs_with_the_same_cidr_encapsulate_with_their_own_vni() {
    let mut tb = standard();
    for (vf, mac, gw, vni) in [(0u16, MAC0, GW_WEB, VNI_A), (4, MAC4, GW_B, VNI_B)] {
        let f = udp_frame(gw, mac, IP0, R_WEB_IP, b"to 10.0.1.40");
        tb.send(vf, &f);
        let v = tests::wire::Vxlan::parse(&tb.recv_uplink());
        v.assert_f14(HOST2, vni);
    }
}

#[test]
fn f16_pcx_route_lets_peered_subnets_talk_both_ways() {
    let mut tb = standard();
    let a_to_c = udp_frame(GW_WEB, MAC0, IP0, IP5, b"A to C");
    tb.send(0, &a_to_c);
    assert_delivered(&tb.recv(5), &a_to_c, MAC5, GW_C);
    let c_to_a = udp_frame(GW_C, MAC5, IP5, IP0, b"C to A");
    tb.send(5, &c_to_a);
    assert_delivered(&tb.recv(0), &c_to_a, MAC0, GW_WEB);
    let db_to_c = udp_frame(GW_DB, MAC2, IP2, IP5, b"db to C");
    tb.send(2, &db_to_c);
    assert_delivered(&tb.recv(5), &db_to_c, MAC5, GW_C);
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f16_peering_needs_a_pcx_route_on_each_side() {
    let mut tb = standard();
    tb.driver
        .del_route(TABLE_C_MAIN, cidr(ip(10, 0, 0, 0), 16))
        .expect("ROUTE_DEL");
    tb.send(5, &udp_frame(GW_C, MAC5, IP5, IP0, b"C to A"));
    tb.expect_drop(vf(5), Counter::DropNoRoute);
    // The route on A's side still carries A's packets to C.
    let a_to_c = udp_frame(GW_WEB, MAC0, IP0, IP5, b"A to C");
    tb.send(0, &a_to_c);
    assert_delivered(&tb.recv(5), &a_to_c, MAC5, GW_C);
}

#[test]
fn f16_a_vf_cannot_change_its_identity_through_its_bar() {
    let mut tb = standard();
    let port = tb.vf_port(0).clone();
    let (lo, hi) = vf_regs::mac_to_regs(MAC1);
    for (reg, value) in [
        (vf_regs::MAC_LO, lo),
        (vf_regs::MAC_HI, hi),
        (vf_regs::LINK, 0),
        (vf_regs::MTU, 65535),
        (vf_regs::VF_INDEX, 1),
    ] {
        let before = port.bar_read32(u64::from(reg)).expect("read");
        let _ = port.bar_write32(u64::from(reg), value);
        assert_eq!(
            port.bar_read32(u64::from(reg)).expect("read"),
            before,
            "register {reg:#x} is read-only to the VF"
        );
    }
    assert_eq!(tb.vm(0).mac(), MAC0);
    // The NIC still knows VF0 as MAC0: posing as MAC1 is refused, MAC0 still works.
    tb.send(0, &udp_frame(MAC1, MAC1, IP0, IP1, b"as MAC1"));
    tb.expect_drop(vf(0), Counter::DropSrcMac);
    let f = udp_frame(MAC1, MAC0, IP0, IP1, b"as myself");
    tb.send(0, &f);
    assert_delivered(&tb.recv(1), &f, MAC1, MAC0);
}

#[test]
fn f17_packets_and_bytes_are_counted_in_each_direction() {
    let mut tb = standard();
    // VF0 -> VF1.
    let local = udp_frame(MAC1, MAC0, IP0, IP1, b"local");
    tb.send(0, &local);
    tb.recv(1);
    // VF0 -> a remote host: the uplink sends it with the VXLAN overhead.
    let remote = udp_frame(GW_WEB, MAC0, IP0, R_DB_IP, b"remote, somewhat longer");
    tb.send(0, &remote);
    tb.recv_uplink();
    // A remote host -> VF0.
    let inner = udp_frame(MAC0, R_WEB_MAC, R_WEB_IP, IP0, b"inbound");
    let outer = from_host(HOST2, VNI_A, &inner);
    tb.send_uplink(&outer);
    tb.recv(0);
    // The gateway answers VF0's ping: a reply given to VF0.
    let ping = ipv4_frame(
        GW_WEB,
        MAC0,
        IP0,
        GW_WEB_IP,
        IpProtocol::Icmp,
        64,
        &icmp_echo_request(1, 1, b"p"),
    );
    tb.send(0, &ping);
    let pong = tb.recv(0);

    let c0 = tb.counters(vf(0));
    let sent = [&local, &remote, &ping];
    assert_eq!(c0.get(Counter::TxPackets), 3);
    assert_eq!(
        c0.get(Counter::TxBytes),
        sent.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    assert_eq!(c0.get(Counter::RxPackets), 2);
    assert_eq!(c0.get(Counter::RxBytes), (inner.len() + pong.len()) as u64);
    assert_eq!(c0.get(Counter::Replies), 1);
    let c1 = tb.counters(vf(1));
    assert_eq!(
        (c1.get(Counter::RxPackets), c1.get(Counter::RxBytes)),
        (1, local.len() as u64)
    );
    assert_eq!(
        (c1.get(Counter::TxPackets), c1.get(Counter::TxBytes)),
        (0, 0)
    );
    let up = tb.counters(UPLINK);
    assert_eq!(
        (up.get(Counter::TxPackets), up.get(Counter::TxBytes)),
        (1, (remote.len() + VXLAN_OVERHEAD) as u64)
    );
    assert_eq!(
        (up.get(Counter::RxPackets), up.get(Counter::RxBytes)),
        (1, outer.len() as u64)
    );
    tb.assert_no_drops();
}

#[test]
fn f17_each_drop_reason_moves_exactly_its_own_counter_and_trace_names_it() {
    let mut tb = standard();
    // A middlebox route to VF2, whose destination check is on, for drop_dst_ip.
    tb.add_route(
        TABLE_A_MAIN,
        cidr(ip(10, 98, 0, 0), 16),
        RouteTarget::Instance(IP2),
    );
    let mut v6 = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
    v6.extend_from_slice(&[0; 32]);
    let mut bad_checksum = udp_frame(MAC1, MAC0, IP0, IP1, b"x");
    bad_checksum[24] ^= 0xff;
    let oversize_inner = {
        let payload = vec![0u8; 9002 - 28];
        ipv4_frame(
            MAC0,
            R_WEB_MAC,
            R_WEB_IP,
            IP0,
            IpProtocol::Udp,
            64,
            &udp(1, 2, &payload),
        )
    };
    let dhcp_spoof = DhcpClient::new(DhcpMessageType::Discover, MAC1).frame(
        MAC0,
        ip(0, 0, 0, 0),
        ip(255, 255, 255, 255),
        BROADCAST,
    );
    let ping = |dst| {
        ipv4_frame(
            GW_WEB,
            MAC0,
            IP0,
            dst,
            IpProtocol::Icmp,
            64,
            &icmp_echo_request(1, 1, b""),
        )
    };
    let from_vf0 = StatsFunction::Vf(0);
    let cases: Vec<(StatsFunction, Vec<u8>, StatsFunction, Counter)> = vec![
        (
            from_vf0,
            ethernet(MAC1, MAC0, ETHERTYPE_IPV6, &v6),
            from_vf0,
            Counter::DropEthertype,
        ),
        (
            from_vf0,
            udp_frame(MAC1, MAC2, IP0, IP1, b"x"),
            from_vf0,
            Counter::DropSrcMac,
        ),
        (from_vf0, bad_checksum, from_vf0, Counter::DropMalformed),
        (
            from_vf0,
            arp_request(MAC0, IP0, ip(10, 0, 1, 99)),
            from_vf0,
            Counter::ArpUnanswered,
        ),
        (
            from_vf0,
            arp_request(MAC0, IP0, IP0),
            from_vf0,
            Counter::ArpIgnored,
        ),
        (
            from_vf0,
            udp_frame(MAC1, MAC0, IP1, IP1, b"x"),
            from_vf0,
            Counter::DropSrcIp,
        ),
        (
            from_vf0,
            udp_frame(GW_WEB, MAC0, IP0, ip(10, 98, 0, 1), b"x"),
            vf(2),
            Counter::DropDstIp,
        ),
        (
            from_vf0,
            udp_frame(BROADCAST, MAC0, IP0, IP1, b"x"),
            from_vf0,
            Counter::DropBcastMcast,
        ),
        (
            from_vf0,
            udp_frame(MAC2, MAC0, IP0, IP2, b"x"),
            from_vf0,
            Counter::DropDstMac,
        ),
        (
            from_vf0,
            udp_frame(GW_WEB, MAC0, IP0, NOWHERE, b"x"),
            from_vf0,
            Counter::DropNoRoute,
        ),
        (
            from_vf0,
            udp_frame(GW_WEB, MAC0, IP0, ip(10, 0, 2, 99), b"x"),
            from_vf0,
            Counter::DropNoMapping,
        ),
        (
            from_vf0,
            udp_frame(GW_WEB, MAC0, IP0, BLACKHOLED, b"x"),
            from_vf0,
            Counter::DropBlackhole,
        ),
        (from_vf0, dhcp_spoof, from_vf0, Counter::DropDhcpSpoof),
        (
            from_vf0,
            ping(GW_DB_IP),
            from_vf0,
            Counter::DropForeignGateway,
        ),
        (
            from_vf0,
            udp_frame(GW_WEB, MAC0, IP0, GW_WEB_IP, b"x"),
            from_vf0,
            Counter::DropToGateway,
        ),
        (
            UPLINK,
            from_host(HOST2, VNI_A, &oversize_inner),
            UPLINK,
            Counter::DropOversize,
        ),
        (
            UPLINK,
            from_host(HOST2, 999, &udp_frame(MAC0, R_WEB_MAC, R_WEB_IP, IP0, b"x")),
            UPLINK,
            Counter::DropUplinkForeign,
        ),
        (
            UPLINK,
            from_host(
                HOST3,
                VNI_A,
                &udp_frame(MAC0, R_WEB_MAC, R_WEB_IP, IP0, b"x"),
            ),
            UPLINK,
            Counter::DropDecapSpoof,
        ),
    ];
    for (port, frame, counted_on, reason) in &cases {
        let report = tb.driver.trace(*port, frame).expect("TRACE");
        assert_eq!(
            report.verdict,
            TraceVerdict::Drop {
                counter: *reason,
                port: *counted_on
            },
            "trace of the frame for {}",
            reason.name()
        );
        assert!(!report.steps.is_empty(), "the trace names its steps");
        match port {
            StatsFunction::Vf(n) => tb.send(*n, frame),
            StatsFunction::Uplink => tb.send_uplink(frame),
        }
        tb.expect_drop(*counted_on, *reason);
    }
    let vf0_sent = cases.iter().filter(|c| c.0 == from_vf0).count() as u64;
    assert_eq!(
        tb.counters(from_vf0).get(Counter::TxPackets),
        vf0_sent,
        "every frame VF0 sent is counted as sent"
    );
    let uplink_got = cases.iter().filter(|c| c.0 == UPLINK).count() as u64;
    assert_eq!(tb.counters(UPLINK).get(Counter::RxPackets), uplink_got);
}
