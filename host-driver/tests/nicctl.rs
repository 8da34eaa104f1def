//! `nicctl` as a user runs it, against the built-in simulator.
use std::process::{Command, Output};

fn nicctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nicctl"))
        .args(args)
        .output()
        .expect("nicctl runs")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "nicctl failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn info_shows_the_simulator() {
    let out = stdout(&nicctl(&["--vfs", "5", "info"]));
    assert!(
        out.contains("device:              simulated NIC (in-process)"),
        "{out}"
    );
    assert!(out.contains("VFs:                 5"), "{out}");
    let abi = format!(
        "ABI version:         {}.{}",
        shared_regs::ABI_VERSION_MAJOR,
        shared_regs::ABI_VERSION_MINOR
    );
    assert!(out.contains(&abi), "{out}");
    assert!(out.contains("heartbeat:"), "{out}");
}

#[test]
fn stats_table_has_one_column_per_function() {
    let out = stdout(&nicctl(&["--vfs", "2", "stats"]));
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["counter", "vf0", "vf1", "uplink"]);
    assert!(out.lines().any(|l| l.starts_with("tx_packets")), "{out}");
}

#[test]
fn stats_json_is_function_then_counter() {
    let out = stdout(&nicctl(&["stats", "--vf", "1", "--uplink", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{out}");
    assert_eq!(v["vf1"]["tx_packets"], 0);
    assert_eq!(v["uplink"]["drop_uplink_foreign"], 0);
}

#[test]
fn errors_exit_non_zero_with_the_message() {
    let o = nicctl(&["--device", "vfio", "info"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim(),
        "nicctl: unknown device \"vfio\"; known devices: sim"
    );

    let o = nicctl(&["--vfs", "2", "stats", "--vf", "2"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("there is no vf2"), "{err}");
}
