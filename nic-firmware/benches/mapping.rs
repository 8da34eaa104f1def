//! `mapping`: exact-match lookups per second in the mapping table at 1,000,000 entries,
//! hits and misses, beside `std::collections::HashMap` lookups of the same keys in the same
//! run. See benches/README.md.
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
use nic_firmware::tables::mapping::{
    Location, Mapping, MappingBucket, MappingKey, MappingTable, MappingTags, UnderlaySlot,
};
use nic_firmware::workload::{mapping_keys, mapping_value, MappingKeys, HOSTS};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

/// Folds a lookup result into a checksum so that no lookup can be optimised away.
fn fold(m: Option<Mapping>) -> u64 {
    m.map_or(0, |m| {
        u64::from(m.mac[5])
            ^ match m.location {
                Location::LocalVf(vf) => u64::from(vf),
                Location::Remote { underlay_ip } => u64::from(underlay_ip),
                _ => 1,
            }
    })
}

fn table_gets(t: &MappingTable<'_>, keys: &[MappingKey]) -> u64 {
    keys.iter()
        .fold(0u64, |acc, &k| acc.wrapping_add(fold(t.get(k))))
}

fn table_batch_gets(t: &MappingTable<'_>, keys: &[MappingKey], out: &mut [Option<Mapping>]) -> u64 {
    let mut acc = 0u64;
    for ks in keys.chunks(out.len()) {
        t.get_batch(ks, out);
        acc = out[..ks.len()]
            .iter()
            .fold(acc, |a, &m| a.wrapping_add(fold(m)));
    }
    acc
}

fn hashmap_gets(h: &HashMap<(u32, u32), Mapping>, keys: &[MappingKey]) -> u64 {
    keys.iter().fold(0u64, |acc, k| {
        acc.wrapping_add(fold(h.get(&(k.vni, k.ip)).copied()))
    })
}

fn main() {
    // 1M entries to store, and 1M more that are never stored, for misses.
    let MappingKeys {
        stored,
        hits,
        misses,
    } = mapping_keys(MAPPINGS, KEYS, &mut Rng::new(2));

    let t0 = Instant::now();
    let mut hm: HashMap<(u32, u32), Mapping> = HashMap::with_capacity(MAPPINGS);
    for (i, k) in stored.iter().enumerate() {
        hm.insert((k.vni, k.ip), mapping_value(i as u32));
    }
    println!(
        "mapping set-up: std HashMap of {MAPPINGS} in {:.2?}",
        t0.elapsed()
    );

    let mut c = criterion();
    // 262,144 buckets: the least storage that holds 1M (95.4 % full, 16.8 MB); 524,288: a
    // comfortable load (47.7 %, 33.6 MB).
    for buckets in [262_144usize, 524_288] {
        let t0 = Instant::now();
        let mut storage = vec![MappingBucket::EMPTY; buckets];
        let mut tags = vec![MappingTags::EMPTY; MappingTags::lines_for(buckets)];
        let mut underlays = vec![UnderlaySlot::EMPTY; 2 * HOSTS as usize];
        let mut table = MappingTable::new(&mut storage, &mut tags, &mut underlays);
        for (i, k) in stored.iter().enumerate() {
            table.insert(*k, mapping_value(i as u32)).expect("insert");
        }
        println!(
            "mapping set-up: {buckets} buckets ({:.1} MB), {} entries ({:.1} % full) in {:.2?}",
            (buckets * std::mem::size_of::<MappingBucket>()) as f64 / 1e6,
            table.len(),
            100.0 * table.len() as f64 / table.capacity() as f64,
            t0.elapsed()
        );
        for (i, k) in stored.iter().enumerate().step_by(101) {
            assert_eq!(table.get(*k), Some(mapping_value(i as u32)));
        }
        assert!(misses.iter().take(10_000).all(|k| table.get(*k).is_none()));

        let mut out = vec![None; 64];
        // Criterion measures the smaller (default) table; the larger one only gets the
        // summary pass, to keep the whole run short.
        if buckets == 262_144 {
            let mut g = c.benchmark_group(format!("mapping_{buckets}b"));
            g.throughput(Throughput::Elements(CHUNK as u64));
            for (kind, keys) in [("hit", &hits), ("miss", &misses)] {
                let mut at = 0usize;
                g.bench_function(format!("get_{kind}"), |b| {
                    b.iter(|| {
                        at = (at + CHUNK) % KEYS;
                        table_gets(&table, &keys[at..at + CHUNK])
                    })
                });
                let mut at = 0usize;
                g.bench_function(format!("get_batch_{kind}"), |b| {
                    b.iter(|| {
                        at = (at + CHUNK) % KEYS;
                        table_batch_gets(&table, &keys[at..at + CHUNK], &mut out)
                    })
                });
                let mut at = 0usize;
                g.bench_function(format!("baseline_std_hashmap_{kind}"), |b| {
                    b.iter(|| {
                        at = (at + CHUNK) % KEYS;
                        hashmap_gets(&hm, &keys[at..at + CHUNK])
                    })
                });
            }
            g.finish();
        }

        for (kind, keys) in [("hit", &hits), ("miss", &misses)] {
            let single = ns_per_op(5, KEYS, || table_gets(&table, keys));
            let batch = ns_per_op(5, KEYS, || table_batch_gets(&table, keys, &mut out));
            let base = ns_per_op(5, KEYS, || hashmap_gets(&hm, keys));
            let name = format!("mapping {buckets} buckets, {kind}");
            summary(
                &format!("{name}, get"),
                "lookup",
                single,
                "std HashMap get",
                base,
            );
            summary(
                &format!("{name}, get_batch"),
                "lookup",
                batch,
                "std HashMap get",
                base,
            );
        }
    }
    c.final_summary();
    black_box(());
}
