//! The mapping table (1M entries in 2^20 slots at full size, 95.4 % full, as in the
//! `mapping` bench): ours against `rte_hash` of the same number of slots, hits and misses.
use super::check::same;
use super::{thousands, Ctx};
use crate::dpdk::{self, hash_key, Hash, MISS};
use crate::oracle::MappingOracle;
use crate::ours;
use crate::report::{Kind, Method, Row};
use crate::timing::{race, seconds};
use crate::workload::Rng;
use crate::workload::{mapping_keys, mapping_value, HOSTS};
use nic_firmware::tables::mapping::{
    Mapping, MappingBucket, MappingTable, MappingTags, UnderlaySlot,
};

/// Underlay slots of our table: room for the workload's hosts, twice over.
const UNDERLAYS: usize = 2 * HOSTS as usize;

pub fn run(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let s = ctx.scale;
    let n = s.mappings();
    ctx.log(format!(
        "mappings: {} in {} slots",
        thousands(n),
        thousands(s.mapping_slots)
    ));
    let mut rng = Rng::new(2);
    let mk = mapping_keys(n, s.keys, &mut rng);

    let buckets = s.mapping_slots / MappingTable::SLOTS_PER_BUCKET;
    let mut storage = vec![MappingBucket::EMPTY; buckets];
    let mut tags = vec![MappingTags::EMPTY; MappingTags::lines_for(buckets)];
    let mut underlays = vec![UnderlaySlot::EMPTY; UNDERLAYS];
    let mut table = MappingTable::new(&mut storage, &mut tags, &mut underlays);
    let (built, ours_build) = seconds(|| -> Result<(), String> {
        for (i, k) in mk.stored.iter().enumerate() {
            table
                .insert(*k, mapping_value(i as u32))
                .map_err(|e| format!("insert {k:?}: {e:?} at {i}"))?;
        }
        Ok(())
    });
    built?;
    let ours_bytes = buckets * std::mem::size_of::<MappingBucket>()
        + MappingTags::lines_for(buckets) * std::mem::size_of::<MappingTags>()
        + UNDERLAYS * std::mem::size_of::<UnderlaySlot>();
    ctx.log(format!("  ours: built in {ours_build:.2} s"));

    let before = dpdk::allocated();
    let (hash, build) = seconds(|| -> Result<Hash, String> {
        let mut h = Hash::new(s.mapping_slots as u32)?;
        for (i, k) in mk.stored.iter().enumerate() {
            h.add(hash_key(*k), i as u32)
                .map_err(|e| format!("{e} at entry {i}"))?;
        }
        Ok(h)
    });
    let hash = hash?;
    let bytes = dpdk::allocated().saturating_sub(before);
    ctx.log(format!(
        "  rte_hash: {} entries, built in {build:.2} s, {bytes} bytes",
        thousands(hash.count())
    ));

    let oracle = MappingOracle::new(&mk.stored);
    let mut rows = Vec::new();
    for (kind, keys) in [("hits", &mk.hits), ("misses", &mk.misses)] {
        // Every answer, both sides, both methods, against the oracle.
        let want: Vec<Option<Mapping>> = keys
            .iter()
            .map(|k| oracle.get(*k).map(|i| mapping_value(i as u32)))
            .collect();
        same(
            "get_batch",
            keys,
            &ours::mapping_answers(&table, keys, true),
            &want,
        )?;
        same(
            "get",
            keys,
            &ours::mapping_answers(&table, keys, false),
            &want,
        )?;
        let hk: Vec<u64> = keys.iter().map(|k| hash_key(*k)).collect();
        let want_idx: Vec<u32> = keys
            .iter()
            .map(|k| oracle.get(*k).map_or(MISS, |i| i as u32))
            .collect();
        let mut out = vec![0u32; hk.len()];
        hash.single(&hk, Some(&mut out));
        same("rte_hash_lookup_data", keys, &out, &want_idx)?;
        hash.bulk(&hk, Some(&mut out));
        same("rte_hash_lookup_bulk_data", keys, &out, &want_idx)?;

        let t = race(
            s.passes,
            keys.len(),
            &mut [
                &mut || ours::mapping_single(&table, keys),
                &mut || ours::mapping_batch(&table, keys),
                &mut || hash.single(&hk, None),
                &mut || hash.bulk(&hk, None),
            ],
        );
        rows.push(Row {
            work: format!(
                "exact match, {} mappings (VNI, IPv4) in {} slots, {kind}: rte_hash",
                thousands(n),
                thousands(s.mapping_slots)
            ),
            kind: Kind::Lookup,
            ours: vec![Method::new("get", t[0]), Method::new("get_batch", t[1])],
            dpdk: vec![
                Method::new("rte_hash_lookup_data", t[2]),
                Method::new("rte_hash_lookup_bulk_data", t[3]),
            ],
            ours_bytes,
            dpdk_bytes: bytes,
        });
    }
    rows.push(Row {
        work: format!("build, {} mappings: rte_hash", thousands(n)),
        kind: Kind::Build,
        ours: vec![Method::new("insert", ours_build)],
        dpdk: vec![Method::new("rte_hash_add_key_data", build)],
        ours_bytes,
        dpdk_bytes: bytes,
    });
    Ok(rows)
}
