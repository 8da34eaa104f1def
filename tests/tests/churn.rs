//! Churn under traffic: two instances that no change touches exchange numbered frames both
//! ways, across subnets (so every frame takes a route lookup and a mapping lookup), while
//! the reconciler makes 10,000 changes to everything else on the same NIC: instances added
//! and removed on the other VFs, remote mappings added, moved and removed, the default route
//! flipped between a gateway and a blackhole, more-specific routes added and removed. Not
//! one of their frames may be lost, duplicated or delivered anywhere else, and no counter of
//! their VFs but tx/rx may move.
use host_driver::backend::sim::SimBackend;
use host_driver::reconcile::{apply, diff, State};
use host_driver::tables::{
    GatewaySpec, MappingLocationSpec as Loc, RouteTarget as T, SubnetSpec, UplinkSpec, VfSpec,
    VpcSpec,
};
use host_driver::{GatewayKind, PfDriver, StatsFunction};
use hw_sim::{Nic, SimConfig};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::wire::udp_frame;
use vf_driver::VfDriver;

const VNI: u32 = 100;
/// Frames one side may have in flight (the rings hold 63).
const WINDOW: u64 = 16;
const CHANGES: usize = 10_000;

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn mac_of(a: Ipv4Addr) -> [u8; 6] {
    let [_, b, c, d] = a.octets();
    [2, 0x64, 10, b, c, d]
}

fn gateway_mac(subnet: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0xfe, subnet]
}

/// One side of the traffic: its address, its subnet and its peer's address.
struct Side {
    ip: Ipv4Addr,
    subnet: u8,
    peer: Ipv4Addr,
}

/// What a side saw: (sequence numbers from the peer, frames that were not the peer's).
type Seen = (Vec<u64>, u64);

/// Sends numbered frames to the peer while it can, taking what arrives, until `stop`.
fn run_side(
    mut vm: VfDriver,
    me: Side,
    sent: Arc<AtomicU64>,
    peer_got: Arc<AtomicU64>,
    got: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Seen {
    let mut seen = Vec::new();
    let mut strangers = 0;
    let mut take = |frame: Vec<u8>, seen: &mut Vec<u64>| {
        // Ethernet 14, IPv4 20, UDP 8, then the number.
        let from = frame
            .get(26..30)
            .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        let to = frame
            .get(30..34)
            .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        match (from, to, frame.get(42..50)) {
            (Some(f), Some(t), Some(n)) if f == me.peer && t == me.ip => {
                seen.push(u64::from_be_bytes(n.try_into().unwrap()));
                got.fetch_add(1, Ordering::SeqCst);
            }
            _ => strangers += 1,
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let n = sent.load(Ordering::SeqCst);
        if n - peer_got.load(Ordering::SeqCst) < WINDOW {
            let frame = udp_frame(
                gateway_mac(me.subnet),
                mac_of(me.ip),
                me.ip,
                me.peer,
                &n.to_be_bytes(),
            );
            vm.send(&frame).expect("the VF takes the frame");
            sent.fetch_add(1, Ordering::SeqCst);
        }
        while let Some(frame) = vm.try_recv() {
            take(frame, &mut seen);
        }
        if sent.load(Ordering::SeqCst) - peer_got.load(Ordering::SeqCst) >= WINDOW {
            if let Some(frame) = vm.recv(Duration::from_millis(1)) {
                take(frame, &mut seen);
            }
        }
    }
    // What is still on its way.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(frame) = vm.recv(Duration::from_millis(20)) {
            take(frame, &mut seen);
        }
    }
    (seen, strangers)
}

/// The NIC's state: one VPC, a gateway, a route table with a default route for subnet 1;
/// A (VF 0, 10.0.1.10, subnet 1) and B (VF 1, 10.0.2.11, subnet 2 on the main table).
fn base() -> State {
    let mut s = State {
        uplink: Some(UplinkSpec {
            mac: [2, 0, 0, 0, 0, 0xaa],
            next_hop_mac: [2, 0, 0, 0, 0, 0xbb],
            underlay_ip: ip(192, 0, 2, 1),
            mtu: 9216,
        }),
        ..State::default()
    };
    s.vpcs.insert(
        0,
        VpcSpec {
            id: 0,
            vni: VNI,
            cidr: (ip(10, 0, 0, 0), 16),
            main_route_table: Some(0),
            dns: vec![ip(10, 0, 0, 2)],
            domain: None,
        },
    );
    s.gateways.insert(
        0,
        GatewaySpec {
            id: 0,
            kind: GatewayKind::Internet,
            underlay_ip: ip(203, 0, 113, 1),
            mac: [2, 0, 0, 0, 1, 1],
        },
    );
    s.route_tables.insert(0, 0);
    s.route_tables.insert(1, 0);
    s.routes.insert((1, (ip(0, 0, 0, 0), 0)), T::Gateway(0));
    for (id, net, table) in [(1u16, 1u8, Some(1u16)), (2, 2, None), (3, 3, None)] {
        s.subnets.insert(
            id,
            SubnetSpec {
                id,
                vpc_id: 0,
                cidr: (ip(10, 0, net, 0), 24),
                route_table: table,
                gateway_mac: gateway_mac(net),
            },
        );
    }
    for (vf, subnet, addr) in [(0u16, 1u16, ip(10, 0, 1, 10)), (1, 2, ip(10, 0, 2, 11))] {
        s.vfs.insert(
            vf,
            VfSpec {
                vf,
                subnet_id: subnet,
                mac: mac_of(addr),
                primary_ip: addr,
                src_dst_check: true,
            },
        );
        s.mappings
            .insert((VNI, addr), (mac_of(addr), Loc::LocalVf(vf)));
    }
    s
}

/// One round of churn on everything but A and B.
fn churn(s: &mut State, round: usize) {
    let r = round as u64;
    // An instance on VF 2..7 in subnet 3 comes or goes.
    let vf = 2 + (r % 6) as u16;
    let addr = ip(10, 0, 3, 20 + vf as u8);
    if s.vfs.remove(&vf).is_some() {
        s.mappings.remove(&(VNI, addr));
    } else {
        s.vfs.insert(
            vf,
            VfSpec {
                vf,
                subnet_id: 3,
                mac: mac_of(addr),
                primary_ip: addr,
                src_dst_check: !r.is_multiple_of(3),
            },
        );
        s.mappings
            .insert((VNI, addr), (mac_of(addr), Loc::LocalVf(vf)));
    }
    // A remote instance comes, moves between hosts, or goes.
    let remote = ip(10, 0, 3, 100 + (r % 50) as u8);
    match s.mappings.get(&(VNI, remote)) {
        None => {
            s.mappings.insert(
                (VNI, remote),
                (mac_of(remote), Loc::Remote(ip(192, 0, 2, 2))),
            );
        }
        Some(&(_, Loc::Remote(h))) if h == ip(192, 0, 2, 2) => {
            s.mappings.insert(
                (VNI, remote),
                (mac_of(remote), Loc::Remote(ip(192, 0, 2, 3))),
            );
        }
        Some(_) => {
            s.mappings.remove(&(VNI, remote));
        }
    }
    // The default route of A's subnet flips; a more-specific route comes or goes.
    let default = (1, (ip(0, 0, 0, 0), 0));
    let flipped = match s.routes.get(&default) {
        Some(T::Gateway(_)) => T::Blackhole,
        _ => T::Gateway(0),
    };
    s.routes.insert(default, flipped);
    let specific = (1, (ip(172, 16, (r % 32) as u8, 0), 24));
    if s.routes.remove(&specific).is_none() {
        s.routes.insert(specific, T::Blackhole);
    }
}

#[test]
fn traffic_between_untouched_instances_survives_10000_changes() {
    let board = Nic::start(SimConfig::default()).expect("simulator starts");
    let (port_a, port_b) = (board.vf(0).unwrap(), board.vf(1).unwrap());
    let driver = PfDriver::open(Box::new(SimBackend::on(board))).expect("driver opens");
    let mut current = base();
    apply(&driver, &diff(&current, &State::default()), |_, _| {}).expect("base state");

    let stop = Arc::new(AtomicBool::new(false));
    let counters: Vec<Arc<AtomicU64>> = (0..4).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let (sent_a, got_a, sent_b, got_b) = (
        counters[0].clone(),
        counters[1].clone(),
        counters[2].clone(),
        counters[3].clone(),
    );
    let vm_a = VfDriver::attach(port_a, 64).expect("A's VF driver");
    let vm_b = VfDriver::attach(port_b, 64).expect("B's VF driver");
    let a = {
        let (sent, peer_got, got, stop) =
            (sent_a.clone(), got_b.clone(), got_a.clone(), stop.clone());
        std::thread::spawn(move || {
            let me = Side {
                ip: ip(10, 0, 1, 10),
                subnet: 1,
                peer: ip(10, 0, 2, 11),
            };
            run_side(vm_a, me, sent, peer_got, got, stop)
        })
    };
    let b = {
        let (sent, peer_got, got, stop) =
            (sent_b.clone(), got_a.clone(), got_b.clone(), stop.clone());
        std::thread::spawn(move || {
            let me = Side {
                ip: ip(10, 0, 2, 11),
                subnet: 2,
                peer: ip(10, 0, 1, 10),
            };
            run_side(vm_b, me, sent, peer_got, got, stop)
        })
    };

    let started = Instant::now();
    let mut made = 0;
    let mut round = 0;
    while made < CHANGES {
        let mut next = current.clone();
        churn(&mut next, round);
        let changes = diff(&next, &current);
        apply(&driver, &changes, |_, _| {}).unwrap_or_else(|e| panic!("round {round}: {e}"));
        made += changes.len();
        current = next;
        round += 1;
    }
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (seen_by_a, strangers_a) = a.join().expect("A's thread");
    let (seen_by_b, strangers_b) = b.join().expect("B's thread");

    // The NIC holds exactly what the reconciler meant.
    let held = State::from_tables(&driver.read_tables().unwrap()).unwrap();
    assert_eq!(held, current);
    for (who, seen, sent, strangers) in [
        ("A", &seen_by_a, sent_b.load(Ordering::SeqCst), strangers_a),
        ("B", &seen_by_b, sent_a.load(Ordering::SeqCst), strangers_b),
    ] {
        let unique: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{who} got duplicates");
        let expected: BTreeSet<u64> = (0..sent).collect();
        let lost = expected.difference(&unique).count();
        eprintln!(
            "{who}: {} of {sent} frames from its peer during {made} changes in {round} rounds \
             ({took:?}); {lost} lost, {strangers} misdelivered",
            seen.len()
        );
        assert!(sent > 1000, "{who}'s peer sent only {sent} frames");
        assert_eq!(lost, 0, "{who} lost frames");
        assert_eq!(strangers, 0, "{who} got frames not from its peer");
    }
    for vf in [0, 1] {
        let c = driver.stats(StatsFunction::Vf(vf)).unwrap();
        assert_eq!(c.drops(), 0, "vf{vf} dropped frames: {c:?}");
    }
}
