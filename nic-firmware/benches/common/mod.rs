//! Shared set-up of the benchmarks: a seeded random generator, the 4,096 route tables of the
//! `lpm` and `pipeline` benches, the 1M mapping keys, criterion settings and the summary
//! helpers. Everything is deterministic (fixed seeds), so two runs measure the same tables
//! and keys.
#![allow(dead_code)] // each bench uses a part

use criterion::Criterion;
use nic_firmware::tables::lpm::{prefix_mask, Route, RouteTables, Target};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Route tables (VRFs): the minimum.
pub const VRFS: usize = 4096;
/// Routes each table can hold, the local route included: the maximum per table.
pub const ROUTES_PER_TABLE: usize = 1000;
/// Mappings loaded: the minimum.
pub const MAPPINGS: usize = 1_000_000;
/// Pre-generated lookup keys: many more than fit in L2, so the keys stream from memory and
/// successive lookups hit unrelated tables.
pub const KEYS: usize = 1 << 20;
/// Lookups per criterion iteration; criterion reports throughput in these elements.
pub const CHUNK: usize = 1024;

pub use nic_firmware::testing::Rng;

/// The CIDR (a /16 in 10.0.0.0/8) of the VPC that owns route table `t`. VPCs reuse the same
/// private ranges, as real tenants do; they are told apart by VNI and route table.
pub fn vpc_cidr(t: usize) -> u32 {
    0x0a00_0000 | (((t as u32 * 37) & 0xff) << 16)
}

/// Fills every table of `rt` with a realistic mix and returns each table's routes:
///
/// - the local route: the VPC CIDR /16 -> `Local` (the admin handler adds it with the table);
/// - a default route 0.0.0.0/0 -> an internet gateway;
/// - 48 to 998 more routes (uniform; mean ~523, so ~2.1M routes in all), each:
///   - 40 %: inside the VPC CIDR, /17 to /32 -> an appliance instance (`Instance`) or, one
///     time in 8, a `Blackhole`: middlebox and subnet-level routing;
///   - 30 %: another private range (10/8, 172.16/12, 192.168/16), /16 to /28 -> `Peering`;
///   - 30 %: anywhere, /8 to /32 -> a VPN or transit `Gateway`: on-premises prefixes.
///
/// A random prefix that is already in the table is skipped, so counts are approximate.
pub fn fill_route_tables(rt: &mut RouteTables<'_>, rng: &mut Rng) -> Vec<Vec<Route>> {
    let mut all = Vec::with_capacity(VRFS);
    for t in 0..VRFS {
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
            let r = rng.next_u32();
            let route = if rng.chance(40) {
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
                    target: Target::Peering(rng.range(0, VRFS as u32 - 1) as u16),
                }
            } else {
                let len = rng.range(8, 32) as u8;
                Route {
                    prefix: r & prefix_mask(len),
                    len,
                    target: Target::Gateway(rng.range(1, 63) as u16),
                }
            };
            routes.push(route);
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

/// The longest match by linear scan, to check the set-up.
pub fn reference_lookup(routes: &[Route], ip: u32) -> Option<Route> {
    routes
        .iter()
        .filter(|r| ip & prefix_mask(r.len) == r.prefix)
        .max_by_key(|r| r.len)
        .copied()
}

/// Short runs: the whole `cargo bench` stays around two minutes on 2 cores. Command-line
/// options (`--measurement-time`, `--sample-size`, a filter) still override these.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}

/// True when the binary runs as a test (`cargo test --benches`), not as a benchmark: the
/// summaries then make one quick pass instead of timing.
pub fn test_mode() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// Nanoseconds this thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`), on Linux.
#[cfg(target_os = "linux")]
fn thread_cpu_ns() -> Option<u64> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime writes one timespec (two longs on 64-bit Linux) to `ts`.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.sec as u64 * 1_000_000_000 + ts.nsec as u64)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_ns() -> Option<u64> {
    None
}

/// Best of `reps` timings of `f`, which does `ops` operations, in ns per operation. Timed
/// in the thread's CPU time where Linux reports it, so that time the thread spends
/// preempted by other work on a shared machine does not count; else in wall-clock time.
pub fn ns_per_op(reps: usize, ops: usize, mut f: impl FnMut() -> u64) -> f64 {
    let reps = if test_mode() { 1 } else { reps };
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let cpu0 = thread_cpu_ns();
        let start = Instant::now();
        black_box(f());
        let wall = start.elapsed().as_nanos() as f64;
        let ns = match (cpu0, thread_cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64,
            _ => wall,
        };
        best = best.min(ns / ops as f64);
    }
    best
}

/// One summary line: `SUMMARY <name>: <ns> ns/<op>, <M> M<op>s/s | <baseline> ... | ratio`.
pub fn summary(bench: &str, op: &str, ns: f64, base_name: &str, base_ns: f64) {
    println!(
        "SUMMARY {bench}: {ns:.2} ns/{op}, {:.1} M{op}s/s | baseline {base_name}: {base_ns:.2} ns/{op}, {:.1} M{op}s/s | ratio {:.2}x the baseline's time",
        1e3 / ns,
        1e3 / base_ns,
        ns / base_ns
    );
}

/// `n` copies of `v`, on 2 MiB pages where the kernel grants them (unless
/// `LPM_SMALL_PAGES` is set). DPDK runs its tables on hugepages, and a NIC's table memory has
/// no TLB to miss: random lookups over many MB of 4 KiB pages also measure page walks.
pub fn table_memory<T: Clone>(n: usize, v: T) -> Vec<T> {
    let mut mem = Vec::with_capacity(n);
    #[cfg(target_os = "linux")]
    if std::env::var_os("LPM_SMALL_PAGES").is_none() {
        extern "C" {
            fn madvise(addr: *mut u8, len: usize, advice: i32) -> i32;
        }
        const MADV_HUGEPAGE: i32 = 14;
        const HUGE: usize = 2 << 20;
        let start = (mem.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (mem.as_ptr() as usize + n * std::mem::size_of::<T>()) & !(HUGE - 1);
        if end > start {
            // SAFETY: advice about pages of this Vec's own allocation, not yet touched; it
            // changes no content, and failing (no THP) leaves 4 KiB pages.
            unsafe { madvise(start as *mut u8, end - start, MADV_HUGEPAGE) };
        }
    }
    mem.resize(n, v);
    mem
}
