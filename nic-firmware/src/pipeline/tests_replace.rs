//! `CmdFlags::REPLACE` (ABI 1.3) through the real rings, uplink and admin queue of a
//! [`FakeNic`]: each replace takes effect for the next frame, leaves the counters and every
//! other entry alone, and a refused one changes nothing.
use super::tests_uplink::{nic, outer, routed};
use crate::platform::Function;
use crate::testing::*;
use crate::Platform;
use core::net::Ipv4Addr;
use shared_regs::admin::{AdminCmd, CmdFlags, Opcode, Status};
use shared_regs::entry::*;
use shared_regs::stats::Counter;
use shared_regs::{Le16, Le32};
use smoltcp::wire::IpProtocol;
use std::string::String;
use std::vec::Vec;
use zerocopy::IntoBytes;

const VNI: u32 = 100;
const MAC0: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0a];
const MAC2: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x02, 0x14];
const GW1_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
const GW2_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x02, 0x01];
const IGW_HOST: u32 = 0xC000_0264;
const VGW_HOST: u32 = 0xC000_0265;
const REMOTE_HOST: u32 = 0xC000_0202;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Runs `op` with `REPLACE`.
fn replace<T: zerocopy::IntoBytes + zerocopy::Immutable>(
    nic: &mut FakeNic,
    op: Opcode,
    params: &T,
) -> Result<(), Status> {
    let mut cmd = AdminCmd::new(op, params);
    cmd.flags = Le16::new(CmdFlags::REPLACE.bits());
    nic.submit(cmd).completion().unwrap()
}

/// Every table (mappings as a set: a replace may move an entry to its other bucket).
fn snapshot(nic: &FakeNic) -> String {
    let t = nic.fw.tables();
    let mut s = std::format!(
        "{:?}{:?}{:?}{:?}{:?}{:?}",
        t.vfs,
        t.vpcs,
        t.subnets,
        t.route_tables,
        t.gateways,
        t.uplink
    );
    for table in 0..t.routes.tables() {
        let routes: Vec<_> = t.routes.routes(table as u16).collect();
        s.push_str(&std::format!("{routes:?}"));
    }
    let mut maps: Vec<String> = t.mappings.iter().map(|m| std::format!("{m:?}")).collect();
    maps.sort();
    s.push_str(&maps.join(","));
    s
}

/// A command to run, the opcode it runs and the status it must be refused with.
type Case<'a> = (
    Opcode,
    &'a dyn Fn(&mut FakeNic, Opcode) -> Result<(), Status>,
    Status,
);

/// Each case is refused with its status and changes nothing.
fn assert_refused(nic: &mut FakeNic, cases: &[Case<'_>]) {
    for (op, run, want) in cases {
        let before = snapshot(nic);
        assert_eq!(run(nic, *op), Err(*want), "{}", op.name());
        assert_eq!(
            snapshot(nic),
            before,
            "a refused {} changed the tables",
            op.name()
        );
    }
}

fn route(prefix: [u8; 4], len: u8, target: RouteTarget) -> RouteEntry {
    RouteEntry::new(0, prefix.into(), len, target)
}

fn gateway(id: u16, host: u32, mac: [u8; 6]) -> GatewayEntry {
    GatewayEntry {
        id: Le16::new(id),
        kind: GatewayKind::Vpn as u8,
        underlay_ip: host.to_be_bytes(),
        mac,
        ..Default::default()
    }
}

/// The underlay destination of the one frame on the uplink, or `None` when nothing left.
fn sent_to(nic: &mut FakeNic) -> Option<u32> {
    let out = core::mem::take(&mut nic.platform.uplink_out);
    assert!(out.len() <= 1, "{} frames", out.len());
    out.first().map(|f| outer(f).0)
}

#[test]
fn route_replace_changes_the_target_for_the_next_frame_only() {
    let mut nic = nic();
    nic.admin(
        Opcode::GatewayAdd,
        &gateway(1, VGW_HOST, [2, 0xdd, 0, 0, 0, 1]),
    )
    .unwrap();
    let r = |t| route([10, 0, 9, 0], 24, t);
    nic.admin(Opcode::RouteAdd, &r(RouteTarget::Gateway(0)))
        .unwrap();
    nic.send(0, &routed("10.0.9.5", 16));
    assert_eq!(sent_to(&mut nic), Some(IGW_HOST));
    let others: Vec<_> = (1..3)
        .map(|vf| nic.counters(vf).as_bytes().to_vec())
        .collect();

    replace(&mut nic, Opcode::RouteAdd, &r(RouteTarget::Gateway(1))).unwrap();
    nic.send(0, &routed("10.0.9.5", 16));
    assert_eq!(sent_to(&mut nic), Some(VGW_HOST));
    replace(&mut nic, Opcode::RouteAdd, &r(RouteTarget::Blackhole)).unwrap();
    nic.send(0, &routed("10.0.9.5", 16));
    assert_eq!(sent_to(&mut nic), None);
    assert_eq!(nic.counters(0).get(Counter::DropBlackhole), 1);
    replace(&mut nic, Opcode::RouteAdd, &r(RouteTarget::Gateway(0))).unwrap();
    nic.send(0, &routed("10.0.9.5", 16));
    assert_eq!(sent_to(&mut nic), Some(IGW_HOST));
    let c = nic.counters(0);
    assert_eq!((c.get(Counter::DropNoRoute), c.drops()), (0, 1));
    assert_eq!(
        (1..3)
            .map(|vf| nic.counters(vf).as_bytes().to_vec())
            .collect::<Vec<_>>(),
        others
    );
    // Gateway 1 is no longer routed to, so it may be deleted; gateway 0 is.
    nic.admin(Opcode::GatewayDel, &IdParam { id: Le16::new(1) })
        .unwrap();

    let run = |e: RouteEntry| move |n: &mut FakeNic, op| replace(n, op, &e);
    assert_refused(
        &mut nic,
        &[
            // No such route: a replace never adds.
            (
                Opcode::RouteAdd,
                &run(route([10, 0, 7, 0], 24, RouteTarget::Blackhole)),
                Status::NotFound,
            ),
            (
                Opcode::RouteAdd,
                &run(route([10, 0, 9, 0], 25, RouteTarget::Blackhole)),
                Status::NotFound,
            ),
            // The local route is the firmware's.
            (
                Opcode::RouteAdd,
                &run(route([10, 0, 0, 0], 16, RouteTarget::Blackhole)),
                Status::BadArgument,
            ),
            (
                Opcode::RouteAdd,
                &run(r(RouteTarget::Local)),
                Status::BadArgument,
            ),
            (
                Opcode::RouteAdd,
                &run(r(RouteTarget::Gateway(9))),
                Status::NotFound,
            ),
            (
                Opcode::RouteAdd,
                &run(r(RouteTarget::Peering(5))),
                Status::NotFound,
            ),
            (
                Opcode::RouteAdd,
                &run(route([10, 0, 9, 1], 24, RouteTarget::Blackhole)),
                Status::BadArgument,
            ),
            (
                Opcode::RouteAdd,
                &run(RouteEntry {
                    table_id: Le16::new(3),
                    ..r(RouteTarget::Blackhole)
                }),
                Status::NotFound,
            ),
            // REPLACE on an opcode that does not take it.
            (
                Opcode::RouteDel,
                &run(r(RouteTarget::Blackhole)),
                Status::BadArgument,
            ),
            (
                Opcode::RouteTableAdd,
                &run(r(RouteTarget::Blackhole)),
                Status::BadArgument,
            ),
            (
                Opcode::Nop,
                &run(r(RouteTarget::Blackhole)),
                Status::BadArgument,
            ),
        ],
    );
}

#[test]
fn replacing_a_gateway_route_updates_which_gateways_may_send_in() {
    let mut nic = nic();
    let mask = |n: &FakeNic| n.fw.tables().vpc(0).unwrap().gateway_mask;
    assert_eq!(mask(&nic), 1);
    nic.admin(
        Opcode::GatewayAdd,
        &gateway(1, VGW_HOST, [2, 0xdd, 0, 0, 0, 1]),
    )
    .unwrap();
    replace(
        &mut nic,
        Opcode::RouteAdd,
        &route([0; 4], 0, RouteTarget::Gateway(1)),
    )
    .unwrap();
    assert_eq!(mask(&nic), 2);
}

fn mapping(
    ip: [u8; 4],
    mac: [u8; 6],
    location: MappingLocation,
    vf: u16,
    host: u32,
) -> MappingEntry {
    MappingEntry {
        vni: VNI.into(),
        ip,
        mac,
        location: location as u8,
        vf: Le16::new(vf),
        underlay_ip: host.to_be_bytes(),
        ..Default::default()
    }
}

#[test]
fn mapping_replace_moves_an_instance_between_this_host_and_another_in_one_step() {
    let mut nic = nic();
    let to_vf2 = ipv4_frame(
        GW1_MAC,
        MAC0,
        ip("10.0.1.10"),
        ip("10.0.2.20"),
        IpProtocol::Udp,
        64,
        &udp(1, 2, b"moving"),
    );
    nic.send(0, &to_vf2);
    assert!(nic.recv(2).is_some());
    let len = nic.fw.tables().mappings.len();
    let moved_mac = [2, 0, 0x0a, 0, 9, 9];

    let remote = mapping(
        [10, 0, 2, 20],
        moved_mac,
        MappingLocation::Remote,
        0,
        REMOTE_HOST,
    );
    replace(&mut nic, Opcode::MappingAdd, &remote).unwrap();
    nic.send(0, &to_vf2);
    assert_eq!(nic.recv(2), None);
    let out = core::mem::take(&mut nic.platform.uplink_out);
    assert_eq!(out.len(), 1);
    let (host, vni, inner) = outer(&out[0]);
    assert_eq!(
        (host, vni, &inner[0..6]),
        (REMOTE_HOST, VNI, &moved_mac[..])
    );

    let back = mapping([10, 0, 2, 20], MAC2, MappingLocation::LocalVf, 2, 0);
    replace(&mut nic, Opcode::MappingAdd, &back).unwrap();
    nic.send(0, &to_vf2);
    assert!(nic.recv(2).is_some());
    assert!(nic.platform.uplink_out.is_empty());
    assert_eq!(nic.fw.tables().mappings.len(), len);
    assert_eq!(nic.counters(0).drops(), 0);

    let run = |e: MappingEntry| move |n: &mut FakeNic, op| replace(n, op, &e);
    assert_refused(
        &mut nic,
        &[
            (
                Opcode::MappingAdd,
                &run(mapping(
                    [10, 0, 2, 99],
                    MAC2,
                    MappingLocation::LocalVf,
                    2,
                    0,
                )),
                Status::NotFound,
            ),
            // The subnet's gateway and broadcast mappings are the firmware's.
            (
                Opcode::MappingAdd,
                &run(mapping([10, 0, 1, 1], MAC2, MappingLocation::LocalVf, 2, 0)),
                Status::BadArgument,
            ),
            (
                Opcode::MappingAdd,
                &run(mapping(
                    [10, 0, 1, 255],
                    MAC2,
                    MappingLocation::LocalVf,
                    2,
                    0,
                )),
                Status::BadArgument,
            ),
            (
                Opcode::MappingAdd,
                &run(mapping(
                    [10, 0, 2, 20],
                    MAC2,
                    MappingLocation::Gateway,
                    2,
                    0,
                )),
                Status::BadArgument,
            ),
            (
                Opcode::MappingAdd,
                &run(mapping(
                    [10, 0, 2, 20],
                    MAC2,
                    MappingLocation::LocalVf,
                    500,
                    0,
                )),
                Status::BadArgument,
            ),
            (
                Opcode::MappingAdd,
                &run(mapping(
                    [10, 0, 2, 20],
                    [1, 0, 0, 0, 0, 1],
                    MappingLocation::LocalVf,
                    2,
                    0,
                )),
                Status::BadArgument,
            ),
            (
                Opcode::MappingAdd,
                &run(MappingEntry {
                    vni: Le32::new(555),
                    ..back
                }),
                Status::NotFound,
            ),
            (Opcode::MappingDel, &run(back), Status::BadArgument),
        ],
    );
}

fn subnet(id: u16, net: [u8; 4], rt: u16, gw: [u8; 6]) -> SubnetEntry {
    SubnetEntry {
        id: Le16::new(id),
        vpc_id: Le16::new(0),
        route_table_id: Le16::new(rt),
        prefix_len: 24,
        prefix: net,
        gateway_mac: gw,
        ..Default::default()
    }
}

#[test]
fn subnet_replace_changes_its_route_table_and_gateway_mac_while_vfs_use_it() {
    let mut nic = nic();
    // Route table 1 of the same VPC sends 10.2.9.0/24 to a VPN gateway; table 0 sends it
    // to the internet gateway (the default route).
    nic.admin(
        Opcode::GatewayAdd,
        &gateway(1, VGW_HOST, [2, 0xdd, 0, 0, 0, 1]),
    )
    .unwrap();
    let rt = RouteTableEntry {
        id: Le16::new(1),
        vpc_id: Le16::new(0),
    };
    nic.admin(Opcode::RouteTableAdd, &rt).unwrap();
    let r1 = RouteEntry::new(1, [10, 2, 9, 0].into(), 24, RouteTarget::Gateway(1));
    nic.admin(Opcode::RouteAdd, &r1).unwrap();
    let from_vf2 = |gw: [u8; 6]| {
        ipv4_frame(
            gw,
            MAC2,
            ip("10.0.2.20"),
            ip("10.2.9.5"),
            IpProtocol::Udp,
            64,
            &udp(1, 2, b"x"),
        )
    };
    nic.send(2, &from_vf2(GW2_MAC));
    assert_eq!(sent_to(&mut nic), Some(IGW_HOST));
    assert_eq!(
        nic.admin(Opcode::SubnetDel, &IdParam { id: Le16::new(1) }),
        Err(Status::InUse)
    );

    replace(
        &mut nic,
        Opcode::SubnetAdd,
        &subnet(1, [10, 0, 2, 0], 1, GW2_MAC),
    )
    .unwrap();
    nic.send(2, &from_vf2(GW2_MAC));
    assert_eq!(sent_to(&mut nic), Some(VGW_HOST));
    // Back to the main table, with a new gateway MAC: ARP and routing follow it.
    let new_gw = [2, 0, 0, 0, 2, 0x77];
    replace(
        &mut nic,
        Opcode::SubnetAdd,
        &subnet(1, [10, 0, 2, 0], MAIN_ROUTE_TABLE, new_gw),
    )
    .unwrap();
    nic.send(2, &from_vf2(new_gw));
    assert_eq!(sent_to(&mut nic), Some(IGW_HOST));
    nic.send(2, &arp_request(MAC2, ip("10.0.2.20"), ip("10.0.2.1")));
    let reply = nic.recv(2).expect("ARP reply");
    assert_eq!(&reply[6..12], &new_gw);
    nic.send(2, &from_vf2(GW2_MAC));
    assert_eq!(
        sent_to(&mut nic),
        None,
        "the old gateway MAC is no longer routed"
    );
    let gw_map = |n: &FakeNic, ip: u32| {
        n.fw.tables()
            .mappings
            .get(crate::tables::mapping::MappingKey { vni: VNI, ip })
            .unwrap()
            .mac
    };
    assert_eq!(gw_map(&nic, 0x0a00_0201), new_gw);
    assert_eq!(gw_map(&nic, 0x0a00_02ff), new_gw);

    // A route table of another VPC.
    nic.admin(Opcode::VpcAdd, &vpc::other_vpc()).unwrap();
    let rt2 = RouteTableEntry {
        id: Le16::new(2),
        vpc_id: Le16::new(1),
    };
    nic.admin(Opcode::RouteTableAdd, &rt2).unwrap();
    let run = |e: SubnetEntry| move |n: &mut FakeNic, op| replace(n, op, &e);
    assert_refused(
        &mut nic,
        &[
            (
                Opcode::SubnetAdd,
                &run(subnet(3, [10, 0, 3, 0], 0, GW2_MAC)),
                Status::NotFound,
            ),
            // The CIDR and VPC are the subnet's identity.
            (
                Opcode::SubnetAdd,
                &run(subnet(1, [10, 0, 3, 0], 0, GW2_MAC)),
                Status::BadArgument,
            ),
            (
                Opcode::SubnetAdd,
                &run(SubnetEntry {
                    prefix_len: 25,
                    ..subnet(1, [10, 0, 2, 0], 0, GW2_MAC)
                }),
                Status::BadArgument,
            ),
            (
                Opcode::SubnetAdd,
                &run(subnet(1, [10, 0, 2, 0], 2, GW2_MAC)),
                Status::BadArgument,
            ),
            (
                Opcode::SubnetAdd,
                &run(subnet(1, [10, 0, 2, 0], 5, GW2_MAC)),
                Status::NotFound,
            ),
            (
                Opcode::SubnetAdd,
                &run(subnet(1, [10, 0, 2, 0], 0, [0xff; 6])),
                Status::BadArgument,
            ),
            (
                Opcode::SubnetAdd,
                &run(subnet(500, [10, 0, 2, 0], 0, GW2_MAC)),
                Status::BadArgument,
            ),
        ],
    );
}

fn vf0(mac: [u8; 6], subnet: u16, primary: [u8; 4], check: bool) -> VfEntry {
    VfEntry {
        vf: Le16::new(0),
        subnet_id: Le16::new(subnet),
        flags: Le16::new(if check {
            VfFlags::SRC_DST_CHECK.bits()
        } else {
            0
        }),
        mac,
        primary_ip: primary,
        ..Default::default()
    }
}

#[test]
fn vf_set_replace_re_sets_an_assigned_vf_without_a_link_flap() {
    use shared_regs::vf;
    let mut nic = nic();
    let secondary = VfAddrEntry {
        vf: Le16::new(0),
        ip: [10, 0, 1, 50],
        ..Default::default()
    };
    nic.admin(Opcode::VfAddrAdd, &secondary).unwrap();
    let from = |mac: [u8; 6], src: &str| {
        ipv4_frame(
            [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0b],
            mac,
            ip(src),
            ip("10.0.1.11"),
            IpProtocol::Udp,
            64,
            &udp(1, 2, b"x"),
        )
    };
    nic.send(0, &from(MAC0, "10.0.1.10"));
    assert!(nic.recv(1).is_some());
    assert_eq!(
        nic.admin(Opcode::VfSet, &vf0(MAC0, 0, [10, 0, 1, 12], true)),
        Err(Status::Exists)
    );

    let new_mac = [0x02, 0, 0x0a, 0, 1, 0x0c];
    replace(
        &mut nic,
        Opcode::VfSet,
        &vf0(new_mac, 0, [10, 0, 1, 12], true),
    )
    .unwrap();
    let f = Function::Vf(0);
    assert_eq!(
        nic.platform.read_reg(f, vf::MAC_LO),
        vf::mac_to_regs(new_mac).0
    );
    assert_eq!(nic.platform.read_reg(f, vf::LINK), vf::Link::UP.bits());
    // The old address and MAC are no longer the VF's; the new ones and the secondary are.
    nic.send(0, &from(new_mac, "10.0.1.10"));
    assert_eq!(nic.recv(1), None);
    nic.send(0, &from(MAC0, "10.0.1.12"));
    assert_eq!(nic.recv(1), None);
    nic.send(0, &from(new_mac, "10.0.1.12"));
    assert!(nic.recv(1).is_some());
    nic.send(0, &from(new_mac, "10.0.1.50"));
    assert!(nic.recv(1).is_some());
    let c = nic.counters(0);
    assert_eq!(
        (c.get(Counter::DropSrcIp), c.get(Counter::DropSrcMac)),
        (1, 1)
    );
    assert_eq!(c.get(Counter::TxPackets), 5, "counters survive a replace");
    // The check off, in place.
    replace(
        &mut nic,
        Opcode::VfSet,
        &vf0(new_mac, 0, [10, 0, 1, 12], false),
    )
    .unwrap();
    nic.send(0, &from(new_mac, "10.0.1.77"));
    assert!(nic.recv(1).is_some());

    let run = |e: VfEntry| move |n: &mut FakeNic, op| replace(n, op, &e);
    assert_refused(
        &mut nic,
        &[
            // The secondary 10.0.1.50 is not in subnet 1: remove it first.
            (
                Opcode::VfSet,
                &run(vf0(new_mac, 1, [10, 0, 2, 40], true)),
                Status::BadArgument,
            ),
            // The new primary is the secondary.
            (
                Opcode::VfSet,
                &run(vf0(new_mac, 0, [10, 0, 1, 50], true)),
                Status::BadArgument,
            ),
            (
                Opcode::VfSet,
                &run(vf0(new_mac, 0, [10, 0, 1, 3], true)),
                Status::BadArgument,
            ),
            (
                Opcode::VfSet,
                &run(vf0(new_mac, 7, [10, 0, 1, 12], true)),
                Status::NotFound,
            ),
            (
                Opcode::VfSet,
                &run(VfEntry {
                    vf: Le16::new(5),
                    ..vf0(new_mac, 0, [10, 0, 1, 13], true)
                }),
                Status::NotFound,
            ),
            (
                Opcode::VfSet,
                &run(VfEntry {
                    vf: Le16::new(500),
                    ..vf0(new_mac, 0, [10, 0, 1, 13], true)
                }),
                Status::BadArgument,
            ),
            (
                Opcode::VfSet,
                &run(VfEntry {
                    flags: Le16::new(0x80),
                    ..vf0(new_mac, 0, [10, 0, 1, 13], true)
                }),
                Status::BadArgument,
            ),
        ],
    );
    // Without the secondary, the VF moves to subnet 1.
    nic.admin(Opcode::VfAddrDel, &secondary).unwrap();
    replace(
        &mut nic,
        Opcode::VfSet,
        &vf0(new_mac, 1, [10, 0, 2, 40], true),
    )
    .unwrap();
    assert_eq!(nic.fw.tables().vf(0).unwrap().subnet, 1);
}

#[test]
fn gateway_replace_moves_its_endpoint_while_routes_lead_to_it() {
    let mut nic = nic();
    nic.send(0, &routed("8.8.8.8", 16));
    assert_eq!(sent_to(&mut nic), Some(IGW_HOST));
    let new_mac = [2, 0xcc, 0, 0, 0, 9];
    replace(&mut nic, Opcode::GatewayAdd, &gateway(0, VGW_HOST, new_mac)).unwrap();
    nic.send(0, &routed("8.8.8.8", 16));
    let out = core::mem::take(&mut nic.platform.uplink_out);
    let (host, _, inner) = outer(&out[0]);
    assert_eq!((host, &inner[0..6]), (VGW_HOST, &new_mac[..]));
    let run = |e: GatewayEntry| move |n: &mut FakeNic, op| replace(n, op, &e);
    assert_refused(
        &mut nic,
        &[
            (
                Opcode::GatewayAdd,
                &run(gateway(1, VGW_HOST, new_mac)),
                Status::NotFound,
            ),
            (
                Opcode::GatewayAdd,
                &run(gateway(0, 0, new_mac)),
                Status::BadArgument,
            ),
            (
                Opcode::GatewayAdd,
                &run(gateway(0, VGW_HOST, [0xff; 6])),
                Status::BadArgument,
            ),
            (
                Opcode::GatewayAdd,
                &run(gateway(64, VGW_HOST, new_mac)),
                Status::BadArgument,
            ),
        ],
    );
}

#[test]
fn vpc_replace_changes_dns_and_main_table_but_not_its_identity() {
    let mut nic = nic();
    let e = VpcEntry {
        id: Le16::new(0),
        main_route_table: Le16::new(0),
        vni: VNI.into(),
        cidr: [10, 0, 0, 0],
        cidr_len: 16,
        dns_count: 1,
        dns: [[10, 0, 0, 53], [0; 4], [0; 4], [0; 4]],
        ..Default::default()
    };
    let mask = nic.fw.tables().vpc(0).unwrap().gateway_mask;
    replace(&mut nic, Opcode::VpcAdd, &e).unwrap();
    let v = *nic.fw.tables().vpc(0).unwrap();
    assert_eq!(
        (v.dns_count, v.dns[0], v.gateway_mask),
        (1, 0x0a00_0035, mask)
    );
    let run = |e: VpcEntry| move |n: &mut FakeNic, op| replace(n, op, &e);
    assert_refused(
        &mut nic,
        &[
            (
                Opcode::VpcAdd,
                &run(VpcEntry {
                    id: Le16::new(2),
                    ..e
                }),
                Status::NotFound,
            ),
            (
                Opcode::VpcAdd,
                &run(VpcEntry {
                    vni: 101.into(),
                    ..e
                }),
                Status::BadArgument,
            ),
            (
                Opcode::VpcAdd,
                &run(VpcEntry { cidr_len: 17, ..e }),
                Status::BadArgument,
            ),
            (
                Opcode::VpcAdd,
                &run(VpcEntry { dns_count: 5, ..e }),
                Status::BadArgument,
            ),
        ],
    );
}

#[test]
fn uplink_replace_needs_an_uplink() {
    let mut fresh = FakeNic::new(Sizes::default());
    let up = UplinkEntry {
        mac: [2, 0xaa, 0, 0, 0, 2],
        next_hop_mac: [2, 0xbb, 0, 0, 0, 2],
        underlay_ip: [192, 0, 2, 9],
        ..Default::default()
    };
    assert_eq!(
        replace(&mut fresh, Opcode::UplinkSet, &up),
        Err(Status::NotFound)
    );
    assert!(fresh.fw.tables().uplink.is_none());
    let mut nic = nic();
    replace(&mut nic, Opcode::UplinkSet, &up).unwrap();
    assert_eq!(nic.fw.tables().uplink.unwrap().underlay_ip, 0xC000_0209);
}
