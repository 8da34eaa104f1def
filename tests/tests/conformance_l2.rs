//! F1 (ethertypes), F2 (L2 source) and F3 (ARP proxy) of spec/vpc-forwarding.md, end to
//! end: real frames through VF rings of the simulated NIC programmed by the real driver.
use shared_regs::stats::Counter;
use smoltcp::wire::ArpOperation;
use tests::frames::{arp, arp_request, ethernet, BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV6};
use tests::topo::*;
use tests::wire::{udp_frame, Arp};

fn udp_0_to_1() -> Vec<u8> {
    udp_frame(MAC1, MAC0, IP0, IP1, b"hello")
}

#[test]
fn f01_ipv6_is_dropped() {
    let mut tb = standard();
    let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    v6.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v6.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v6.extend_from_slice(&[0x9c, 0x40, 0, 7, 0, 8, 0, 0]);
    tb.send(0, &ethernet(MAC1, MAC0, ETHERTYPE_IPV6, &v6));
    tb.expect_drop(vf(0), Counter::DropEthertype);
}

#[test]
fn f01_vlan_tagged_frame_is_dropped() {
    let mut tb = standard();
    // An 802.1Q tag (VLAN 100) in front of an IPv4 packet that would otherwise be delivered.
    let mut tagged = vec![0x00, 0x64, 0x08, 0x00];
    tagged.extend_from_slice(&udp_0_to_1()[14..]);
    tb.send(0, &ethernet(MAC1, MAC0, 0x8100, &tagged));
    tb.expect_drop(vf(0), Counter::DropEthertype);
}

#[test]
fn f01_lldp_is_dropped() {
    let mut tb = standard();
    // Chassis ID, port ID, TTL and end TLVs.
    let mut lldp = vec![0x02, 0x07, 0x04];
    lldp.extend_from_slice(&MAC0);
    lldp.extend_from_slice(&[0x04, 0x04, 0x05, b'e', b't', b'h']);
    lldp.extend_from_slice(&[0x06, 0x02, 0x00, 0x78, 0x00, 0x00]);
    let nearest_bridge = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
    tb.send(0, &ethernet(nearest_bridge, MAC0, 0x88cc, &lldp));
    tb.expect_drop(vf(0), Counter::DropEthertype);
}

#[test]
fn f01_ieee_802_3_length_frame_is_dropped() {
    let mut tb = standard();
    // An 802.3 frame: the type field is a length (46), with an LLC header (STP's SAPs).
    let mut llc = vec![0x42, 0x42, 0x03];
    llc.resize(46, 0);
    tb.send(0, &ethernet(MAC1, MAC0, 46, &llc));
    tb.expect_drop(vf(0), Counter::DropEthertype);
}

#[test]
fn f02_ipv4_with_another_instances_source_mac_is_dropped() {
    let mut tb = standard();
    tb.send(0, &udp_frame(MAC2, MAC1, IP0, IP1, b"not my MAC"));
    tb.expect_drop(vf(0), Counter::DropSrcMac);
}

#[test]
fn f02_source_mac_of_the_gateway_is_dropped() {
    let mut tb = standard();
    tb.send(
        0,
        &udp_frame(MAC1, GW_WEB, IP0, IP1, b"posing as the gateway"),
    );
    tb.expect_drop(vf(0), Counter::DropSrcMac);
}

#[test]
fn f02_foreign_source_mac_is_dropped_with_the_check_off() {
    let mut tb = standard();
    // VF3 is the middlebox (source/destination check off): F2 still holds.
    tb.send(3, &udp_frame(MAC2, MAC1, IP3, IP2, b"check off"));
    tb.expect_drop(vf(3), Counter::DropSrcMac);
}

#[test]
fn f02_arp_with_foreign_source_mac_is_dropped() {
    let mut tb = standard();
    let req = arp(ArpOperation::Request, MAC1, IP1, [0; 6], GW_WEB_IP);
    tb.send(0, &ethernet(BROADCAST, MAC1, ETHERTYPE_ARP, &req));
    tb.expect_drop(vf(0), Counter::DropSrcMac);
}

#[test]
fn f03a_arp_for_the_gateway_is_answered_with_the_gateway_mac() {
    let mut tb = standard();
    tb.send(0, &arp_request(MAC0, IP0, GW_WEB_IP));
    Arp::assert_reply(&tb.recv(0), (MAC0, IP0), GW_WEB_IP, GW_WEB);
    tb.send(2, &arp_request(MAC2, IP2, GW_DB_IP));
    Arp::assert_reply(&tb.recv(2), (MAC2, IP2), GW_DB_IP, GW_DB);
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f03a_unicast_arp_refresh_of_the_gateway_is_answered() {
    let mut tb = standard();
    // Linux refreshes a neighbour entry with a request to the MAC it already knows.
    let req = arp(ArpOperation::Request, MAC0, IP0, [0; 6], GW_WEB_IP);
    let mut frame = ethernet(GW_WEB, MAC0, ETHERTYPE_ARP, &req);
    frame.resize(60, 0);
    tb.send(0, &frame);
    Arp::assert_reply(&tb.recv(0), (MAC0, IP0), GW_WEB_IP, GW_WEB);
}

#[test]
fn f03b_arp_for_a_local_instance_of_the_subnet_gets_its_mac() {
    let mut tb = standard();
    tb.send(0, &arp_request(MAC0, IP0, IP1));
    Arp::assert_reply(&tb.recv(0), (MAC0, IP0), IP1, MAC1);
    // The instance asked about never sees the request: nothing else came out.
    tb.assert_nothing_out();
    tb.assert_no_drops();
}

#[test]
fn f03b_arp_for_a_remote_instance_of_the_subnet_gets_its_mac() {
    let mut tb = standard();
    tb.send(0, &arp_request(MAC0, IP0, R_WEB_IP));
    Arp::assert_reply(&tb.recv(0), (MAC0, IP0), R_WEB_IP, R_WEB_MAC);
    tb.assert_nothing_out();
}

#[test]
fn f03b_arp_for_a_neighbours_secondary_address_gets_its_mac() {
    let mut tb = standard();
    let secondary = ip(10, 0, 1, 50);
    tb.add_secondary(1, VNI_A, MAC1, secondary);
    tb.send(0, &arp_request(MAC0, IP0, secondary));
    Arp::assert_reply(&tb.recv(0), (MAC0, IP0), secondary, MAC1);
}

#[test]
fn f03c_arp_for_unassigned_address_gets_no_reply() {
    let mut tb = standard();
    tb.send(0, &arp_request(MAC0, IP0, ip(10, 0, 1, 99)));
    tb.expect_drop(vf(0), Counter::ArpUnanswered);
}

#[test]
fn f03c_arp_for_reserved_addresses_gets_no_reply() {
    let mut tb = standard();
    // Base, DNS (+2), reserved (+3) and the last address of 10.0.1.0/24.
    for last in [0, 2, 3, 255] {
        tb.send(0, &arp_request(MAC0, IP0, ip(10, 0, 1, last)));
        tb.expect_drop(vf(0), Counter::ArpUnanswered);
    }
}

#[test]
fn f03d_arp_outside_the_subnet_is_answered_with_the_gateway_mac() {
    let mut tb = standard();
    let metadata = ip(169, 254, 169, 254);
    tb.send(0, &arp_request(MAC0, IP0, metadata));
    Arp::assert_reply(&tb.recv(0), (MAC0, IP0), metadata, GW_WEB);
}

#[test]
fn f03d_arp_for_an_instance_of_another_subnet_gets_the_gateway_mac() {
    let mut tb = standard();
    // A VM with a /16 prefix asks for VF2 in 10.0.2.0/24: it gets its own gateway's MAC,
    // not VF2's.
    tb.send(0, &arp_request(MAC0, IP0, IP2));
    Arp::assert_reply(&tb.recv(0), (MAC0, IP0), IP2, GW_WEB);
    tb.assert_nothing_out();
}

#[test]
fn f03e_arp_probe_for_own_address_gets_no_reply() {
    let mut tb = standard();
    // An RFC 5227 probe: sender address 0.0.0.0, target the VF's own address.
    tb.send(0, &arp_request(MAC0, ip(0, 0, 0, 0), IP0));
    tb.expect_drop(vf(0), Counter::ArpIgnored);
}

#[test]
fn f03e_arp_for_own_secondary_address_gets_no_reply() {
    let mut tb = standard();
    let secondary = ip(10, 0, 1, 50);
    tb.add_secondary(0, VNI_A, MAC0, secondary);
    tb.send(0, &arp_request(MAC0, IP0, secondary));
    tb.expect_drop(vf(0), Counter::ArpIgnored);
}

#[test]
fn f03_gratuitous_arp_request_is_consumed() {
    let mut tb = standard();
    tb.send(0, &arp_request(MAC0, IP0, IP0));
    tb.expect_drop(vf(0), Counter::ArpIgnored);
}

#[test]
fn f03_gratuitous_arp_reply_is_consumed() {
    let mut tb = standard();
    let announce = arp(ArpOperation::Reply, MAC0, IP0, BROADCAST, IP0);
    let mut frame = ethernet(BROADCAST, MAC0, ETHERTYPE_ARP, &announce);
    frame.resize(60, 0);
    tb.send(0, &frame);
    tb.expect_drop(vf(0), Counter::ArpIgnored);
}

#[test]
fn f03_arp_reply_from_a_vm_is_consumed_and_reaches_nobody() {
    let mut tb = standard();
    let reply = arp(ArpOperation::Reply, MAC0, IP0, MAC1, IP1);
    tb.send(0, &ethernet(MAC1, MAC0, ETHERTYPE_ARP, &reply));
    tb.expect_drop(vf(0), Counter::ArpIgnored);
    // And it changed nothing: VF1 is still answered with its own MAC.
    tb.send(2, &arp_request(MAC2, IP2, IP3));
    Arp::assert_reply(&tb.recv(2), (MAC2, IP2), IP3, MAC3);
}

#[test]
fn f03_malformed_arp_is_dropped() {
    let mut tb = standard();
    let good = arp_request(MAC0, IP0, GW_WEB_IP);
    // htype 6, ptype IPv6, hlen 8, plen 16, and a packet cut to 20 bytes.
    let variants: [fn(&mut Vec<u8>); 5] = [
        |f| f[15] = 6,
        |f| f[16..18].copy_from_slice(&[0x86, 0xdd]),
        |f| f[18] = 8,
        |f| f[19] = 16,
        |f| f.truncate(14 + 20),
    ];
    for spoil in variants {
        let mut f = good.clone();
        spoil(&mut f);
        tb.send(0, &f);
        tb.expect_drop(vf(0), Counter::DropMalformed);
    }
}

#[test]
fn f03_arp_request_never_leaves_the_vf() {
    let mut tb = standard();
    // A request for every kind of target: each is answered or not by the firmware, and no
    // VM and not the uplink ever sees one.
    for target in [GW_WEB_IP, IP1, R_WEB_IP, ip(10, 0, 1, 99), IP2, IP0] {
        tb.send(0, &arp_request(MAC0, IP0, target));
    }
    let c = tb.wait_counters(vf(0), "6 ARP requests decided", |c| {
        c.get(Counter::Replies) == 4
            && c.get(Counter::ArpUnanswered) == 1
            && c.get(Counter::ArpIgnored) == 1
    });
    assert_eq!(c.get(Counter::TxPackets), 6);
    for _ in 0..4 {
        assert_eq!(&tb.recv(0)[12..14], &[0x08, 0x06]);
    }
    tb.assert_nothing_out();
    // An IPv4 packet in the same subnet still flows: the proxy left no state behind.
    tb.send(0, &udp_0_to_1());
    assert_eq!(&tb.recv(1)[14..], &udp_0_to_1()[14..]);
}
