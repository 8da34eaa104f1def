//! The benchmarks' workloads (feature `testing`, never in a firmware image), drawn from
//! fixed seeds so that two runs, and two programs, measure the same tables and keys: the
//! `lpm` and `pipeline` benches and the side-by-side DPDK comparison (`dpdk-bench`) all
//! draw them here.
//!
//! - The VRF route mix: up to 4,096 route tables, one per VPC, of 50 to 1,000 routes.
//! - Lookup keys over those tables.
//! - The mapping table's keys (VNI, IPv4) and values, stored and never stored.
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
extern crate std;

use crate::tables::lpm::{prefix_mask, Route, RouteTables, Target};
use crate::tables::mapping::{Location, Mapping, MappingKey};
use crate::testing::Rng;
use std::collections::HashSet;
use std::vec;
use std::vec::Vec;

/// VPCs, and route tables of the full mix: the minimum.
pub const VPCS: usize = 4096;
/// Route slots per table, the local route included: the maximum per table.
pub const ROUTES_PER_TABLE: usize = 1000;
/// Hosts the mappings' remote instances live on (about 250 instances each at 1M).
pub const HOSTS: u32 = 4096;

/// The CIDR (a /16 in 10.0.0.0/8) of the VPC that owns route table `t`. VPCs reuse the
/// same private ranges, as real tenants do; they are told apart by VNI and route table.
pub fn vpc_cidr(t: usize) -> u32 {
    0x0a00_0000 | (((t as u32).wrapping_mul(37) & 0xff) << 16)
}

/// Fills tables `0..vrfs` of `rt` with a realistic mix and returns each table's routes as
/// inserted (a drawn prefix already in the table is skipped, so counts are approximate).
/// At 4,096 tables (seed 1) that is ~1.94M routes; fewer tables are the first tables of
/// that same sequence.
///
/// - the local route: the VPC CIDR /16 -> `Local`, and a default route -> an internet
///   gateway (`Gateway(0)`);
/// - 48 to 998 more (uniform), each:
///   - 40 %: inside the VPC CIDR, /17 to /32 -> an appliance instance or, one time in 8,
///     a `Blackhole`: middlebox and subnet-level routing;
///   - 30 %: another private range (10/8, 172.16/12, 192.168/16), /16 to /28 -> `Peering`
///     with one of 4,096 VPCs, whatever the table count;
///   - 30 %: anywhere, /8 to /32 -> a VPN or transit `Gateway`: on-premises prefixes.
pub fn fill_route_tables(rt: &mut RouteTables<'_>, vrfs: usize, rng: &mut Rng) -> Vec<Vec<Route>> {
    let mut all = Vec::with_capacity(vrfs);
    for t in 0..vrfs {
        let table = t as u16;
        let cidr = vpc_cidr(t);
        let mut routes = vec![
            Route {
                prefix: cidr,
                len: 16,
                target: Target::Local,
            },
            Route {
                prefix: 0,
                len: 0,
                target: Target::Gateway(0),
            },
        ];
        let extra = rng.range(48, ROUTES_PER_TABLE as u32 - 2) as usize;
        for _ in 0..extra {
            routes.push(draw_route(cidr, rng));
        }
        let mut kept = Vec::with_capacity(routes.len());
        for r in routes {
            if rt.insert(table, r).is_ok() {
                kept.push(r);
            }
        }
        all.push(kept);
    }
    all
}

/// One route of the mix beyond the first two, for a table of VPC `cidr`.
fn draw_route(cidr: u32, rng: &mut Rng) -> Route {
    let r = rng.next_u32();
    if rng.chance(40) {
        let len = rng.range(17, 32) as u8;
        let target = if rng.chance(12) {
            Target::Blackhole
        } else {
            Target::Instance(cidr | (rng.next_u32() & 0xffff))
        };
        Route {
            prefix: (cidr | (r & 0xffff)) & prefix_mask(len),
            len,
            target,
        }
    } else if rng.chance(50) {
        let base = match rng.range(0, 2) {
            0 => 0x0a00_0000 | (r & 0x00ff_ffff),
            1 => 0xac10_0000 | (r & 0x000f_ffff),
            _ => 0xc0a8_0000 | (r & 0x0000_ffff),
        };
        let len = rng.range(16, 28) as u8;
        Route {
            prefix: base & prefix_mask(len),
            len,
            target: Target::Peering(rng.range(0, VPCS as u32 - 1) as u16),
        }
    } else {
        let len = rng.range(8, 32) as u8;
        Route {
            prefix: r & prefix_mask(len),
            len,
            target: Target::Gateway(rng.range(1, 63) as u16),
        }
    }
}

/// `n` (table, address) keys over `routes`: the table uniform; the address 50 % inside the
/// table's VPC CIDR (east-west traffic), 25 % inside one of its routes (random host bits),
/// 25 % uniform over the IPv4 space (mostly the default route).
pub fn lpm_keys(routes: &[Vec<Route>], n: usize, rng: &mut Rng) -> Vec<(u16, u32)> {
    (0..n)
        .map(|_| {
            let t = rng.range(0, routes.len() as u32 - 1) as usize;
            let r = rng.next_u32();
            let addr = match rng.range(0, 3) {
                0 | 1 => vpc_cidr(t) | (r & 0xffff),
                2 => {
                    let rs = &routes[t];
                    let route = rs[rng.range(0, rs.len() as u32 - 1) as usize];
                    route.prefix | (r & !prefix_mask(route.len))
                }
                _ => r,
            };
            (t as u16, addr)
        })
        .collect()
}

/// The longest match by linear scan: what every faster structure is checked against.
pub fn longest_match(routes: &[Route], ip: u32) -> Option<Route> {
    routes
        .iter()
        .filter(|r| ip & prefix_mask(r.len) == r.prefix)
        .max_by_key(|r| r.len)
        .copied()
}

/// The value of the `n`th mapping: most instances live on other hosts.
pub fn mapping_value(n: u32) -> Mapping {
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

/// The keys of a mapping workload.
pub struct MappingKeys {
    /// Stored, in insertion order; entry `i` has value [`mapping_value`]`(i)`.
    pub stored: Vec<MappingKey>,
    /// Lookups of stored keys (hits).
    pub hits: Vec<MappingKey>,
    /// Lookups of keys never stored (misses).
    pub misses: Vec<MappingKey>,
}

/// `stored` keys to store (VNIs of 4,096 VPCs, addresses in the VPC's /16, as the pipeline
/// looks them up), as many others for misses, and `lookups` keys of each kind drawn
/// uniformly from them. The `mapping` bench: seed 2, 1M stored, 2^20 lookups.
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

/// `count` distinct keys, drawn at random.
fn distinct_keys(count: usize, rng: &mut Rng) -> Vec<MappingKey> {
    let mut seen = HashSet::with_capacity(count);
    let mut keys = Vec::with_capacity(count);
    while keys.len() < count {
        let vpc = rng.range(0, VPCS as u32 - 1) as usize;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::lpm::RouteSlot;

    /// Fewer tables draw the first tables of the full mix, route for route: the
    /// side-by-side comparison at a small scale measures part of the benches' mix.
    #[test]
    fn fewer_tables_are_the_first_tables_of_the_full_mix() {
        let mut a = vec![RouteSlot::EMPTY; 16 * ROUTES_PER_TABLE];
        let mut b = vec![RouteSlot::EMPTY; 4 * ROUTES_PER_TABLE];
        let sixteen = fill_route_tables(
            &mut RouteTables::new(&mut a, ROUTES_PER_TABLE),
            16,
            &mut Rng::new(1),
        );
        let four = fill_route_tables(
            &mut RouteTables::new(&mut b, ROUTES_PER_TABLE),
            4,
            &mut Rng::new(1),
        );
        assert_eq!(&sixteen[..4], &four[..]);
        for t in &four {
            // 50 to 1,000 drawn, less the few a table already had.
            assert!((40..=ROUTES_PER_TABLE).contains(&t.len()), "{}", t.len());
        }
    }

    #[test]
    fn keys_hit_their_tables_and_mappings_are_distinct() {
        let mut slots = vec![RouteSlot::EMPTY; 4 * ROUTES_PER_TABLE];
        let mut rt = RouteTables::new(&mut slots, ROUTES_PER_TABLE);
        let routes = fill_route_tables(&mut rt, 4, &mut Rng::new(1));
        for (t, ip) in lpm_keys(&routes, 2000, &mut Rng::new(7)) {
            let t = usize::from(t);
            assert_eq!(rt.lookup(t as u16, ip), longest_match(&routes[t], ip));
        }
        let mk = mapping_keys(1000, 100, &mut Rng::new(2));
        let stored: HashSet<_> = mk.stored.iter().map(|k| (k.vni, k.ip)).collect();
        assert_eq!(stored.len(), 1000);
        assert!(mk.hits.iter().all(|k| stored.contains(&(k.vni, k.ip))));
        assert!(mk.misses.iter().all(|k| !stored.contains(&(k.vni, k.ip))));
    }
}
