//! The topology the pipeline fuzzer and the batch test run on: every route target,
//! peering, remote instances, a missing gateway and VPC, a VF without a subnet and a small
//! uplink MTU; and a generator of random frames for it, mostly well-formed, sometimes broken.
extern crate std;

use crate::memory::heap::{OwnedMemory, Sizes};
use crate::tables::lpm::{Route, Target};
use crate::tables::mapping::{Location, Mapping, MappingKey};
use crate::tables::vpc::{Gateway, RouteTable, Subnet, VfConfig, Vpc};
use crate::tables::{Tables, Uplink};
use crate::testing::*;
use core::net::Ipv4Addr;
use smoltcp::wire::{ArpOperation, DhcpMessageType, IpProtocol};
use std::vec::Vec;

/// Capacities of the topology's tables.
pub const SIZES: Sizes = Sizes {
    vfs: 8,
    vpcs: 8,
    subnets: 16,
    route_tables: 8,
    routes_per_table: 32,
    mapping_buckets: 128,
    underlays: 16,
    gateways: 8,
    batch: 1,
    // Few entries: flows share them, so evictions happen.
    flow_cache: 16,
};

/// The topology's tables in `owned` (made with [`SIZES`]).
pub fn tables(owned: &mut OwnedMemory) -> Tables<'_> {
    let mut t = Tables::take_from(&mut owned.memory());
    load(&mut t);
    t
}

pub const UPLINK_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
pub const UPLINK_IP: u32 = 0xC000_0201;
pub const REMOTE_HOST: u32 = 0xC000_0202;
pub const IGW_HOST: u32 = 0xC000_0264;

pub fn gw_mac(subnet: u16) -> [u8; 6] {
    [0x02, 0, 0, 0, subnet as u8, 1]
}

pub fn vf_mac(vf: u16) -> [u8; 6] {
    [0x02, 0, 0x0a, 0, 1, vf as u8]
}

/// (VF, subnet, address, source/destination check).
pub const VFS: [(u16, u16, u32, bool); 5] = [
    (0, 0, 0x0a00_010a, true),
    (1, 0, 0x0a00_010b, false),
    (2, 1, 0x0a00_0214, true),
    (3, 2, 0x0a01_010a, true),
    // A VF whose subnet does not exist: no sender context.
    (4, 9, 0x0a00_0132, true),
];

pub fn subnets() -> [(u16, Subnet); 3] {
    let s = |vpc: u16, rt: u16, prefix: u32, id: u16| Subnet {
        vpc,
        route_table: rt,
        prefix,
        prefix_len: 24,
        gateway_mac: gw_mac(id),
    };
    [
        (0, s(0, 0, 0x0a00_0100, 0)),
        (1, s(0, 0, 0x0a00_0200, 1)),
        (2, s(1, 1, 0x0a01_0100, 2)),
    ]
}

pub fn load(t: &mut Tables<'_>) {
    for (id, vni, cidr) in [(0u16, 100u32, 0x0a00_0000u32), (1, 200, 0x0a01_0000)] {
        t.vpcs[usize::from(id)] = Some(Vpc {
            vni,
            cidr,
            cidr_len: 16,
            main_route_table: Some(id),
            dns: [0; shared_regs::entry::VPC_DNS_SERVERS],
            dns_count: 0,
            domain: [0; shared_regs::entry::DOMAIN_MAX],
            domain_len: 0,
            gateway_mask: 1,
        });
        t.route_tables[usize::from(id)] = Some(RouteTable { vpc: id });
        let anchor = Mapping {
            mac: [0; 6],
            location: Location::Vpc(id),
        };
        t.mappings
            .insert(MappingKey { vni, ip: 0 }, anchor)
            .unwrap();
    }
    let vni = |vpc: u16| if vpc == 0 { 100 } else { 200 };
    for (id, s) in subnets() {
        t.subnets[usize::from(id)] = Some(s);
        let gw = Mapping {
            mac: s.gateway_mac,
            location: Location::Gateway,
        };
        let bc = Mapping {
            mac: [0xff; 6],
            location: Location::Broadcast,
        };
        let k = |ip| MappingKey {
            vni: vni(s.vpc),
            ip,
        };
        t.mappings.insert(k(s.gateway_ip()), gw).unwrap();
        t.mappings.insert(k(s.broadcast()), bc).unwrap();
    }
    for (vf, subnet, ip, check) in VFS {
        let mut secondary = [0; shared_regs::entry::VF_SECONDARY_ADDRS];
        secondary[0] = ip + 0x40;
        t.vfs[usize::from(vf)] = Some(VfConfig {
            mac: vf_mac(vf),
            subnet,
            primary_ip: ip,
            src_dst_check: check,
            secondary,
            secondary_count: 1,
        });
        let vpc = if subnet == 2 { 1 } else { 0 };
        let m = Mapping {
            mac: vf_mac(vf),
            location: Location::LocalVf(vf),
        };
        t.mappings
            .insert(MappingKey { vni: vni(vpc), ip }, m)
            .unwrap();
    }
    for (vni, ip, n) in [
        (100, 0x0a00_021e, 1u8),
        (100, 0x0a00_0305, 2),
        (200, 0x0a01_0128, 3),
        (100, 0x0a00_010c, 4),
    ] {
        let m = Mapping {
            mac: [0x02, 0x0c, 0, 0, 0, n],
            location: Location::Remote {
                underlay_ip: REMOTE_HOST,
            },
        };
        t.mappings.insert(MappingKey { vni, ip }, m).unwrap();
    }
    t.gateways[0] = Some(Gateway {
        kind: 0,
        underlay_ip: IGW_HOST,
        mac: [0x02, 0xcc, 0, 0, 0, 1],
    });
    let r = |prefix, len, target| Route {
        prefix,
        len,
        target,
    };
    for route in [
        r(0x0a00_0000, 16, Target::Local),
        r(0, 0, Target::Gateway(0)),
        r(0x0a00_0800, 24, Target::Blackhole),
        r(0x0a01_0000, 16, Target::Peering(1)),
        r(0x0a00_0900, 24, Target::Instance(0x0a00_021e)),
        r(0x0a00_0a00, 24, Target::Gateway(5)),
        r(0x0a00_0b00, 24, Target::Peering(7)),
        r(0x0a00_0c00, 24, Target::Instance(0x0a00_6363)),
        r(0x0a00_0d00, 24, Target::Instance(0x0a00_010b)),
    ] {
        t.routes.insert(0, route).unwrap();
    }
    t.routes
        .insert(1, r(0x0a01_0000, 16, Target::Local))
        .unwrap();
    t.routes
        .insert(1, r(0x0a00_0000, 16, Target::Peering(0)))
        .unwrap();
    t.uplink = Some(Uplink {
        mac: UPLINK_MAC,
        next_hop_mac: [0x02, 0xbb, 0, 0, 0, 1],
        underlay_ip: UPLINK_IP,
        mtu: 1000,
    });
}

/// Addresses worth sending to: every instance, gateway, broadcast and route of the set-up,
/// and some others.
pub fn addr(rng: &mut Rng) -> u32 {
    const ADDRS: [u32; 22] = [
        0x0a00_010a,
        0x0a00_010b,
        0x0a00_014b,
        0x0a00_0214,
        0x0a01_010a,
        0x0a00_0132,
        0x0a00_021e,
        0x0a00_0305,
        0x0a01_0128,
        0x0a00_010c,
        0x0a00_0101,
        0x0a00_0201,
        0x0a01_0101,
        0x0a00_01ff,
        0x0a00_02ff,
        0x0a00_0807,
        0x0a00_0909,
        0x0a00_0a0a,
        0x0a00_0b0b,
        0x0a00_0c0c,
        0x0a00_0d0d,
        0xc633_6401,
    ];
    match rng.below(10) {
        0 => u32::MAX,
        1 => 0xe000_0001,
        2 => 0x0a00_0000 | (rng.next_u64() as u32 & 0x0fff),
        _ => rng.pick(&ADDRS),
    }
}

pub fn mac(rng: &mut Rng, vf: u16) -> [u8; 6] {
    match rng.below(8) {
        0 | 1 => gw_mac(rng.below(3) as u16),
        2 | 3 => vf_mac(rng.below(5) as u16),
        4 => BROADCAST,
        5 => [0x02, 0x0c, 0, 0, 0, rng.below(5) as u8],
        6 => [0x02, 0x77, 0, 0, 0, 1],
        _ => gw_mac(match vf {
            2 => 1,
            3 => 2,
            _ => 0,
        }),
    }
}

/// A random frame from VF `vf`: mostly well-formed, sometimes broken.
pub fn vf_frame(rng: &mut Rng, vf: u16) -> Vec<u8> {
    let own = VFS.iter().find(|v| v.0 == vf).map_or(0x0a00_0199, |v| v.2);
    let src_mac = if rng.chance(90) {
        vf_mac(vf)
    } else {
        vf_mac(rng.below(5) as u16)
    };
    let src_ip = Ipv4Addr::from(match rng.below(10) {
        0 => addr(rng),
        1 => own + 0x40,
        _ => own,
    });
    let dst = Ipv4Addr::from(addr(rng));
    let payload: Vec<u8> = (0..rng.pick(&[0usize, 18, 40, 900, 1200, 1600]))
        .map(|i| i as u8)
        .collect();
    let mut f = match rng.below(12) {
        0..=3 => ipv4_frame(
            mac(rng, vf),
            src_mac,
            src_ip,
            dst,
            IpProtocol::Udp,
            64,
            &udp(rng.below(65536) as u16, 8080, &payload),
        ),
        4 | 5 => ipv4_frame(
            mac(rng, vf),
            src_mac,
            src_ip,
            dst,
            IpProtocol::Icmp,
            64,
            &icmp_echo_request(7, 1, &payload),
        ),
        6 => ipv4_frame(
            mac(rng, vf),
            src_mac,
            src_ip,
            dst,
            IpProtocol::Tcp,
            64,
            &payload,
        ),
        7 | 8 => arp_request(src_mac, src_ip, dst),
        9 => {
            let op = rng.pick(&[ArpOperation::Reply, ArpOperation::Unknown(9)]);
            let mut f = ethernet(
                mac(rng, vf),
                src_mac,
                ETHERTYPE_ARP,
                &arp(op, src_mac, src_ip, [0; 6], dst),
            );
            f.resize(60, 0);
            f
        }
        10 => dhcp_client_frame(
            src_mac,
            rng.pick(&[DhcpMessageType::Discover, DhcpMessageType::Request]),
            rng.next_u64() as u32,
            None,
            Ipv4Addr::UNSPECIFIED,
            rng.chance(50),
        ),
        _ => ethernet(mac(rng, vf), src_mac, ETHERTYPE_IPV6, &payload),
    };
    if f.len() > 14 + 20 && f[12..14] == [0x08, 0x00] && rng.chance(30) {
        clear_dont_frag(&mut f);
    }
    if f.len() < 60 {
        f.resize(60, 0);
    }
    match rng.below(30) {
        // A flipped byte: a checksum, a field, an address.
        0 | 1 => {
            let i = rng.below(f.len() as u64) as usize;
            f[i] ^= 1 << rng.below(8);
        }
        // Truncated.
        2 => f.truncate(rng.below(f.len() as u64) as usize),
        _ => {}
    }
    f
}

/// A random frame from the uplink: VXLAN toward local VFs, or something else.
pub fn uplink_frame(rng: &mut Rng) -> Vec<u8> {
    let vf = rng.below(4) as u16;
    let inner = vf_frame(rng, vf);
    let vni = rng.pick(&[100u32, 200, 300]);
    let src = rng.pick(&[REMOTE_HOST, IGW_HOST, 0xC000_0299]);
    let dst = if rng.chance(90) {
        UPLINK_IP
    } else {
        REMOTE_HOST
    };
    let mut f = vxlan_frame(
        UPLINK_MAC,
        [0x02, 0xbb, 0, 0, 0, 1],
        Ipv4Addr::from(src),
        Ipv4Addr::from(dst),
        vni,
        &inner,
    );
    if rng.chance(5) {
        let i = rng.below(f.len() as u64) as usize;
        f[i] ^= 1 << rng.below(8);
    }
    f
}
