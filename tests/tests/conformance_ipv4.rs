//! F4 (IPv4 validity), F5 (source/destination check), F6 (broadcast and multicast) and F7
//! (destination MAC) of spec/vpc-forwarding.md, end to end through the simulated NIC.
use host_driver::RouteTarget;
use shared_regs::stats::Counter;
use smoltcp::wire::IpProtocol;
use tests::frames::{ipv4_frame, udp, BROADCAST};
use tests::topo::*;
use tests::wire::{assert_delivered, edit_ipv4, ipv4_frame_with_options, udp_frame, Vxlan, ETH};

#[test]
fn f04_bad_header_checksum_is_dropped() {
    let mut tb = standard();
    let mut f = udp_frame(MAC1, MAC0, IP0, IP1, b"x");
    f[ETH + 10] ^= 0xff;
    tb.send(0, &f);
    tb.expect_drop(vf(0), Counter::DropMalformed);
}

#[test]
fn f04_ihl_below_5_is_dropped() {
    let mut tb = standard();
    let mut f = udp_frame(MAC1, MAC0, IP0, IP1, b"x");
    edit_ipv4(&mut f, |p| p.set_header_len(16));
    tb.send(0, &f);
    tb.expect_drop(vf(0), Counter::DropMalformed);
}

#[test]
fn f04_version_6_in_an_ipv4_frame_is_dropped() {
    let mut tb = standard();
    let mut f = udp_frame(MAC1, MAC0, IP0, IP1, b"x");
    edit_ipv4(&mut f, |p| p.set_version(6));
    tb.send(0, &f);
    tb.expect_drop(vf(0), Counter::DropMalformed);
}

#[test]
fn f04_total_length_beyond_the_bytes_present_is_dropped() {
    let mut tb = standard();
    let mut f = udp_frame(MAC1, MAC0, IP0, IP1, b"truncated");
    let claimed = (f.len() - ETH + 1) as u16;
    edit_ipv4(&mut f, |p| p.set_total_len(claimed));
    tb.send(0, &f);
    tb.expect_drop(vf(0), Counter::DropMalformed);
}

#[test]
fn f04_total_length_below_the_header_length_is_dropped() {
    let mut tb = standard();
    let mut f = udp_frame(MAC1, MAC0, IP0, IP1, b"x");
    edit_ipv4(&mut f, |p| p.set_total_len(19));
    tb.send(0, &f);
    tb.expect_drop(vf(0), Counter::DropMalformed);
}

#[test]
fn f04_truncated_header_is_dropped() {
    let mut tb = standard();
    let mut f = udp_frame(MAC1, MAC0, IP0, IP1, b"x");
    f.truncate(ETH + 12);
    tb.send(0, &f);
    tb.expect_drop(vf(0), Counter::DropMalformed);
}

#[test]
fn f04_ethernet_padding_is_removed() {
    let mut tb = standard();
    let f = udp_frame(MAC1, MAC0, IP0, IP1, b"x");
    assert!(f.len() < 60);
    let mut padded = f.clone();
    padded.resize(60, 0xee);
    tb.send(0, &padded);
    let got = tb.recv(1);
    assert_eq!(
        got.len(),
        f.len(),
        "padding beyond the total length is gone"
    );
    assert_delivered(&got, &f, MAC1, MAC0);
    let rx = tb.counters(vf(1));
    assert_eq!(rx.get(Counter::RxBytes), f.len() as u64);
}

#[test]
fn f04_ip_options_are_forwarded_unchanged() {
    let mut tb = standard();
    // Record route (7), 7 bytes, pointer 4, room for one address, then end of options.
    let options = [7, 7, 4, 0, 0, 0, 0, 0];
    let sent = ipv4_frame_with_options(GW_WEB, MAC0, IP0, IP2, &options, &udp(1, 2, b"opts"));
    tb.send(0, &sent);
    assert_delivered(&tb.recv(2), &sent, MAC2, GW_DB);
    let same = ipv4_frame_with_options(MAC1, MAC0, IP0, IP1, &options, &udp(1, 2, b"opts"));
    tb.send(0, &same);
    assert_delivered(&tb.recv(1), &same, MAC1, MAC0);
    tb.assert_no_drops();
}

fn fragment(dst_mac: [u8; 6], dst: std::net::Ipv4Addr, offset: u16, more: bool) -> Vec<u8> {
    let payload: Vec<u8> = (0..64u8).collect();
    let body = if offset == 0 {
        udp(5000, 6000, &payload)
    } else {
        payload
    };
    let mut f = ipv4_frame(dst_mac, MAC0, IP0, dst, IpProtocol::Udp, 64, &body);
    edit_ipv4(&mut f, |p| {
        p.set_ident(0x4242);
        p.set_dont_frag(false);
        p.set_more_frags(more);
        p.set_frag_offset(offset);
    });
    f
}

#[test]
fn f04_fragments_are_forwarded_unchanged() {
    let mut tb = standard();
    for (offset, more) in [(0, true), (1480, true), (2960, false)] {
        let cross = fragment(GW_WEB, IP2, offset, more);
        tb.send(0, &cross);
        assert_delivered(&tb.recv(2), &cross, MAC2, GW_DB);
        let same = fragment(MAC1, IP1, offset, more);
        tb.send(0, &same);
        assert_delivered(&tb.recv(1), &same, MAC1, MAC0);
    }
    // A later fragment to a remote instance travels whole inside VXLAN.
    let remote = fragment(GW_WEB, R_DB_IP, 1480, false);
    tb.send(0, &remote);
    let v = Vxlan::parse(&tb.recv_uplink());
    v.assert_f14(HOST2, VNI_A);
    assert_delivered(&v.inner, &remote, R_DB_MAC, MAC0);
    tb.assert_no_drops();
}

#[test]
fn f05_source_ip_that_is_not_the_vfs_is_dropped() {
    let mut tb = standard();
    for src in [ip(10, 0, 1, 99), IP1, ip(0, 0, 0, 0), INTERNET] {
        tb.send(0, &udp_frame(MAC1, MAC0, src, IP1, b"spoofed"));
        tb.expect_drop(vf(0), Counter::DropSrcIp);
    }
}

#[test]
fn f05_secondary_address_is_a_valid_source() {
    let mut tb = standard();
    let secondary = ip(10, 0, 1, 50);
    tb.add_secondary(0, VNI_A, MAC0, secondary);
    let f = udp_frame(MAC1, MAC0, secondary, IP1, b"from a secondary");
    tb.send(0, &f);
    assert_delivered(&tb.recv(1), &f, MAC1, MAC0);
    tb.driver.del_vf_addr(0, secondary).expect("VF_ADDR_DEL");
    tb.send(0, &f);
    tb.expect_drop(vf(0), Counter::DropSrcIp);
}

#[test]
fn f05_secondary_address_is_a_valid_destination() {
    let mut tb = standard();
    let secondary = ip(10, 0, 1, 50);
    tb.add_secondary(0, VNI_A, MAC0, secondary);
    let same = udp_frame(MAC0, MAC1, IP1, secondary, b"to a secondary");
    tb.send(1, &same);
    assert_delivered(&tb.recv(0), &same, MAC0, MAC1);
    let routed = udp_frame(GW_DB, MAC2, IP2, secondary, b"routed to a secondary");
    tb.send(2, &routed);
    assert_delivered(&tb.recv(0), &routed, MAC0, GW_WEB);
    tb.assert_no_drops();
}

#[test]
fn f05_frame_to_a_neighbours_mac_for_another_address_is_dropped_at_the_receiver() {
    let mut tb = standard();
    // F7 delivers by MAC without a route lookup; F5 then refuses it at VF1, which does not
    // own the destination address: counted on the receiver.
    tb.send(
        0,
        &udp_frame(MAC1, MAC0, IP0, ip(10, 0, 1, 77), b"not for VF1"),
    );
    tb.expect_drop(vf(1), Counter::DropDstIp);
}

#[test]
fn f05_routed_packet_for_an_address_the_receiver_does_not_own_is_dropped_there() {
    let mut tb = standard();
    // A middlebox route to VF2, whose check is on.
    tb.add_route(
        TABLE_A_MAIN,
        cidr(ip(10, 98, 0, 0), 16),
        RouteTarget::Instance(IP2),
    );
    tb.send(0, &udp_frame(GW_WEB, MAC0, IP0, ip(10, 98, 0, 1), b"x"));
    tb.expect_drop(vf(2), Counter::DropDstIp);
}

#[test]
fn f05_check_off_lets_an_appliance_send_from_any_address() {
    let mut tb = standard();
    // VF3 forwards a packet of someone else's (a NAT or firewall appliance).
    let f = udp_frame(MAC2, MAC3, ip(172, 16, 5, 5), IP2, b"forwarded");
    tb.send(3, &f);
    assert_delivered(&tb.recv(2), &f, MAC2, MAC3);
    tb.assert_no_drops();
}

#[test]
fn f05_check_off_lets_an_appliance_receive_for_any_address() {
    let mut tb = standard();
    let f = udp_frame(GW_WEB, MAC0, IP0, VIA_MIDDLEBOX, b"through the middlebox");
    tb.send(0, &f);
    assert_delivered(&tb.recv(3), &f, MAC3, GW_DB);
    tb.assert_no_drops();
}

#[test]
fn f05_check_follows_vf_flags_set() {
    let mut tb = standard();
    let f = udp_frame(MAC0, MAC1, ip(10, 0, 1, 77), IP0, b"appliance");
    tb.driver.set_vf_flags(1, false).expect("check off");
    tb.send(1, &f);
    assert_delivered(&tb.recv(0), &f, MAC0, MAC1);
    tb.driver.set_vf_flags(1, true).expect("check on");
    tb.send(1, &f);
    tb.expect_drop(vf(1), Counter::DropSrcIp);
}

#[test]
fn f06_broadcast_mac_is_dropped() {
    let mut tb = standard();
    tb.send(0, &udp_frame(BROADCAST, MAC0, IP0, IP1, b"x"));
    tb.expect_drop(vf(0), Counter::DropBcastMcast);
}

#[test]
fn f06_multicast_mac_is_dropped() {
    let mut tb = standard();
    let mdns_mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
    tb.send(0, &udp_frame(mdns_mac, MAC0, IP0, IP1, b"x"));
    tb.expect_drop(vf(0), Counter::DropBcastMcast);
}

#[test]
fn f06_limited_broadcast_is_dropped() {
    let mut tb = standard();
    for dst_mac in [BROADCAST, GW_WEB] {
        let f = udp_frame(dst_mac, MAC0, IP0, ip(255, 255, 255, 255), b"x");
        tb.send(0, &f);
        tb.expect_drop(vf(0), Counter::DropBcastMcast);
    }
}

#[test]
fn f06_subnet_broadcast_is_dropped() {
    let mut tb = standard();
    for dst_mac in [BROADCAST, GW_WEB, MAC1] {
        tb.send(0, &udp_frame(dst_mac, MAC0, IP0, ip(10, 0, 1, 255), b"x"));
        tb.expect_drop(vf(0), Counter::DropBcastMcast);
    }
}

#[test]
fn f06_another_subnets_broadcast_is_dropped() {
    let mut tb = standard();
    tb.send(0, &udp_frame(GW_WEB, MAC0, IP0, ip(10, 0, 2, 255), b"x"));
    tb.expect_drop(vf(0), Counter::DropBcastMcast);
}

#[test]
fn f06_multicast_ip_is_dropped() {
    let mut tb = standard();
    for group in [ip(224, 0, 0, 251), ip(239, 255, 255, 250), ip(233, 1, 2, 3)] {
        tb.send(0, &udp_frame(GW_WEB, MAC0, IP0, group, b"x"));
        tb.expect_drop(vf(0), Counter::DropBcastMcast);
    }
}

#[test]
fn f07_gateway_mac_is_routed() {
    let mut tb = standard();
    let f = udp_frame(GW_WEB, MAC0, IP0, IP2, b"routed");
    tb.send(0, &f);
    assert_delivered(&tb.recv(2), &f, MAC2, GW_DB);
    tb.assert_no_drops();
}

#[test]
fn f07_neighbour_mac_is_delivered_without_a_route_lookup() {
    let mut tb = standard();
    // A /32 blackhole for VF1: routed packets to it die, packets to its MAC do not.
    tb.add_route(TABLE_A_MAIN, cidr(IP1, 32), RouteTarget::Blackhole);
    let direct = udp_frame(MAC1, MAC0, IP0, IP1, b"by MAC");
    tb.send(0, &direct);
    assert_delivered(&tb.recv(1), &direct, MAC1, MAC0);
    tb.send(0, &udp_frame(GW_WEB, MAC0, IP0, IP1, b"by route"));
    tb.expect_drop(vf(0), Counter::DropBlackhole);
}

#[test]
fn f07_remote_neighbour_mac_is_delivered_over_vxlan() {
    let mut tb = standard();
    let f = udp_frame(R_WEB_MAC, MAC0, IP0, R_WEB_IP, b"to the other host");
    tb.send(0, &f);
    let v = Vxlan::parse(&tb.recv_uplink());
    v.assert_f14(HOST2, VNI_A);
    assert_eq!(v.inner, f, "inner frame: the VM's, unchanged");
}

#[test]
fn f07_neighbour_mac_for_an_address_outside_the_subnet_reaches_an_appliance() {
    let mut tb = standard();
    // VF2 uses the middlebox VF3 (check off) as its next hop by MAC, as a VM with a static
    // route via an appliance does.
    let f = udp_frame(MAC3, MAC2, IP2, NOWHERE, b"via the appliance");
    tb.send(2, &f);
    assert_delivered(&tb.recv(3), &f, MAC3, MAC2);
}

#[test]
fn f07_unknown_unicast_mac_is_dropped() {
    let mut tb = standard();
    tb.send(0, &udp_frame([0x02, 9, 9, 9, 9, 9], MAC0, IP0, IP1, b"x"));
    tb.expect_drop(vf(0), Counter::DropDstMac);
}

#[test]
fn f07_mac_of_an_instance_in_another_subnet_is_dropped() {
    let mut tb = standard();
    tb.send(0, &udp_frame(MAC2, MAC0, IP0, IP2, b"x"));
    tb.expect_drop(vf(0), Counter::DropDstMac);
}

#[test]
fn f07_mac_of_another_subnets_gateway_is_dropped() {
    let mut tb = standard();
    tb.send(0, &udp_frame(GW_DB, MAC0, IP0, IP2, b"x"));
    tb.expect_drop(vf(0), Counter::DropDstMac);
}
