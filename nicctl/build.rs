//! Sets `cfg(not_root)` when the tests are built by a user other than root, so that the
//! whole-system tests, which need root (network namespaces, TAP devices), report themselves
//! as ignored with their reason instead of passing without checking anything. CI builds
//! and runs them as root.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(not_root)");
    println!("cargo::rerun-if-changed=build.rs");
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid:\treal\teffective\tsaved\tfs"
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if euid != "0" {
        println!("cargo::rustc-cfg=not_root");
    }
}
