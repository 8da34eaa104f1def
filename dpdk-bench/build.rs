//! With the `dpdk` feature: finds DPDK through pkg-config (`libdpdk`, Debian's
//! `libdpdk-dev`), links it, and compiles `csrc/shim.c` with DPDK's own compiler flags.
//! Without the feature: nothing, so the workspace builds where DPDK is not installed.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::process::Command;

    pub fn build() {
        println!("cargo:rerun-if-changed=csrc/shim.c");
        // Link flags (and a clear error when DPDK is missing) from the pkg-config crate.
        let lib = pkg_config::Config::new()
            .atleast_version("21.11")
            .probe("libdpdk")
            .unwrap_or_else(|e| {
                panic!(
                    "the `dpdk` feature needs DPDK's development files \
                     (Debian: apt-get install libdpdk-dev pkg-config): {e}"
                )
            });
        // The crate reports include paths and defines only; DPDK's headers also need the
        // rest of its --cflags (`-include rte_config.h`, the `-march` it was built for), so
        // those come from the tool itself.
        let cflags = pkg_config_cflags();
        let mut cc = cc::Build::new();
        cc.file("csrc/shim.c").warnings(true).extra_warnings(true);
        for dir in &lib.include_paths {
            cc.include(dir);
        }
        for flag in &cflags {
            if !flag.starts_with("-I") {
                cc.flag(flag);
            }
        }
        cc.compile("vpcnic_dpdk_shim");
    }

    fn pkg_config_cflags() -> Vec<String> {
        let exe = std::env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
        let out = Command::new(&exe)
            .args(["--cflags", "libdpdk"])
            .output()
            .unwrap_or_else(|e| panic!("running {exe} --cflags libdpdk: {e}"));
        assert!(
            out.status.success(),
            "{exe} --cflags libdpdk failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}
