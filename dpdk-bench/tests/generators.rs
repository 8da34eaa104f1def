//! Without DPDK: the oracle agrees with the linear scan, and our tables agree with the
//! oracle on every workload.
// Test code may panic and index freely.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use dpdk_bench::oracle::{LpmOracle, MappingOracle};
use dpdk_bench::ours;
use dpdk_bench::scale::Scale;
use dpdk_bench::workload::bgp::{bgp_keys, bgp_routes};
use dpdk_bench::workload::{fill_route_tables, lpm_keys, ROUTES_PER_TABLE};
use dpdk_bench::workload::{mapping_keys, mapping_value, HOSTS};
use dpdk_bench::workload::{Rng, RouteIds};
use nic_firmware::tables::lpm::{prefix_mask, RouteSlot, RouteTables};
use nic_firmware::tables::mapping::{MappingBucket, MappingTable, MappingTags, UnderlaySlot};
use nic_firmware::workload::longest_match;

const S: Scale = Scale::TEST;

#[test]
fn oracle_agrees_with_the_linear_scan() {
    let mut slots = vec![RouteSlot::EMPTY; S.vrfs * ROUTES_PER_TABLE];
    let mut rng = Rng::new(1);
    let tables = fill_route_tables(
        &mut RouteTables::new(&mut slots, ROUTES_PER_TABLE),
        S.vrfs,
        &mut rng,
    );
    let oracle = LpmOracle::new(&tables);
    for (t, ip) in lpm_keys(&tables, 2000, &mut rng) {
        let t = usize::from(t);
        assert_eq!(oracle.lookup(t, ip), longest_match(&tables[t], ip));
    }
}

#[test]
fn our_route_tables_agree_with_the_oracle_on_the_vrf_mix() {
    let mut slots = vec![RouteSlot::EMPTY; S.vrfs * ROUTES_PER_TABLE];
    let mut rt = RouteTables::new(&mut slots, ROUTES_PER_TABLE);
    let mut rng = Rng::new(1);
    let tables = fill_route_tables(&mut rt, S.vrfs, &mut rng);
    let oracle = LpmOracle::new(&tables);
    let cold = lpm_keys(&tables, S.keys, &mut rng);
    let hot = lpm_keys(&tables[..S.hot_vrfs], S.keys, &mut rng);
    for keys in [&cold, &hot] {
        let batch = ours::lpm_answers(&rt, keys, true);
        assert_eq!(batch, ours::lpm_answers(&rt, keys, false));
        for (&(t, ip), a) in keys.iter().zip(&batch) {
            assert_eq!(*a, oracle.lookup(usize::from(t), ip), "key ({t}, {ip:#x})");
        }
    }
    // Route ids name each route of each table once.
    let ids = RouteIds::new(tables);
    for (t, i, r) in ids.iter() {
        assert_eq!(ids.route(ids.id(t, i)), Some((t, r)));
    }
    assert_eq!(ids.route(ids.len()), None);
}

#[test]
fn bgp_table_is_realistic_and_ours_agrees_with_the_oracle() {
    let n = S.bgp_routes;
    let mut rng = Rng::new(3);
    let routes = bgp_routes(n, &mut rng);
    assert_eq!(routes, bgp_routes(n, &mut Rng::new(3)), "deterministic");
    let share = |f: &dyn Fn(u8) -> bool| routes.iter().filter(|r| f(r.len)).count() * 100 / n;
    assert!(
        (55..=65).contains(&share(&|l| l == 24)),
        "/24: {}%",
        share(&|l| l == 24)
    );
    assert!((25..=40).contains(&share(&|l| (16..=23).contains(&l))));
    assert!(share(&|l| l > 24) < 5);
    let mut distinct: Vec<_> = routes.iter().map(|r| (r.prefix, r.len)).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), n);
    assert!(routes.iter().all(|r| r.prefix & !prefix_mask(r.len) == 0));
    assert!(routes
        .iter()
        .all(|r| r.prefix >> 24 != 10 && r.prefix < 0xe000_0000));

    let keys: Vec<(u16, u32)> = bgp_keys(&routes, S.keys, &mut rng)
        .into_iter()
        .map(|ip| (0, ip))
        .collect();
    let mut slots = vec![RouteSlot::EMPTY; n];
    let mut rt = RouteTables::new(&mut slots, n);
    for r in &routes {
        rt.insert(0, *r).unwrap();
    }
    let oracle = LpmOracle::new(std::slice::from_ref(&routes));
    let batch = ours::lpm_answers(&rt, &keys, true);
    assert_eq!(batch, ours::lpm_answers(&rt, &keys, false));
    let mut hits = 0;
    for (&(_, ip), a) in keys.iter().zip(&batch) {
        assert_eq!(*a, oracle.lookup(0, ip), "key {ip:#x}");
        hits += usize::from(a.is_some());
    }
    // 75 % of the keys are drawn inside a route (and a few uniform ones hit too).
    assert!(hits * 100 / keys.len() >= 70, "{hits} hits");
}

#[test]
fn our_mapping_table_agrees_with_the_oracle_at_the_benches_load() {
    let n = S.mappings();
    assert_eq!(Scale::FULL.mappings(), 1_000_000);
    let mk = mapping_keys(n, S.keys, &mut Rng::new(2));
    let mut storage = vec![MappingBucket::EMPTY; S.mapping_slots / MappingTable::SLOTS_PER_BUCKET];
    let mut tags = vec![MappingTags::EMPTY; MappingTags::lines_for(storage.len())];
    let mut underlays = vec![UnderlaySlot::EMPTY; 2 * HOSTS as usize];
    let mut table = MappingTable::new(&mut storage, &mut tags, &mut underlays);
    for (i, k) in mk.stored.iter().enumerate() {
        table.insert(*k, mapping_value(i as u32)).unwrap();
    }
    assert_eq!(table.len(), n);
    let oracle = MappingOracle::new(&mk.stored);
    for (keys, hit) in [(&mk.hits, true), (&mk.misses, false)] {
        let batch = ours::mapping_answers(&table, keys, true);
        assert_eq!(batch, ours::mapping_answers(&table, keys, false));
        for (k, a) in keys.iter().zip(&batch) {
            assert_eq!(oracle.get(*k).is_some(), hit);
            assert_eq!(
                *a,
                oracle.get(*k).map(|i| mapping_value(i as u32)),
                "key {k:?}"
            );
        }
    }
}

#[test]
fn timing_reports_a_positive_cost_per_contender() {
    let mut sum = || (0..1000u64).map(std::hint::black_box).sum();
    let t = dpdk_bench::timing::race(2, 1000, &mut [&mut sum, &mut || 2]);
    assert_eq!(t.len(), 2);
    assert!(t.iter().all(|ns| ns.is_finite() && *ns >= 0.0), "{t:?}");
}
