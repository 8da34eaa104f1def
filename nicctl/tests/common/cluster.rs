//! The cluster's pieces as a user runs them: [`Etcd`], a real etcd (Debian's `etcd-server`)
//! on 127.0.0.1 with free ports and a data directory of its own, and [`AgentProc`], a
//! `nicctl agent` process. Both are stopped and removed when dropped.
use super::proc::Bg;
use super::{eventually, nicctl, nicctl_bin};
use host_driver::backend::sim::SimBackend;
use host_driver::table_read::NicTables;
use host_driver::PfDriver;
use nicctl::cluster::layout;
use nicctl::cluster::status::ClusterStatus;
use nicctl::cluster::AgentStatus;
use nicctl::config::{self, Config, Limits};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the agents may take to reach the desired state.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A directory of the test's own, removed on drop.
fn temp_dir(what: &str) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vpcnic-{what}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// A running etcd; dropping it stops it and removes its data.
pub struct Etcd {
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    process: Option<Bg>,
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub fn start() -> Etcd {
        let mut e = Etcd {
            dir: temp_dir("etcd"),
            client_port: free_port(),
            peer_port: free_port(),
            process: None,
        };
        e.resume();
        e
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Starts it again on the same data and ports (after [`Etcd::stop`]).
    pub fn resume(&mut self) {
        let data = self.dir.join("data");
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let cluster = format!("t={peer}");
        let argv = [
            "etcd",
            "--name",
            "t",
            "--data-dir",
            data.to_str().expect("UTF-8"),
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &cluster,
            // A whole VPC file is one transaction.
            "--max-txn-ops",
            "100000",
            "--max-request-bytes",
            "33554432",
        ];
        self.process = Some(Bg::spawn(None, &argv));
        let url = self.url();
        assert!(
            eventually(Duration::from_secs(20), || nicctl(&[
                "--etcd", &url, "status"
            ])
            .ok()),
            "etcd did not come up at {url}: {}",
            self.process.as_ref().map(|p| p.text()).unwrap_or_default()
        );
    }

    /// Stops it (SIGKILL): the cluster loses its store until [`Etcd::resume`].
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// A client of the store, on a runtime of its own.
    pub fn with_client<T>(&self, f: impl AsyncFnOnce(&mut etcd_client::Client) -> T) -> T {
        let rt = nicctl::cluster::runtime().expect("a tokio runtime");
        let url = self.url();
        rt.block_on(async move {
            let mut c = nicctl::cluster::connect(&url).await.expect("etcd answers");
            f(&mut c).await
        })
    }

    /// Compacts the store's history up to its current revision; returns that revision.
    pub fn compact(&self) -> i64 {
        self.with_client(async |c| {
            let r = c
                .get("/", None)
                .await
                .expect("get")
                .header()
                .map_or(0, |h| h.revision());
            c.compact(r, None).await.expect("compact");
            r
        })
    }

    /// `nicctl --etcd URL status --json`.
    pub fn status(&self) -> ClusterStatus {
        let out = nicctl(&["--etcd", &self.url(), "status", "--json"]).expect_ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}"))
    }

    /// `nicctl --etcd URL apply FILE`; returns what it printed.
    pub fn apply(&self, file: &Path) -> String {
        nicctl(&[
            "--etcd",
            &self.url(),
            "apply",
            file.to_str().expect("UTF-8"),
        ])
        .expect_ok()
    }

    /// Records every status host `host`'s agent writes from now on, as etcd's watch
    /// delivers each write (a poll would miss the short-lived ones).
    pub fn record_statuses(&self, host: &str) -> StatusLog {
        let url = self.url();
        let key = layout::agent_key(host);
        let seen: Arc<Mutex<Vec<AgentStatus>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let rt = nicctl::cluster::runtime().expect("a tokio runtime");
                rt.block_on(async move {
                    let mut c = nicctl::cluster::connect(&url).await.expect("etcd answers");
                    let (_watcher, mut stream) = c.watch(key, None).await.expect("watch");
                    let _ = ready_tx.send(());
                    while !stop.load(Ordering::Relaxed) {
                        let next =
                            tokio::time::timeout(Duration::from_millis(100), stream.message());
                        let Ok(message) = next.await else { continue };
                        let Some(response) = message.expect("the status watch") else {
                            break;
                        };
                        for kv in response.events().iter().filter_map(|e| e.kv()) {
                            if let Ok(s) = serde_json::from_slice::<AgentStatus>(kv.value()) {
                                seen.lock().expect("status log").push(s);
                            }
                        }
                    }
                })
            })
        };
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("the status watch is set up");
        StatusLog {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until every agent of `hosts` has applied the desired state and is healthy.
    pub fn wait_in_step(&self, hosts: &[&str]) -> Duration {
        let started = Instant::now();
        let mut last = None;
        let done = eventually(CONVERGE_TIMEOUT, || {
            let s = self.status();
            let ok = hosts.iter().all(|h| {
                s.hosts
                    .iter()
                    .any(|l| l.host == *h && l.agent.is_some() && !l.lagging)
            });
            last = Some(s);
            ok
        });
        assert!(done, "the agents of {hosts:?} did not converge: {last:#?}");
        started.elapsed()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `nicctl agent`, serving its NIC on a control socket of its own.
pub struct AgentProc {
    pub host: String,
    socket: PathBuf,
    dir: PathBuf,
    argv: Vec<String>,
    process: Option<Bg>,
}

impl AgentProc {
    /// `nicctl --etcd URL --device DEVICE --vfs 16 --socket S agent --host HOST`.
    pub fn start(etcd: &Etcd, host: &str, device: &str) -> AgentProc {
        AgentProc::start_with(etcd, host, device, 16)
    }

    /// As [`AgentProc::start`], with `vfs` VFs on a simulated NIC.
    pub fn start_with(etcd: &Etcd, host: &str, device: &str, vfs: u16) -> AgentProc {
        let dir = temp_dir("agent");
        let socket = dir.join("agent.sock");
        let argv: Vec<String> = [
            nicctl_bin(),
            "--etcd",
            &etcd.url(),
            "--device",
            device,
            "--vfs",
            &vfs.to_string(),
            "--socket",
            socket.to_str().expect("UTF-8"),
            "agent",
            "--host",
            host,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut a = AgentProc {
            host: host.to_string(),
            socket,
            dir,
            argv,
            process: None,
        };
        a.restart();
        a
    }

    /// Starts it again (after [`AgentProc::kill`]).
    pub fn restart(&mut self) {
        let argv: Vec<&str> = self.argv.iter().map(String::as_str).collect();
        self.process = Some(Bg::spawn(None, &argv));
        let socket = self.socket.clone();
        assert!(
            eventually(Duration::from_secs(10), || socket.exists()),
            "agent {} never served {}: {}",
            self.host,
            socket.display(),
            self.log()
        );
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Sends `sig` (SIGSTOP, SIGCONT).
    pub fn signal(&self, sig: i32) {
        if let Some(p) = &self.process {
            p.signal(sig);
        }
    }

    /// Its control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.process.as_ref().map(|p| p.text()).unwrap_or_default()
    }

    /// Whether it logs `needle` within `timeout` (its output is read by another thread, a
    /// moment after the agent writes it).
    pub fn logs(&self, needle: &str, timeout: Duration) -> bool {
        eventually(timeout, || self.log().contains(needle))
    }

    /// Its NIC's tables, read back through its control socket.
    pub fn tables(&self) -> NicTables {
        let out = nicctl(&[
            "--socket",
            self.socket.to_str().expect("UTF-8"),
            "show",
            "--json",
        ])
        .expect_ok();
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("show --json: {e}: {out}"));
        serde_json::from_value(v["hosts"][0]["tables"].clone())
            .unwrap_or_else(|e| panic!("the tables of show --json: {e}: {out}"))
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            p.signal(libc::SIGTERM);
            drop(p);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a fresh NIC holds once programmed with `host`'s part of `config` (the VPCs it
/// serves).
pub fn fresh_part(config: &Config, host: &str) -> NicTables {
    let part = layout::host_part(config, host, &Limits::vfs(u32::MAX));
    assert!(part.refused.is_empty(), "{:?}", part.refused);
    let backend = SimBackend::start(hw_sim::SimConfig::cloud_scale(16)).expect("simulator");
    let d = PfDriver::open(Box::new(backend)).expect("driver");
    let plan = config::plan(&part.config, host).expect("plan");
    config::apply(&d, &plan, |_, _| {}).expect("fresh NIC programmed");
    d.read_tables().expect("TABLE_READ")
}

/// Checks that `agent`'s NIC holds exactly its host's part of `config`: the same entries
/// as a fresh NIC (IDs aside), none twice, none missing.
pub fn assert_holds(agent: &AgentProc, config: &Config, what: &str) {
    let now = agent.tables();
    let fresh = fresh_part(config, &agent.host);
    assert_eq!(
        now.canonical(),
        fresh.canonical(),
        "{what}: host {}'s NIC differs from a fresh NIC programmed with its part of the file",
        agent.host
    );
    assert_eq!(
        (now.mappings.len(), now.vfs.len(), now.subnets.len()),
        (fresh.mappings.len(), fresh.vfs.len(), fresh.subnets.len()),
        "{what}: host {}: entries twice or missing",
        agent.host
    );
}

/// Every status an agent wrote while it was recorded ([`Etcd::record_statuses`]).
pub struct StatusLog {
    seen: Arc<Mutex<Vec<AgentStatus>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StatusLog {
    /// The statuses so far, in the order written.
    pub fn statuses(&self) -> Vec<AgentStatus> {
        self.seen.lock().expect("status log").clone()
    }
}

impl Drop for StatusLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
