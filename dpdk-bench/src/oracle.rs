//! Reference answers that share nothing with our tables or DPDK's: hash-map probes, one per
//! prefix length, for longest-prefix match, and a hash map for exact match.
use nic_firmware::tables::lpm::{prefix_mask, Route};
use nic_firmware::tables::mapping::MappingKey;
use std::collections::HashMap;

/// Longest-prefix match over tables of routes: the longest length `l` for which (table,
/// address cut to `l` bits, `l`) is a route. 33 probes at most, so every key of a run can
/// be checked, not only a sample.
pub struct LpmOracle {
    routes: HashMap<(usize, u8, u32), Route>,
}

impl LpmOracle {
    pub fn new(tables: &[Vec<Route>]) -> Self {
        let mut routes = HashMap::new();
        for (t, rs) in tables.iter().enumerate() {
            for r in rs {
                routes.insert((t, r.len, r.prefix), *r);
            }
        }
        LpmOracle { routes }
    }

    pub fn lookup(&self, table: usize, ip: u32) -> Option<Route> {
        (0..=32u8)
            .rev()
            .find_map(|l| self.routes.get(&(table, l, ip & prefix_mask(l))).copied())
    }
}

/// Exact match: the insertion index of each stored key.
pub struct MappingOracle {
    index: HashMap<MappingKey, usize>,
}

impl MappingOracle {
    pub fn new(stored: &[MappingKey]) -> Self {
        MappingOracle {
            index: stored.iter().enumerate().map(|(i, k)| (*k, i)).collect(),
        }
    }

    pub fn get(&self, key: MappingKey) -> Option<usize> {
        self.index.get(&key).copied()
    }
}
