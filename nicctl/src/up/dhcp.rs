//! `nicctl up --dhcp`: a real DHCP client in each VM. Debian's ISC `dhclient` runs inside
//! the VM's namespace (`ip netns exec`) with its own configuration, pid and lease files in
//! the deployment's run directory; its standard script (`/sbin/dhclient-script`) sets the
//! address, mask, default route and MTU on `eth0` and writes `/etc/resolv.conf`, which
//! `ip netns exec` bind-mounts from `/etc/netns/<vm>/resolv.conf`: the host's own
//! resolv.conf is never touched.
use super::state::{etc_netns_dir, remove_etc_netns};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a client may take to get its lease: `dhclient -1` gives up after the
/// configuration's `timeout`, and `up` a few seconds after that.
pub const LEASE_TIMEOUT_SECS: u64 = 20;

/// The client's configuration: what it asks the NIC's DHCP server for.
const CONF: &str = "\
# nicctl up --dhcp: the options a VPC's DHCP server gives (spec: vpc-config.md).
timeout 20;
retry 5;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers,
        domain-search, interface-mtu;
";

/// Why a VM has no lease.
#[derive(Debug, thiserror::Error)]
#[error("VM {vm}: DHCP: {reason}")]
pub struct DhcpError {
    pub vm: String,
    pub reason: String,
}

/// A running `dhclient` holding a VM's lease; dropping it ends the client and removes its
/// files and the VM's `/etc/netns` resolv.conf.
#[derive(Debug)]
pub struct DhcpClient {
    vm: String,
    pid_file: PathBuf,
    files: Vec<PathBuf>,
}

/// A client started and not yet known to hold a lease.
pub struct Pending {
    client: DhcpClient,
    child: Child,
    log: PathBuf,
    started: Instant,
}

/// What a VM's `eth0` must hold once addressed by DHCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub router: Ipv4Addr,
    pub mtu: u32,
}

impl DhcpClient {
    /// Writes an empty `/etc/netns/<vm>/resolv.conf` (so `ip netns exec` bind-mounts it over
    /// `/etc/resolv.conf`), then starts `dhclient -1 -v` on `eth0` in namespace `vm` with
    /// its files in `run_dir`.
    pub fn start(vm: &str, run_dir: &Path) -> Result<Pending, DhcpError> {
        let fail = |what: &str, e: std::io::Error| DhcpError {
            vm: vm.to_string(),
            reason: format!("{what}: {e}"),
        };
        let etc = etc_netns_dir(vm);
        fs::create_dir_all(&etc).map_err(|e| fail("creating /etc/netns", e))?;
        fs::write(
            etc.join("resolv.conf"),
            format!("# VM {vm}: written by its DHCP client (nicctl up --dhcp)\n"),
        )
        .map_err(|e| fail("writing its resolv.conf", e))?;
        fs::create_dir_all(run_dir).map_err(|e| fail("creating the run directory", e))?;
        let file = |ext: &str| run_dir.join(format!("dhclient-{vm}.{ext}"));
        let (conf, pid_file, leases, log) =
            (file("conf"), file("pid"), file("leases"), file("log"));
        fs::write(&conf, CONF).map_err(|e| fail("writing dhclient.conf", e))?;
        let log_file = fs::File::create(&log).map_err(|e| fail("creating its log", e))?;
        let child = Command::new("ip")
            .args(["netns", "exec", vm, "dhclient", "-1", "-v"])
            .arg("-cf")
            .arg(&conf)
            .arg("-pf")
            .arg(&pid_file)
            .arg("-lf")
            .arg(&leases)
            .arg("eth0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| fail("running dhclient (is isc-dhcp-client installed?)", e))?;
        Ok(Pending {
            client: DhcpClient {
                vm: vm.to_string(),
                pid_file: pid_file.clone(),
                files: vec![conf, pid_file, leases, log.clone()],
            },
            child,
            log,
            started: Instant::now(),
        })
    }

    /// The VM.
    pub fn vm(&self) -> &str {
        &self.vm
    }

    /// The pid of the daemon holding the lease.
    pub fn pid(&self) -> Option<i32> {
        let pid: i32 = fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "dhclient").then_some(pid)
    }
}

impl Pending {
    /// Waits until the client has its lease (`dhclient -1` returns once it has daemonized
    /// with one), then checks `eth0` against `expected`.
    pub fn wait(mut self, expected: &Expected) -> Result<DhcpClient, DhcpError> {
        let deadline = self.started + Duration::from_secs(LEASE_TIMEOUT_SECS + 5);
        let fail = |vm: &str, reason: String| DhcpError {
            vm: vm.to_string(),
            reason,
        };
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) | Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(fail(
                        &self.client.vm,
                        format!(
                            "no lease after {} s{}",
                            LEASE_TIMEOUT_SECS + 5,
                            log_tail(&self.log)
                        ),
                    ));
                }
            }
        };
        if !status.success() {
            return Err(fail(
                &self.client.vm,
                format!("dhclient failed ({status}){}", log_tail(&self.log)),
            ));
        }
        check_eth0(&self.client.vm, expected).map_err(|reason| fail(&self.client.vm, reason))?;
        Ok(self.client)
    }
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(6)..].join("\n  ");
    if tail.is_empty() {
        String::new()
    } else {
        format!("; dhclient said:\n  {tail}")
    }
}

/// Checks that `eth0` in namespace `vm` has the expected address, prefix length, MTU and
/// default route.
pub fn check_eth0(vm: &str, expected: &Expected) -> Result<(), String> {
    let json = |args: &[&str]| -> Result<serde_json::Value, String> {
        let out = super::netns::ip_in(vm, args).map_err(|e| e.to_string())?;
        serde_json::from_str(&out).map_err(|e| format!("reading `ip {}`: {e}", args.join(" ")))
    };
    let link = json(&["-j", "addr", "show", "dev", "eth0"])?;
    let link = &link[0];
    let mtu = link["mtu"].as_u64().unwrap_or(0);
    let addrs: Vec<(String, u64)> = link["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["family"] == "inet")
        .map(|a| {
            (
                a["local"].as_str().unwrap_or("").to_string(),
                a["prefixlen"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let want = (expected.ip.to_string(), u64::from(expected.prefix_len));
    if !addrs.contains(&want) {
        let got: Vec<String> = addrs.iter().map(|(a, l)| format!("{a}/{l}")).collect();
        return Err(format!(
            "eth0 has {} after the lease, expected {}/{}",
            if got.is_empty() {
                "no IPv4 address".to_string()
            } else {
                got.join(", ")
            },
            want.0,
            want.1
        ));
    }
    if mtu != u64::from(expected.mtu) {
        return Err(format!(
            "eth0 has MTU {mtu} after the lease, expected {} (DHCP option 26)",
            expected.mtu
        ));
    }
    let routes = json(&["-j", "-4", "route", "show", "default"])?;
    let router = expected.router.to_string();
    let has_default = routes
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["gateway"] == router.as_str() && r["dev"] == "eth0");
    if !has_default {
        return Err(format!(
            "no default route via {router} on eth0 after the lease (DHCP option 3)"
        ));
    }
    Ok(())
}

impl Drop for DhcpClient {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill has no memory effects; the pid is a dhclient of this VM's
            // pid file.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            for _ in 0..20 {
                if self.pid().is_none() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        for f in &self.files {
            let _ = fs::remove_file(f);
        }
        remove_etc_netns(&self.vm);
    }
}
