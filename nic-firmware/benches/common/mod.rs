//! Shared set-up of the benchmarks: the workloads' sizes (the tables and keys themselves are
//! drawn by `nic_firmware::workload`, from fixed seeds, so two runs measure the same),
//! criterion settings and the summary helpers.
#![allow(dead_code, unused_imports)] // each bench uses a part

use criterion::Criterion;
use nic_firmware::tables::lpm::{Route, RouteTables};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Route tables (VRFs): the minimum.
pub const VRFS: usize = nic_firmware::workload::VPCS;
/// Mappings loaded: the minimum.
pub const MAPPINGS: usize = 1_000_000;
/// Pre-generated lookup keys: many more than fit in L2, so the keys stream from memory and
/// successive lookups hit unrelated tables.
pub const KEYS: usize = 1 << 20;
/// Lookups per criterion iteration; criterion reports throughput in these elements.
pub const CHUNK: usize = 1024;

pub use nic_firmware::testing::Rng;
pub use nic_firmware::workload::{longest_match, lpm_keys, vpc_cidr, ROUTES_PER_TABLE};

/// Fills every table of `rt` with the VRF mix ([`nic_firmware::workload`]) and returns each
/// table's routes.
pub fn fill_route_tables(rt: &mut RouteTables<'_>, rng: &mut Rng) -> Vec<Vec<Route>> {
    nic_firmware::workload::fill_route_tables(rt, VRFS, rng)
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
