//! Our tables' measured loops, as the benches run them: single lookups, and batches of
//! [`BATCH`] keys per call; every answer folded into a checksum.
use nic_firmware::tables::lpm::{Route, RouteTables};
use nic_firmware::tables::mapping::{Location, Mapping, MappingKey, MappingTable};

/// Keys per batch call, on both sides (rte_hash's bulk maximum; the benches' batch).
pub const BATCH: usize = 64;

fn fold_route(r: Option<Route>) -> u64 {
    r.map_or(0, |r| u64::from(r.prefix) ^ u64::from(r.len))
}

fn fold_mapping(m: Option<Mapping>) -> u64 {
    m.map_or(0, |m| {
        u64::from(m.mac[5])
            ^ match m.location {
                Location::LocalVf(vf) => u64::from(vf),
                Location::Remote { underlay_ip } => u64::from(underlay_ip),
                _ => 1,
            }
    })
}

/// `RouteTables::lookup`, one key at a time.
pub fn lpm_single(rt: &RouteTables<'_>, keys: &[(u16, u32)]) -> u64 {
    keys.iter().fold(0u64, |acc, &(t, a)| {
        acc.wrapping_add(fold_route(rt.lookup(t, a)))
    })
}

/// `RouteTables::lookup_batch`, [`BATCH`] keys per call.
pub fn lpm_batch(rt: &RouteTables<'_>, keys: &[(u16, u32)]) -> u64 {
    let mut out = [None; BATCH];
    let mut acc = 0u64;
    for ks in keys.chunks(BATCH) {
        rt.lookup_batch(ks, &mut out);
        acc = out
            .iter()
            .take(ks.len())
            .fold(acc, |a, &r| a.wrapping_add(fold_route(r)));
    }
    acc
}

/// Every answer of `lookup_batch` (`batch`) or `lookup`, for the cross-checks.
pub fn lpm_answers(rt: &RouteTables<'_>, keys: &[(u16, u32)], batch: bool) -> Vec<Option<Route>> {
    if batch {
        let mut out = vec![None; keys.len()];
        for (ks, o) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            rt.lookup_batch(ks, o);
        }
        out
    } else {
        keys.iter().map(|&(t, a)| rt.lookup(t, a)).collect()
    }
}

/// `MappingTable::get`, one key at a time.
pub fn mapping_single(m: &MappingTable<'_>, keys: &[MappingKey]) -> u64 {
    keys.iter()
        .fold(0u64, |acc, &k| acc.wrapping_add(fold_mapping(m.get(k))))
}

/// `MappingTable::get_batch`, [`BATCH`] keys per call.
pub fn mapping_batch(m: &MappingTable<'_>, keys: &[MappingKey]) -> u64 {
    let mut out = [None; BATCH];
    let mut acc = 0u64;
    for ks in keys.chunks(BATCH) {
        m.get_batch(ks, &mut out);
        acc = out
            .iter()
            .take(ks.len())
            .fold(acc, |a, &r| a.wrapping_add(fold_mapping(r)));
    }
    acc
}

/// Every answer of `get_batch` (`batch`) or `get`, for the cross-checks.
pub fn mapping_answers(
    m: &MappingTable<'_>,
    keys: &[MappingKey],
    batch: bool,
) -> Vec<Option<Mapping>> {
    if batch {
        let mut out = vec![None; keys.len()];
        for (ks, o) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            m.get_batch(ks, o);
        }
        out
    } else {
        keys.iter().map(|&k| m.get(k)).collect()
    }
}
