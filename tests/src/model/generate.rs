//! Random topologies and frames for the differential test. Generation is not the model:
//! it may build frames any way it likes, and it leans towards the cases that matter
//! (overlapping VPCs, peering, middleboxes, secondary addresses, spoofing, every route
//! target, broken headers), and away from the cases the model leaves out (see the report
//! in the module of the test).
use super::rules::{checksum, Port};
use super::topology::*;
use nic_firmware::testing::Rng;

const HOST: u32 = 0xc000_0201;
const REMOTE_HOSTS: [u32; 2] = [0xc000_0202, 0xc000_0203];
const GATEWAY_HOSTS: [u32; 3] = [0xc000_0264, 0xc000_0265, 0xc000_0266];
const ETHERTYPES_OTHER: [u16; 4] = [0x86dd, 0x8100, 0x88cc, 0x0842];

fn ip4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

fn prefix(base: u32, len: u8) -> Prefix {
    Prefix { base, len }
}

/// A random topology: 2-4 VPCs (CIDRs drawn so that some overlap), 1-3 subnets each,
/// some on their own route table, 8 VFs (random subnets, check on or off, 0-2 secondary
/// addresses), remote instances, three gateways and routes to every kind of target.
pub fn topology(rng: &mut Rng) -> Topology {
    let mut t = Topology {
        uplink: Uplink {
            mac: [0x02, 0xaa, 0, 0, 0, 1],
            next_hop_mac: [0x02, 0xbb, 0, 0, 0, 1],
            host: HOST,
            mtu: 9216,
        },
        gateways: (0..3u16)
            .map(|id| Gateway {
                id,
                underlay: GATEWAY_HOSTS[usize::from(id)],
                mac: [0x02, 0xcc, 0, 0, 0, id as u8 + 1],
            })
            .collect(),
        vpcs: Vec::new(),
        tables: Vec::new(),
        subnets: Vec::new(),
        vfs: Vec::new(),
        remotes: Vec::new(),
        routes: Vec::new(),
    };
    let cidrs = [
        ip4(10, 0, 0, 0),
        ip4(10, 0, 0, 0),
        ip4(10, 1, 0, 0),
        ip4(10, 2, 0, 0),
    ];
    let n_vpcs = 2 + rng.below(3) as u16;
    for id in 0..n_vpcs {
        let base = rng.pick(&cidrs);
        t.vpcs.push(Vpc {
            id,
            vni: 100 * (u32::from(id) + 1),
            cidr: prefix(base, 16),
            main_table: id,
        });
        t.tables.push((id, id));
        let extra = rng.chance(50).then_some(8 + id);
        if let Some(x) = extra {
            t.tables.push((x, id));
        }
        let mut octets: Vec<u32> = (1..=4).collect();
        for _ in 0..1 + rng.below(3) {
            let o = octets.remove(rng.below(octets.len() as u64) as usize);
            let sid = t.subnets.len() as u16;
            t.subnets.push(Subnet {
                id: sid,
                vpc: id,
                cidr: prefix(base | o << 8, 24),
                table: extra.filter(|_| rng.chance(50)),
                gateway_mac: [0x02, 0xfe, id as u8, 0, o as u8, 1],
            });
        }
    }
    // Addresses in use per VNI, so that every instance address is unique in its VPC.
    let mut used: Vec<(u32, u32)> = Vec::new();
    let mut fresh = |rng: &mut Rng, vni: u32, net: Prefix| loop {
        let a = net.base | (4 + rng.below(240) as u32);
        if !used.contains(&(vni, a)) {
            used.push((vni, a));
            return a;
        }
    };
    for vf in 0..8u16 {
        let s = t.subnets[rng.below(t.subnets.len() as u64) as usize].clone();
        let vni = t.vpc(s.vpc).expect("subnet's VPC").vni;
        let primary = fresh(rng, vni, s.cidr);
        let secondaries = (0..rng.below(3)).map(|_| fresh(rng, vni, s.cidr)).collect();
        t.vfs.push(Vf {
            vf,
            subnet: s.id,
            mac: [0x02, 0x00, 0x10, 0, vf as u8, 0x0a],
            primary,
            secondaries,
            check: rng.chance(70),
        });
    }
    let mut n = 0u8;
    for s in t.subnets.clone() {
        let vni = t.vpc(s.vpc).expect("subnet's VPC").vni;
        for _ in 0..rng.below(3) {
            n += 1;
            t.remotes.push(Remote {
                vni,
                ip: fresh(rng, vni, s.cidr),
                mac: [0x02, 0x0c, 0, 0, 0, n],
                host: rng.pick(&REMOTE_HOSTS),
            });
        }
    }
    for &(table, vpc) in &t.tables.clone() {
        let own = t.vpc(vpc).expect("table's VPC").clone();
        let mut routes = Vec::new();
        let mut add = |dest, target| {
            routes.push(Route {
                table,
                dest,
                target,
            })
        };
        if rng.chance(50) {
            add(prefix(0, 0), Target::Gateway(rng.below(3) as u16));
        }
        if rng.chance(60) {
            add(prefix(ip4(198, 51, 100, 0), 24), Target::Gateway(0));
        }
        if rng.chance(40) {
            add(prefix(ip4(192, 168, 0, 0), 16), Target::Gateway(1));
        }
        if rng.chance(50) {
            add(prefix(own.cidr.base | 8 << 8, 24), Target::Blackhole);
        }
        for peer in t.vpcs.iter().filter(|p| p.id != vpc) {
            let overlaps = own.cidr.contains(peer.cidr.base) || peer.cidr.contains(own.cidr.base);
            if !overlaps && rng.chance(60) {
                add(peer.cidr, Target::Peering(peer.id));
            }
        }
        // A middlebox: any instance address of the VPC, or none at all.
        let in_vpc: Vec<u32> = t
            .vfs
            .iter()
            .filter(|v| t.vpc_of_vf(v).is_some_and(|p| p.id == vpc))
            .map(|v| v.primary)
            .chain(t.remotes.iter().filter(|r| r.vni == own.vni).map(|r| r.ip))
            .chain([own.cidr.base | 0x6363])
            .collect();
        if rng.chance(60) {
            add(
                prefix(ip4(10, 99, 0, 0), 16),
                Target::Instance(rng.pick(&in_vpc)),
            );
        }
        if rng.chance(25) {
            let s = t.subnets.iter().filter(|s| s.vpc == vpc).count();
            let o = 1 + rng.below(s as u64 + 1) as u32;
            add(
                prefix(own.cidr.base | o << 8, 24),
                Target::Instance(rng.pick(&in_vpc)),
            );
        }
        t.routes.extend(routes);
    }
    t
}

/// Destination addresses worth trying from anywhere in `t`.
fn addresses(t: &Topology, rng: &mut Rng) -> u32 {
    let pick_vf = |rng: &mut Rng| {
        let v = &t.vfs[rng.below(t.vfs.len() as u64) as usize];
        let all: Vec<u32> = [v.primary]
            .into_iter()
            .chain(v.secondaries.clone())
            .collect();
        rng.pick(&all)
    };
    match rng.below(20) {
        0..=6 => pick_vf(rng),
        7 | 8 if !t.remotes.is_empty() => t.remotes[rng.below(t.remotes.len() as u64) as usize].ip,
        9 => {
            let s = &t.subnets[rng.below(t.subnets.len() as u64) as usize];
            rng.pick(&[
                s.cidr.base,
                s.cidr.base + 1,
                s.cidr.base + 2,
                s.cidr.base + 3,
                s.cidr.last(),
            ])
        }
        10..=12 if !t.routes.is_empty() => {
            let r = &t.routes[rng.below(t.routes.len() as u64) as usize];
            r.dest.base | (rng.next_u32() & !r.dest.mask())
        }
        13 => {
            let v = &t.vpcs[rng.below(t.vpcs.len() as u64) as usize];
            v.cidr.base | (rng.next_u32() & 0x07ff)
        }
        14 => rng.pick(&[
            ip4(8, 8, 8, 8),
            ip4(169, 254, 169, 254),
            ip4(198, 51, 100, 7),
        ]),
        15 => rng.pick(&[u32::MAX, ip4(224, 0, 0, 5), ip4(239, 1, 2, 3)]),
        _ => pick_vf(rng),
    }
}

/// An IPv4 packet with a valid checksum: `frag` is the flags and fragment offset field,
/// `options` adds one word of NOPs.
#[allow(clippy::too_many_arguments)]
pub fn ipv4(
    src: u32,
    dst: u32,
    proto: u8,
    ttl: u8,
    frag: u16,
    options: bool,
    payload: &[u8],
) -> Vec<u8> {
    let hl = if options { 24 } else { 20 };
    let mut p = vec![0u8; hl];
    p[0] = 0x40 | (hl / 4) as u8;
    p[2..4].copy_from_slice(&((hl + payload.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[8] = ttl;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.to_be_bytes());
    p[16..20].copy_from_slice(&dst.to_be_bytes());
    if options {
        p[20..24].copy_from_slice(&[1, 1, 1, 1]);
    }
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

pub fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn l4(rng: &mut Rng) -> (u8, Vec<u8>) {
    let len = match rng.below(20) {
        0 => 1400,
        1 => 1480,
        2 => 1600,
        3 => 4000,
        4 => 8981 - 8,
        5 => 8990,
        _ => rng.pick(&[0usize, 18, 64, 200]),
    };
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    match rng.below(3) {
        0 => {
            let mut m = vec![8, 0, 0, 0, 0, 7, 0, 1];
            m.extend_from_slice(&data);
            let c = checksum(&m);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            (1, m)
        }
        1 => {
            let mut u = Vec::new();
            u.extend_from_slice(&(40000 + rng.below(1000) as u16).to_be_bytes());
            u.extend_from_slice(&rng.pick(&[53u16, 80, 4789, 8080]).to_be_bytes());
            u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
            u.extend_from_slice(&[0, 0]);
            u.extend_from_slice(&data);
            (17, u)
        }
        _ => {
            let mut s = vec![
                0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
            ];
            s.extend_from_slice(&[0, 0, 0, 0]);
            s.extend_from_slice(&data);
            (6, s)
        }
    }
}

fn arp_body(op: u16, sha: Mac, spa: u32, tpa: u32) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.to_be_bytes());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa.to_be_bytes());
    a
}

/// A DHCP DISCOVER from `chaddr`, from 0.0.0.0 to 255.255.255.255.
fn dhcp_discover(src_mac: Mac, chaddr: Mac) -> Vec<u8> {
    let mut b = vec![0u8; 240];
    b[0] = 1;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    b[10] = 0x80;
    b[28..34].copy_from_slice(&chaddr);
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    b.extend_from_slice(&[53, 1, 1, 255]);
    let mut u = Vec::new();
    u.extend_from_slice(&68u16.to_be_bytes());
    u.extend_from_slice(&67u16.to_be_bytes());
    u.extend_from_slice(&((8 + b.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(&b);
    ethernet(
        [0xff; 6],
        src_mac,
        0x0800,
        &ipv4(0, u32::MAX, 17, 64, 0, false, &u),
    )
}

/// A random frame and the port it enters on.
pub fn frame(t: &Topology, rng: &mut Rng) -> (Port, Vec<u8>) {
    if rng.chance(15) {
        return (Port::Uplink, uplink_frame(t, rng));
    }
    let vf = &t.vfs[rng.below(t.vfs.len() as u64) as usize];
    let subnet = t.subnet(vf.subnet).expect("VF's subnet");
    let src_mac = if rng.chance(4) {
        t.vfs[rng.below(t.vfs.len() as u64) as usize].mac
    } else {
        vf.mac
    };
    let own: Vec<u32> = [vf.primary]
        .into_iter()
        .chain(vf.secondaries.clone())
        .collect();
    let dst = addresses(t, rng);
    let mut f = match rng.below(100) {
        0..=9 => {
            let tpa = if rng.chance(30) {
                subnet.cidr.base | rng.below(256) as u32
            } else {
                dst
            };
            ethernet(
                [0xff; 6],
                src_mac,
                0x0806,
                &arp_body(1, vf.mac, vf.primary, tpa),
            )
        }
        10..=11 => ethernet(
            [0xff; 6],
            src_mac,
            0x0806,
            &arp_body(2, vf.mac, vf.primary, dst),
        ),
        12..=13 => {
            // Gratuitous ARP or an RFC 5227 probe.
            let a = rng.pick(&own);
            let spa = if rng.chance(50) { a } else { 0 };
            ethernet([0xff; 6], src_mac, 0x0806, &arp_body(1, vf.mac, spa, a))
        }
        14..=15 => {
            let mut a = arp_body(1, vf.mac, vf.primary, dst);
            match rng.below(3) {
                0 => a[4] = 5,
                1 => a[2] = 0x86,
                _ => a.truncate(rng.below(28) as usize),
            }
            ethernet([0xff; 6], src_mac, 0x0806, &a)
        }
        16..=19 => ethernet(
            subnet.gateway_mac,
            src_mac,
            rng.pick(&ETHERTYPES_OTHER),
            &[0x60; 60],
        ),
        20..=22 => {
            let chaddr = if rng.chance(80) {
                vf.mac
            } else {
                [0x02, 0x66, 0, 0, 0, 1]
            };
            dhcp_discover(src_mac, chaddr)
        }
        _ => {
            let src = match rng.below(20) {
                0 => addresses(t, rng),
                1 => 0,
                _ => rng.pick(&own),
            };
            let dst_mac = match rng.below(20) {
                0 => [0xff; 6],
                1 => [0x01, 0x00, 0x5e, 0, 0, 5],
                2 => [0x02, 0x77, 0, 0, 0, 1],
                3..=4 => t.vfs[rng.below(t.vfs.len() as u64) as usize].mac,
                5 if !t.remotes.is_empty() => {
                    t.remotes[rng.below(t.remotes.len() as u64) as usize].mac
                }
                6 => t.subnets[rng.below(t.subnets.len() as u64) as usize].gateway_mac,
                _ => subnet.gateway_mac,
            };
            let (proto, body) = l4(rng);
            let ttl = rng.pick(&[64u8, 64, 1, 0, 255]);
            let frag = match rng.below(10) {
                0 => 0x2000,
                1 => 0x0010,
                2..=5 => 0,
                _ => 0x4000,
            };
            let p = ipv4(src, dst, proto, ttl, frag, rng.chance(10), &body);
            let mut f = ethernet(dst_mac, src_mac, 0x0800, &p);
            broken_ipv4(rng, &mut f);
            f
        }
    };
    // Ethernet padding: always to 60 bytes, sometimes beyond.
    if f.len() < 60 {
        f.resize(60, 0);
    }
    if rng.chance(5) {
        f.extend_from_slice(&[0xee; 7]);
    }
    (Port::Vf(vf.vf), f)
}

/// Now and then, one defect F4 names.
fn broken_ipv4(rng: &mut Rng, f: &mut Vec<u8>) {
    match rng.below(40) {
        0 => f[24] ^= 0x40,
        1 => {
            f[14] = 0x60 | (f[14] & 0x0f);
            fix_checksum(f);
        }
        2 => {
            f[14] = 0x44;
            fix_checksum(f);
        }
        3 => {
            let cut = 14 + 20 + rng.below((f.len() - 34) as u64 + 1) as usize;
            f.truncate(cut.min(f.len() - 1));
        }
        4 => {
            f[16..18].copy_from_slice(&19u16.to_be_bytes());
            fix_checksum(f);
        }
        _ => {}
    }
}

fn fix_checksum(f: &mut [u8]) {
    let hl = (usize::from(f[14] & 0x0f) * 4).max(20);
    f[24] = 0;
    f[25] = 0;
    let c = checksum(&f[14..14 + hl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// A frame from the top-of-rack switch: mostly VXLAN to this host for a known VNI, from a
/// remote host or a gateway, with inner sources right, spoofed or local.
fn uplink_frame(t: &Topology, rng: &mut Rng) -> Vec<u8> {
    if rng.chance(5) {
        return ethernet(t.uplink.mac, t.uplink.next_hop_mac, 0x86dd, &[0x60; 60]);
    }
    let vpc = &t.vpcs[rng.below(t.vpcs.len() as u64) as usize];
    let vni = if rng.chance(95) { vpc.vni } else { 999 };
    let remotes: Vec<&Remote> = t.remotes.iter().filter(|r| r.vni == vpc.vni).collect();
    let (outer_src, inner_src, inner_src_mac) = match rng.below(10) {
        0..=5 if !remotes.is_empty() => {
            let r = remotes[rng.below(remotes.len() as u64) as usize];
            let host = if rng.chance(90) {
                r.host
            } else {
                rng.pick(&REMOTE_HOSTS)
            };
            (host, r.ip, r.mac)
        }
        6 | 7 => (
            rng.pick(&GATEWAY_HOSTS),
            ip4(198, 51, 100, 7),
            [0x02, 0xcc, 0, 0, 0, 1],
        ),
        8 => (
            rng.pick(&REMOTE_HOSTS),
            addresses(t, rng),
            [0x02, 0x0c, 9, 9, 9, 9],
        ),
        _ => (
            ip4(192, 0, 2, 77),
            addresses(t, rng),
            [0x02, 0x0c, 9, 9, 9, 9],
        ),
    };
    let in_vpc: Vec<&Vf> = t
        .vfs
        .iter()
        .filter(|v| t.vpc_of_vf(v).is_some_and(|p| p.id == vpc.id))
        .collect();
    let (dst, dst_mac) = if !in_vpc.is_empty() && rng.chance(80) {
        let v = in_vpc[rng.below(in_vpc.len() as u64) as usize];
        let all: Vec<u32> = [v.primary]
            .into_iter()
            .chain(v.secondaries.clone())
            .collect();
        if rng.chance(20) {
            // For someone else, by the VF's MAC: a middlebox reached from another host.
            (addresses(t, rng), v.mac)
        } else {
            (rng.pick(&all), v.mac)
        }
    } else {
        (addresses(t, rng), [0x02, 0x0c, 8, 8, 8, 8])
    };
    let (proto, body) = l4(rng);
    let body = if body.len() > 1400 {
        body[..200].to_vec()
    } else {
        body
    };
    let ttl = rng.pick(&[64u8, 1, 0]);
    let inner = ethernet(
        dst_mac,
        inner_src_mac,
        0x0800,
        &ipv4(inner_src, dst, proto, ttl, 0x4000, false, &body),
    );
    let mut vx = vec![0x08, 0, 0, 0];
    vx.extend_from_slice(&(vni << 8).to_be_bytes());
    vx.extend_from_slice(&inner);
    let mut u = Vec::new();
    u.extend_from_slice(&50000u16.to_be_bytes());
    let port = if rng.chance(97) { 4789u16 } else { 4790 };
    u.extend_from_slice(&port.to_be_bytes());
    u.extend_from_slice(&((8 + vx.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(&vx);
    let outer_dst = if rng.chance(93) {
        t.uplink.host
    } else {
        ip4(192, 0, 2, 9)
    };
    ethernet(
        t.uplink.mac,
        t.uplink.next_hop_mac,
        0x0800,
        &ipv4(outer_src, outer_dst, 17, 64, 0x4000, false, &u),
    )
}
