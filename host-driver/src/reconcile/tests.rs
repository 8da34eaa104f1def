use super::Kind;
use super::*;
use crate::tables::{GatewaySpec, MappingLocationSpec as Loc, RouteTarget as T};
use std::net::Ipv4Addr;

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// Two VPCs, a gateway, a route table with every target, two subnets, three VFs (one with a
/// secondary address), local and remote mappings.
fn topology() -> State {
    let mut s = State {
        uplink: Some(UplinkSpec {
            mac: [2, 0, 0, 0, 0, 0xaa],
            next_hop_mac: [2, 0, 0, 0, 0, 0xbb],
            underlay_ip: ip(192, 0, 2, 1),
            mtu: 9216,
        }),
        ..State::default()
    };
    for (id, vni, net) in [(0u16, 100u32, 0u8), (1, 200, 9)] {
        s.vpcs.insert(
            id,
            VpcSpec {
                id,
                vni,
                cidr: (ip(10, net, 0, 0), 16),
                main_route_table: Some(id),
                dns: vec![ip(10, net, 0, 2)],
                domain: None,
            },
        );
        s.route_tables.insert(id, id);
    }
    s.gateways.insert(
        0,
        GatewaySpec {
            id: 0,
            kind: GatewayKind::Internet,
            underlay_ip: ip(192, 0, 2, 100),
            mac: [2, 0, 0, 0, 1, 0],
        },
    );
    s.route_tables.insert(2, 0);
    s.routes.insert((2, (ip(0, 0, 0, 0), 0)), T::Gateway(0));
    s.routes.insert((2, (ip(10, 9, 0, 0), 16)), T::Peering(1));
    s.routes.insert((2, (ip(10, 0, 8, 0), 24)), T::Blackhole);
    s.routes
        .insert((2, (ip(10, 0, 7, 0), 24)), T::Instance(ip(10, 0, 1, 12)));
    for (id, third, table) in [(0u16, 1u8, Some(2u16)), (1, 2, None)] {
        s.subnets.insert(
            id,
            SubnetSpec {
                id,
                vpc_id: 0,
                cidr: (ip(10, 0, third, 0), 24),
                route_table: table,
                gateway_mac: [2, 0, 0, 0, 2, third],
            },
        );
    }
    for (vf, subnet, last) in [(0u16, 0u16, 10u8), (1, 0, 12), (2, 1, 20)] {
        let third = [1, 2][usize::from(subnet)];
        let mac = [2, 0x64, 10, 0, third, last];
        s.vfs.insert(
            vf,
            VfSpec {
                vf,
                subnet_id: subnet,
                mac,
                primary_ip: ip(10, 0, third, last),
                src_dst_check: vf != 1,
            },
        );
        s.mappings
            .insert((100, ip(10, 0, third, last)), (mac, Loc::LocalVf(vf)));
    }
    s.vf_addrs.insert((2, ip(10, 0, 2, 21)));
    s.mappings.insert(
        (100, ip(10, 0, 2, 21)),
        ([2, 0x64, 10, 0, 2, 20], Loc::LocalVf(2)),
    );
    s.mappings.insert(
        (100, ip(10, 0, 1, 11)),
        ([2, 0x64, 10, 0, 1, 11], Loc::Remote(ip(192, 0, 2, 2))),
    );
    s
}

/// A simulated NIC and its driver.
fn nic() -> PfDriver {
    let backend = crate::backend::sim::SimBackend::start(hw_sim::SimConfig {
        num_vfs: 4,
        ..hw_sim::SimConfig::default()
    })
    .unwrap();
    PfDriver::open(Box::new(backend)).unwrap()
}

fn read(d: &PfDriver) -> State {
    State::from_tables(&d.read_tables().unwrap()).unwrap()
}

/// Reconciles the NIC to `desired` and checks it then holds exactly that, and that a
/// second reconciliation has nothing to do.
fn converge(d: &PfDriver, desired: &State) -> Vec<Change> {
    let changes = diff(desired, &read(d));
    apply(d, &changes, |_, _| {}).unwrap_or_else(|e| panic!("{e}\nplan: {changes:#?}"));
    let now = read(d);
    assert_eq!(&now, desired, "after {changes:#?}");
    assert!(diff(desired, &now).is_empty());
    changes
}

use crate::nic::PfDriver;

#[test]
fn the_same_state_needs_no_change() {
    let s = topology();
    assert!(diff(&s, &s).is_empty());
    assert!(diff(&State::default(), &State::default()).is_empty());
}

#[test]
fn a_domain_the_nic_cannot_report_is_taken_as_wanted_and_one_it_reports_is_compared() {
    let mut wanted = topology();
    let held = wanted.clone();
    if let Some(v) = wanted.vpcs.get_mut(&0) {
        v.domain = Some("prod.internal".into());
    }
    let older = State {
        domains_unknown: true,
        ..held.clone()
    };
    assert!(diff(&wanted, &older).is_empty());
    let changes = diff(&wanted, &held);
    assert!(
        matches!(&changes[..], [Change::ReplaceVpc(v)] if v.domain.as_deref() == Some("prod.internal")),
        "{changes:?}"
    );
}

#[test]
fn a_fresh_nic_is_programmed_by_adding_everything_in_dependency_order() {
    let d = nic();
    let s = topology();
    let changes = converge(&d, &s);
    assert_eq!(changes.len(), s.len());
    assert!(changes
        .iter()
        .all(|c| c.kind() == Kind::Add || c.object() == "uplink"));
    let pos = |object: &str| changes.iter().position(|c| c.object() == object).unwrap();
    assert!(pos("vpc") < pos("route_table") && pos("route_table") < pos("subnet"));
    assert!(pos("vf") < pos("mapping") && pos("mapping") < pos("route"));
}

/// A named change to a state.
type Variant = (&'static str, Box<dyn Fn(&mut State)>);

#[test]
fn every_kind_of_change_converges_on_the_simulator() {
    let d = nic();
    let base = topology();
    converge(&d, &base);
    let variants: Vec<Variant> = vec![
        (
            "route target",
            Box::new(|s| {
                s.routes.insert((2, (ip(0, 0, 0, 0), 0)), T::Blackhole);
            }),
        ),
        (
            "route removed",
            Box::new(|s| {
                s.routes.remove(&(2, (ip(10, 0, 8, 0), 24)));
            }),
        ),
        (
            "instance moved away",
            Box::new(|s| {
                s.vfs.remove(&1);
                s.mappings.insert(
                    (100, ip(10, 0, 1, 12)),
                    ([2, 0x64, 10, 0, 1, 12], Loc::Remote(ip(192, 0, 2, 3))),
                );
            }),
        ),
        (
            "instance moved here",
            Box::new(|s| {
                let mac = [2, 0x64, 10, 0, 1, 11];
                s.vfs.insert(
                    3,
                    VfSpec {
                        vf: 3,
                        subnet_id: 0,
                        mac,
                        primary_ip: ip(10, 0, 1, 11),
                        src_dst_check: true,
                    },
                );
                s.mappings
                    .insert((100, ip(10, 0, 1, 11)), (mac, Loc::LocalVf(3)));
            }),
        ),
        (
            "secondary address",
            Box::new(|s| {
                s.vf_addrs.remove(&(2, ip(10, 0, 2, 21)));
                s.mappings.remove(&(100, ip(10, 0, 2, 21)));
                s.vf_addrs.insert((0, ip(10, 0, 1, 99)));
                s.mappings.insert(
                    (100, ip(10, 0, 1, 99)),
                    ([2, 0x64, 10, 0, 1, 10], Loc::LocalVf(0)),
                );
            }),
        ),
        (
            "source/destination check",
            Box::new(|s| {
                if let Some(v) = s.vfs.get_mut(&1) {
                    v.src_dst_check = true;
                }
            }),
        ),
        (
            "subnet to the main table",
            Box::new(|s| {
                if let Some(n) = s.subnets.get_mut(&0) {
                    n.route_table = None;
                }
            }),
        ),
        (
            "VPC removed",
            Box::new(|s| {
                s.vpcs.remove(&1);
                s.route_tables.remove(&1);
                s.routes.remove(&(2, (ip(10, 9, 0, 0), 16)));
            }),
        ),
        (
            "instance readdressed in place",
            Box::new(|s| {
                let mac = [2, 0x64, 10, 0, 1, 13];
                if let Some(v) = s.vfs.get_mut(&0) {
                    v.primary_ip = ip(10, 0, 1, 13);
                    v.mac = mac;
                }
                s.mappings.remove(&(100, ip(10, 0, 1, 10)));
                s.mappings
                    .insert((100, ip(10, 0, 1, 13)), (mac, Loc::LocalVf(0)));
            }),
        ),
        (
            "gateway moved",
            Box::new(|s| {
                if let Some(g) = s.gateways.get_mut(&0) {
                    g.underlay_ip = ip(192, 0, 2, 101);
                }
            }),
        ),
        (
            // Read back since ABI 1.7: before, a changed domain was never applied.
            "VPC DNS domain",
            Box::new(|s| {
                if let Some(v) = s.vpcs.get_mut(&1) {
                    v.domain = Some("lab.internal".into());
                }
            }),
        ),
        (
            "gateway and its routes removed",
            Box::new(|s| {
                s.gateways.clear();
                s.routes.remove(&(2, (ip(0, 0, 0, 0), 0)));
            }),
        ),
    ];
    for (what, change) in &variants {
        let mut next = base.clone();
        change(&mut next);
        let there = converge(&d, &next);
        assert!(!there.is_empty(), "{what}: no change");
        let back = converge(&d, &base);
        assert!(!back.is_empty(), "{what}: no change back");
    }
    // All at once, and back.
    let mut all = base.clone();
    for (_, change) in &variants {
        change(&mut all);
    }
    converge(&d, &all);
    converge(&d, &base);
    // Everything goes but the uplink, which no command unsets.
    converge(
        &d,
        &State {
            uplink: base.uplink.clone(),
            ..State::default()
        },
    );
}

#[test]
fn a_route_goes_before_what_it_points_at_and_a_mapping_comes_before_its_route() {
    let base = topology();
    let mut next = base.clone();
    next.gateways.clear();
    next.routes.remove(&(2, (ip(0, 0, 0, 0), 0)));
    let changes = diff(&next, &base);
    let route = changes
        .iter()
        .position(|c| matches!(c, Change::DelRoute { .. }))
        .unwrap();
    let gateway = changes
        .iter()
        .position(|c| matches!(c, Change::DelGateway(0)))
        .unwrap();
    assert!(route < gateway, "{changes:#?}");

    let changes = diff(&base, &State::default());
    let mapping = changes
        .iter()
        .position(|c| matches!(c, Change::AddMapping { ip: a, .. } if *a == ip(10, 0, 1, 12)))
        .unwrap();
    let eni_route = changes
        .iter()
        .position(|c| {
            matches!(
                c,
                Change::AddRoute {
                    target: T::Instance(_),
                    ..
                }
            )
        })
        .unwrap();
    assert!(mapping < eni_route, "{changes:#?}");
}

#[test]
fn a_refused_change_says_what_was_applied_and_the_next_reconciliation_repairs() {
    let d = nic();
    let mut s = topology();
    // A route into a table that is never added: the firmware refuses it.
    s.routes.insert((7, (ip(10, 0, 5, 0), 24)), T::Blackhole);
    let changes = diff(&s, &read(&d));
    let err = apply(&d, &changes, |_, _| {}).unwrap_err();
    assert!(
        err.to_string().contains("route 10.0.5.0/24 in table 7"),
        "{err}"
    );
    assert_eq!(changes[err.applied], err.change);
    s.routes.remove(&(7, (ip(10, 0, 5, 0), 24)));
    converge(&d, &s);
}

#[test]
fn a_vf_given_to_another_instance_first_loses_what_led_to_the_old_one() {
    let base = topology();
    let mut next = base.clone();
    // VF 1's instance (10.0.1.12) moves to another host; VF 1 serves a new instance.
    let mac = [2, 0x64, 10, 0, 1, 50];
    next.vfs.insert(
        1,
        VfSpec {
            vf: 1,
            subnet_id: 0,
            mac,
            primary_ip: ip(10, 0, 1, 50),
            src_dst_check: true,
        },
    );
    next.mappings
        .insert((100, ip(10, 0, 1, 50)), (mac, Loc::LocalVf(1)));
    let moved = ([2, 0x64, 10, 0, 1, 12], Loc::Remote(ip(192, 0, 2, 3)));
    next.mappings.insert((100, ip(10, 0, 1, 12)), moved);
    let changes = diff(&next, &base);
    let at = |f: &dyn Fn(&Change) -> bool| changes.iter().position(f).unwrap();
    let old_moves =
        at(&|c| matches!(c, Change::ReplaceMapping { ip: a, .. } if *a == ip(10, 0, 1, 12)));
    let vf = at(&|c| matches!(c, Change::ReplaceVf(v) if v.vf == 1));
    let new_mapping =
        at(&|c| matches!(c, Change::AddMapping { ip: a, .. } if *a == ip(10, 0, 1, 50)));
    assert!(old_moves < vf && vf < new_mapping, "{changes:#?}");
    assert_eq!(
        changes
            .iter()
            .filter(|c| matches!(c, Change::ReplaceMapping { ip: a, .. } if *a == ip(10, 0, 1, 12)))
            .count(),
        1,
        "moved once"
    );
    let d = nic();
    converge(&d, &base);
    converge(&d, &next);
}

/// A state fits a NIC whose tables hold exactly what it needs, the firmware's own entries
/// counted (each table's local route; each VPC's anchor and each subnet's gateway and
/// broadcast mappings); one entry less in any table is refused, naming its register; a
/// capacity an older device does not report (CAP_UNDERLAYS before ABI 1.4, CAP_GATEWAYS
/// before 1.1) is not checked.
#[test]
fn a_state_fits_exactly_and_one_entry_less_anywhere_is_refused_by_register() {
    use crate::bringup::DeviceInfo;
    let s = topology();
    let count = |n: usize| u32::try_from(n).unwrap();
    let mut per_table = BTreeMap::<u16, usize>::new();
    for (t, _) in s.routes.keys() {
        *per_table.entry(*t).or_default() += 1;
    }
    let hosts = s.remote_hosts();
    assert!(!hosts.is_empty() && !s.gateways.is_empty() && !per_table.is_empty());
    let exact = DeviceInfo {
        device: "test".into(),
        abi_major: 1,
        abi_minor: 7,
        caps: shared_regs::pf::Caps::empty(),
        num_vfs: 8,
        vpcs: count(s.vpcs.len()),
        subnets: count(s.subnets.len()),
        route_tables: count(s.route_tables.len()),
        routes_per_table: count(per_table.values().max().unwrap() + 1),
        mappings: count(s.mappings.len() + s.vpcs.len() + 2 * s.subnets.len()),
        adminq_entries: 64,
        gateways: count(s.gateways.len()),
        underlays: count(hosts.len()),
    };
    assert_eq!(s.fits(&exact), Ok(()));
    let less = |f: &dyn Fn(&mut DeviceInfo)| {
        let mut info = exact.clone();
        f(&mut info);
        s.fits(&info).unwrap_err()
    };
    for (register, err) in [
        ("CAP_VPCS", less(&|i| i.vpcs -= 1)),
        ("CAP_SUBNETS", less(&|i| i.subnets -= 1)),
        ("CAP_ROUTE_TABLES", less(&|i| i.route_tables -= 1)),
        ("CAP_ROUTES", less(&|i| i.routes_per_table -= 1)),
        ("CAP_MAPPINGS", less(&|i| i.mappings -= 1)),
        ("CAP_GATEWAYS", less(&|i| i.gateways -= 1)),
        ("CAP_UNDERLAYS", less(&|i| i.underlays -= 1)),
    ] {
        assert_eq!(err.register, register, "{err}");
        assert_eq!(err.needs, err.holds as usize + 1, "{err}");
        assert!(err.to_string().ends_with(&format!("({register})")), "{err}");
    }
    let older = DeviceInfo {
        abi_minor: 0,
        gateways: 0,
        underlays: 0,
        ..exact.clone()
    };
    assert_eq!(s.fits(&older), Ok(()));
    let err = s
        .fits(&DeviceInfo {
            abi_minor: 4,
            underlays: 0,
            ..exact.clone()
        })
        .unwrap_err();
    assert_eq!(err.register, "CAP_UNDERLAYS");
}
