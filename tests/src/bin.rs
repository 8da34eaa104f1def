//! Binaries of the workspace that the tests run as separate processes (`nic-sim`, and
//! `nicctl` for the vfio-user tests): the path in an environment variable if set, else
//! `target/<profile>/<bin>` of the profile the tests were built with, built (or brought up
//! to date) the first time a test binary needs it.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The `nicctl` binary: `$VPCNIC_NICCTL`, or `target/<profile>/nicctl`.
pub fn nicctl() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| workspace_binary("VPCNIC_NICCTL", "nicctl", "nicctl"))
}

/// A binary of the workspace: the path in `$env_var` if set, else `target/<profile>/<bin>`
/// of the profile the tests were built with, built (or brought up to date) with
/// `cargo build -p <package> --bin <bin>`.
pub fn workspace_binary(env_var: &str, package: &str, bin: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a profile directory name")
        .to_string();
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", package, "--bin", bin])
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "building {bin} (cargo build -p {package} --bin {bin}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = profile_dir.join(bin);
    assert!(path.exists(), "{} was not built", path.display());
    path
}
