//! One BGP-like table: the prefix-length mix of an Internet routing table (mostly /24, then
//! /22, /23 and /16 to /21), more-specifics nested in shorter prefixes as operators
//! de-aggregate, public unicast space only, and a few longer internal routes so that the
//! DIR-24-8 table needs some second-level groups.
use super::Rng;
use nic_firmware::tables::lpm::{prefix_mask, Route, Target};
use std::collections::HashSet;

/// (prefix length, share in 1/10,000): close to the IPv4 default-free zone's distribution,
/// plus 2.4 % longer than /24 (host and link routes an edge router carries).
const LENGTHS: [(u8, u32); 25] = [
    (8, 2),
    (9, 2),
    (10, 5),
    (11, 10),
    (12, 20),
    (13, 30),
    (14, 50),
    (15, 80),
    (16, 140),
    (17, 80),
    (18, 110),
    (19, 280),
    (20, 450),
    (21, 450),
    (22, 1100),
    (23, 950),
    (24, 6000),
    (25, 40),
    (26, 30),
    (27, 25),
    (28, 25),
    (29, 25),
    (30, 30),
    (31, 6),
    (32, 60),
];

/// Percent of routes drawn inside an earlier, shorter route (a more-specific).
const NESTED: u64 = 40;

fn draw_len(rng: &mut Rng) -> u8 {
    let total: u32 = LENGTHS.iter().map(|&(_, w)| w).sum();
    let mut x = rng.range(0, total - 1);
    for &(len, w) in &LENGTHS {
        if x < w {
            return len;
        }
        x -= w;
    }
    24
}

/// True for addresses that never appear in an Internet table: 0/8, 10/8, 100.64/10,
/// 127/8, 169.254/16, 172.16/12, 192.168/16, and multicast and above (224/3).
fn reserved(ip: u32) -> bool {
    let in_net = |net: u32, len: u8| ip & prefix_mask(len) == net;
    in_net(0, 8)
        || in_net(0x0a00_0000, 8)
        || in_net(0x6440_0000, 10)
        || in_net(0x7f00_0000, 8)
        || in_net(0xa9fe_0000, 16)
        || in_net(0xac10_0000, 12)
        || in_net(0xc0a8_0000, 16)
        || ip >= 0xe000_0000
}

/// `n` distinct routes (n <= 65,535 fits one of our tables), each to one of 63 BGP next
/// hops (`Gateway(1..=63)`), in the order drawn.
pub fn bgp_routes(n: usize, rng: &mut Rng) -> Vec<Route> {
    let mut seen = HashSet::with_capacity(n);
    let mut routes: Vec<Route> = Vec::with_capacity(n);
    while routes.len() < n {
        let len = draw_len(rng);
        let host = rng.next_u32();
        let parent = (!routes.is_empty() && rng.chance(NESTED))
            .then(|| routes[rng.below(routes.len() as u64) as usize])
            .filter(|p| p.len < len);
        let ip = match parent {
            Some(p) => p.prefix | (host & !prefix_mask(p.len)),
            None => host,
        };
        if reserved(ip) {
            continue;
        }
        let prefix = ip & prefix_mask(len);
        if seen.insert((prefix, len)) {
            routes.push(Route {
                prefix,
                len,
                target: Target::Gateway(rng.range(1, 63) as u16),
            });
        }
    }
    routes
}

/// `n` destination addresses: 75 % inside a random route of `routes` (random host bits),
/// 25 % uniform over IPv4 (some of those match no route).
pub fn bgp_keys(routes: &[Route], n: usize, rng: &mut Rng) -> Vec<u32> {
    (0..n)
        .map(|_| {
            let r = rng.next_u32();
            if rng.chance(75) {
                let route = routes[rng.below(routes.len() as u64) as usize];
                route.prefix | (r & !prefix_mask(route.len))
            } else {
                r
            }
        })
        .collect()
}
