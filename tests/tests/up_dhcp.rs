//! `nicctl up --dhcp examples/three-tier.toml`: each VM's `eth0` is addressed by a real
//! DHCP client (Debian's dhclient) talking to the NIC's DHCP server at the subnet gateway
//! (F9), not by `up`.
use std::path::Path;
use tests::netns::{ip_json, ping_answers, run_in};
use tests::up::{example, Up};

/// The processes running in namespace `ns`, by command name.
fn processes_in(ns: &str) -> Vec<String> {
    let out = tests::netns::run(&["ip", "netns", "pids", ns]).expect_ok();
    out.split_whitespace()
        .filter_map(|pid| std::fs::read_to_string(Path::new("/proc").join(pid).join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_dhcp_client_gets_address_mask_router_dns_and_mtu_9001() {
    let Some(up) = Up::start(&example("three-tier.toml"), &["--dhcp"]) else {
        return;
    };
    for (vm, ip, router) in [
        ("web1", "10.0.1.10", "10.0.1.1"),
        ("web2", "10.0.1.11", "10.0.1.1"),
        ("app1", "10.0.2.10", "10.0.2.1"),
        ("db1", "10.0.3.10", "10.0.3.1"),
    ] {
        assert!(
            processes_in(vm).iter().any(|c| c == "dhclient"),
            "a DHCP client runs in {vm}: {:?}",
            processes_in(vm)
        );
        let addr = ip_json(vm, &["-4", "addr", "show", "dev", "eth0"]);
        let inet: Vec<(String, u64)> = addr[0]["addr_info"]
            .as_array()
            .expect("addr_info")
            .iter()
            .filter_map(|a| Some((a["local"].as_str()?.to_string(), a["prefixlen"].as_u64()?)))
            .collect();
        assert_eq!(
            inet,
            [(ip.to_string(), 24)],
            "{vm}'s address and mask: {addr}"
        );
        assert_eq!(addr[0]["mtu"], 9001, "{vm}'s MTU (DHCP option 26): {addr}");
        let routes = ip_json(vm, &["-4", "route", "show", "default"]);
        assert_eq!(
            routes[0]["gateway"], router,
            "{vm}'s default route (DHCP option 3): {routes}"
        );
        // `ip netns exec` shows the VM its own /etc/resolv.conf, written by the client.
        let resolv = run_in(vm, &["cat", "/etc/resolv.conf"]).expect_ok();
        assert!(
            resolv.lines().any(|l| l.trim() == "nameserver 10.0.0.2"),
            "{vm}'s DNS server (option 6; the VPC's base+2 by default):\n{resolv}"
        );
        assert!(
            resolv.contains("prod.internal"),
            "{vm}'s domain (option 15):\n{resolv}"
        );
    }
    // The leases are usable: the VMs talk, inside a subnet, across subnets and outside.
    ping_answers("web1", "10.0.1.11");
    ping_answers("web1", "10.0.2.10");
    ping_answers("web2", "198.51.100.1");
    ping_answers("db1", "172.16.0.1");
    up.stop();
}
