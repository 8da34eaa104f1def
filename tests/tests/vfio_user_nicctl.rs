//! `nicctl --device vfio-user:PATH` drives a `nic-sim --socket PATH` process as a user
//! runs it.
use hw_sim::SimConfig;
use std::process::Command;
use tests::bin::nicctl;
use tests::vfio_user::NicSim;

#[test]
fn nicctl_reads_the_info_of_a_nic_sim_process() {
    let sim = NicSim::start(SimConfig::default()).expect("nic-sim comes up");
    let device = format!("vfio-user:{}", sim.socket().display());
    let out = Command::new(nicctl())
        .args(["--device", &device, "info"])
        .output()
        .expect("nicctl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{} (vfio-user)", sim.socket().display())),
        "{stdout}"
    );
}

#[test]
fn nicctl_names_a_missing_socket() {
    let out = Command::new(nicctl())
        .args(["--device", "vfio-user:/nonexistent/nic.sock", "info"])
        .output()
        .expect("nicctl runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/nic.sock (vfio-user): no such socket"),
        "{stderr}"
    );
}
