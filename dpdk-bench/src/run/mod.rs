//! The side-by-side runs: each workload builds our table and DPDK's from the same data,
//! checks that both answer every key alike and as the oracle does, then times them in
//! turn. One DPDK structure lives at a time (the largest take gigabytes).
mod bgp;
mod check;
mod mapping;
mod vrfs;

use crate::report::Row;
use crate::scale::Scale;

/// What a run needs to know.
pub struct Ctx {
    pub scale: Scale,
    /// Progress lines on stderr.
    pub verbose: bool,
}

impl Ctx {
    pub fn log(&self, msg: impl AsRef<str>) {
        if self.verbose {
            eprintln!("{}", msg.as_ref());
        }
    }
}

/// The benches' VRF mix: all VRFs (rte_lpm6, rte_fib6) and the cache-warm ones (one
/// rte_lpm per VRF, and the same FIBs).
pub fn vrf_mix(ctx: &Ctx) -> Result<Vec<Row>, String> {
    vrfs::run(ctx)
}

/// One BGP-like table: rte_lpm, lookups and build time.
pub fn bgp_table(ctx: &Ctx) -> Result<Vec<Row>, String> {
    bgp::run(ctx)
}

/// The mapping table: rte_hash, hits and misses.
pub fn mappings(ctx: &Ctx) -> Result<Vec<Row>, String> {
    mapping::run(ctx)
}

/// All workloads, in that order.
pub fn all(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let mut rows = vrf_mix(ctx)?;
    rows.extend(bgp_table(ctx)?);
    rows.extend(mappings(ctx)?);
    Ok(rows)
}

/// `n` with thousands separators.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
