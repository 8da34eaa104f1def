//! The benches' VRF route mix and lookup keys (`nic-firmware/benches/common`), with the
//! number of tables as a parameter: at 4,096 tables (seed 1) they are the `lpm` bench's
//! ~1.94M routes and keys, route for route and key for key; fewer tables draw the first
//! tables of that same sequence. `tests/generators.rs` checks both against the benches' code.
use super::Rng;
use nic_firmware::tables::lpm::{prefix_mask, Route, RouteTables, Target};

/// Route slots per table: the maximum per table, as in the benches.
pub const ROUTES_PER_TABLE: usize = 1000;
/// Peering targets are drawn over the benches' 4,096 VPCs, whatever the table count, so
/// that the draws stay those of the benches.
const PEER_VPCS: u32 = 4096;

/// The CIDR (a /16 in 10.0.0.0/8) of the VPC that owns route table `t`.
pub fn vpc_cidr(t: usize) -> u32 {
    0x0a00_0000 | (((t as u32).wrapping_mul(37) & 0xff) << 16)
}

/// Fills tables `0..vrfs` of `rt` with the benches' mix and returns each table's routes as
/// inserted (a drawn prefix already in the table is skipped):
///
/// - the VPC CIDR /16 -> `Local`, and a default route -> `Gateway(0)`;
/// - 48 to 998 more: 40 % inside the VPC /16, /17 to /32, to an instance or (1 in 8) a
///   blackhole; 30 % other private ranges, /16 to /28, peering; 30 % anywhere, /8 to /32,
///   a VPN or transit gateway.
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
            target: Target::Peering(rng.range(0, PEER_VPCS - 1) as u16),
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
/// table's VPC CIDR, 25 % inside one of its routes, 25 % uniform over IPv4.
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
