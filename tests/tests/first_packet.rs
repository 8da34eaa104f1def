//! The foundation slice end to end: the host driver programs one VPC with two subnets into
//! the simulated NIC through its admin queue, and VMs exchange frames through their VF
//! rings. Every frame crosses guest memory, the DMA engine, the firmware and back.
use host_driver::{
    Cidr, DriverError, MappingLocationSpec, RouteTarget, StatsFunction, SubnetSpec, VfSpec, VpcSpec,
};
use hw_sim::SimConfig;
use shared_regs::admin::{Opcode, Status};
use shared_regs::stats::Counter;
use shared_regs::vf;
use smoltcp::wire::IpProtocol;
use std::net::Ipv4Addr;
use tests::frames::{arp_request, ethernet, icmp_echo_request, ipv4_frame, udp, ETHERTYPE_IPV6};
use tests::{Testbed, ARRIVES};

const VNI: u32 = 100;
const GW_WEB: [u8; 6] = [0x02, 0xfe, 0x00, 0x00, 0x01, 0x01];
const GW_DB: [u8; 6] = [0x02, 0xfe, 0x00, 0x00, 0x02, 0x01];
const MAC0: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0a];
const MAC1: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0b];
const MAC2: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x02, 0x14];
const IP0: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
const IP1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 11);
const IP2: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 20);

fn cidr(a: [u8; 4], len: u8) -> Cidr {
    (Ipv4Addr::from(a), len)
}

/// VPC 10.0.0.0/16 (VNI 100) with subnets web 10.0.1.0/24 (VF0, VF1) and db 10.0.2.0/24
/// (VF2) on the VPC's main route table; a VM on each of the three VFs.
fn one_vpc_two_subnets() -> Testbed {
    let mut tb = Testbed::start(SimConfig::default()).expect("NIC comes up");
    let d = &tb.driver;
    d.add_vpc(&VpcSpec {
        id: 0,
        vni: VNI,
        cidr: cidr([10, 0, 0, 0], 16),
        main_route_table: Some(0),
        dns: vec![],
        domain: None,
    })
    .unwrap();
    d.add_route_table(0, 0).unwrap();
    for (id, net, gw) in [(0, [10, 0, 1, 0], GW_WEB), (1, [10, 0, 2, 0], GW_DB)] {
        d.add_subnet(&SubnetSpec {
            id,
            vpc_id: 0,
            cidr: cidr(net, 24),
            route_table: None,
            gateway_mac: gw,
        })
        .unwrap();
    }
    for (vf, subnet_id, mac, ip) in [(0, 0, MAC0, IP0), (1, 0, MAC1, IP1), (2, 1, MAC2, IP2)] {
        d.set_vf(&VfSpec {
            vf,
            subnet_id,
            mac,
            primary_ip: ip,
            src_dst_check: true,
        })
        .unwrap();
        d.add_mapping(VNI, ip, mac, MappingLocationSpec::LocalVf(vf))
            .unwrap();
    }
    for vf in 0..3 {
        let vm = tb.attach_vm(vf);
        assert!(vm.link_up(), "VF{vf} link is up once assigned");
    }
    assert_eq!(tb.vm(0).mac(), MAC0, "the VM reads its MAC from the VF BAR");
    tb
}

fn arp_answer(reply: &[u8]) -> ([u8; 6], [u8; 4]) {
    assert_eq!(reply.len(), 60, "ARP reply padded to the Ethernet minimum");
    assert_eq!(&reply[12..14], &[0x08, 0x06]);
    assert_eq!(&reply[20..22], &[0, 2], "ARP op is reply");
    (
        reply[22..28].try_into().unwrap(),
        reply[28..32].try_into().unwrap(),
    )
}

#[test]
fn arp_for_gateway_and_neighbour_is_answered_and_for_unassigned_is_not() {
    let mut tb = one_vpc_two_subnets();

    tb.vm(0)
        .send(&arp_request(MAC0, IP0, Ipv4Addr::new(10, 0, 1, 1)))
        .unwrap();
    let reply = tb.vm(0).recv(ARRIVES).expect("ARP reply for the gateway");
    assert_eq!(&reply[0..6], &MAC0, "reply goes to the requester");
    assert_eq!(arp_answer(&reply), (GW_WEB, [10, 0, 1, 1]));

    tb.vm(0).send(&arp_request(MAC0, IP0, IP1)).unwrap();
    let reply = tb.vm(0).recv(ARRIVES).expect("ARP reply for VF1");
    assert_eq!(arp_answer(&reply), (MAC1, IP1.octets()));

    tb.vm(0)
        .send(&arp_request(MAC0, IP0, Ipv4Addr::new(10, 0, 1, 77)))
        .unwrap();
    tb.expect_drop(StatsFunction::Vf(0), Counter::ArpUnanswered);
    let c = tb.counters(StatsFunction::Vf(0));
    assert_eq!(c.get(Counter::ArpUnanswered), 1);
    assert_eq!(c.get(Counter::Replies), 2);
    assert_eq!(c.get(Counter::TxPackets), 3);
}

#[test]
fn ipv4_to_same_subnet_arrives_byte_exact_with_ttl_1() {
    let mut tb = one_vpc_two_subnets();
    let sent = ipv4_frame(
        MAC1,
        MAC0,
        IP0,
        IP1,
        IpProtocol::Udp,
        1,
        &udp(40000, 7, b"first packet"),
    );
    tb.vm(0).send(&sent).unwrap();
    let got = tb.vm(1).recv(ARRIVES).expect("VF1 receives");
    assert_eq!(&got[0..6], &MAC1, "destination MAC is the receiver's (F12)");
    assert_eq!(
        &got[6..12],
        &MAC0,
        "same subnet: source MAC is the sender's (F12)"
    );
    assert_eq!(
        &got[12..],
        &sent[12..],
        "everything after the MACs is unchanged"
    );
    assert_eq!(got[14 + 8], 1, "TTL 1 is not decremented (F11)");
    let rx = tb.counters(StatsFunction::Vf(1));
    assert_eq!(rx.get(Counter::RxPackets), 1);
    assert_eq!(rx.get(Counter::RxBytes), sent.len() as u64);
}

#[test]
fn ipv4_to_other_subnet_arrives_from_its_gateway_mac_with_ttl_1() {
    let mut tb = one_vpc_two_subnets();
    let sent = ipv4_frame(
        GW_WEB,
        MAC0,
        IP0,
        IP2,
        IpProtocol::Icmp,
        1,
        &icmp_echo_request(0x77, 1, b"across subnets"),
    );
    tb.vm(0).send(&sent).unwrap();
    let got = tb.vm(2).recv(ARRIVES).expect("VF2 receives");
    assert_eq!(&got[0..6], &MAC2);
    assert_eq!(
        &got[6..12],
        &GW_DB,
        "other subnet: source MAC is its gateway's (F12)"
    );
    assert_eq!(&got[12..], &sent[12..]);
    assert_eq!(got[14 + 8], 1, "TTL 1 is not decremented (F11)");
    tb.assert_nothing_out();
}

#[test]
fn ipv6_frame_is_dropped_and_counted() {
    let mut tb = one_vpc_two_subnets();
    let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    v6.extend_from_slice(&[0u8; 40]);
    tb.vm(0)
        .send(&ethernet(MAC1, MAC0, ETHERTYPE_IPV6, &v6))
        .unwrap();
    tb.expect_drop(StatsFunction::Vf(0), Counter::DropEthertype);
}

#[test]
fn spoofed_source_ip_is_dropped_and_counted() {
    let mut tb = one_vpc_two_subnets();
    let spoofed = ipv4_frame(
        MAC1,
        MAC0,
        IP1,
        IP1,
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"not mine"),
    );
    tb.vm(0).send(&spoofed).unwrap();
    tb.expect_drop(StatsFunction::Vf(0), Counter::DropSrcIp);
}

#[test]
fn admin_command_with_bad_argument_gets_its_status_and_changes_nothing() {
    let mut tb = one_vpc_two_subnets();

    // VNI 0 is not a VNI: refused, and the VPC slot stays free.
    let bad_vpc = VpcSpec {
        id: 1,
        vni: 0,
        cidr: cidr([10, 1, 0, 0], 16),
        main_route_table: None,
        dns: vec![],
        domain: None,
    };
    match tb.driver.add_vpc(&bad_vpc) {
        Err(DriverError::Command {
            opcode: Opcode::VpcAdd,
            status: Status::BadArgument,
            ..
        }) => {}
        other => panic!("expected VPC_ADD to fail with bad argument, got {other:?}"),
    }
    tb.driver
        .add_vpc(&VpcSpec {
            vni: 101,
            ..bad_vpc
        })
        .expect("the slot is still free after the refused command");

    // A prefix longer than 32 bits: refused; the route table still holds no such route.
    let err = tb
        .driver
        .add_route(0, cidr([10, 9, 0, 0], 33), RouteTarget::Blackhole)
        .unwrap_err();
    assert!(
        err.to_string().contains("bad argument"),
        "message names the reason: {err}"
    );
    assert!(
        err.to_string().contains("10.9.0.0/33"),
        "and the thing: {err}"
    );

    // An instance on the subnet's broadcast address: refused; VF3 stays down and unassigned.
    let bad_vf = VfSpec {
        vf: 3,
        subnet_id: 0,
        mac: [0x02, 0, 0, 0, 0, 3],
        primary_ip: Ipv4Addr::new(10, 0, 1, 255),
        src_dst_check: true,
    };
    assert!(matches!(
        tb.driver.set_vf(&bad_vf),
        Err(DriverError::Command {
            status: Status::BadArgument,
            ..
        })
    ));
    assert_eq!(tb.vf_port(3).bar_read32(u64::from(vf::LINK)).unwrap(), 0);
    tb.driver
        .set_vf(&VfSpec {
            primary_ip: Ipv4Addr::new(10, 0, 1, 30),
            ..bad_vf
        })
        .expect("VF3 is still unassigned after the refused command");

    // Forwarding is as it was.
    let f = ipv4_frame(
        MAC1,
        MAC0,
        IP0,
        IP1,
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"still"),
    );
    tb.vm(0).send(&f).unwrap();
    assert!(tb.vm(1).recv(ARRIVES).is_some());
}
