//! With DPDK (`cargo test -p dpdk-bench --features dpdk`): every workload at small sizes,
//! through the same runs as the benchmark, which fail on any answer that differs between
//! our tables, DPDK's (every method) and the oracle; and the tbl8 counts DPDK's tables are
//! created with are exactly enough.
#![cfg(feature = "dpdk")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use dpdk_bench::dpdk::{self, Fib6, Lpm, Lpm6};
use dpdk_bench::encode::{as_u128, ipv4_as_u128, vrf_depth, vrf_key};
use dpdk_bench::report::{Kind, Row};
use dpdk_bench::run::{self, Ctx};
use dpdk_bench::scale::Scale;
use dpdk_bench::tbl8::{fib6_reserved, trie_groups};
use dpdk_bench::workload::Rng;
use dpdk_bench::workload::{fill_route_tables, ROUTES_PER_TABLE};
use nic_firmware::tables::lpm::{Route, RouteSlot, RouteTables};

fn ctx() -> Ctx {
    dpdk::init(Scale::TEST.eal_mb).unwrap();
    Ctx {
        scale: Scale::TEST,
        verbose: false,
    }
}

/// Every row has both sides measured and a finite ratio.
fn complete(rows: &[Row], lookups: usize, builds: usize) {
    assert_eq!(
        rows.iter().filter(|r| r.kind == Kind::Lookup).count(),
        lookups
    );
    assert_eq!(
        rows.iter().filter(|r| r.kind == Kind::Build).count(),
        builds
    );
    for r in rows {
        assert!(r.ratio().is_some_and(f64::is_finite), "{r:?}");
        assert!(r.ours_bytes > 0 && r.dpdk_bytes > 0, "{r:?}");
    }
}

#[test]
fn vrf_mix_answers_alike_in_ours_lpm6_fib6_and_lpm_per_vrf() {
    // Two key sets against rte_lpm6 and rte_fib6, one against the rte_lpm set; two builds.
    complete(&run::vrf_mix(&ctx()).unwrap(), 5, 2);
}

#[test]
fn bgp_table_answers_alike_in_ours_and_lpm() {
    complete(&run::bgp_table(&ctx()).unwrap(), 1, 1);
}

#[test]
fn mappings_answer_alike_in_ours_and_rte_hash() {
    complete(&run::mappings(&ctx()).unwrap(), 2, 1);
}

/// A few tables of the benches' mix, as (16-byte prefix, depth) with route ids.
fn wide_routes(vrfs: usize) -> Vec<Vec<Route>> {
    let mut slots = vec![RouteSlot::EMPTY; vrfs * ROUTES_PER_TABLE];
    fill_route_tables(
        &mut RouteTables::new(&mut slots, ROUTES_PER_TABLE),
        vrfs,
        &mut Rng::new(11),
    )
}

#[test]
fn tbl8_counts_are_exactly_enough() {
    ctx();
    let tables = wide_routes(4);
    let wide: Vec<([u8; 16], u8)> = tables
        .iter()
        .enumerate()
        .flat_map(|(t, rs)| {
            rs.iter()
                .map(move |r| (vrf_key(t as u16, r.prefix), vrf_depth(r.len)))
        })
        .collect();
    let n = wide.len() as u32;
    let fill6 = |tbl8s: usize| -> Result<(), String> {
        let mut l = Lpm6::new(n, tbl8s as u32)?;
        wide.iter()
            .enumerate()
            .try_for_each(|(i, (k, d))| l.add(k, *d, i as u32))
    };
    let fib = |tbl8s: usize| -> Result<(), String> {
        let mut f = Fib6::new(n, tbl8s as u32)?;
        wide.iter()
            .enumerate()
            .try_for_each(|(i, (k, d))| f.add(k, *d, i as u32))
    };
    let groups = trie_groups(wide.iter().map(|(k, d)| (as_u128(k), *d)));
    fill6(groups).unwrap();
    assert!(fill6(groups - 1).is_err(), "rte_lpm6 with one group less");
    let reserved = fib6_reserved(wide.iter().map(|(k, d)| (as_u128(k), *d)));
    fib(reserved).unwrap();
    assert!(fib(reserved - 1).is_err(), "rte_fib6 with one group less");

    let v4 = &tables[0];
    let groups = trie_groups(v4.iter().map(|r| (ipv4_as_u128(r.prefix), r.len)));
    let fill = |tbl8s: usize| -> Result<(), String> {
        let mut l = Lpm::new(v4.len() as u32, tbl8s as u32)?;
        v4.iter()
            .enumerate()
            .filter(|(_, r)| r.len > 0)
            .try_for_each(|(i, r)| l.add(r.prefix, r.len, i as u32))
    };
    fill(groups).unwrap();
    assert!(fill(groups - 1).is_err(), "rte_lpm with one group less");
}
