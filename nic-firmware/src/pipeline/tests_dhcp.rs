//! F9 through the real rings of a [`FakeNic`].
use super::tests::vpc_nic;
use crate::testing::*;
use core::net::Ipv4Addr;
use shared_regs::stats::Counter;
use smoltcp::wire::DhcpMessageType as Kind;

const MAC0: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0a];
const GW1_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
const IP0: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);

fn option(opts: &[(u8, std::vec::Vec<u8>)], kind: u8) -> Option<&[u8]> {
    opts.iter().find(|(k, _)| *k == kind).map(|(_, d)| &d[..])
}

#[test]
fn f09_discover_gets_offer_with_every_option() {
    let mut nic = vpc_nic();
    let unspecified = Ipv4Addr::UNSPECIFIED;
    nic.send(
        0,
        &dhcp_client_frame(MAC0, Kind::Discover, 7, None, unspecified, false),
    );
    let r = nic.recv(0).expect("OFFER");
    assert_eq!((&r[0..6], &r[6..12]), (&MAC0[..], &GW1_MAC[..]));
    let (dst, kind, yiaddr, opts) = parse_dhcp_reply(&r);
    assert_eq!((dst, kind, yiaddr), (IP0, Kind::Offer, IP0));
    assert_eq!(option(&opts, 54), Some(&[10, 0, 1, 1][..]), "server id");
    assert_eq!(option(&opts, 51), Some(&3600u32.to_be_bytes()[..]), "lease");
    assert_eq!(option(&opts, 1), Some(&[255, 255, 255, 0][..]), "mask");
    assert_eq!(option(&opts, 3), Some(&[10, 0, 1, 1][..]), "router");
    assert_eq!(
        option(&opts, 6),
        Some(&[10, 0, 0, 2][..]),
        "DNS: VPC base + 2"
    );
    assert_eq!(option(&opts, 26), Some(&9001u16.to_be_bytes()[..]), "MTU");
    assert_eq!(nic.counters(0).get(Counter::Replies), 1);
}

#[test]
fn f09_request_for_own_address_gets_ack_and_other_gets_nak() {
    let mut nic = vpc_nic();
    let none = Ipv4Addr::UNSPECIFIED;
    nic.send(
        0,
        &dhcp_client_frame(MAC0, Kind::Request, 8, Some(IP0), none, false),
    );
    let (_, kind, yiaddr, _) = parse_dhcp_reply(&nic.recv(0).expect("ACK"));
    assert_eq!((kind, yiaddr), (Kind::Ack, IP0));
    let other = Some(Ipv4Addr::new(10, 0, 1, 99));
    nic.send(
        0,
        &dhcp_client_frame(MAC0, Kind::Request, 9, other, none, false),
    );
    let r = nic.recv(0).expect("NAK");
    assert_eq!(&r[0..6], &[0xff; 6], "NAK is broadcast");
    let (dst, kind, yiaddr, _) = parse_dhcp_reply(&r);
    assert_eq!((dst, kind, yiaddr), (Ipv4Addr::BROADCAST, Kind::Nak, none));
}

#[test]
fn f09_inform_gets_ack_without_address_and_broadcast_flag_is_honoured() {
    let mut nic = vpc_nic();
    nic.send(
        0,
        &dhcp_client_frame(MAC0, Kind::Inform, 10, None, IP0, false),
    );
    let (dst, kind, yiaddr, opts) = parse_dhcp_reply(&nic.recv(0).expect("ACK"));
    assert_eq!((dst, kind, yiaddr), (IP0, Kind::Ack, Ipv4Addr::UNSPECIFIED));
    assert_eq!(option(&opts, 51), None, "no lease for INFORM");
    let none = Ipv4Addr::UNSPECIFIED;
    nic.send(
        0,
        &dhcp_client_frame(MAC0, Kind::Discover, 11, None, none, true),
    );
    let r = nic.recv(0).expect("OFFER");
    assert_eq!(&r[0..6], &[0xff; 6]);
    assert_eq!(parse_dhcp_reply(&r).0, Ipv4Addr::BROADCAST);
}

#[test]
fn f09_release_and_decline_are_consumed() {
    let mut nic = vpc_nic();
    nic.send(
        0,
        &dhcp_client_frame(MAC0, Kind::Release, 12, None, IP0, false),
    );
    nic.send(
        0,
        &dhcp_client_frame(
            MAC0,
            Kind::Decline,
            13,
            Some(IP0),
            Ipv4Addr::UNSPECIFIED,
            false,
        ),
    );
    assert_eq!(nic.recv(0), None);
    let c = nic.counters(0);
    assert_eq!(c.get(Counter::DhcpConsumed), 2);
    assert_eq!(c.drops(), 2);
}

#[test]
fn f09_foreign_chaddr_is_spoofing() {
    let mut nic = vpc_nic();
    let mut f = dhcp_client_frame(
        [2, 9, 9, 9, 9, 9],
        Kind::Discover,
        14,
        None,
        Ipv4Addr::UNSPECIFIED,
        false,
    );
    f[6..12].copy_from_slice(&MAC0); // the frame itself comes from the VF's MAC
    nic.send(0, &f);
    assert_eq!(nic.recv(0), None);
    assert_eq!(nic.counters(0).get(Counter::DropDhcpSpoof), 1);
    assert_eq!(nic.counters(0).drops(), 1);
}
