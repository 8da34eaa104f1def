//! How big a run is: the full run (the benches' sizes), `--quick`, and the tests'.

/// The sizes of every workload and how long each is timed.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Route tables (VRFs) of the benches' mix; 4,096 in the benches.
    pub vrfs: usize,
    /// VRFs of the cache-warm key set (and rte_lpm tables built for it, 64 MiB each).
    pub hot_vrfs: usize,
    /// Routes of the one BGP-like table (ours holds at most 65,535 in one table).
    pub bgp_routes: usize,
    /// Mapping slots (ours: buckets x 8; rte_hash: `entries`), a power of two.
    pub mapping_slots: usize,
    /// Lookup keys per key set, pre-generated.
    pub keys: usize,
    /// Timed passes over the keys; the best counts.
    pub passes: usize,
    /// One key in `check_every` is also checked against the oracle (ours and DPDK's are
    /// compared on every key).
    pub check_every: usize,
    /// Megabytes of memory for DPDK's EAL (`-m`); only what is used gets touched.
    pub eal_mb: usize,
}

impl Scale {
    /// The benches' sizes: ~1.94M routes over 4,096 VRFs, 1M mappings, 2^20 keys.
    pub const FULL: Scale = Scale {
        vrfs: 4096,
        hot_vrfs: 16,
        bgp_routes: 65_535,
        mapping_slots: 1 << 20,
        keys: 1 << 20,
        passes: 5,
        check_every: 16,
        eal_mb: 6144,
    };

    /// A run of a few seconds: a sixteenth of the VRFs and mappings.
    pub const QUICK: Scale = Scale {
        vrfs: 256,
        hot_vrfs: 16,
        bgp_routes: 8192,
        mapping_slots: 1 << 16,
        keys: 1 << 16,
        passes: 3,
        check_every: 4,
        eal_mb: 2048,
    };

    /// The tests': small tables, every key checked against the oracle, one pass.
    pub const TEST: Scale = Scale {
        vrfs: 32,
        hot_vrfs: 4,
        bgp_routes: 2048,
        mapping_slots: 1 << 14,
        keys: 1 << 12,
        passes: 1,
        check_every: 1,
        eal_mb: 2048,
    };

    /// Mappings stored: the benches' load, 1,000,000 in 2^20 slots (95.4 %), at any size.
    pub fn mappings(&self) -> usize {
        // 1,000,000 / 2^20 of the slots, rounded down; exact at the full size.
        self.mapping_slots * 1_000_000 / (1 << 20)
    }
}
