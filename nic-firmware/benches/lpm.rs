//! `lpm`: longest-prefix-match lookups per second over 4,096 route tables of up to 1,000
//! routes, on random (table, address) keys, beside a baseline measured in the same run; then
//! one table of 65,535 routes (its build and its lookups) and the cost of one change to a
//! 1,000-route table. See benches/README.md for the route and key mix and the baselines.
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
use nic_firmware::tables::lpm::{prefix_mask, Route, RouteSlot, RouteTables, Target};
use std::collections::BTreeMap;
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

/// Share of the process's memory on 2 MiB pages, for the set-up line.
fn huge_share() -> String {
    let Ok(s) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return "unknown".into();
    };
    let kb = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    format!(
        "{:.0} % of {:.0} MB",
        100.0 * kb("AnonHugePages:") / kb("Rss:"),
        kb("Rss:") / 1e3
    )
}

fn main() {
    let t0 = Instant::now();
    let mut slots = table_memory(VRFS * ROUTES_PER_TABLE, RouteSlot::EMPTY);
    let mut rt = RouteTables::new(&mut slots, ROUTES_PER_TABLE);
    let mut rng = Rng::new(1);
    let routes = fill_route_tables(&mut rt, &mut rng);
    // Tables of 1,000 routes are rebuilt at each insert; this is where an admin batch ends.
    rt.commit();
    let total: usize = routes.iter().map(Vec::len).sum();
    let keys = lpm_keys(&routes, KEYS, &mut rng);
    // The set-up is checked against a linear scan on a sample of the keys.
    for &(t, a) in keys.iter().step_by(97) {
        assert_eq!(rt.lookup(t, a), longest_match(&routes[usize::from(t)], a));
    }
    let mut tbl24 = table_memory(1 << 24, 0u32);
    for (i, x) in tbl24.iter_mut().enumerate() {
        *x = (i as u32).wrapping_mul(2_654_435_761);
    }
    println!(
        "lpm set-up: {VRFS} tables x {ROUTES_PER_TABLE} route slots ({:.1} MB), {total} routes, \
         {KEYS} keys, in {:.2?}; 2 MiB pages: {}",
        (slots_bytes(VRFS * ROUTES_PER_TABLE)) as f64 / 1e6,
        t0.elapsed(),
        huge_share()
    );

    // `LPM_PROFILE=<seconds>[,hot]` runs only batched lookups, that long, for `perf record`
    // (over 16 VRFs with `,hot`); the set-up otherwise dominates a profile.
    if let Ok(v) = std::env::var("LPM_PROFILE") {
        let secs: f64 = v
            .split(',')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10.0);
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
    // The same key mix over 16 tables, whose 450 KB stay in cache: the compute cost, and
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
    // The 115 MB of the 4,096 tables are freed before the next parts.
    drop(slots);

    one_big_table(&tbl24, &mut rng);
    one_change(&mut rng);
}

/// One table of 65,535 routes, the most a table holds: inserted in random order, then
/// committed (the rebuild deferred past 4,096 routes), against inserting the same routes
/// into a `BTreeMap`; then lookups in it.
fn one_big_table(tbl24: &[u32], rng: &mut Rng) {
    const BIG: usize = 0xffff;
    let mut routes = Vec::with_capacity(BIG);
    let mut seen = std::collections::HashSet::new();
    while routes.len() < BIG {
        // Mostly /24s, as in an Internet table, with shorter and longer ones around them.
        let len = match rng.range(0, 99) {
            0..=49 => 24,
            50..=84 => rng.range(16, 23),
            85..=89 => rng.range(8, 15),
            _ => rng.range(25, 32),
        } as u8;
        let prefix = rng.next_u32() & prefix_mask(len);
        if seen.insert((prefix, len)) {
            let target = Target::Gateway(rng.range(0, 63) as u16);
            routes.push(Route {
                prefix,
                len,
                target,
            });
        }
    }
    let mut slots = table_memory(BIG, RouteSlot::EMPTY);
    let mut rt = RouteTables::new(&mut slots, BIG);
    let build = ns_per_op(3, BIG, || {
        rt.clear_table(0);
        for r in &routes {
            rt.insert(0, *r).unwrap();
        }
        rt.commit();
        rt.len(0) as u64
    });
    let tree = ns_per_op(3, BIG, || {
        let mut m = BTreeMap::new();
        for r in &routes {
            m.insert((r.prefix, r.len), r.target);
        }
        m.len() as u64
    });
    let keys: Vec<(u16, u32)> = (0..KEYS)
        .map(|_| {
            let r = rng.next_u32();
            let a = if rng.chance(50) {
                let route = rng.pick(&routes);
                route.prefix | (r & !prefix_mask(route.len))
            } else {
                r
            };
            (0, a)
        })
        .collect();
    for &(_, a) in keys.iter().step_by(4099) {
        assert_eq!(rt.lookup(0, a), longest_match(&routes, a));
    }
    let mut out = vec![None; 64];
    let base = ns_per_op(5, KEYS, || tbl24_loads(tbl24, &keys));
    let lpm = ns_per_op(5, KEYS, || lookups(&rt, &keys));
    let batch = ns_per_op(5, KEYS, || batch_lookups(&rt, &keys, &mut out));
    summary(
        "lpm build, 65535 routes in one table (random order, commit)",
        "route",
        build,
        "std BTreeMap inserts",
        tree,
    );
    println!(
        "lpm build: 65535 routes in {:.3} s (BTreeMap {:.3} s)",
        build * BIG as f64 / 1e9,
        tree * BIG as f64 / 1e9
    );
    summary(
        "lpm lookup, one table of 65535 routes",
        "lookup",
        lpm,
        "rte_lpm-style tbl24 load",
        base,
    );
    summary(
        "lpm lookup_batch, one table of 65535 routes",
        "lookup",
        batch,
        "rte_lpm-style tbl24 load",
        base,
    );
}

/// One change to a table of 1,000 routes (an insert or a remove, each rebuilding the table),
/// against the same change to a `BTreeMap` of its routes.
fn one_change(rng: &mut Rng) {
    let mut slots = table_memory(ROUTES_PER_TABLE, RouteSlot::EMPTY);
    let mut rt = RouteTables::new(&mut slots, ROUTES_PER_TABLE);
    let mut routes = Vec::new();
    while routes.len() < ROUTES_PER_TABLE - 1 {
        let len = rng.range(8, 32) as u8;
        let r = Route {
            prefix: rng.next_u32() & prefix_mask(len),
            len,
            target: Target::Blackhole,
        };
        if rt.insert(0, r).is_ok() {
            routes.push(r);
        }
    }
    let extra = Route {
        prefix: 0x0a00_0000,
        len: 33,
        target: Target::Local,
    };
    let mut tree: BTreeMap<_, _> = routes
        .iter()
        .map(|r| ((r.prefix, r.len), r.target))
        .collect();
    const CHANGES: usize = 2000;
    let change = ns_per_op(3, CHANGES, || {
        for _ in 0..CHANGES / 2 {
            rt.insert(0, extra).unwrap();
            rt.remove(0, extra.prefix, extra.len).unwrap();
        }
        rt.len(0) as u64
    });
    let base = ns_per_op(3, CHANGES, || {
        for _ in 0..CHANGES / 2 {
            tree.insert((extra.prefix, extra.len), extra.target);
            tree.remove(&(extra.prefix, extra.len));
        }
        tree.len() as u64
    });
    summary(
        "lpm change (insert or remove, rebuild included), 1000-route table",
        "change",
        change,
        "std BTreeMap insert or remove",
        base,
    );
}

fn slots_bytes(n: usize) -> usize {
    n * std::mem::size_of::<RouteSlot>()
}
