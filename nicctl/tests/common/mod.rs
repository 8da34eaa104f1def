//! The harness of nicctl's tests: `nicctl` run as a user runs it, and the whole-system
//! tests of `nicctl up`, which build a VPC of real network namespaces and run real tools
//! (ping, arping, tcpdump, tshark, iperf3, dhclient) inside them.
//!
//! - [`nicctl`] runs the binary to its end; [`Run`] is what it printed.
//! - [`proc`]: processes a test starts, waited for by event (a line, an exit, the output's
//!   end), never by sleeping: [`run`], [`run_in`], [`Bg`].
//! - [`netns`]: namespaces and the tools inside them ([`ping`], [`Sniffer`], ...).
//! - [`up`]: [`Up`], a running `nicctl up FILE`. One deployment at a time, across test
//!   binaries; everything it made is removed when it stops, also when the test fails.
//!
//! The tests that need root (network namespaces, TAP devices) say so on their `#[test]`
//! (`cfg(not_root)`, set by build.rs when another user builds them); run as non-root they
//! fail ([`need_root`]), never pass without checking anything.
#![allow(dead_code, unused_imports)]
pub mod cluster;
pub mod netns;
pub mod proc;
pub mod up;

pub use netns::{
    ip_json, namespace_exists, namespaces, ping, ping_answers, ping_fails, ping_line, ping_loss,
    sh_in, wait_listening, Sniffer, TempNamespaces,
};
pub use proc::{run, run_in, Bg, Run};
pub use up::{serial, Up};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The nicctl binary under test.
pub fn nicctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_nicctl")
}

/// Runs `nicctl ARGS` to its end.
pub fn nicctl(args: &[&str]) -> Run {
    let mut argv = vec![nicctl_bin()];
    argv.extend_from_slice(args);
    run(&argv)
}

/// `examples/NAME` of the workspace.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("nicctl/ is inside the workspace")
        .join("examples")
        .join(name)
}

/// `nicctl/tests/data/NAME`.
pub fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Fails the running test unless it runs as root. Tests that need root are `#[ignore]`d
/// with the reason when built by another user (see build.rs), so reaching this as non-root
/// means the build and the run were by different users: a failure, never a silent pass.
pub fn need_root() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "{} needs root (it creates network namespaces and TAP devices); it was built as \
         root but runs as another user",
        std::thread::current().name().unwrap_or("this test")
    );
}

/// Runs `f` until it returns true or `timeout` passes; returns its last answer. For
/// conditions no event announces.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A path in the temporary directory, unique to this process; the file is removed when
/// this is dropped.
pub struct TempFile(PathBuf);

impl TempFile {
    /// A new file holding `text`.
    pub fn with(stem: &str, ext: &str, text: &str) -> TempFile {
        let file = TempFile::path_for(stem, ext);
        std::fs::write(&file.0, text).unwrap_or_else(|e| panic!("{}: {e}", file.str()));
        file
    }

    /// A path for a file the test (or what it runs) makes.
    pub fn path_for(stem: &str, ext: &str) -> TempFile {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempFile(std::env::temp_dir().join(format!("{stem}-{}-{n}.{ext}", std::process::id())))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn str(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
