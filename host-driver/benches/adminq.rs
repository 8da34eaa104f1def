//! `adminq`: admin commands per second through the in-process simulator's admin queue, for
//! a 100,000-mapping change (`MAPPING_ADD` x 100,000 on a `SimConfig::cloud_scale` NIC),
//! batched ([`host_driver::Batch`]: many entries per doorbell, completions collected in
//! order) against the same commands one per doorbell (`PfDriver::add_mapping`) in the same
//! run. Wall-clock time: the work is split between this thread and the device thread. Each
//! line also gives the process's CPU time (both threads), which a busy machine disturbs
//! less.
//!
//! ```sh
//! cargo bench -p host-driver --features sim --bench adminq
//! ADMINQ_BENCH_MAPPINGS=10000 ADMINQ_BENCH_ENTRIES=64 cargo bench -p host-driver --features sim --bench adminq
//! ```
//! Prints one line per pass and a `SUMMARY` line with the ratio. See benches/README.md.
use host_driver::backend::sim::SimBackend;
use host_driver::{MappingLocationSpec, Options, PfDriver, VpcSpec};
use hw_sim::SimConfig;
use shared_regs::entry::MappingEntry;
use shared_regs::entry::TableId;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const VNI: u32 = 100;
/// Batched passes; the best and the median are reported.
const PASSES: usize = 9;

fn ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + 1 + i)
}

fn loc(i: u32) -> MappingLocationSpec {
    if i.is_multiple_of(64) {
        MappingLocationSpec::LocalVf((i % 16) as u16)
    } else {
        MappingLocationSpec::Remote(Ipv4Addr::from(0x6400_0000 | (i & 0xfff)))
    }
}

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_le_bytes();
    [0x02, 0, b[0], b[1], b[2], b[3]]
}

fn mappings(drv: &PfDriver) -> usize {
    drv.read_table::<MappingEntry>(TableId::Mapping, 0)
        .unwrap()
        .len()
}

/// CPU time of the whole process (this thread and the device thread) so far.
fn process_cpu() -> Duration {
    // SAFETY: `ru` is a valid rusage for getrusage to fill; RUSAGE_SELF needs nothing else.
    let ru = unsafe {
        let mut ru = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Wall and process CPU time of `f`.
fn timed(f: impl FnOnce()) -> (Duration, Duration) {
    let (start, cpu) = (Instant::now(), process_cpu());
    f();
    (start.elapsed(), process_cpu() - cpu)
}

/// Adds the `n` mappings in one batch.
fn add_batched(drv: &PfDriver, n: u32) -> (Duration, Duration) {
    timed(|| {
        let mut b = drv.batch();
        for i in 0..n {
            b.add_mapping(VNI, ip(i), mac(i), loc(i));
        }
        assert_eq!(b.run().unwrap(), n as usize);
    })
}

/// Adds the `n` mappings one command per doorbell.
fn add_one_by_one(drv: &PfDriver, n: u32) -> (Duration, Duration) {
    timed(|| {
        for i in 0..n {
            drv.add_mapping(VNI, ip(i), mac(i), loc(i)).unwrap();
        }
    })
}

fn del_batched(drv: &PfDriver, n: u32) {
    let mut b = drv.batch();
    for i in 0..n {
        b.del_mapping(VNI, ip(i));
    }
    b.run().unwrap();
}

fn rate(n: u32, t: Duration) -> f64 {
    f64::from(n) / t.as_secs_f64()
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let n: u32 = std::env::var("ADMINQ_BENCH_MAPPINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 2000 } else { 100_000 });
    let backend = SimBackend::start(SimConfig::cloud_scale(16)).unwrap();
    let mut opts = Options::default();
    if let Some(e) = std::env::var("ADMINQ_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.adminq_entries = e;
    }
    let entries = opts.adminq_entries;
    let drv = PfDriver::open_with(Box::new(backend), opts).unwrap();
    drv.add_vpc(&VpcSpec {
        id: 1,
        vni: VNI,
        cidr: (Ipv4Addr::new(10, 0, 0, 0), 8),
        main_route_table: None,
        dns: vec![],
        domain: None,
    })
    .unwrap();
    let base = mappings(&drv);
    println!(
        "adminq: {n} MAPPING_ADD on a cloud_scale simulated NIC ({} mapping entries), \
         admin queue of {} entries (driver asked {entries})",
        drv.info().mappings,
        drv.info().adminq_entries.min(entries),
    );

    // Baseline: one command per doorbell, waiting for each completion.
    let (one, one_cpu) = add_one_by_one(&drv, n);
    assert_eq!(mappings(&drv), base + n as usize);
    println!(
        "one per doorbell: {:>9.0} commands/s, {:>8.1} ms, cpu {:>8.1} ms ({:.2} us/command)",
        rate(n, one),
        one.as_secs_f64() * 1e3,
        one_cpu.as_secs_f64() * 1e3,
        one_cpu.as_secs_f64() * 1e6 / f64::from(n)
    );
    del_batched(&drv, n);
    assert_eq!(mappings(&drv), base);

    let mut times = Vec::new();
    for pass in 0..PASSES {
        let (t, cpu) = add_batched(&drv, n);
        if pass == 0 {
            // TABLE_READ of a 1M-entry table is slow: checked once.
            assert_eq!(mappings(&drv), base + n as usize);
        }
        println!(
            "batched, pass {}: {:>9.0} commands/s, {:>8.1} ms, cpu {:>8.1} ms ({:.2} us/command)",
            pass + 1,
            rate(n, t),
            t.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e6 / f64::from(n)
        );
        times.push(t);
        del_batched(&drv, n);
    }
    assert_eq!(mappings(&drv), base);
    times.sort();
    let (best, median) = (times[0], times[times.len() / 2]);
    println!(
        "SUMMARY adminq {n}-mapping change: batched {:.2} M commands/s ({:.1} ms, median {:.2} M/s, \
         {:.1} ms) vs one per doorbell {:.3} M commands/s ({:.1} ms): {:.1}x",
        rate(n, best) / 1e6,
        best.as_secs_f64() * 1e3,
        rate(n, median) / 1e6,
        median.as_secs_f64() * 1e3,
        rate(n, one) / 1e6,
        one.as_secs_f64() * 1e3,
        one.as_secs_f64() / best.as_secs_f64()
    );
}
