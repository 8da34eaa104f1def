//! `nicctl up FILE --etcd URLS`: real namespaces on three simulated NICs, each its own
//! `nic-sim` process driven by its own `nicctl agent`, fed only through a real etcd. An
//! instance added on host 3 answers host 1, one moved from host 2 to host 3 keeps
//! answering, one removed stops and leaves no mapping on any NIC; with etcd stopped for
//! 10 s, traffic between instances loses nothing, and a change made once it is back
//! reaches the NICs.
mod common;
use common::cluster::Etcd;
use common::{data, nicctl, ping, ping_answers, ping_fails, Bg, TempFile, Up};
use std::path::Path;
use std::time::Duration;

fn three_hosts() -> String {
    std::fs::read_to_string(data("three-hosts.toml")).unwrap()
}

/// Every NIC's mappings of `ip`, through each agent's control socket.
fn mapped_on(up: &Up, ip: &str) -> Vec<String> {
    let run_dir = up.record().run_dir;
    let mut on = Vec::new();
    for host in ["h1", "h2", "h3"] {
        let socket = run_dir.join(format!("agent-{host}.sock"));
        let out = nicctl(&["--socket", socket.to_str().unwrap(), "show", "--json"]).expect_ok();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let maps = v["hosts"][0]["tables"]["mappings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if maps.iter().any(|m| m["ip"] == ip) {
            on.push(host.to_string());
        }
    }
    on
}

fn apply(etcd: &Etcd, up: &mut Up, file: &Path, hosts: &[&str]) {
    etcd.apply(file);
    etcd.wait_in_step(hosts);
    up.now_runs(file);
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn three_agents_add_move_and_remove_instances_from_etcd() {
    let etcd = Etcd::start();
    let url = etcd.url();
    let mut up = Up::start(Path::new(&data("three-hosts.toml")), &["--etcd", &url]);
    let hosts = ["h1", "h2", "h3"];
    etcd.wait_in_step(&hosts);
    ping_answers("w1", "10.30.1.12"); // h1 -> h2

    // Added on h3: answers h1.
    let step1 =
        three_hosts() + "\n[instance.w4]\nsubnet = \"web\"\nip = \"10.30.1.13\"\nhost = \"h3\"\n";
    let f1 = TempFile::with("cu-add", "toml", &step1);
    apply(&etcd, &mut up, f1.path(), &hosts);
    assert!(
        common::eventually(Duration::from_secs(10), || ping(
            "w1",
            &["-c", "1", "-W", "1", "10.30.1.13"]
        )
        .received
            == 1),
        "w4 on h3 never answered w1 on h1"
    );

    // Moved from h2 to h3 while w1 pings it every 10 ms: it keeps answering.
    let step2 = step1.replace(
        "ip = \"10.30.1.12\"\nhost = \"h2\"",
        "ip = \"10.30.1.12\"\nhost = \"h3\"",
    );
    let f2 = TempFile::with("cu-move", "toml", &step2);
    let mut pings = Bg::spawn(
        Some("w1"),
        &["ping", "-n", "-q", "-i", "0.01", "-c", "400", "10.30.1.12"],
    );
    std::thread::sleep(Duration::from_secs(1));
    apply(&etcd, &mut up, f2.path(), &hosts);
    assert!(
        pings.wait(Duration::from_secs(15)).is_some(),
        "ping did not end"
    );
    let summary = pings.stdout();
    println!("w3 moved h2 -> h3 through etcd: {}", summary.trim());
    assert!(
        common::eventually(Duration::from_secs(10), || mapped_on(&up, "10.30.1.12")
            .len()
            == 3),
        "w3 is not mapped on every NIC"
    );
    ping_answers("w1", "10.30.1.12");
    let status = etcd.status();
    let h3 = status.hosts.iter().find(|h| h.host == "h3").unwrap();
    let vfs = &h3.agent.as_ref().unwrap().vfs;
    assert!(vfs.iter().any(|(n, _)| n == "w3"), "{vfs:?}");

    // Removed: it stops answering, and no NIC holds its mapping.
    assert_eq!(mapped_on(&up, "10.30.1.11"), ["h1", "h2", "h3"]);
    let step3 = step2.replace(
        "[instance.w2]\nsubnet = \"web\"\nip = \"10.30.1.11\"\nhost = \"h2\"\n",
        "",
    );
    let f3 = TempFile::with("cu-remove", "toml", &step3);
    apply(&etcd, &mut up, f3.path(), &hosts);
    ping_fails("w1", "10.30.1.11");
    assert!(
        common::eventually(Duration::from_secs(10), || !common::namespace_exists("w2")),
        "w2's namespace is still there"
    );
    assert_eq!(mapped_on(&up, "10.30.1.11"), Vec::<String>::new());
    up.stop();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn with_etcd_stopped_for_10_s_traffic_goes_on_and_a_later_change_converges() {
    let mut etcd = Etcd::start();
    let url = etcd.url();
    let mut up = Up::start(&common::example("two-hosts.toml"), &["--etcd", &url]);
    etcd.wait_in_step(&["h1", "h2"]);
    let mut pings = Bg::spawn(
        Some("a1"),
        &["ping", "-n", "-q", "-i", "0.01", "-c", "1200", "10.0.2.10"],
    );
    std::thread::sleep(Duration::from_secs(2));
    etcd.stop();
    std::thread::sleep(Duration::from_secs(10));
    etcd.resume();
    let grown = std::fs::read_to_string(common::example("two-hosts.toml")).unwrap()
        + "\n[instance.c1]\nsubnet = \"right\"\nip = \"10.0.2.20\"\nhost = \"h1\"\n";
    let file = TempFile::with("cu-after", "toml", &grown);
    apply(&etcd, &mut up, file.path(), &["h1", "h2"]);
    assert!(
        common::eventually(Duration::from_secs(10), || ping(
            "b1",
            &["-c", "1", "-W", "1", "10.0.2.20"]
        )
        .received
            == 1),
        "c1, added after etcd came back, never answered"
    );
    assert!(
        pings.wait(Duration::from_secs(20)).is_some(),
        "ping did not end"
    );
    let summary = pings.stdout();
    println!("a1 -> b1 across a 10 s etcd outage: {}", summary.trim());
    assert!(
        summary.contains(" 0% packet loss"),
        "traffic was lost while etcd was down: {summary}"
    );
    up.stop();
}
