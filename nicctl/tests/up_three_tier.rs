//! `nicctl up examples/three-tier.toml`, driven as a user would: real Linux stacks in the
//! VMs' namespaces, real tools (ping, arping, ip, tcpdump), and the NIC's counters through
//! `nicctl stats` beside the running `up`.
//!
//! ```text
//! VPC prod, VNI 100 (0x64), 10.0.0.0/16
//!   web 10.0.1.0/24 (table public: 0.0.0.0/0 -> igw, 10.0.99.0/24 blackhole)
//!       web1 .10 02:64:0a:00:01:0a   web2 .11 02:64:0a:00:01:0b   gateway .1 06:64:0a:00:01:01
//!   app 10.0.2.0/24 (main table: local only)   app1 .10
//!   db  10.0.3.0/24 (table private: 0.0.0.0/0 -> vgw)   db1 .10
//! igw: 198.51.100.1   vgw: 172.16.0.1
//! ```
mod common;
use common::{
    data, eventually, example, ip_json, namespace_exists, namespaces, nicctl, ping_answers,
    ping_fails, ping_line, run_in, serial, sh_in, Sniffer, Up,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A device (an empty bridge) put in a killed deployment's namespaces to recognise them.
const STALE: &str = "upt-stale";

fn three_tier() -> PathBuf {
    example("three-tier.toml")
}

/// The vxlan device of gateway namespace `gw` (the VPC's tunnel ends there).
fn vxlan_device(gw: &str) -> String {
    let links = ip_json(gw, &["-d", "link", "show", "type", "vxlan"]);
    links[0]["ifname"]
        .as_str()
        .unwrap_or_else(|| panic!("no vxlan device in {gw}: {links}"))
        .to_string()
}

/// Waits until `vm`'s eth0 has an IPv6 link-local address that is no longer tentative
/// (duplicate address detection takes a second or two after eth0 comes up): until then,
/// `ping -6` has no source address and sends nothing.
fn wait_ipv6_link_local(vm: &str) {
    let mut addrs = serde_json::Value::Null;
    let usable = eventually(Duration::from_secs(10), || {
        addrs = ip_json(vm, &["-6", "addr", "show", "dev", "eth0", "scope", "link"]);
        addrs[0]["addr_info"].as_array().is_some_and(|a| {
            a.iter()
                .any(|i| i["local"].is_string() && i.get("tentative").is_none())
        })
    });
    assert!(
        usable,
        "{vm}'s eth0 has no usable IPv6 link-local address: {addrs}"
    );
}

/// Counters that moved from `before` to `after`, with how much.
fn moved(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.wrapping_sub(before.get(k).copied().unwrap_or(0));
            (d != 0).then(|| (k.clone(), d))
        })
        .collect()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_ping_inside_and_across_subnets_keeps_ttl_64() {
    let up = Up::start(&three_tier(), &[]);
    for (from, to, what) in [
        ("web1", "10.0.1.11", "same subnet"),
        ("web2", "10.0.1.10", "same subnet, other way"),
        ("web1", "10.0.2.10", "web to app"),
        ("app1", "10.0.3.10", "app to db"),
        ("db1", "10.0.1.11", "db to web"),
    ] {
        let p = ping_line(from, &format!("-c 2 -i 0.2 -W 2 {to}"));
        assert_eq!(p.received, 2, "{what}: {from} -> {to}:\n{}", p.text);
        // The NIC never decrements the TTL (VPC forwarding), and the receiver answers with
        // Linux's default 64: what the sender reads is 64.
        assert_eq!(p.ttls, [64, 64], "{what}: {from} -> {to}:\n{}", p.text);
    }
    up.stop();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_ip_neigh_in_a_vm_shows_the_gateway_and_neighbour_macs() {
    let up = Up::start(&three_tier(), &[]);
    // web2 (same subnet) is reached directly; app1 through the subnet's gateway.
    ping_answers("web1", "10.0.1.11");
    ping_answers("web1", "10.0.2.10");
    let neigh = ip_json("web1", &["neigh", "show", "dev", "eth0"]);
    let macs: BTreeMap<&str, &str> = neigh
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|n| Some((n["dst"].as_str()?, n["lladdr"].as_str()?)))
        .collect();
    assert_eq!(
        macs.get("10.0.1.1"),
        Some(&"06:64:0a:00:01:01"),
        "the gateway's MAC (06:<vni>:<gateway ip>): {neigh}"
    );
    assert_eq!(
        macs.get("10.0.1.11"),
        Some(&"02:64:0a:00:01:0b"),
        "web2's MAC (02:<vni>:<ip>): {neigh}"
    );
    assert!(
        !macs.contains_key("10.0.2.10"),
        "another subnet's VM is reached through the gateway, never ARPed: {neigh}"
    );
    // And the VMs' own MACs are the derived ones.
    for (vm, mac) in [("web1", "02:64:0a:00:01:0a"), ("app1", "02:64:0a:00:02:0a")] {
        let link = ip_json(vm, &["link", "show", "dev", "eth0"]);
        assert_eq!(link[0]["address"], mac, "{vm}'s eth0: {link}");
        assert_eq!(link[0]["mtu"], 9001, "{vm}'s eth0: {link}");
    }
    up.stop();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_own_gateway_answers_another_subnets_gateway_and_unassigned_arp_do_not() {
    let up = Up::start(&three_tier(), &[]);
    let p = ping_answers("web1", "10.0.1.1");
    assert_eq!(p.ttls, [64], "{}", p.text);
    ping_answers("app1", "10.0.2.1");
    ping_fails("web1", "10.0.2.1");
    ping_fails("web1", "10.0.3.1");
    // 10.0.1.99 is in web1's subnet and belongs to no instance: the NIC answers no ARP for it.
    let arping = run_in(
        "web1",
        &["arping", "-c", "2", "-w", "2", "-I", "eth0", "10.0.1.99"],
    );
    assert!(
        !arping.ok() && arping.stdout.contains("Received 0 response"),
        "arping for an unassigned address must get no answer:\n{}",
        arping.text()
    );
    // While an assigned one is answered, with that instance's MAC.
    let arping = run_in(
        "web1",
        &["arping", "-c", "1", "-w", "2", "-I", "eth0", "10.0.1.11"],
    );
    assert!(
        arping.ok() && arping.stdout.to_lowercase().contains("02:64:0a:00:01:0b"),
        "arping for web2:\n{}",
        arping.text()
    );
    up.stop();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_ipv6_broadcast_and_multicast_from_a_vm_never_reach_another_vm() {
    let up = Up::start(&three_tier(), &[]);
    let filter = "ip6 or icmp or ether broadcast or ether multicast";
    let sent = Sniffer::tcpdump("web1", "eth0", &["-Q", "out"], filter);
    let receivers: Vec<(&str, Sniffer)> = ["web2", "app1", "db1"]
        .into_iter()
        .map(|vm| (vm, Sniffer::tcpdump(vm, "eth0", &["-Q", "in"], filter)))
        .collect();
    wait_ipv6_link_local("web1");
    ping_line("web1", "-6 -c 2 -i 0.2 -W 1 ff02::1%eth0");
    ping_line("web1", "-b -c 2 -i 0.2 -W 1 10.0.1.255");
    ping_line("web1", "-b -c 2 -i 0.2 -W 1 255.255.255.255");
    ping_line("web1", "-c 2 -i 0.2 -W 1 224.0.0.1");
    let sent = sent.stop();
    for what in [
        "> ff02::1: ICMP6, echo request",
        "> 10.0.1.255: ICMP echo request",
        "> 255.255.255.255: ICMP echo request",
        "> 224.0.0.1: ICMP echo request",
    ] {
        assert!(
            sent.iter().any(|l| l.contains(what)),
            "web1 sent no {what:?} on its eth0: {sent:#?}"
        );
    }
    for (vm, sniffer) in receivers {
        let got = sniffer.stop();
        assert!(got.is_empty(), "{vm} received: {got:#?}");
    }
    up.stop();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_drop_counters_say_why_frames_were_dropped() {
    let up = Up::start(&three_tier(), &[]);
    // Resolve the gateway first, so that the ARP exchange is not part of what is counted.
    ping_answers("web1", "10.0.1.1");
    ping_answers("app1", "10.0.2.1");
    wait_ipv6_link_local("web1");
    for (vm, command, reason) in [
        (
            "web1",
            "ping -6 -c 2 -i 0.2 -W 1 ff02::1%eth0",
            "drop_ethertype",
        ),
        (
            "web1",
            "ping -b -c 2 -i 0.2 -W 1 10.0.1.255",
            "drop_bcast_mcast",
        ),
        (
            "web1",
            "ping -c 2 -i 0.2 -W 1 224.0.0.1",
            "drop_bcast_mcast",
        ),
        (
            "app1",
            "ping -c 2 -i 0.2 -W 1 198.51.100.1",
            "drop_no_route",
        ),
        ("web1", "ping -c 2 -i 0.2 -W 1 10.0.99.5", "drop_blackhole"),
        (
            "web1",
            "ping -c 2 -i 0.2 -W 1 10.0.2.1",
            "drop_foreign_gateway",
        ),
        (
            "web1",
            "arping -c 2 -w 2 -I eth0 10.0.1.99",
            "arp_unanswered",
        ),
    ] {
        let before = up.counters(vm);
        sh_in(vm, command);
        let d = moved(&before, &up.counters(vm));
        // At least: the VM's own stack may add frames of its own (IPv6 router
        // solicitations, IGMP reports) to the first two.
        assert!(
            d.get(reason).copied().unwrap_or(0) >= 2,
            "{vm}: `{command}` must move {reason} by 2; what moved: {d:?}"
        );
    }
    up.stop();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_web_reaches_the_internet_gateway_app_cannot_and_the_blackhole_drops() {
    let up = Up::start(&three_tier(), &[]);
    for vm in ["web1", "web2"] {
        let p = ping_answers(vm, "198.51.100.1");
        assert_eq!(p.ttls, [64], "{}", p.text);
    }
    // The database subnet's default route leads to the VPN gateway instead.
    ping_answers("db1", "172.16.0.1");
    ping_fails("db1", "198.51.100.1");

    let igw = vxlan_device("igw");
    let at_igw = Sniffer::tcpdump("igw", &igw, &["-Q", "in"], "ip");
    // app's table has the local route only; 10.0.99.0/24 is a blackhole in web's table
    // (without it, the default route would take it to the igw).
    ping_fails("app1", "198.51.100.1");
    ping_fails("web1", "10.0.99.5");
    let got = at_igw.stop();
    assert!(
        got.is_empty(),
        "nothing of app1's or the blackhole's reaches the igw: {got:#?}"
    );
    up.stop();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_df_ping_of_3000_bytes_toward_the_igw_gets_frag_needed_mtu_1500() {
    let up = Up::start(&three_tier(), &[]);
    sh_in("web1", "ip route flush cache").expect_ok();
    let p = ping_line("web1", "-M do -s 2972 -c 1 -W 2 198.51.100.1");
    assert_eq!(p.received, 0, "{}", p.text);
    assert!(
        p.text.contains("From 10.0.1.1 ") && p.text.contains("Frag needed and DF set (mtu = 1500)"),
        "ICMP frag-needed with MTU 1500 from the subnet's gateway:\n{}",
        p.text
    );
    // The VM's stack took it: its path MTU toward the igw is now 1500.
    let route = sh_in("web1", "ip route get 198.51.100.1").expect_ok();
    assert!(route.contains("mtu 1500"), "{route}");
    up.stop();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_ping_of_3000_bytes_without_df_toward_the_igw_arrives_fragmented_and_is_answered() {
    let up = Up::start(&three_tier(), &[]);
    sh_in("web1", "ip route flush cache").expect_ok();
    // A 1500-byte packet fits the gateway's tunnel MTU whole.
    let p = ping_line("web1", "-M do -s 1472 -c 1 -W 2 198.51.100.1");
    assert_eq!(p.received, 1, "{}", p.text);
    let igw = vxlan_device("igw");
    let fragments = "src host 10.0.1.10 and (ip[6:2] & 0x3fff != 0)";
    let at_igw = Sniffer::tcpdump("igw", &igw, &["-v", "-Q", "in"], fragments);
    let p = ping_line("web1", "-M dont -s 2972 -c 1 -W 2 198.51.100.1");
    let got = at_igw.stop();
    // tcpdump -v: "IP (tos 0x0, ttl 64, id 1, offset 1480, flags [+], proto ICMP (1), length 1500)"
    let headers: Vec<&String> = got.iter().filter(|l| l.contains(" offset ")).collect();
    let field = |l: &str, name: &str| -> Option<u32> {
        l.split(name)
            .nth(1)?
            .split([',', ')'])
            .next()?
            .trim()
            .parse()
            .ok()
    };
    let offsets: Vec<u32> = headers
        .iter()
        .filter_map(|l| field(l, " offset "))
        .collect();
    let lengths: Vec<u32> = headers
        .iter()
        .filter_map(|l| field(l, " length "))
        .collect();
    assert!(
        offsets.len() >= 2 && offsets.contains(&0) && offsets.iter().any(|&o| o > 0),
        "the igw sees the echo request in fragments: {got:#?}"
    );
    assert!(
        lengths.iter().all(|&l| l <= 1500),
        "no fragment is longer than the tunnel's MTU: {got:#?}"
    );
    assert_eq!(p.received, 1, "and the reply comes back:\n{}", p.text);
    assert!(
        p.text.contains("2980 bytes from 198.51.100.1"),
        "{}",
        p.text
    );
    up.stop();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_after_a_killed_up_the_next_up_removes_its_leftovers() {
    let up = Up::start(&three_tier(), &[]);
    ping_answers("web1", "10.0.1.11");
    let leftovers = up.kill_hard();
    let old = leftovers.namespaces.clone();
    assert!(
        old.iter().any(|n| namespace_exists(n)),
        "SIGKILL leaves namespaces behind (else this test proves nothing)"
    );
    // Mark every leftover, to tell it from a namespace the next up makes under its name.
    for name in &old {
        sh_in(name, &format!("ip link add {STALE} type bridge")).expect_ok();
    }
    let up = Up::start_after(leftovers, &three_tier(), &[]);
    for name in old.iter().filter(|n| namespace_exists(n)) {
        let links = sh_in(name, "ip -br link").expect_ok();
        assert!(
            !links.contains(STALE),
            "namespace {name} of the killed up is still there:\n{links}"
        );
    }
    ping_answers("web1", "10.0.1.11");
    ping_answers("web1", "198.51.100.1");
    up.stop();
    let left: Vec<&String> = old.iter().filter(|n| namespace_exists(n)).collect();
    assert!(left.is_empty(), "left after both: {left:?}");
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_refuses_a_bad_file_and_makes_nothing() {
    let _serial = serial();
    let before = namespaces();
    let out = nicctl(&["up", &data("bad-three-tier.toml")]);
    let text = out.text();
    assert!(!out.ok(), "a bad file is refused:\n{text}");
    assert!(
        !out.stdout.contains("ready"),
        "and never gets to ready:\n{text}"
    );
    // Each error with its place and reason.
    for needle in ["nowhere", "10.0.1.0/24", "10.0.5.10"] {
        assert!(out.stderr.contains(needle), "{needle:?} in:\n{text}");
    }
    assert_eq!(namespaces(), before, "no namespace is made:\n{text}");
}
