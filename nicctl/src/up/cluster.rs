//! `nicctl up FILE --etcd URLS`: the cluster on one machine. The same VMs, gateways and
//! underlay as [`super::Deployment`], but each host is two processes of its own: its board
//! (`nic-sim`, the simulated NIC over vfio-user) and its agent (`nicctl agent`), which
//! programs the board from etcd and from nothing else. `up` writes the file into etcd,
//! then only follows the store: a VM is plugged into the VF its host's agent reports for
//! it, re-plugged when another host's agent reports it, and removed when its instance
//! leaves the store. So `nicctl apply FILE --etcd URLS` changes a running cluster.
use super::deployment::{claim, gateway_plans, make_underlay, start_gateway, vm_spec, Claimed};
use super::deployment::{Progress, UpError, UpOptions, SIM_VFS};
use super::gateway::GatewayNs;
use super::instance::{Placement, Vm};
use super::live::{follow_gateways, NsChange};
use super::state::Claim;
use super::underlay::Underlay;
use crate::cluster::{self, layout, AgentStatus};
use crate::config::{Config, Limits};
use hw_sim::vfio_user::client::VfioUserPort;
use hw_sim::vfio_user::uplink::UplinkClient;
use hw_sim::vfio_user::{uplink_socket, vf_socket};
use hw_sim::Function;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vf_driver::VfDriver;

/// Descriptors per VF ring of a simulated VM.
const VM_RING: u16 = 256;
/// How long `up` waits for the agents to give every instance a VF.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One host: its board and its agent, as processes.
struct ClusterHost {
    name: String,
    /// The board's PF socket (its VFs are `.vfN` beside it).
    socket: PathBuf,
    agent: Child,
    board: Child,
}

impl Drop for ClusterHost {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a child we own and have not reaped: its pid is still ours.
        unsafe { libc::kill(self.agent.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.agent.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.agent.kill();
        let _ = self.agent.wait();
        let _ = self.board.kill();
        let _ = self.board.wait();
    }
}

/// A running cluster on this machine. Dropping it removes everything: VMs, gateways, the
/// underlay, then the agents and boards, and last its state file.
pub struct ClusterUp {
    vms: Vec<Vm>,
    gateways: Vec<GatewayNs>,
    underlay: Option<Underlay>,
    hosts: Vec<ClusterHost>,
    urls: String,
    rt: tokio::runtime::Runtime,
    /// The file as the store holds it now.
    pub config: Config,
    run_dir: PathBuf,
    claim: Option<Claim>,
}

impl Drop for ClusterUp {
    fn drop(&mut self) {
        self.vms.clear();
        self.gateways.clear();
        self.underlay = None;
        self.hosts.clear();
        let _ = std::fs::remove_dir_all(&self.run_dir);
        self.claim = None;
    }
}

/// A binary beside this one (`nic-sim` next to `nicctl` in `target/<profile>/`), or the
/// path in `$env`.
fn sibling(env: &str, name: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("where nicctl is: {e}"))?;
    let path = exe.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{name} is not beside nicctl ({}): build it (cargo build --release -p hw-sim --bin \
             {name}) or name it in ${env}",
            path.display()
        ))
    }
}

/// Starts `cmd` so that it dies with this process.
fn spawn_tied(cmd: &mut Command) -> std::io::Result<Child> {
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe calls on memory of its own: a `nicctl up` killed outright takes its
    // hosts with it, and the child gets SIGTERM, which `up` itself blocks to wait for it.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    cmd.spawn()
}

impl ClusterUp {
    /// Writes `config` into etcd at `urls`, starts a board and an agent per host, the
    /// underlay and the gateways, and waits until every instance's VM is plugged into the
    /// VF its agent gave it.
    pub fn up(
        config: &Config,
        urls: &str,
        opts: &UpOptions,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<ClusterUp, UpError> {
        let fail = |reason: String| UpError::Host {
            host: "cluster".into(),
            reason,
        };
        let rt = cluster::runtime().map_err(|e| fail(format!("tokio: {e}")))?;
        progress(Progress::Step(&format!(
            "etcd at {urls}: writing {}",
            opts.source
        )));
        let published = rt
            .block_on(async {
                let mut c = cluster::connect(urls).await?;
                cluster::publish::publish(&mut c, config, &opts.source).await
            })
            .map_err(|e| fail(e.to_string()))?;
        progress(Progress::Step(&format!(
            "etcd: {} records written, revision {}",
            published.put.len(),
            published.revision
        )));
        let Claimed {
            claim,
            underlay_ns,
            run_dir,
        } = claim(config, opts, progress)?;
        let mut c = ClusterUp {
            vms: Vec::new(),
            gateways: Vec::new(),
            underlay: None,
            hosts: Vec::new(),
            urls: urls.to_string(),
            rt,
            config: config.clone(),
            run_dir: run_dir.clone(),
            claim: Some(claim),
        };
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| fail(format!("{}: {e}", run_dir.display())))?;
        let mut underlay = make_underlay(&underlay_ns, progress)?;
        let nic_sim = sibling("VPCNIC_NIC_SIM", "nic-sim").map_err(fail)?;
        let nicctl = std::env::current_exe().map_err(|e| fail(e.to_string()))?;
        for (index, host) in config.hosts.iter().enumerate() {
            progress(Progress::Step(&format!(
                "host {}: nic-sim and nicctl agent",
                host.name
            )));
            let h =
                start_host(&host.name, &run_dir, &nic_sim, &nicctl, urls).map_err(|reason| {
                    UpError::Host {
                        host: host.name.clone(),
                        reason,
                    }
                })?;
            let uplink =
                UplinkClient::connect(&uplink_socket(&h.socket)).map_err(|e| UpError::Host {
                    host: host.name.clone(),
                    reason: format!("its board's uplink: {e}"),
                })?;
            underlay.attach_nic(&format!("ul{index}"), Arc::new(uplink))?;
            c.hosts.push(h);
        }
        for plan in gateway_plans(config) {
            progress(Progress::Step(&format!("gateway {}", plan.name)));
            c.gateways.push(start_gateway(&plan, &mut underlay)?);
        }
        c.underlay = Some(underlay);
        progress(Progress::Step("VMs, as the agents give them VFs"));
        let started = Instant::now();
        loop {
            c.follow()?;
            let missing: Vec<&str> = c
                .config
                .instances
                .iter()
                .filter(|i| !c.vms.iter().any(|v| v.name() == i.name))
                .map(|i| i.name.as_str())
                .collect();
            if missing.is_empty() {
                break;
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(fail(format!(
                    "no VF for {} after {READY_TIMEOUT:?}: see the agents' logs in {}",
                    missing.join(", "),
                    run_dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(c)
    }

    /// The underlay router's namespace.
    pub fn underlay_namespace(&self) -> Option<&str> {
        self.underlay.as_ref().map(|u| u.namespace())
    }

    /// Where each host's agent serves its NIC (`nicctl --socket PATH show`).
    pub fn agent_sockets(&self) -> Vec<(String, PathBuf)> {
        self.hosts
            .iter()
            .map(|h| (h.name.clone(), agent_socket(&self.run_dir, &h.name)))
            .collect()
    }

    /// Follows the store once: VMs of instances that left it are removed, VMs whose
    /// instance another host's agent now reports are re-plugged there, new ones boot, and
    /// the gateways follow. Returns what changed.
    pub fn follow(&mut self) -> Result<Vec<NsChange>, UpError> {
        let fail = |reason: String| UpError::Host {
            host: "cluster".into(),
            reason,
        };
        let (records, agents) = self
            .rt
            .block_on(read_store(&self.urls))
            .map_err(|e| fail(e.to_string()))?;
        let read = layout::read(&records, &Limits::vfs(u32::MAX));
        let config = read.config;
        // Where each instance is plugged in, by its host's agent.
        let mut placed: BTreeMap<String, Placement> = BTreeMap::new();
        for a in agents.iter().filter(|a| a.health == "ok") {
            for (name, vf) in &a.vfs {
                placed.insert(
                    name.clone(),
                    Placement {
                        host: a.host.clone(),
                        vf: *vf,
                    },
                );
            }
        }
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.vms.len() {
            let vm = &self.vms[i];
            let keep = config
                .instance_index(vm.name())
                .is_some_and(|j| vm_spec(&config, j, false) == *vm.spec());
            if keep {
                i += 1;
                continue;
            }
            let vm = self.vms.remove(i);
            done.push(NsChange::InstanceRemoved {
                name: vm.name().to_string(),
                at: vm.placement().clone(),
            });
        }
        for vm in &mut self.vms {
            let Some(to) = placed.get(vm.name()) else {
                continue;
            };
            if to == vm.placement() {
                continue;
            }
            let Some(host) = self.hosts.iter().find(|h| h.name == to.host) else {
                continue;
            };
            let guest = attach(&host.socket, to.vf).map_err(&fail)?;
            let from = vm.placement().clone();
            let started = Instant::now();
            vm.replug(to.clone(), guest)?;
            done.push(NsChange::InstanceMoved {
                name: vm.name().to_string(),
                from,
                to: to.clone(),
                unplugged: started.elapsed(),
            });
        }
        for (j, inst) in config.instances.iter().enumerate() {
            if self.vms.iter().any(|v| v.name() == inst.name) {
                continue;
            }
            let Some(at) = placed.get(&inst.name) else {
                continue;
            };
            let Some(host) = self.hosts.iter().find(|h| h.name == at.host) else {
                continue;
            };
            let guest = attach(&host.socket, at.vf).map_err(&fail)?;
            let vm = Vm::boot(&vm_spec(&config, j, false), at.clone(), guest, None)?;
            done.push(NsChange::InstanceAdded {
                name: inst.name.clone(),
                at: at.clone(),
            });
            self.vms.push(vm);
        }
        if let Some(underlay) = self.underlay.as_mut() {
            follow_gateways(
                &mut self.gateways,
                underlay,
                &gateway_plans(&config),
                &mut done,
            )
            .map_err(|e| fail(e.to_string()))?;
        }
        self.config = config;
        if !done.is_empty() {
            self.record()?;
        }
        Ok(done)
    }

    /// Records the namespaces that run now.
    fn record(&mut self) -> Result<(), UpError> {
        let mut names: Vec<String> = self
            .vms
            .iter()
            .map(|v| v.name().to_string())
            .chain(self.gateways.iter().map(|g| g.plan().name.clone()))
            .collect();
        if let Some(u) = self.underlay_namespace() {
            names.push(u.to_string());
        }
        if let Some(claim) = self.claim.as_mut() {
            claim
                .update(|r| r.namespaces = names)
                .map_err(|e| UpError::Host {
                    host: "cluster".into(),
                    reason: format!("recording the deployment: {e}"),
                })?;
        }
        Ok(())
    }
}

fn agent_socket(run_dir: &Path, host: &str) -> PathBuf {
    run_dir.join(format!("agent-{host}.sock"))
}

/// Starts host `name`'s board and agent.
fn start_host(
    name: &str,
    run_dir: &Path,
    nic_sim: &Path,
    nicctl: &Path,
    urls: &str,
) -> Result<ClusterHost, String> {
    let socket = run_dir.join(format!("{name}.sock"));
    let mut board = spawn_tied(
        Command::new(nic_sim)
            .arg("--socket")
            .arg(&socket)
            .args(["--vfs", &SIM_VFS.to_string(), "--tables", "cloud"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .map_err(|e| format!("starting {}: {e}", nic_sim.display()))?;
    let mut line = String::new();
    let ready = board
        .stdout
        .take()
        .map(std::io::BufReader::new)
        .map(|mut r| r.read_line(&mut line))
        .is_some_and(|r| r.is_ok() && line.trim() == "ready");
    if !ready {
        let _ = board.kill();
        let _ = board.wait();
        return Err(format!(
            "nic-sim did not become ready (it printed {line:?})"
        ));
    }
    let log_path = run_dir.join(format!("agent-{name}.log"));
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let device = format!("vfio-user:{}", socket.display());
    let agent = spawn_tied(
        Command::new(nicctl)
            .args(["--etcd", urls, "--device", &device, "--socket"])
            .arg(agent_socket(run_dir, name))
            .args(["agent", "--host", name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log),
    );
    let agent = match agent {
        Ok(a) => a,
        Err(e) => {
            let _ = board.kill();
            let _ = board.wait();
            return Err(format!("starting nicctl agent: {e}"));
        }
    };
    Ok(ClusterHost {
        name: name.to_string(),
        socket,
        agent,
        board,
    })
}

/// A VM's VF driver on VF `vf` of the board at `socket`.
fn attach(socket: &Path, vf: u16) -> Result<VfDriver, String> {
    let port = VfioUserPort::connect(&vf_socket(socket, vf), Function::Vf(vf))
        .map_err(|e| e.to_string())?;
    VfDriver::attach_with(port, VM_RING, super::deployment::VM_ATTACH)
        .map_err(|e| format!("vf{vf}: {e}"))
}

/// Every record of the desired state (key to value), and every agent's status.
async fn read_store(
    urls: &str,
) -> Result<(BTreeMap<String, Vec<u8>>, Vec<AgentStatus>), cluster::StoreError> {
    let mut c = cluster::connect(urls).await?;
    let all = c
        .get(
            layout::ROOT,
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await?;
    let mut records = BTreeMap::new();
    let mut agents = Vec::new();
    for kv in all.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        if key.starts_with(layout::AGENTS) {
            if let Ok(a) = serde_json::from_slice::<AgentStatus>(kv.value()) {
                agents.push(a);
            }
        } else {
            records.insert(key, kv.value().to_vec());
        }
    }
    Ok((records, agents))
}
