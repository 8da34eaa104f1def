//! `nicctl up --dhcp`: Debian's dhclient in each VM gets its address, mask, router, DNS
//! servers, domain and MTU from the NIC's DHCP server (F9), not from `up`; `ready` waits
//! for every lease; the clients and their /etc/netns files go when `up` ends, or when a
//! killed one is reaped. Needs root and isc-dhcp-client. Names: those of
//! `examples/three-tier.toml`, and `dh-*`, `dk-*`.
mod common;
use common::{
    eventually, example, ip_json, namespace_exists, ping_answers, run, run_in, TempFile, Up,
};
use nicctl::up::state::Registry;
use std::path::Path;
use std::time::Duration;

/// The processes running in namespace `ns`, by command name.
fn processes_in(ns: &str) -> Vec<String> {
    let out = run(&["ip", "netns", "pids", ns]).expect_ok();
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
    let up = Up::start(&example("three-tier.toml"), &["--dhcp"]);
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

const FILE: &str = r#"
[vpc.dh]
vni = 61
cidr = "10.61.0.0/16"
dns = ["10.61.0.2", "10.61.0.3"]
domain = "dh.internal"

[subnet.dh-net]
vpc = "dh"
cidr = "10.61.4.0/22"

[subnet.dh-other]
vpc = "dh"
cidr = "10.61.8.0/24"

[instance.dh-a]
subnet = "dh-net"
ip = "10.61.5.10"

[instance.dh-b]
subnet = "dh-other"
ip = "10.61.8.20"
"#;

/// The dhclient pid of `vm` from its pid file in the deployment's run directory.
fn dhclient_of(run_dir: &Path, vm: &str) -> u32 {
    let pid_file = run_dir.join(format!("dhclient-{vm}.pid"));
    std::fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()))
        .trim()
        .parse()
        .unwrap()
}

fn is_dhclient(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dhclient")
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn each_vm_gets_its_lease_and_the_clients_go_with_up() {
    let file = TempFile::with("dh", "toml", FILE);
    let up = Up::start(file.path(), &["--dhcp"]);
    assert!(
        up.stderr().contains("up: DHCP: a client in each of 2 VMs"),
        "{}",
        up.stderr()
    );
    for (vm, ip, len, router) in [
        ("dh-a", "10.61.5.10", 22, "10.61.4.1"),
        ("dh-b", "10.61.8.20", 24, "10.61.8.1"),
    ] {
        let link = &ip_json(vm, &["addr", "show", "dev", "eth0"])[0];
        assert_eq!(link["mtu"], 9001, "{vm}: MTU from DHCP option 26: {link}");
        let inet: Vec<&serde_json::Value> = link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["family"] == "inet")
            .collect();
        assert_eq!(inet.len(), 1, "{link}");
        assert_eq!(
            (
                &inet[0]["local"],
                &inet[0]["prefixlen"],
                &inet[0]["dynamic"]
            ),
            (
                &serde_json::json!(ip),
                &serde_json::json!(len),
                &serde_json::json!(true)
            ),
            "{vm}: a leased address: {link}"
        );
        let routes = ip_json(vm, &["-4", "route", "show", "default"]);
        assert_eq!(routes[0]["gateway"], router, "{vm}: {routes}");
        // resolv.conf as the VM sees it (ip netns exec bind-mounts /etc/netns/<vm>/).
        let seen = run_in(vm, &["cat", "/etc/resolv.conf"]).expect_ok();
        let written = std::fs::read_to_string(format!("/etc/netns/{vm}/resolv.conf")).unwrap();
        assert_eq!(seen, written);
        let lines: Vec<&str> = seen.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(lines.contains(&"search dh.internal"), "{seen}");
        assert!(lines.contains(&"nameserver 10.61.0.2"), "{seen}");
        assert!(lines.contains(&"nameserver 10.61.0.3"), "{seen}");
    }
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    assert!(!host_resolv.contains("dh.internal"), "{host_resolv}");
    ping_answers("dh-a", "10.61.8.20");

    let run_dir = up.record().run_dir;
    let clients = [dhclient_of(&run_dir, "dh-a"), dhclient_of(&run_dir, "dh-b")];
    assert!(clients.iter().all(|&p| is_dhclient(p)));
    up.stop_with(libc::SIGINT);
    for pid in clients {
        assert!(!is_dhclient(pid), "dhclient {pid} ended with up");
    }
    assert!(!Path::new("/etc/netns/dh-a").exists());
    assert!(!Path::new("/etc/netns/dh-b").exists());
    assert!(!run_dir.exists());
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_killed_dhcp_deployment_leaves_nothing_after_the_reaper() {
    let file = TempFile::with("dk", "toml", &FILE.replace("dh-", "dk-"));
    let up = Up::start(file.path(), &["--dhcp"]);
    let run_dir = up.record().run_dir;
    let client = dhclient_of(&run_dir, "dk-a");
    let _leftovers = up.kill_hard();
    assert!(is_dhclient(client), "a killed up leaves its clients");
    assert!(Path::new("/etc/netns/dk-a/resolv.conf").exists());
    Registry::default().reap_stale().unwrap();
    assert!(
        eventually(Duration::from_secs(3), || !is_dhclient(client)),
        "the reaper ends dhclient {client}"
    );
    assert!(!Path::new("/etc/netns/dk-a").exists());
    assert!(!namespace_exists("dk-a"));
    assert!(!run_dir.exists());
}
