//! F9 (DHCP) of spec/vpc-forwarding.md, end to end: DHCP client messages from a VM on its
//! VF ring, answered by the firmware as the subnet gateway's server.
use shared_regs::stats::Counter;
use smoltcp::wire::DhcpMessageType;
use std::net::Ipv4Addr;
use tests::frames::BROADCAST;
use tests::topo::*;
use tests::wire::{DhcpClient, DhcpReply};
use tests::Testbed;

const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
const ALL: Ipv4Addr = Ipv4Addr::BROADCAST;

/// VF `vf` sends `msg` from `src` to `dst` and returns the server's reply.
fn exchange(
    tb: &mut Testbed,
    vf: u16,
    mac: [u8; 6],
    msg: DhcpClient,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    gw: [u8; 6],
) -> DhcpReply {
    tb.send(vf, &msg.frame(mac, src, dst, gw));
    let r = DhcpReply::parse(&tb.recv(vf));
    assert_eq!(
        (r.src_port, r.dst_port),
        (67, 68),
        "server port to client port"
    );
    assert_eq!(r.op, 2, "BOOTREPLY");
    assert_eq!(r.xid, msg.xid, "the client's transaction ID");
    assert_eq!(r.chaddr, mac, "the client's hardware address");
    tb.assert_nothing_out();
    tb.assert_no_drops();
    r
}

/// Asserts the server identity and the lease options of an OFFER or ACK in subnet web.
fn assert_web_lease_options(r: &DhcpReply) {
    assert_eq!(r.src_mac, GW_WEB, "from the gateway MAC");
    assert_eq!(r.ip.src, GW_WEB_IP, "from the gateway IP");
    assert_eq!(
        r.option(54),
        &GW_WEB_IP.octets(),
        "54 server identifier: the gateway"
    );
    assert_eq!(r.option(51), &3600u32.to_be_bytes(), "51 lease time");
    assert_eq!(r.option(1), &[255, 255, 255, 0], "1 subnet mask");
    assert_eq!(r.option(3), &GW_WEB_IP.octets(), "3 router: the gateway");
    assert_eq!(
        r.option(6),
        &[10, 0, 0, 2],
        "6 DNS: VPC base + 2 by default"
    );
    assert_eq!(r.option(15), DOMAIN_A.as_bytes(), "15 domain name");
    assert_eq!(r.option(26), &9001u16.to_be_bytes(), "26 interface MTU");
}

#[test]
fn f09_discover_gets_an_offer_of_the_primary_address() {
    let mut tb = standard();
    let discover = DhcpClient::new(DhcpMessageType::Discover, MAC0);
    let r = exchange(&mut tb, 0, MAC0, discover, ANY, ALL, BROADCAST);
    assert_eq!(r.kind(), DhcpMessageType::Offer);
    assert_eq!(r.yiaddr, IP0, "yiaddr: the VF's primary address");
    assert_web_lease_options(&r);
    assert_eq!(
        (r.dst_mac, r.ip.dst),
        (MAC0, IP0),
        "to the client MAC and yiaddr"
    );
    assert!(!r.broadcast_flag);
}

#[test]
fn f09_request_for_the_primary_address_gets_an_ack() {
    let mut tb = standard();
    let mut request = DhcpClient::new(DhcpMessageType::Request, MAC0);
    request.requested = Some(IP0);
    let r = exchange(&mut tb, 0, MAC0, request, ANY, ALL, BROADCAST);
    assert_eq!(r.kind(), DhcpMessageType::Ack);
    assert_eq!(r.yiaddr, IP0);
    assert_web_lease_options(&r);
    assert_eq!(
        (r.dst_mac, r.ip.dst),
        (MAC0, IP0),
        "to the client MAC and yiaddr"
    );
}

#[test]
fn f09_renewal_unicast_to_the_gateway_gets_an_ack() {
    let mut tb = standard();
    // RENEWING: from the leased address to the server, ciaddr filled in.
    let mut renew = DhcpClient::new(DhcpMessageType::Request, MAC0);
    renew.ciaddr = IP0;
    let r = exchange(&mut tb, 0, MAC0, renew, IP0, GW_WEB_IP, GW_WEB);
    assert_eq!(r.kind(), DhcpMessageType::Ack);
    assert_eq!(r.yiaddr, IP0);
    assert_web_lease_options(&r);
    assert_eq!((r.dst_mac, r.ip.dst), (MAC0, IP0));
}

#[test]
fn f09_request_for_another_address_gets_a_nak() {
    let mut tb = standard();
    for other in [ip(10, 0, 1, 99), IP1, ip(192, 168, 1, 10)] {
        let mut request = DhcpClient::new(DhcpMessageType::Request, MAC0);
        request.requested = Some(other);
        let r = exchange(&mut tb, 0, MAC0, request, ANY, ALL, BROADCAST);
        assert_eq!(r.kind(), DhcpMessageType::Nak, "REQUEST for {other}");
        assert_eq!(r.yiaddr, ANY, "a NAK offers nothing");
        assert_eq!(r.option(54), &GW_WEB_IP.octets(), "54 server identifier");
        assert_eq!((r.src_mac, r.ip.src), (GW_WEB, GW_WEB_IP));
    }
}

#[test]
fn f09_inform_gets_an_ack_without_an_address() {
    let mut tb = standard();
    let mut inform = DhcpClient::new(DhcpMessageType::Inform, MAC0);
    inform.ciaddr = IP0;
    let r = exchange(&mut tb, 0, MAC0, inform, IP0, ALL, BROADCAST);
    assert_eq!(r.kind(), DhcpMessageType::Ack);
    assert_eq!(r.yiaddr, ANY, "no yiaddr for INFORM");
    assert_eq!(r.option(54), &GW_WEB_IP.octets());
    assert_eq!(r.option(6), &[10, 0, 0, 2]);
    assert_eq!(r.option(26), &9001u16.to_be_bytes());
    assert!(
        !r.options.contains_key(&51),
        "no lease time for INFORM (RFC 2131)"
    );
    assert_eq!(
        (r.dst_mac, r.ip.dst),
        (MAC0, IP0),
        "to the client that asked"
    );
}

#[test]
fn f09_release_is_consumed() {
    let mut tb = standard();
    let mut release = DhcpClient::new(DhcpMessageType::Release, MAC0);
    release.ciaddr = IP0;
    tb.send(0, &release.frame(MAC0, IP0, GW_WEB_IP, GW_WEB));
    tb.expect_drop(vf(0), Counter::DhcpConsumed);
}

#[test]
fn f09_decline_is_consumed() {
    let mut tb = standard();
    let mut decline = DhcpClient::new(DhcpMessageType::Decline, MAC0);
    decline.requested = Some(IP0);
    tb.send(0, &decline.frame(MAC0, ANY, ALL, BROADCAST));
    tb.expect_drop(vf(0), Counter::DhcpConsumed);
}

#[test]
fn f09_chaddr_other_than_the_vf_mac_is_dropped() {
    let mut tb = standard();
    // VF0 asks on behalf of VF1's MAC.
    let spoof = DhcpClient::new(DhcpMessageType::Discover, MAC1);
    tb.send(0, &spoof.frame(MAC0, ANY, ALL, BROADCAST));
    tb.expect_drop(vf(0), Counter::DropDhcpSpoof);
}

#[test]
fn f09_broadcast_flag_gets_a_broadcast_reply() {
    let mut tb = standard();
    for kind in [DhcpMessageType::Discover, DhcpMessageType::Request] {
        let mut msg = DhcpClient::new(kind, MAC0);
        msg.broadcast = true;
        msg.requested = Some(IP0);
        let r = exchange(&mut tb, 0, MAC0, msg, ANY, ALL, BROADCAST);
        assert_eq!(r.yiaddr, IP0);
        assert_eq!(
            (r.dst_mac, r.ip.dst),
            (BROADCAST, ALL),
            "broadcast reply to {kind:?}"
        );
        assert!(r.broadcast_flag, "flag echoed");
    }
}

#[test]
fn f09_each_subnet_is_served_by_its_own_gateway() {
    let mut tb = standard();
    let r = exchange(
        &mut tb,
        2,
        MAC2,
        DhcpClient::new(DhcpMessageType::Discover, MAC2),
        ANY,
        ALL,
        BROADCAST,
    );
    assert_eq!(r.kind(), DhcpMessageType::Offer);
    assert_eq!(r.yiaddr, IP2);
    assert_eq!((r.src_mac, r.ip.src), (GW_DB, GW_DB_IP));
    assert_eq!(r.option(54), &GW_DB_IP.octets());
    assert_eq!(r.option(3), &GW_DB_IP.octets());
}

#[test]
fn f09_dns_servers_are_the_vpcs() {
    let mut tb = standard();
    let r = exchange(
        &mut tb,
        5,
        MAC5,
        DhcpClient::new(DhcpMessageType::Discover, MAC5),
        ANY,
        ALL,
        BROADCAST,
    );
    assert_eq!(r.yiaddr, IP5);
    let dns: Vec<u8> = DNS_C.iter().flat_map(|a| a.octets()).collect();
    assert_eq!(r.option(6), &dns[..], "6 DNS: VPC C's servers, in order");
    assert_eq!(r.option(3), &GW_C_IP.octets());
}
