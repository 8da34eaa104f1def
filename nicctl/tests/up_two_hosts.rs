//! `nicctl up examples/two-hosts.toml`: one VPC (VNI 4242) on two hosts, each with its own
//! simulated NIC; their uplinks meet on the underlay router's `br-hosts` bridge, where the
//! traffic between the hosts is VXLAN.
//!
//! ```text
//! h1 (192.0.2.1): a1 10.0.1.10
//! h2 (192.0.2.2): a2 10.0.1.11, b1 10.0.2.10
//! ```
mod common;
use common::{eventually, example, ping_answers, Sniffer, Up};
use std::time::Duration;

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_two_hosts_talk_over_the_underlay_in_vxlan_with_vni_4242() {
    let up = Up::start(&example("two-hosts.toml"), &[]);
    let underlay = up.underlay();
    let tshark = Sniffer::tshark(
        &underlay,
        "br-hosts",
        "udp port 4789",
        &[
            "-d",
            "udp.port==4789,vxlan",
            "-T",
            "fields",
            "-E",
            "separator=;",
            "-e",
            "vxlan.vni",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
        ],
    );
    // tshark's capture process starts a moment after it says so: ping until it sees one.
    assert!(
        eventually(Duration::from_secs(10), || {
            ping_answers("a1", "10.0.1.11");
            tshark.packets_so_far() > 0
        }),
        "tshark saw no VXLAN at all"
    );
    for (from, to) in [
        ("a1", "10.0.1.11"), // same subnet, other host
        ("a1", "10.0.2.10"), // other subnet, other host
        ("b1", "10.0.1.10"),
        ("b1", "10.0.1.11"), // same host: never on the underlay
    ] {
        let p = ping_answers(from, to);
        assert_eq!(p.ttls, [64], "{from} -> {to}: {}", p.text);
    }
    // One line per packet: "4242;192.0.2.1,10.0.1.10;192.0.2.2,10.0.1.11" (the outer
    // header's field first, then the inner one's).
    let lines = tshark.stop();
    let packets: Vec<(String, String, String)> = lines
        .iter()
        .filter_map(|l| {
            let mut f = l.split(";");
            Some((
                f.next()?.to_string(),
                f.next()?.to_string(),
                f.next()?.to_string(),
            ))
        })
        .collect();
    assert!(!packets.is_empty(), "no VXLAN on the underlay: {lines:#?}");
    for (vni, src, dst) in &packets {
        assert_eq!(
            vni, "4242",
            "every packet carries the VPC's VNI: {lines:#?}"
        );
        for addrs in [src, dst] {
            assert_eq!(
                addrs.split(',').count(),
                2,
                "outer and inner IPv4 headers: {lines:#?}"
            );
        }
    }
    let seen = |src: &str, dst: &str| {
        packets
            .iter()
            .any(|(_, s, d)| s.as_str() == src && d.as_str() == dst)
    };
    for (src, dst) in [
        ("192.0.2.1,10.0.1.10", "192.0.2.2,10.0.1.11"),
        ("192.0.2.2,10.0.1.11", "192.0.2.1,10.0.1.10"),
        ("192.0.2.1,10.0.1.10", "192.0.2.2,10.0.2.10"),
        ("192.0.2.2,10.0.2.10", "192.0.2.1,10.0.1.10"),
    ] {
        assert!(seen(src, dst), "{src} -> {dst} on the underlay: {lines:#?}");
    }
    assert!(
        !packets
            .iter()
            .any(|(_, s, d)| s.ends_with(",10.0.2.10") && d.ends_with(",10.0.1.11")),
        "b1 -> a2 stays inside h2's NIC: {lines:#?}"
    );
    up.stop();
}
