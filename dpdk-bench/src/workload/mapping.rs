//! The `mapping` bench's keys and values (`nic-firmware/benches/mapping.rs`, seed 2), with
//! the counts as parameters: (VNI of one of 4,096 VPCs, address in that VPC's /16), stored
//! ones and never-stored ones, and lookup keys drawn from each.
use super::vrf::vpc_cidr;
use super::Rng;
use nic_firmware::tables::mapping::{Location, Mapping, MappingKey};
use std::collections::HashSet;

/// VPCs the keys are spread over, as in the bench.
const VPCS: u32 = 4096;

/// The keys of a mapping workload.
pub struct MappingKeys {
    /// Stored, in insertion order; entry `i` has value `value(i)`.
    pub stored: Vec<MappingKey>,
    /// Lookups of stored keys (hits).
    pub hits: Vec<MappingKey>,
    /// Lookups of keys never stored (misses).
    pub misses: Vec<MappingKey>,
}

/// Hosts the remote instances live on (about 250 instances each at 1M).
pub const HOSTS: u32 = 4096;

/// The value of the `n`th mapping: most instances live on other hosts.
pub fn value(n: u32) -> Mapping {
    let b = n.to_le_bytes();
    Mapping {
        mac: [0x02, 0, b[0], b[1], b[2], b[3]],
        location: if n.is_multiple_of(64) {
            Location::LocalVf((n % 256) as u16)
        } else {
            Location::Remote {
                underlay_ip: 0x6400_0000 | (n % HOSTS),
            }
        },
    }
}

/// `count` distinct keys, drawn at random.
fn distinct_keys(count: usize, rng: &mut Rng) -> Vec<MappingKey> {
    let mut seen = HashSet::with_capacity(count);
    let mut keys = Vec::with_capacity(count);
    while keys.len() < count {
        let vpc = rng.range(0, VPCS - 1) as usize;
        let k = MappingKey {
            vni: 1000 + vpc as u32,
            ip: vpc_cidr(vpc) | (rng.next_u32() & 0xffff),
        };
        if seen.insert((k.vni, k.ip)) {
            keys.push(k);
        }
    }
    keys
}

/// `stored` keys to store, as many others for misses, and `lookups` keys of each kind
/// drawn uniformly from them; with seed 2, 1M stored and 2^20 lookups, the bench's.
pub fn mapping_keys(stored: usize, lookups: usize, rng: &mut Rng) -> MappingKeys {
    let mut all = distinct_keys(2 * stored, rng);
    let absent = all.split_off(stored);
    let hits = (0..lookups)
        .map(|_| all[rng.range(0, stored as u32 - 1) as usize])
        .collect();
    let misses = (0..lookups)
        .map(|_| absent[rng.range(0, stored as u32 - 1) as usize])
        .collect();
    MappingKeys {
        stored: all,
        hits,
        misses,
    }
}
