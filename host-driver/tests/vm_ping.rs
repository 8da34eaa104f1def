//! Scratch: two real Linux stacks ping through the simulated NIC.
use host_driver::backend::sim::SimBackend;
use host_driver::vm::{Vm, VmSpec};
use host_driver::*;
use hw_sim::guest::VfGuest;
use hw_sim::SimConfig;
use std::net::Ipv4Addr;

#[test]
fn ping_between_two_vms() {
    if !nix_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let backend = SimBackend::start(SimConfig::default()).unwrap();
    let vfs: Vec<_> = (0..3).map(|i| backend.nic().vf(i).unwrap()).collect();
    let uplink = backend.nic().uplink();
    let d = PfDriver::open(Box::new(backend)).unwrap();
    d.add_vpc(&VpcSpec {
        id: 0,
        vni: 100,
        cidr: (Ipv4Addr::new(10, 0, 0, 0), 16),
        main_route_table: Some(0),
        dns: vec![],
        domain: None,
    })
    .unwrap();
    d.add_route_table(0, 0).unwrap();
    d.add_subnet(&SubnetSpec {
        id: 0,
        vpc_id: 0,
        cidr: (Ipv4Addr::new(10, 0, 1, 0), 24),
        route_table: None,
        gateway_mac: [2, 0xfe, 0, 0, 1, 1],
    })
    .unwrap();
    d.add_subnet(&SubnetSpec {
        id: 1,
        vpc_id: 0,
        cidr: (Ipv4Addr::new(10, 0, 2, 0), 24),
        route_table: None,
        gateway_mac: [2, 0xfe, 0, 0, 2, 1],
    })
    .unwrap();
    let inst = [
        (
            "pa",
            0u16,
            0u16,
            [2, 0, 10, 0, 1, 10],
            Ipv4Addr::new(10, 0, 1, 10),
        ),
        (
            "pb",
            1,
            0,
            [2, 0, 10, 0, 1, 11],
            Ipv4Addr::new(10, 0, 1, 11),
        ),
        (
            "pc",
            2,
            1,
            [2, 0, 10, 0, 2, 20],
            Ipv4Addr::new(10, 0, 2, 20),
        ),
    ];
    let mut vms = vec![];
    for (name, vf, subnet, mac, ip) in inst {
        d.set_vf(&VfSpec {
            vf,
            subnet_id: subnet,
            mac,
            primary_ip: ip,
            src_dst_check: true,
        })
        .unwrap();
        d.add_mapping(100, ip, mac, MappingLocationSpec::LocalVf(vf))
            .unwrap();
        let guest = VfGuest::attach(vfs[vf as usize].clone(), 256).unwrap();
        let gw = Ipv4Addr::from(u32::from(ip) & 0xffffff00 | 1);
        vms.push(
            Vm::boot(
                &VmSpec {
                    name: name.into(),
                    mac,
                    addr: Some((ip, 24, gw)),
                    mtu: 9001,
                },
                guest,
                None,
            )
            .unwrap(),
        );
    }
    // The underlay, the NIC's uplink on it, and an internet gateway.
    use host_driver::vm::gateway::{GatewayNs, Neighbour};
    use host_driver::vm::underlay::{RouterAddrs, Underlay};
    let mut ul = Underlay::create(RouterAddrs {
        hosts: (Ipv4Addr::new(192, 0, 2, 254), 24),
        hosts_mac: [0x0e, 0, 192, 0, 2, 254],
        gateways: (Ipv4Addr::new(203, 0, 113, 254), 24),
    })
    .unwrap();
    ul.attach_nic("ul-h1", uplink).unwrap();
    d.set_uplink(&UplinkSpec {
        mac: [0x0e, 0, 192, 0, 2, 1],
        next_hop_mac: [0x0e, 0, 192, 0, 2, 254],
        underlay_ip: Ipv4Addr::new(192, 0, 2, 1),
        mtu: 9216,
    })
    .unwrap();
    let igw_mac = [0x0a, 0, 203, 0, 113, 1];
    d.add_gateway(&GatewaySpec {
        id: 0,
        kind: GatewayKind::Internet,
        underlay_ip: Ipv4Addr::new(203, 0, 113, 1),
        mac: igw_mac,
    })
    .unwrap();
    d.add_route(
        0,
        (Ipv4Addr::new(0, 0, 0, 0), 0),
        RouteTargetSpec::Gateway(0),
    )
    .unwrap();
    let igw = GatewayNs::create(
        "igw",
        &mut ul,
        (Ipv4Addr::new(203, 0, 113, 1), 24),
        &[(Ipv4Addr::new(198, 51, 100, 1), 24)],
    )
    .unwrap();
    let neigh: Vec<Neighbour> = inst
        .iter()
        .map(|i| Neighbour {
            ip: i.4,
            mac: i.3,
            host: Ipv4Addr::new(192, 0, 2, 1),
        })
        .collect();
    igw.add_vpc(100, igw_mac, (Ipv4Addr::new(10, 0, 0, 0), 16), &neigh)
        .unwrap();
    for target in ["10.0.1.11", "10.0.2.20", "10.0.1.1", "198.51.100.1"] {
        let out = vms[0]
            .exec("ping", &["-c", "2", "-W", "2", target])
            .unwrap();
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success(), "ping {target}");
    }
    let out = vms[0].exec("ip", &["neigh"]).unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{:?}", d.stats(StatsFunction::Vf(0)).unwrap());
    eprintln!("{:?}", d.stats(StatsFunction::Uplink).unwrap());
    drop(igw);
}

fn nix_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
