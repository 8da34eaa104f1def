//! `nicctl up --dhcp`: Debian's dhclient in each VM gets its address, mask, router, DNS
//! servers, domain and MTU from the NIC's DHCP server; `ready` waits for every lease; the
//! clients and their /etc/netns files go when `up` ends, or when a killed one is reaped.
//! Needs root and isc-dhcp-client. Names: `dh-*`.
mod common;
use common::{exec_in, TempFile, Up};
use nicctl::up::state::Registry;
use std::path::{Path, PathBuf};

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

fn text(o: std::process::Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout).unwrap()
}

fn ip_json(ns: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-n", ns, "-j"];
    all.extend_from_slice(args);
    let out = std::process::Command::new("ip")
        .args(&all)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

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

fn run_dir_of(pid: u32) -> PathBuf {
    Registry::default()
        .records()
        .into_iter()
        .find(|(_, r)| r.pid == pid)
        .expect("state file")
        .1
        .run_dir
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn each_vm_gets_its_lease_and_the_clients_go_with_up() {
    need_root!();
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
        let seen = text(exec_in(vm, "cat", &["/etc/resolv.conf"]));
        let written = std::fs::read_to_string(format!("/etc/netns/{vm}/resolv.conf")).unwrap();
        assert_eq!(seen, written);
        let lines: Vec<&str> = seen.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(lines.contains(&"search dh.internal"), "{seen}");
        assert!(lines.contains(&"nameserver 10.61.0.2"), "{seen}");
        assert!(lines.contains(&"nameserver 10.61.0.3"), "{seen}");
    }
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    assert!(!host_resolv.contains("dh.internal"), "{host_resolv}");
    let ping = exec_in("dh-a", "ping", &["-c", "1", "-W", "2", "10.61.8.20"]);
    assert!(ping.status.success(), "{ping:?}");

    let run_dir = run_dir_of(up.pid().unwrap());
    let clients = [dhclient_of(&run_dir, "dh-a"), dhclient_of(&run_dir, "dh-b")];
    assert!(clients.iter().all(|&p| is_dhclient(p)));
    drop(up);
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
    need_root!();
    let file = TempFile::with("dk", "toml", &FILE.replace("dh-", "dk-"));
    let mut up = Up::start(file.path(), &["--dhcp"]);
    let run_dir = run_dir_of(up.pid().unwrap());
    let client = dhclient_of(&run_dir, "dk-a");
    up.signal(libc::SIGKILL);
    assert!(is_dhclient(client), "a killed up leaves its clients");
    assert!(Path::new("/etc/netns/dk-a/resolv.conf").exists());
    Registry::default().reap_stale().unwrap();
    assert!(
        common::eventually(std::time::Duration::from_secs(3), || !is_dhclient(client)),
        "the reaper ends dhclient {client}"
    );
    assert!(!Path::new("/etc/netns/dk-a").exists());
    assert!(!common::netns_exists("dk-a"));
    assert!(!run_dir.exists());
}
