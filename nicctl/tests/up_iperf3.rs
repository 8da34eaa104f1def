//! TCP through the simulated NIC with the VF offloads: iperf3 between VMs of `nicctl up`,
//! beside iperf3 over a plain veth pair between two namespaces made here, in the same run,
//! and the bytes TCP puts on the wire, read back with tshark.
//!
//! - `up_iperf3_...`: 5 s of iperf3 in the same subnet and across subnets
//!   (`examples/three-tier.toml`) and across two hosts over VXLAN
//!   (`examples/two-hosts.toml`); prints Gbit/s and each ratio to the veth pair (the mean
//!   of its two runs beside the path in time: before, between and after the two
//!   deployments). It asserts
//!   that TCP moves data and that the server's VF received super-frames (frames longer than
//!   any VF frame): whole from the client's VF on one host, coalesced again by the receiving
//!   NIC across hosts. The ratios are figures, not assertions, since CI machines are
//!   shared.
//! - `up_tcp_on_the_wire_...`: the segments the firmware cut from the VMs' super-frames, as
//!   the underlay and an internet gateway see them: valid IPv4 and TCP checksums, and
//!   segments of the VF MTU between hosts and of 1500 bytes toward the gateway.
mod common;
use common::{eventually, example, run, run_in, wait_listening, Bg, Sniffer, TempNamespaces, Up};
use std::time::Duration;

const SECONDS: &str = "5";

/// Runs an iperf3 server in `server` and a client in `client` toward `server_ip` for
/// `seconds`, and returns what the receiver got: `(bytes, Gbit/s)`.
fn iperf3(server: &str, client: &str, server_ip: &str, seconds: &str) -> (u64, f64) {
    let srv = Bg::spawn(Some(server), &["iperf3", "-s", "-1"]);
    wait_listening(server, 5201);
    let out = run_in(client, &["iperf3", "-c", server_ip, "-t", seconds, "-J"]).expect_ok();
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
/// the server's VF (its `rx_bytes` counter), and returns Gbit/s and the mean length of
/// the frames the server's VF received.
fn iperf3_vms(up: &Up, server: &str, client: &str, server_ip: &str) -> (f64, u64) {
    let before = up.counters(server);
    let (bytes, gbits) = iperf3(server, client, server_ip, SECONDS);
    let after = up.counters(server);
    let crossed = after["rx_bytes"] - before["rx_bytes"];
    assert!(
        crossed >= bytes,
        "{client} -> {server}: iperf3 received {bytes} bytes, the NIC delivered {crossed} to {server}'s VF"
    );
    let frames = (after["rx_packets"] - before["rx_packets"]).max(1);
    (gbits, crossed / frames)
}

/// iperf3 over a veth pair between two namespaces made here: the same stacks and MTU, no
/// NIC in between.
fn veth_pair() -> f64 {
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
    iperf3("upt-veth-a", "upt-veth-b", "10.99.0.1", SECONDS).1
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_iperf3_between_vms_same_subnet_across_subnets_and_across_hosts_beside_a_veth_pair() {
    // The veth pair before, between and after the two deployments, and each path against
    // the mean of the two samples beside it in time: a shared machine's speed drifts, and
    // one 5 s sample of the pair swung from 14.2 to 20.7 Gbit/s within one run.
    let veth_before = veth_pair();
    let up = Up::start(&example("three-tier.toml"), &[]);
    let (same_subnet, same_len) = iperf3_vms(&up, "web1", "web2", "10.0.1.10");
    let (across_subnets, across_len) = iperf3_vms(&up, "app1", "web1", "10.0.2.10");
    up.stop();
    let veth_between = veth_pair();
    let up = Up::start(&example("two-hosts.toml"), &[]);
    let (across_hosts, hosts_len) = iperf3_vms(&up, "a2", "a1", "10.0.1.11");
    up.stop();
    let veth_after = veth_pair();
    let one_host = (veth_before + veth_between) / 2.0;
    let two_hosts = (veth_between + veth_after) / 2.0;

    println!("iperf3 TCP, {SECONDS} s, MTU 9001 (Gbit/s, ratio to the veth pair beside it, mean frame at the server's VF):");
    for (what, g, veth, len) in [
        (
            "VM to VM, same subnet (web2 -> web1)   ",
            same_subnet,
            one_host,
            same_len,
        ),
        (
            "VM to VM, across subnets (web1 -> app1)",
            across_subnets,
            one_host,
            across_len,
        ),
        (
            "VM to VM, across hosts (a1 -> a2, VXLAN)",
            across_hosts,
            two_hosts,
            hosts_len,
        ),
    ] {
        println!("  {what} {g:8.3}  {:5.2}x  {len:6} B", g / veth);
    }
    println!(
        "  plain veth pair before, between, after  {veth_before:.3}, {veth_between:.3}, {veth_after:.3}"
    );
    for (what, g) in [
        ("same subnet", same_subnet),
        ("across subnets", across_subnets),
        ("across hosts", across_hosts),
        ("veth before", veth_before),
        ("veth between", veth_between),
        ("veth after", veth_after),
    ] {
        assert!(g > 0.0, "{what}: {g} Gbit/s");
    }
    // On one host the VM's TCP super-frames reach the other VM whole (RX_GSO): frames
    // longer than a VF frame can be. Across hosts they travel as segments of the VF MTU
    // (`up_tcp_on_the_wire_...`), which the receiving NIC coalesces again.
    let vf_frame = shared_regs::VF_MAX_FRAME as u64;
    for (what, len) in [
        ("same subnet", same_len),
        ("across subnets", across_len),
        ("across hosts", hosts_len),
    ] {
        assert!(
            len > vf_frame,
            "{what}: mean frame {len} B: no super-frames reached the VM"
        );
    }
}

/// One TCP/IPv4 packet as tshark decoded it from the wire (the innermost headers of a
/// VXLAN packet).
#[derive(Debug)]
struct WirePacket {
    ip_len: u32,
    ip_csum_good: bool,
    tcp_csum_good: bool,
    tcp_payload: u32,
}

/// tshark's fields for [`WirePacket`], checksums verified, the innermost occurrence.
const WIRE_FIELDS: &[&str] = &[
    "-d",
    "udp.port==4789,vxlan",
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
    "-T",
    "fields",
    "-E",
    "separator=;",
    "-E",
    "occurrence=l",
    "-e",
    "ip.len",
    "-e",
    "ip.checksum.status",
    "-e",
    "tcp.checksum.status",
    "-e",
    "tcp.len",
    "-c",
    "3000",
];

/// iperf3 from `client` to `server` at `server_ip` for 2 s while tshark captures `filter`
/// (VXLAN) on `iface` in `capture_ns`; the TCP packets it decoded.
fn tcp_on_the_wire(
    capture_ns: &str,
    iface: &str,
    filter: &str,
    server: &str,
    client: &str,
    server_ip: &str,
) -> Vec<WirePacket> {
    let tshark = Sniffer::tshark(capture_ns, iface, filter, WIRE_FIELDS);
    // tshark's capture starts a moment after it says so.
    assert!(
        eventually(Duration::from_secs(10), || {
            let _ = run_in(client, &["ping", "-c", "1", "-W", "1", server_ip]);
            tshark.packets_so_far() > 0
        }),
        "tshark on {iface} in {capture_ns} saw nothing"
    );
    let (bytes, _) = iperf3(server, client, server_ip, "2");
    assert!(bytes > 0);
    let lines = tshark.stop();
    let packets: Vec<WirePacket> = lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(';').collect();
            let [ip_len, ip_ck, tcp_ck, tcp_len] = f[..] else {
                return None;
            };
            Some(WirePacket {
                ip_len: ip_len.parse().ok()?,
                // tshark's checksum status: 0 bad, 1 good, 2 unverified.
                ip_csum_good: ip_ck == "1",
                tcp_csum_good: tcp_ck == "1",
                tcp_payload: tcp_len.parse().ok()?,
            })
        })
        .collect();
    assert!(
        packets.iter().filter(|p| p.tcp_payload > 0).count() >= 500,
        "too few TCP segments with data on {iface}: {} lines",
        lines.len()
    );
    packets
}

/// Every packet's checksums hold, none is longer than `mtu`, and the data segments fill it.
fn cut_to(packets: &[WirePacket], mtu: u32, what: &str) {
    for p in packets {
        assert!(
            p.ip_csum_good && p.tcp_csum_good,
            "{what}: bad checksum: {p:?}"
        );
        assert!(p.ip_len <= mtu, "{what}: longer than {mtu}: {p:?}");
    }
    let full = packets.iter().filter(|p| p.ip_len == mtu).count();
    let data = packets.iter().filter(|p| p.tcp_payload > 0).count();
    assert!(
        full * 2 > data,
        "{what}: {full} of {data} data segments fill the {mtu}-byte MTU"
    );
    println!("{what}: {data} data segments, {full} of {mtu} bytes, every checksum good");
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_tcp_on_the_wire_is_cut_to_the_path_mtu_with_valid_checksums() {
    // Between hosts: the VF MTU (F14's VXLAN carries 9001-byte inner packets).
    let up = Up::start(&example("two-hosts.toml"), &[]);
    let underlay = up.underlay();
    let between = tcp_on_the_wire(
        &underlay,
        "br-hosts",
        "udp port 4789",
        "a2",
        "a1",
        "10.0.1.11",
    );
    up.stop();
    cut_to(&between, shared_regs::VF_MTU, "between hosts");

    // Toward the internet gateway: 1500 bytes (the VM's TCP takes the gateway's MSS; F13
    // answers any DF segment above 1500 with frag-needed).
    let up = Up::start(&example("three-tier.toml"), &[]);
    // What arrives from the NIC: the gateway's own ACKs leave with checksums left to
    // offloads its veth never applies.
    let toward_igw = tcp_on_the_wire(
        "igw",
        "ul0",
        "udp port 4789 and inbound",
        "igw",
        "web1",
        "198.51.100.1",
    );
    up.stop();
    cut_to(&toward_igw, 1500, "toward the igw");
}
