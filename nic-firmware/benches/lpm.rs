//! `lpm`: longest-prefix-match lookups per second over 4,096 route tables of up to 1,000
//! routes, on random (table, address) keys, beside a baseline measured in the same run.
//! See benches/README.md for the route and key mix and the choice of baseline.
// Bench code, like the crate's tests, may panic on a broken set-up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod common;

use common::*;
use criterion::Throughput;
use nic_firmware::tables::lpm::{Route, RouteSlot, RouteTables};
use std::time::Instant;

/// Folds a lookup result into a checksum so that no lookup can be optimised away.
fn fold(r: Option<Route>) -> u64 {
    r.map_or(0, |r| u64::from(r.prefix) ^ u64::from(r.len))
}

/// Single lookups over `keys`.
fn lookups(rt: &RouteTables<'_>, keys: &[(u16, u32)]) -> u64 {
    keys.iter()
        .fold(0u64, |acc, &(t, a)| acc.wrapping_add(fold(rt.lookup(t, a))))
}

/// Batched lookups over `keys`, 64 at a time (the pipeline's batch is 32 frames).
fn batch_lookups(rt: &RouteTables<'_>, keys: &[(u16, u32)], out: &mut [Option<Route>]) -> u64 {
    let mut acc = 0u64;
    for ks in keys.chunks(out.len()) {
        rt.lookup_batch(ks, out);
        acc = out[..ks.len()]
            .iter()
            .fold(acc, |a, &r| a.wrapping_add(fold(r)));
    }
    acc
}

/// The baseline: what DPDK `rte_lpm` (DIR-24-8) does in its best case, one load from its
/// 2^24-entry first-level table (64 MiB, the size of our whole route storage) at
/// `addr >> 8`, for the same keys. No table-driven lookup of that footprint does less.
fn tbl24_loads(tbl24: &[u32], keys: &[(u16, u32)]) -> u64 {
    keys.iter().fold(0u64, |acc, &(_, a)| {
        acc.wrapping_add(u64::from(tbl24[(a >> 8) as usize]))
    })
}

fn main() {
    let t0 = Instant::now();
    let mut slots = vec![RouteSlot::EMPTY; VRFS * ROUTES_PER_TABLE];
    let mut rt = RouteTables::new(&mut slots, ROUTES_PER_TABLE);
    let mut rng = Rng::new(1);
    let routes = fill_route_tables(&mut rt, &mut rng);
    let total: usize = routes.iter().map(Vec::len).sum();
    let keys = lpm_keys(&routes, KEYS, &mut rng);
    // The set-up is checked against a linear scan on a sample of the keys.
    for &(t, a) in keys.iter().step_by(97) {
        assert_eq!(
            rt.lookup(t, a),
            reference_lookup(&routes[usize::from(t)], a)
        );
    }
    let tbl24: Vec<u32> = (0..1u32 << 24)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    println!(
        "lpm set-up: {VRFS} tables x {ROUTES_PER_TABLE} route slots ({:.1} MB), {total} routes, \
         {KEYS} keys, in {:.2?}",
        (slots_bytes(VRFS * ROUTES_PER_TABLE)) as f64 / 1e6,
        t0.elapsed()
    );

    // `LPM_PROFILE=<seconds>[,hot]` runs only batched lookups, that long, for `perf record`
    // (over 16 VRFs with `,hot`); the set-up otherwise dominates a profile.
    if let Ok(v) = std::env::var("LPM_PROFILE") {
        let secs: f64 = v.split(',').next().and_then(|s| s.parse().ok()).unwrap_or(10.0);
        let keys = if v.ends_with(",hot") {
            lpm_keys(&routes[..16], KEYS, &mut rng)
        } else {
            keys
        };
        let mut out = vec![None; 64];
        let t = Instant::now();
        let mut acc = 0u64;
        while t.elapsed().as_secs_f64() < secs {
            acc = acc.wrapping_add(batch_lookups(&rt, &keys, &mut out));
        }
        println!("profile run done ({acc})");
        return;
    }

    let mut c = criterion();
    {
        let mut g = c.benchmark_group("lpm");
        g.throughput(Throughput::Elements(CHUNK as u64));
        let mut at = 0usize;
        g.bench_function("lookup", |b| {
            b.iter(|| {
                at = (at + CHUNK) % KEYS;
                lookups(&rt, &keys[at..at + CHUNK])
            })
        });
        let mut at = 0usize;
        let mut out = vec![None; 64];
        g.bench_function("lookup_batch", |b| {
            b.iter(|| {
                at = (at + CHUNK) % KEYS;
                batch_lookups(&rt, &keys[at..at + CHUNK], &mut out)
            })
        });
        let mut at = 0usize;
        g.bench_function("baseline_tbl24_load", |b| {
            b.iter(|| {
                at = (at + CHUNK) % KEYS;
                tbl24_loads(&tbl24, &keys[at..at + CHUNK])
            })
        });
        g.finish();
    }
    c.final_summary();

    let mut out = vec![None; 64];
    let base = ns_per_op(5, KEYS, || tbl24_loads(&tbl24, &keys));
    let lpm = ns_per_op(5, KEYS, || lookups(&rt, &keys));
    let batch = ns_per_op(5, KEYS, || batch_lookups(&rt, &keys, &mut out));
    summary(
        "lpm lookup, 4096 VRFs",
        "lookup",
        lpm,
        "rte_lpm-style tbl24 load",
        base,
    );
    summary(
        "lpm lookup_batch, 4096 VRFs",
        "lookup",
        batch,
        "rte_lpm-style tbl24 load",
        base,
    );
    // The same key mix over 16 tables, whose 256 KB stay in cache: the compute cost, and
    // what the pipeline sees for the VPCs of a host's own VFs.
    let hot = lpm_keys(&routes[..16], KEYS, &mut rng);
    let lpm = ns_per_op(5, KEYS, || lookups(&rt, &hot));
    let batch = ns_per_op(5, KEYS, || batch_lookups(&rt, &hot, &mut out));
    let base = ns_per_op(5, KEYS, || tbl24_loads(&tbl24, &hot));
    summary(
        "lpm lookup, 16 VRFs (in cache)",
        "lookup",
        lpm,
        "rte_lpm-style tbl24 load",
        base,
    );
    summary(
        "lpm lookup_batch, 16 VRFs (in cache)",
        "lookup",
        batch,
        "rte_lpm-style tbl24 load",
        base,
    );
}

fn slots_bytes(n: usize) -> usize {
    n * std::mem::size_of::<RouteSlot>()
}
