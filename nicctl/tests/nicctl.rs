//! `nicctl` as a user runs it, against the built-in simulator.
mod common;
use common::{data, nicctl};

#[test]
fn info_shows_the_simulator() {
    let out = nicctl(&["--vfs", "5", "info"]).expect_ok();
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
    // Every PF register by its datasheet name, read from the device.
    for r in shared_regs::pf::REGISTERS {
        let row = format!("  {:#05x}  {}", r.offset, r.name);
        assert!(out.contains(&row), "{} is not named:\n{out}", r.name);
    }
    assert!(
        out.contains("  0x028  CAP_GATEWAYS        0x00000040"),
        "{out}"
    );
    // ABI 1.4: how many remote hosts the mappings may point to (16,384 at cloud scale).
    assert!(out.contains("remote hosts:        16384"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("0x02c  CAP_UNDERLAYS") && l.contains("0x00004000")),
        "{out}"
    );
}

#[test]
fn stats_table_has_one_column_per_function() {
    // `--device sim`: a `nicctl up` running beside this test must not answer instead.
    let out = nicctl(&["--device", "sim", "--vfs", "2", "stats"]).expect_ok();
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["counter", "vf0", "vf1", "uplink"]);
    assert!(out.lines().any(|l| l.starts_with("tx_packets")), "{out}");
}

#[test]
fn stats_json_is_function_then_counter() {
    let out = nicctl(&[
        "--device", "sim", "stats", "--vf", "1", "--uplink", "--json",
    ])
    .expect_ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{out}");
    assert_eq!(v["vf1"]["tx_packets"], 0);
    assert_eq!(v["uplink"]["drop_uplink_foreign"], 0);
}

#[test]
fn errors_exit_non_zero_with_the_message() {
    let o = nicctl(&["--device", "vfio", "info"]);
    assert!(!o.ok());
    let err = o.stderr;
    assert_eq!(
        err.trim(),
        "nicctl: unknown device \"vfio\"; known devices: sim, sim-small, vfio:<PCI address>, \
         vfio-user:<socket path>"
    );

    // Without that device (or without VFIO), the error names what is missing.
    let o = nicctl(&["--device", "vfio:0000:ff:1f.7", "info"]);
    assert!(!o.ok());
    let err = o.stderr;
    assert!(err.starts_with("nicctl: 0000:ff:1f.7 (vfio): "), "{err}");

    let o = nicctl(&["--device", "sim", "--vfs", "2", "stats", "--vf", "2"]);
    assert!(!o.ok());
    let err = o.stderr;
    assert!(err.contains("there is no vf2"), "{err}");
}

#[test]
fn check_accepts_a_good_file_and_lists_every_error_of_a_bad_one() {
    let good = data("three-tier.toml");
    let out = nicctl(&["check", &good]).expect_ok();
    assert_eq!(
        out,
        format!("{good}: valid: 2 VPCs, 2 gateways, 3 route tables, 4 subnets, 6 instances on 2 hosts\n")
    );
    let bad = data("bad.toml");
    let err = nicctl(&["check", &bad]).expect_err();
    assert_eq!(
        err,
        format!(
            "nicctl: {bad}: 3 errors:\n\
             \x20 route_table.rt.routes[0].target: unknown route target \"igw\": expected a gateway \
             name (the file has no gateways), pcx:<vpc>, eni:<instance> or blackhole\n\
             \x20 subnet.web.cidr: \"10.0.1.0/33\" is not an IPv4 CIDR: the prefix length \"33\" is \
             not 0 to 32 (line 7, column 8)\n\
             \x20 subnet.app.cidr: 10.1.2.0/24 is outside vpc prod (10.0.0.0/16)\n"
        )
    );
    // Three instances on one host do not fit a NIC with two VFs.
    let err = nicctl(&["--vfs", "2", "check", &data("one-host.toml")]).expect_err();
    assert!(
        err.ends_with("instance: 3 instances on host local but the NIC has 2 VFs\n"),
        "{err}"
    );
}

#[test]
fn apply_programs_the_simulator_and_summarises() {
    let out = nicctl(&["apply", &data("three-tier.toml"), "--host", "h2"]).expect_ok();
    assert!(
        out.starts_with(
            "Programmed simulated NIC (in-process) as host h2 (underlay 192.0.2.2): 31 commands\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("vf0  web2      web     10.0.1.11  02:64:0a:00:01:0b"),
        "{out}"
    );
    assert!(
        out.contains("vf2  dns1      svc     10.9.1.53  02:c8:0a:09:01:35"),
        "{out}"
    );
    let err = nicctl(&["apply", &data("three-tier.toml"), "--host", "h9"]).expect_err();
    assert_eq!(
        err,
        "nicctl: unknown host \"h9\" (hosts of the file: h1, h2)\n"
    );
}

#[test]
fn apply_handles_plans_of_thousands_of_commands() {
    // 1,200 instances on 200 hosts: 1,200 mappings on every NIC.
    let mut file = String::from(
        "[vpc.big]\nvni = 7\ncidr = \"10.0.0.0/16\"\n[subnet.s]\nvpc = \"big\"\ncidr = \"10.0.0.0/20\"\n",
    );
    for h in 0..200 {
        file.push_str(&format!("[host.h{h}]\n"));
    }
    for i in 0..1200u32 {
        let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 0, 0, 10)) + i);
        file.push_str(&format!(
            "[instance.i{i}]\nsubnet = \"s\"\nip = \"{ip}\"\nhost = \"h{}\"\n",
            i % 200
        ));
    }
    let path = std::env::temp_dir().join(format!("nicctl-big-{}.toml", std::process::id()));
    std::fs::write(&path, file).unwrap();
    let out = nicctl(&["apply", path.to_str().unwrap(), "--host", "h3"]);
    let _ = std::fs::remove_file(&path);
    let out = out.expect_ok();
    assert!(out.contains("(underlay 192.0.2.4): 1210 commands"), "{out}");
    assert!(out.contains(" 1200 MAPPING_ADD"), "{out}");
}

fn trace(args: &[&str]) -> String {
    let file = data("three-tier.toml");
    let mut all = vec!["trace", file.as_str()];
    all.extend_from_slice(args);
    nicctl(&all).expect_ok()
}

#[test]
fn trace_prints_each_step_and_the_verdict() {
    let out = trace(&["--in", "vf0", "--flow", "icmp,src=10.0.1.10,dst=10.0.2.20"]);
    assert!(
        out.starts_with("Flow: icmp,src=10.0.1.10,dst=10.0.2.20, 73 bytes in on vf0 (host h1)\n\n"),
        "{out}"
    );
    assert!(
        out.contains(
            " F8  route lookup          [route table 2] 10.0.2.20 matches 10.0.0.0/16 -> local\n"
        ),
        "{out}"
    );
    assert!(out.contains("Datapath action: deliver to vf1\n"), "{out}");
    assert!(out.ends_with("Output frame: 06:64:0a:00:02:01 -> 02:64:0a:00:02:14, ethertype 0x0800 (IPv4), 73 bytes\n"), "{out}");

    let out = trace(&["--in", "vf0", "--flow", "arp,src=10.0.1.10,dst=10.0.1.1"]);
    assert!(
        out.contains("10.0.1.1 is at 06:64:0a:00:01:01 (F3a)"),
        "{out}"
    );
    assert!(out.contains("Datapath action: reply to vf0\n"), "{out}");

    let out = trace(&["--in", "vf0", "--flow", "ipv6"]);
    assert!(
        out.contains("Datapath action: drop: drop_ethertype (counted on vf0)\n"),
        "{out}"
    );

    let out = trace(&[
        "--in",
        "vf1",
        "--flow",
        "udp,src=10.0.2.20,dst=1.1.1.1,sport=5000,dport=53",
    ]);
    assert!(
        out.contains("1.1.1.1 matches 0.0.0.0/0 -> gateway 1"),
        "{out}"
    );
    assert!(out.contains("Datapath action: output to uplink\n"), "{out}");

    let out = trace(&[
        "--in",
        "uplink",
        "--flow",
        "icmp,src=10.0.3.30,dst=10.0.2.20",
    ]);
    assert!(
        out.contains("VXLAN decapsulation   from 192.0.2.2, vni 100: 10.0.3.30 -> 10.0.2.20"),
        "{out}"
    );
    assert!(out.contains("Datapath action: deliver to vf1\n"), "{out}");

    // Another subnet's gateway is answered by this NIC: the mapping names this host.
    let out = trace(&["--in", "vf0", "--flow", "icmp,src=10.0.1.10,dst=10.0.2.1"]);
    assert!(
        out.contains("vni 100 10.0.2.1 -> gateway (this host, 192.0.2.1)\n"),
        "{out}"
    );
    assert!(
        out.contains("10.0.2.1, another subnet's gateway, echo request\n"),
        "{out}"
    );
    let out = trace(&["--in", "vf0", "--flow", "udp,src=10.0.1.10,dst=10.0.2.255"]);
    assert!(
        out.contains("vni 100 10.0.2.255 -> subnet broadcast\n"),
        "{out}"
    );
    assert!(
        out.contains("Datapath action: drop: drop_bcast_mcast (counted on vf0)\n"),
        "{out}"
    );

    // The same-subnet neighbour's MAC: delivered without a route lookup.
    let out = trace(&["--in", "vf1", "--flow", "icmp,dst=10.0.2.5"]);
    assert!(!out.contains("route lookup"), "{out}");
    assert!(
        out.contains("an instance of the same subnet: deliver"),
        "{out}"
    );
}

#[test]
fn trace_takes_a_hex_frame() {
    // An LLDP frame from web1's MAC.
    let out = trace(&[
        "--in",
        "vf0",
        "--frame",
        "01:80:c2:00:00:0e 02:64:0a:00:01:0a 88cc 0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    ]);
    assert!(
        out.starts_with("Flow: frame given in hex, 58 bytes in on vf0"),
        "{out}"
    );
    assert!(
        out.contains("Datapath action: drop: drop_ethertype (counted on vf0)"),
        "{out}"
    );
}

#[test]
fn trace_errors_name_the_problem() {
    let file = data("three-tier.toml");
    let err = nicctl(&["trace", &file, "--in", "vf5", "--flow", "icmp,dst=10.0.1.1"]).expect_err();
    assert_eq!(
        err,
        "nicctl: vf5 serves no instance of host h1 in the file (3 VFs assigned)\n"
    );
    let err = nicctl(&[
        "trace",
        &file,
        "--in",
        "uplink",
        "--flow",
        "icmp,src=10.0.1.10,dst=10.0.2.20",
    ])
    .expect_err();
    assert_eq!(
        err,
        "nicctl: 10.0.1.10 is instance web1 on this host (h1); a flow on the uplink comes from another host\n"
    );
    let err = nicctl(&["trace", &file, "--in", "vf0", "--flow", "icmp"]).expect_err();
    assert_eq!(err, "nicctl: flow \"icmp\": dst=IP is missing\n");
    let err = nicctl(&["trace", &file, "--in", "eth0", "--flow", "ipv6"]).expect_err();
    assert!(
        err.contains("\"eth0\" is not a port: vf0, vf1, ... or uplink"),
        "{err}"
    );
}

#[test]
fn port_shows_the_module_the_firmware_read() {
    // `--device sim`: a `nicctl up` running beside this test must not answer instead.
    let out = nicctl(&["--device", "sim", "--vfs", "1", "port"]).expect_ok();
    assert_eq!(
        out,
        "module:      SFP/SFP+/SFP28 (identifier 0x03)\n\
         vendor:      VPCNIC SIM\n\
         part:        SFP-10G-SR\n\
         serial:      SIM0001\n\
         checksum:    ok\n\
         link:        down\n\
         LEDs:        link off, activity off\n"
    );
    let out = nicctl(&["--device", "sim", "--vfs", "1", "port", "--json"]).expect_ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["module"]["state"], "present");
    assert_eq!(v["module"]["identifier"], 3);
    assert_eq!(v["module"]["vendor"], "VPCNIC SIM");
    assert_eq!(v["module"]["part"], "SFP-10G-SR");
    assert_eq!(v["module"]["serial"], "SIM0001");
    assert_eq!(v["module"]["checksum_ok"], true);
    assert_eq!(v["link_up"], false);
    let o = nicctl(&["--device", "sim", "port", "--host", "h1"]);
    assert!(!o.ok());
    assert!(
        o.stderr.contains("no `nicctl up` is running"),
        "{}",
        o.stderr
    );
}

#[test]
fn diff_against_a_fresh_device_adds_everything_and_says_so_in_its_exit_status() {
    let file = data("three-tier.toml");
    let out = nicctl(&["--device", "sim", "diff", &file]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stdout.starts_with("host h1: 32 changes\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\n  + vpc 0, vni 100, 10.0.0.0/16"),
        "{}",
        out.stdout
    );
    let bad = nicctl(&["--device", "sim", "diff", "/nonexistent.toml"]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
}

#[test]
fn capture_refuses_a_duration_it_cannot_wait_and_writes_no_file() {
    let file = common::TempFile::path_for("capture-refused", "pcap");
    for seconds in ["inf", "1e19", "-1", "NaN"] {
        let err = nicctl(&[
            "capture",
            "web1",
            "-w",
            file.str(),
            &format!("--seconds={seconds}"),
        ])
        .expect_err();
        assert!(
            err.contains("--seconds ") && err.contains(": a number of seconds from 0 to "),
            "{seconds}: {err}"
        );
        assert!(!file.path().exists(), "{seconds}: a file was left");
    }
}

#[test]
fn without_a_deployment_or_a_device_the_commands_say_so() {
    // (A deployment running beside the tests would answer instead: none runs in this binary.)
    for args in [&["stats"][..], &["show"], &["port"]] {
        let err = nicctl(args).expect_err();
        assert!(
            err.contains("no `nicctl up` is running") && err.contains("--device sim"),
            "{args:?}: {err}"
        );
    }
}
