//! DPDK's Environment Abstraction Layer, started once per process, on one lcore, without
//! hugepages or devices: the tables only need its memory heap.
use super::ffi;
use std::ffi::{c_char, c_int, CString};
use std::sync::OnceLock;

static EAL: OnceLock<Result<(), String>> = OnceLock::new();

/// The EAL's arguments: `mem_mb` megabytes of ordinary (4 KiB-page) memory; no PCI scan;
/// no shared configuration files (`--no-shconf`: `--in-memory` is refused with
/// `--no-huge`, which implies legacy memory); no telemetry socket; errors only in the log;
/// lcore 0 free to run on any CPU of the process (pinning it could put it on the core
/// the machine's other work runs on); AVX-512 allowed, so `rte_fib6` can use its vector
/// lookup where the CPU has it.
fn args(mem_mb: usize) -> Vec<String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    vec![
        "dpdk-bench".into(),
        "--no-huge".into(),
        "--no-pci".into(),
        "--no-shconf".into(),
        "--no-telemetry".into(),
        "-m".into(),
        mem_mb.to_string(),
        "--log-level=*:error".into(),
        format!("--lcores=0@(0-{})", cpus - 1),
        "--force-max-simd-bitwidth=512".into(),
    ]
}

/// Starts the EAL (once; later calls return the first result). The calling thread becomes
/// lcore 0.
pub fn init(mem_mb: usize) -> Result<(), String> {
    EAL.get_or_init(|| start(&args(mem_mb))).clone()
}

fn start(args: &[String]) -> Result<(), String> {
    let owned: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    // The EAL may keep pointers into argv for the life of the process: leak them.
    let mut argv: Vec<*mut c_char> = owned.into_iter().map(CString::into_raw).collect();
    let argc = c_int::try_from(argv.len()).map_err(|e| e.to_string())?;
    argv.push(std::ptr::null_mut());
    let argv = argv.leak();
    // SAFETY: argv holds argc valid NUL-terminated strings and a final NULL, all leaked so
    // they outlive the EAL; rte_eal_init may reorder the pointers, which it owns now.
    let rc = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
    if rc < 0 {
        return Err(format!(
            "rte_eal_init({}) failed: {}",
            args.join(" "),
            super::last_error()
        ));
    }
    Ok(())
}
