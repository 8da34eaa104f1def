//! The cross-checks: our single and batched answers, DPDK's answers under each method,
//! and the oracle's, key by key. Any difference fails the run with the first one found.
use crate::dpdk::MISS;
use crate::oracle::LpmOracle;
use crate::workload::RouteIds;
use nic_firmware::tables::lpm::Route;
use std::fmt::Debug;

/// `a` and `b` answer alike at every index.
pub fn same<T: PartialEq + Debug>(
    what: &str,
    keys: &[impl Debug],
    a: &[T],
    b: &[T],
) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{what}: {} answers against {}", a.len(), b.len()));
    }
    let bad = a.iter().zip(b).filter(|(x, y)| x != y).count();
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: {bad} of {} answers differ; first at key {:?}: {:?} against {:?}",
            a.len(),
            keys[i],
            a[i],
            b[i]
        )),
    }
}

/// DPDK's answers (route ids) as routes, each checked to be a route of its key's table.
pub fn routes_of(
    ids: &RouteIds,
    keys: &[(u16, u32)],
    out: &[u32],
) -> Result<Vec<Option<Route>>, String> {
    keys.iter()
        .zip(out)
        .map(|(&(t, ip), &id)| {
            if id == MISS {
                return Ok(None);
            }
            match ids.route(id as usize) {
                Some((rt, r)) if rt == usize::from(t) => Ok(Some(r)),
                other => Err(format!(
                    "key ({t}, {ip:#x}): DPDK answered id {id}, which is {other:?}"
                )),
            }
        })
        .collect()
}

/// `rte_lpm` takes no /0 route (depth 1 to 32), so, as DPDK applications do, a table's
/// default route is its answer when the lookup misses: each MISS of `out` becomes the id
/// of the default route of its key's table, if that table has one.
pub fn default_on_miss(ids: &RouteIds, keys: &[(u16, u32)], out: &mut [u32]) {
    let defaults: Vec<u32> = ids
        .tables
        .iter()
        .enumerate()
        .map(|(t, rs)| {
            rs.iter()
                .position(|r| r.len == 0)
                .map_or(MISS, |i| ids.id(t, i) as u32)
        })
        .collect();
    for (&(t, _), a) in keys.iter().zip(out.iter_mut()) {
        if *a == MISS {
            *a = defaults.get(usize::from(t)).copied().unwrap_or(MISS);
        }
    }
}

/// Our answers agree with the oracle on every `every`th key.
pub fn oracle(
    what: &str,
    o: &LpmOracle,
    keys: &[(u16, u32)],
    ours: &[Option<Route>],
    every: usize,
) -> Result<usize, String> {
    let mut n = 0;
    for (k, a) in keys.iter().zip(ours).step_by(every.max(1)) {
        let want = o.lookup(usize::from(k.0), k.1);
        if *a != want {
            return Err(format!(
                "{what}: key {k:?}: {a:?}, the oracle says {want:?}"
            ));
        }
        n += 1;
    }
    Ok(n)
}
