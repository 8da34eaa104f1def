//! TCP through the simulated NIC: iperf3 for 5 seconds between two VMs of
//! `nicctl up examples/three-tier.toml`, beside iperf3 over a plain veth pair between two
//! namespaces made here, in the same run. Both figures are printed (in Gbit/s); the test
//! asserts only that TCP moves data through both.
mod common;
use common::{example, run, run_in, wait_listening, Bg, TempNamespaces, Up};

const SECONDS: &str = "5";

/// Runs an iperf3 server in `server` and a client in `client` toward `server_ip`, and
/// returns what the receiver got: `(bytes, Gbit/s)`.
fn iperf3(server: &str, client: &str, server_ip: &str) -> (u64, f64) {
    let srv = Bg::spawn(Some(server), &["iperf3", "-s", "-1"]);
    wait_listening(server, 5201);
    let out = run_in(client, &["iperf3", "-c", server_ip, "-t", SECONDS, "-J"]).expect_ok();
    drop(srv);
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("iperf3 -J: {e}: {out}"));
    let received = &report["end"]["sum_received"];
    let (Some(bytes), Some(bps)) = (
        received["bytes"].as_u64(),
        received["bits_per_second"].as_f64(),
    ) else {
        panic!("no end.sum_received bytes and bits_per_second: {out}");
    };
    (bytes, bps / 1e9)
}

/// iperf3 from VM `client` to VM `server` at `server_ip`; checks that the data crossed
/// the server's VF (its `rx_bytes` counter), and returns Gbit/s.
fn iperf3_vms(up: &Up, server: &str, client: &str, server_ip: &str) -> f64 {
    let before = up.counters(server)["rx_bytes"];
    let (bytes, gbits) = iperf3(server, client, server_ip);
    let crossed = up.counters(server)["rx_bytes"] - before;
    assert!(
        crossed >= bytes,
        "{client} -> {server}: iperf3 received {bytes} bytes, the NIC delivered {crossed} to {server}'s VF"
    );
    gbits
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_iperf3_between_two_vms_beside_a_plain_veth_pair() {
    let up = Up::start(&example("three-tier.toml"), &[]);
    let same_subnet = iperf3_vms(&up, "web1", "web2", "10.0.1.10");
    let across_subnets = iperf3_vms(&up, "app1", "web1", "10.0.2.10");
    up.stop();

    // The reference: the same stacks and MTU over a veth pair, no NIC in between.
    let _ns = TempNamespaces::create(&["upt-veth-a", "upt-veth-b"]);
    run(&[
        "ip",
        "link",
        "add",
        "upt-va",
        "netns",
        "upt-veth-a",
        "type",
        "veth",
        "peer",
        "name",
        "upt-vb",
        "netns",
        "upt-veth-b",
    ])
    .expect_ok();
    for (ns, dev, addr) in [
        ("upt-veth-a", "upt-va", "10.99.0.1/24"),
        ("upt-veth-b", "upt-vb", "10.99.0.2/24"),
    ] {
        run_in(ns, &["ip", "addr", "add", addr, "dev", dev]).expect_ok();
        run_in(ns, &["ip", "link", "set", dev, "mtu", "9001", "up"]).expect_ok();
    }
    let (_, veth) = iperf3("upt-veth-a", "upt-veth-b", "10.99.0.1");

    println!("iperf3 TCP, {SECONDS} s, MTU 9001:");
    println!("  VM to VM, same subnet (web2 -> web1):    {same_subnet:8.3} Gbit/s");
    println!("  VM to VM, across subnets (web1 -> app1): {across_subnets:8.3} Gbit/s");
    println!("  plain veth pair:                         {veth:8.3} Gbit/s");
    for (what, g) in [
        ("same subnet", same_subnet),
        ("across subnets", across_subnets),
        ("veth", veth),
    ] {
        assert!(g > 0.0, "{what}: {g} Gbit/s");
    }
}
