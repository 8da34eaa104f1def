//! `nicctl stats`, `show` and `trace` talking to a running `nicctl up` over its control
//! socket. Needs root. Names: `ct-*` and `cs-*`.
mod common;
use common::{nicctl, run_in, TempFile, Up};

const TWO_HOSTS: &str = r#"
[vpc.ct]
vni = 41
cidr = "10.41.0.0/16"
domain = "ct.internal"

[gateway.ct-igw]
kind = "internet"
hosts = ["198.51.100.41/24"]

[route_table.ct-rt]
vpc = "ct"
routes = [
  { dest = "0.0.0.0/0", target = "ct-igw" },
  { dest = "10.41.9.0/24", target = "blackhole" },
]

[subnet.ct-web]
vpc = "ct"
cidr = "10.41.1.0/24"
route_table = "ct-rt"

[subnet.ct-db]
vpc = "ct"
cidr = "10.41.2.0/24"

[instance.ct-web1]
subnet = "ct-web"
ip = "10.41.1.10"
secondary_ips = ["10.41.1.20"]
host = "h1"

[instance.ct-web2]
subnet = "ct-web"
ip = "10.41.1.11"
host = "h2"

[instance.ct-db1]
subnet = "ct-db"
ip = "10.41.2.30"
src_dst_check = false
host = "h2"

[host.h1]
[host.h2]
"#;

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn stats_show_and_trace_answer_from_the_running_deployment() {
    let file = TempFile::with("ct-two-hosts", "toml", TWO_HOSTS);
    let mut up = Up::start(file.path(), &[]);
    run_in(
        "ct-web1",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.41.2.30"],
    )
    .expect_ok();
    // A full 1500-byte packet to the gateway is 1550 bytes in VXLAN: the underlay is jumbo
    // up to the gateway's namespace.
    run_in(
        "ct-web1",
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1472",
            "198.51.100.41",
        ],
    )
    .expect_ok();

    // status: what runs, and where its underlay is.
    let out = up.nicctl(&["status"]).expect_ok();
    assert!(
        out.starts_with(&format!(
            "nicctl up (pid {}) runs {}\ncontrol socket:     {}\nunderlay namespace: vpcnic_ul_",
            up.pid(),
            file.str(),
            up.socket().display()
        )),
        "{out}"
    );
    assert!(
        out.contains("\nhost h1 (192.0.2.1): vf0 ct-web1\n"),
        "{out}"
    );
    assert!(
        out.contains("\nhost h2 (192.0.2.2): vf0 ct-web2, vf1 ct-db1\n"),
        "{out}"
    );
    assert!(out.ends_with("gateways: ct-igw\n"), "{out}");

    // stats: an instance by name picks its host and VF.
    let out = up.nicctl(&["stats", "--vf", "ct-db1"]).expect_ok();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("host h2: vf1 ct-db1"), "{out}");
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["counter", "vf1"]);
    let rx: u64 = out
        .lines()
        .find(|l| l.starts_with("rx_packets "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(rx >= 3, "ct-db1 received the pings: {out}");

    let json: serde_json::Value =
        serde_json::from_str(&up.nicctl(&["stats", "--host", "h1", "--json"]).expect_ok()).unwrap();
    let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["uplink", "vf0"], "every VF of h1 and its uplink");
    assert!(json["vf0"]["tx_packets"].as_u64().unwrap() >= 3, "{json}");
    assert!(
        json["uplink"]["tx_packets"].as_u64().unwrap() >= 3,
        "{json}"
    );

    let err = up
        .nicctl(&["stats", "--host", "h1", "--vf", "ct-db1"])
        .expect_err();
    assert_eq!(err, "nicctl: instance ct-db1 runs on host h2, not h1\n");
    let err = up.nicctl(&["stats", "--vf", "nosuch"]).expect_err();
    assert!(
        err.contains("\"nosuch\" is neither a VF number nor an instance of"),
        "{err}"
    );

    // trace: no file, the running deployment's; an instance for the port.
    let out = up
        .nicctl(&["trace", "--in", "ct-web2", "--flow", "icmp,dst=10.41.9.1"])
        .expect_ok();
    assert!(
        out.starts_with("Flow: icmp,dst=10.41.9.1, 73 bytes in on vf0 (host h2)\n"),
        "{out}"
    );
    assert!(out.contains("-> blackhole"), "{out}");
    let out = up
        .nicctl(&["trace", "--in", "vf0", "--flow", "arp,dst=10.41.1.1"])
        .expect_ok();
    assert!(out.contains("(host h1)"), "{out}");
    assert!(out.contains("Datapath action: reply to vf0"), "{out}");
    let out = up.nicctl(&[
        "trace",
        "--in",
        "ct-web1",
        "--frame",
        "ffffffffffff 02:29:0a:29:01:0a 86dd 00000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    ]).expect_ok();
    assert!(out.contains("drop_ethertype"), "{out}");
    let err = up
        .nicctl(&["trace", "--in", "eth0", "--flow", "ipv6"])
        .expect_err();
    assert!(
        err.contains("\"eth0\" is not a port: vf0, vf1, ... or uplink, nor an instance"),
        "{err}"
    );

    // The protocol by hand: one JSON object per line, one answer line each.
    {
        use std::io::{BufRead, BufReader, Write};
        let mut raw = std::os::unix::net::UnixStream::connect(up.socket()).unwrap();
        raw.write_all(b"{\"op\":\"reboot\"}\n{\"op\":\"status\"}\n")
            .unwrap();
        let mut lines = BufReader::new(raw.try_clone().unwrap()).lines();
        let bad = lines.next().unwrap().unwrap();
        assert!(
            bad.starts_with(r#"{"error":"bad request: unknown variant `reboot`"#),
            "{bad}"
        );
        let status: serde_json::Value =
            serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(status["ok"]["pid"], up.pid());
        // Left half way through a line: dropped by the server, not waited for at stop.
        raw.write_all(b"{\"op\":\"sta").unwrap();
    }

    // show: every host's tables as its NIC holds them, with the file's names.
    let out = up.nicctl(&["show"]).expect_ok();
    assert!(out.contains("Host h1: uplink 192.0.2.1"), "{out}");
    assert!(out.contains("Host h2: uplink 192.0.2.2"), "{out}");
    let web1 = out
        .lines()
        .find(|l| l.trim_start().starts_with("vf0  ct-web1"))
        .unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = web1.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "vf0",
            "ct-web1",
            "02:29:0a:29:01:0a",
            "0",
            "(ct-web)",
            "10.41.1.10",
            "10.41.1.20",
            "on",
            "up"
        ]
    );
    assert!(out.contains("vf1  ct-db1"), "{out}");
    assert!(out.contains("10.41.9.0/24  -> blackhole"), "{out}");
    assert!(out.contains("0.0.0.0/0     -> gateway 0 (ct-igw)"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("10.41.1.11") && l.contains("host h2 (192.0.2.2)")),
        "{out}"
    );
    let only: serde_json::Value =
        serde_json::from_str(&up.nicctl(&["show", "--host", "h2", "--json"]).expect_ok()).unwrap();
    let hosts = only["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["host"], "h2");
    let vfs = hosts[0]["tables"]["vfs"].as_array().unwrap();
    assert_eq!(vfs.len(), 2);
    assert_eq!(vfs[1]["src_dst_check"], false);
    assert_eq!(vfs[1]["link_up"], true);

    // diff: the running file against itself changes nothing (exit 0) on either host; a
    // route flipped and one added, on h1 and h2 alike (the table is on both NICs).
    let same = up.nicctl(&["diff", file.str()]);
    assert_eq!(same.status.code(), Some(0), "{same:?}");
    assert_eq!(same.stdout, "host h1: no change\nhost h2: no change\n");
    let changed = TempFile::with(
        "ct-two-hosts-changed",
        "toml",
        &TWO_HOSTS.replace(
            r#"{ dest = "10.41.9.0/24", target = "blackhole" },"#,
            r#"{ dest = "10.41.9.0/24", target = "ct-igw" },
  { dest = "10.41.8.0/24", target = "blackhole" },"#,
        ),
    );
    let out = up.nicctl(&["diff", changed.str(), "--host", "h2"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        out.stdout,
        "host h2: 2 changes\n\
         \x20 + route 10.41.8.0/24 in table 1 -> blackhole\n\
         \x20 ~ route 10.41.9.0/24 in table 1 -> gateway 0\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&up.nicctl(&["diff", changed.str(), "--json"]).stdout).unwrap();
    assert_eq!(json[0]["host"], "h1");
    assert_eq!(json[0]["changes"][1]["op"], "~");
    assert_eq!(json[0]["changes"][1]["object"], "route");
    // apply: the running deployment, every host; then nothing is left to change.
    let out = up.apply(changed.path()).expect_ok();
    assert!(
        out.starts_with(
            "host h1: 2 changes\n\
             \x20 + route 10.41.8.0/24 in table 1 -> blackhole\n\
             \x20 ~ route 10.41.9.0/24 in table 1 -> gateway 0\n\
             host h2: 2 changes\n"
        ) && out.contains("\napplied in "),
        "{out}"
    );
    let again = up.nicctl(&["diff", changed.str()]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    let status = up.nicctl(&["status"]).expect_ok();
    assert!(
        status.contains(changed.str()),
        "the file it runs now: {status}"
    );
    // An apply to one host of a deployment is refused: it runs the whole file.
    let err = up
        .nicctl(&["apply", file.str(), "--host", "h1"])
        .expect_err();
    assert!(err.contains("every host at once"), "{err}");
}

/// The deployment stops promptly even with a client connected half way through a line.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_stalled_client_does_not_hold_up_the_stop() {
    let file = TempFile::with("cs-stall", "toml", &TWO_HOSTS.replace("ct-", "cs-"));
    let up = Up::start(file.path(), &[]);
    let mut raw = std::os::unix::net::UnixStream::connect(up.socket()).unwrap();
    std::io::Write::write_all(&mut raw, b"{\"op\":").unwrap();
    let started = std::time::Instant::now();
    // It ends with status 0, and leaves nothing behind.
    up.stop_with(libc::SIGINT);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "stop took {:?}",
        started.elapsed()
    );
    drop(raw);
}

#[test]
fn without_a_running_deployment_the_commands_say_so_or_use_the_device() {
    let missing = std::env::temp_dir().join(format!("ct-none-{}.sock", std::process::id()));
    let err = nicctl(&["--socket", missing.to_str().unwrap(), "stats"]).expect_err();
    assert!(
        err.starts_with(&format!(
            "nicctl: cannot reach `nicctl up` at {}:",
            missing.display()
        )),
        "{err}"
    );
    // With --device, the device: an empty simulated NIC's tables.
    let out = nicctl(&["--device", "sim", "show"]).expect_ok();
    assert!(
        out.starts_with("Host simulated NIC (in-process): uplink not set\n"),
        "{out}"
    );
    assert!(out.contains("VFs (0)"), "{out}");
    // show FILE: fresh NICs programmed from the file, one per host.
    let file = TempFile::with("ct-show-file", "toml", TWO_HOSTS);
    let out = nicctl(&["--device", "sim", "show", file.str()]).expect_ok();
    assert!(
        out.contains("Host h1:") && out.contains("Host h2:"),
        "{out}"
    );
    assert!(out.contains("vf0  ct-web2"), "{out}");
    let out = nicctl(&["--device", "sim", "show", file.str(), "--host", "h1"]).expect_ok();
    assert!(!out.contains("Host h2:"), "{out}");
    // trace FILE takes instance names too.
    let out = nicctl(&[
        "--device",
        "sim",
        "trace",
        file.str(),
        "--in",
        "ct-db1",
        "--flow",
        "icmp,dst=10.41.1.10",
    ])
    .expect_ok();
    assert!(out.contains("in on vf1 (host h2)"), "{out}");
    let err = nicctl(&["--device", "sim", "capture", "x", "-w", "/dev/null"]).expect_err();
    assert!(
        err.contains("no `nicctl up` is running to capture from"),
        "{err}"
    );
}
