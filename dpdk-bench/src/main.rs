//! `dpdk-bench [--quick] [--only vrf|bgp|mapping]`: our tables against DPDK's on one core;
//! prints every method's cost, then the table (`| work | vpcnic | DPDK | ratio |
//! memory |`). Needs the `dpdk` feature; see README.md.
use std::process::ExitCode;

const USAGE: &str = "usage: dpdk-bench [--quick] [--only vrf|bgp|mapping]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    bench(quick, only.as_deref())
}

#[cfg(not(feature = "dpdk"))]
fn bench(_quick: bool, _only: Option<&str>) -> ExitCode {
    eprintln!(
        "dpdk-bench was built without DPDK, so it has nothing to compare with. Build it with:\n\
         \n    apt-get install -y libdpdk-dev pkg-config      # Debian 12: DPDK 22.11\n    \
         cargo run --release -p dpdk-bench --features dpdk [-- --quick]"
    );
    ExitCode::from(2)
}

#[cfg(feature = "dpdk")]
fn bench(quick: bool, only: Option<&str>) -> ExitCode {
    use dpdk_bench::{dpdk, report, run, scale::Scale};

    let scale = if quick { Scale::QUICK } else { Scale::FULL };
    if let Err(e) = dpdk::init(scale.eal_mb) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let ctx = run::Ctx {
        scale,
        verbose: true,
    };
    let rows = match only {
        None => run::all(&ctx),
        Some("vrf") => run::vrf_mix(&ctx),
        Some("bgp") => run::bgp_table(&ctx),
        Some("mapping") => run::mappings(&ctx),
        Some(other) => Err(format!("unknown workload {other}; {USAGE}")),
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dpdk-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", machine());
    println!(
        "One core, thread CPU time, best of {} passes over {} pre-generated keys; every answer \
         cross-checked between both sides and against the oracle. Ratio: our lookups (or builds) \
         per second over DPDK's, best method of each side.\n",
        scale.passes,
        run::thousands(scale.keys)
    );
    println!("{}", report::details(&rows));
    println!("{}", report::markdown(&rows));
    ExitCode::SUCCESS
}

/// The CPU model and count, for the record.
#[cfg(feature = "dpdk")]
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("Machine: {model}, {cpus} CPUs.")
}
