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

/// A NIC that lives between nicctl commands: `apply` makes only the difference, `diff` reads
/// the NIC back, and a command that opens the device takes it over as it is.
#[test]
fn apply_and_diff_reconcile_a_nic_sim_process_across_commands() {
    let sim = NicSim::start(SimConfig::default()).expect("nic-sim comes up");
    let device = format!("vfio-user:{}", sim.socket().display());
    let dir = std::env::temp_dir().join(format!("vpcnic-reconcile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/two-hosts.toml"
    ))
    .unwrap();
    let a = dir.join("a.toml");
    std::fs::write(&a, &base).unwrap();
    let b = dir.join("b.toml");
    std::fs::write(
        &b,
        base.replace(
            "[host.h1]",
            "[instance.a3]\nsubnet = \"left\"\nip = \"10.0.1.12\"\nhost = \"h1\"\n\n[host.h1]",
        ),
    )
    .unwrap();
    let nicctl_run = |args: &[&str]| {
        let out = Command::new(nicctl())
            .args(["--device", &device])
            .args(args)
            .output()
            .expect("nicctl runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (code, out, err) = nicctl_run(&["diff", &path(&a)]);
    assert_eq!(code, Some(2), "a fresh NIC: everything to add\n{out}{err}");
    let (code, _, err) = nicctl_run(&["apply", &path(&a)]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = nicctl_run(&["diff", &path(&a)]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
    let (code, out, err) = nicctl_run(&["diff", &path(&b)]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        out,
        "host h1: 2 changes\n  \
         + vf 1 in subnet 0, 10.0.1.12, 02:92:0a:00:01:0c\n  \
         ~ mapping vni 4242 10.0.1.12 -> local vf 1, 02:92:0a:00:01:0c\n"
            .replace("~ mapping", "+ mapping")
    );
    let (code, _, err) = nicctl_run(&["apply", &path(&b)]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = nicctl_run(&["diff", &path(&b)]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
    // The first instance goes: only its VF and mapping change; a3 keeps VF 1.
    let c = dir.join("c.toml");
    let without_a1 = std::fs::read_to_string(&b).unwrap().replace(
        "[instance.a1]\nsubnet = \"left\"\nip = \"10.0.1.10\"\nhost = \"h1\"\n",
        "",
    );
    std::fs::write(&c, without_a1).unwrap();
    let (code, out, err) = nicctl_run(&["diff", &path(&c)]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        out,
        "host h1: 2 changes\n  \
         - mapping vni 4242 10.0.1.10\n  \
         - vf 0\n"
    );
    let (code, _, err) = nicctl_run(&["apply", &path(&c)]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = nicctl_run(&["diff", &path(&c)]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
    // And back.
    let (code, _, err) = nicctl_run(&["apply", &path(&a)]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = nicctl_run(&["diff", &path(&a)]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
