//! `nicctl up FILE` as a user runs it, for the whole-system `up_*` tests: the real binary
//! is started on a VPC file, the test waits for its `ready` line, runs real tools inside the
//! namespaces it made ([`crate::netns`]), then stops it with SIGTERM and checks that every
//! namespace and device it made is gone.
//!
//! - The tests need root (network namespaces, TAP devices): [`Up::start`] returns `None`
//!   after printing why when the test does not run as root, and the test returns.
//! - Deployments never overlap: an [`Up`] holds a lock for its whole life, a static mutex
//!   within the test binary and an `flock` between test binaries.
//! - An [`Up`] cleans up when it is dropped, also when the test fails: it ends `nicctl up`
//!   (SIGTERM, then SIGKILL), ends what still runs in the namespaces it made, and deletes
//!   those namespaces.
//! - The binary is `target/<profile>/nicctl`, built once per test binary with
//!   `cargo build -p nicctl --bin nicctl` ([`nicctl`]); `VPCNIC_NICCTL=/path/to/nicctl`
//!   runs the tests against another build instead.
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long `nicctl up` may take to print `ready` (`--dhcp` waits for every lease).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `nicctl up` may take to remove everything after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a test waits for another `nicctl up` to release the namespace names it needs.
pub const NAMES_BUSY_TIMEOUT: Duration = Duration::from_secs(120);
/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Where `nicctl up` keeps its state files.
const STATE_DIR: &str = "/run/vpcnic";

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// `examples/NAME` of the workspace.
pub fn example(name: &str) -> PathBuf {
    workspace().join("examples").join(name)
}

/// `tests/data/NAME`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// True when the test runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The running test's name, as the test harness names its thread.
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string()
}

/// Whether the running test may go on: it must run as root. Tests that need root are
/// `#[ignore]`d with the reason when built by another user (see `build.rs`), so reaching
/// this as non-root means the build and the run were by different users: a failure, never
/// a silent pass.
pub fn root_or_skip() -> bool {
    assert!(
        is_root(),
        "{} needs root (it creates network namespaces and TAP devices); it was built as \
         root but runs as another user",
        test_name()
    );
    true
}

/// The `nicctl` binary the tests run: `$VPCNIC_NICCTL`, or `target/<profile>/nicctl` of
/// the profile the tests were built with, built (or brought up to date) here the first time
/// it is needed.
pub fn nicctl() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| workspace_binary("VPCNIC_NICCTL", "nicctl", "nicctl"))
}

/// A binary of the workspace: the path in `$env_var` if set, else `target/<profile>/<bin>`
/// of the profile the tests were built with, built (or brought up to date) with
/// `cargo build -p <package> --bin <bin>`.
pub fn workspace_binary(env_var: &str, package: &str, bin: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a profile directory name")
        .to_string();
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", package, "--bin", bin])
        .current_dir(workspace())
        .env("CARGO_TARGET_DIR", target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "building {bin} (cargo build -p {package} --bin {bin}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = profile_dir.join(bin);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Held while a deployment runs: no two deployments overlap, in this test binary (the
/// mutex) or in another one (the `flock`).
pub struct Serial {
    _guard: MutexGuard<'static, ()>,
    _lock: File,
}

/// Waits for the right to run a deployment.
pub fn serial() -> Serial {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that failed while holding the mutex poisons it; its Up has cleaned up anyway.
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::env::temp_dir().join("vpcnic-up-tests.lock");
    let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: flock on a descriptor `file` owns; the lock is released when it is closed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", path.display());
    Serial {
        _guard: guard,
        _lock: file,
    }
}

/// The network namespaces that exist, by name.
pub fn namespaces() -> BTreeSet<String> {
    std::fs::read_dir(NETNS_DIR)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// True when namespace `name` exists.
pub fn namespace_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// The network devices of the test's own (root) namespace.
fn root_links() -> BTreeSet<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The names a VPC file gives namespaces: `(instances, gateways)`, from its
/// `[instance.NAME]` and `[gateway.NAME]` tables.
pub fn file_names(file: &Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (mut instances, mut gateways) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let line = line.trim();
        let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) else {
            continue;
        };
        if let Some(name) = header.strip_prefix("instance.") {
            instances.push(name.trim().to_string());
        } else if let Some(name) = header.strip_prefix("gateway.") {
            gateways.push(name.trim().to_string());
        }
    }
    (instances, gateways)
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory preconditions; a pid that is gone just fails.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Waits up to `timeout` for `child` to end.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ends every process in namespace `name` (whatever a test or a DHCP client left there),
/// so that deleting the namespace really frees it.
fn kill_processes_in(name: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if let Ok(pid) = pid.parse() {
            signal(pid, libc::SIGKILL);
        }
    }
}

/// Deletes namespace `name` and ends what runs in it.
fn delete_namespace(name: &str) {
    kill_processes_in(name);
    let _ = Command::new("ip").args(["netns", "delete", name]).output();
}

/// Collects a child's output lines, and hands the stdout lines to whoever waits for one.
struct Output {
    log: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
}

impl Output {
    fn capture(child: &mut Child) -> Output {
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                l.lock().unwrap().push_str(&format!("stdout: {line}\n"));
                let _ = tx.send(line);
            }
        });
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push_str(&format!("stderr: {line}\n"));
            }
        });
        Output { log, lines }
    }

    fn text(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// A running `nicctl up FILE`. Dropping it ends it and removes what it made.
pub struct Up {
    file: PathBuf,
    child: Option<Child>,
    output: Option<Output>,
    /// The namespaces that existed before it started.
    before: BTreeSet<String>,
    /// The devices of the root namespace before it started.
    links_before: BTreeSet<String>,
    /// `/etc/netns` entries before it started (`--dhcp` writes some).
    etc_netns_before: BTreeSet<String>,
    /// The file's instances and gateways.
    instances: Vec<String>,
    gateways: Vec<String>,
    /// Namespaces a killed deployment left behind ([`Leftovers`]): removed with this one.
    inherited: BTreeSet<String>,
    ready: bool,
    // Last: released once everything above is cleaned up.
    serial: Option<Serial>,
}

/// What a `nicctl up` killed with SIGKILL left behind, for the next [`Up`] to meet.
pub struct Leftovers {
    /// The namespaces the killed deployment had made.
    pub namespaces: BTreeSet<String>,
    serial: Option<Serial>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for name in &self.namespaces {
            delete_namespace(name);
        }
    }
}

fn etc_netns() -> BTreeSet<String> {
    std::fs::read_dir("/etc/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Up {
    /// Starts `nicctl up FILE ARGS` and waits for `ready`; `None` (with a message) when the
    /// test does not run as root.
    pub fn start(file: &Path, args: &[&str]) -> Option<Up> {
        if !root_or_skip() {
            return None;
        }
        let serial = serial();
        Some(Up::launch(file, args, serial, BTreeSet::new()))
    }

    /// Starts another `nicctl up` after one was killed, in the same turn of the lock; the
    /// leftovers it does not remove are removed with it.
    pub fn start_after(mut leftovers: Leftovers, file: &Path, args: &[&str]) -> Up {
        let serial = leftovers.serial.take().expect("leftovers hold the lock");
        let inherited = std::mem::take(&mut leftovers.namespaces);
        Up::launch(file, args, serial, inherited)
    }

    fn launch(file: &Path, args: &[&str], serial: Serial, inherited: BTreeSet<String>) -> Up {
        let nicctl = nicctl();
        let (instances, gateways) = file_names(file);
        wait_names_free(instances.iter().chain(&gateways));
        let mut up = Up {
            file: file.to_path_buf(),
            child: None,
            output: None,
            before: namespaces(),
            links_before: root_links(),
            etc_netns_before: etc_netns(),
            instances,
            gateways,
            inherited,
            ready: false,
            serial: Some(serial),
        };
        let mut child = Command::new(nicctl)
            .arg("up")
            .arg(file)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", nicctl.display()));
        up.output = Some(Output::capture(&mut child));
        up.child = Some(child);
        up.wait_ready();
        up
    }

    /// Waits for the `ready` line; fails the test (and cleans up) when it does not come.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let out = self.output.as_ref().expect("started");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match out.lines.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) if line.trim() == "ready" => break,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().and_then(|c| c.wait().ok());
                    // Give the stderr reader a moment to take the last lines.
                    std::thread::sleep(Duration::from_millis(100));
                    panic!(
                        "nicctl up {} ended before `ready` ({status:?}):\n{}",
                        self.file.display(),
                        self.log()
                    );
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "nicctl up {} printed no `ready` within {READY_TIMEOUT:?}:\n{}",
                    self.file.display(),
                    self.log()
                );
            }
        }
        self.ready = true;
    }

    /// What `nicctl up` printed so far, line by line.
    pub fn log(&self) -> String {
        self.output.as_ref().map(Output::text).unwrap_or_default()
    }

    /// The `nicctl up` process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The file's instance names (each a VM's namespace).
    pub fn instances(&self) -> &[String] {
        &self.instances
    }

    /// The namespaces it made: those the file names (once it is ready) and those that did
    /// not exist before it started.
    pub fn made(&self) -> BTreeSet<String> {
        namespaces()
            .into_iter()
            .filter(|n| {
                !self.before.contains(n)
                    || (self.ready && (self.instances.contains(n) || self.gateways.contains(n)))
            })
            .collect()
    }

    /// The underlay router's namespace: the namespace it made that the file does not name
    /// (`vpcnic_...`).
    pub fn underlay(&self) -> String {
        let extra: Vec<String> = self
            .made()
            .into_iter()
            .filter(|n| !self.instances.contains(n) && !self.gateways.contains(n))
            .collect();
        match extra.as_slice() {
            [one] => one.clone(),
            _ => panic!("expected one underlay namespace besides the file's, found {extra:?}"),
        }
    }

    /// The control socket this deployment serves, as its state file records it.
    pub fn socket(&self) -> Option<PathBuf> {
        let file = state_files_of(self.pid()).into_iter().next()?;
        let text = std::fs::read_to_string(file).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v.get("socket")?.as_str().map(PathBuf::from)
    }

    /// `nicctl ARGS` run beside this deployment (with `--socket` when its state file names
    /// one), to its end.
    pub fn nicctl(&self, args: &[&str]) -> crate::netns::Run {
        let bin = nicctl().to_string_lossy().into_owned();
        let socket = self.socket().map(|p| p.to_string_lossy().into_owned());
        let mut argv = vec![bin.as_str()];
        if let Some(s) = &socket {
            argv.extend(["--socket", s.as_str()]);
        }
        argv.extend_from_slice(args);
        crate::netns::run(&argv)
    }

    /// The counters of `instance`'s VF, by name, from `nicctl stats --json --vf INSTANCE`.
    pub fn counters(&self, instance: &str) -> BTreeMap<String, u64> {
        let out = self
            .nicctl(&["stats", "--json", "--vf", instance])
            .expect_ok();
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("stats --json: {e}: {out}"));
        let columns = v.as_object().expect("stats --json prints an object");
        assert_eq!(columns.len(), 1, "one column for --vf {instance}: {out}");
        let (_, counters) = columns.iter().next().expect("one column");
        counters
            .as_object()
            .expect("counters by name")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().expect("a counter is a number")))
            .collect()
    }

    /// Stops it as a user does (SIGTERM), and checks that it ends cleanly and that every
    /// namespace, device and file it made is gone.
    pub fn stop(self) {
        self.stop_with(libc::SIGTERM);
    }

    /// Stops it with `sig` (SIGTERM or SIGINT), and checks as [`Up::stop`] does.
    pub fn stop_with(mut self, sig: i32) {
        let pid = self.pid();
        let name = if sig == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        let made = self.made();
        for name in self.instances.iter().chain(&self.gateways) {
            assert!(
                made.contains(name),
                "namespace {name} of the file was not made: {:?}\n{}",
                made,
                self.log()
            );
        }
        let mut child = self.child.take().expect("running");
        signal(pid, sig);
        let status = wait_timeout(&mut child, STOP_TIMEOUT);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::thread::sleep(Duration::from_millis(50));
        let log = self.log();
        let status =
            status.unwrap_or_else(|| panic!("nicctl up ignored {name} for {STOP_TIMEOUT:?}"));
        assert!(
            status.success(),
            "nicctl up ended with {status} after {name}:\n{log}"
        );
        let left: Vec<&String> = made.iter().filter(|n| namespace_exists(n)).collect();
        assert!(
            left.is_empty(),
            "namespaces left after {name}: {left:?}\n{log}"
        );
        let links: Vec<String> = root_links()
            .difference(&self.links_before)
            .cloned()
            .collect();
        assert!(
            links.is_empty(),
            "devices left in the root namespace after {name}: {links:?}\n{log}"
        );
        let etc: Vec<String> = etc_netns()
            .difference(&self.etc_netns_before)
            .cloned()
            .collect();
        assert!(
            etc.is_empty(),
            "/etc/netns entries left after {name}: {etc:?}\n{log}"
        );
        let states = state_files_of(pid);
        assert!(
            states.is_empty(),
            "state files of pid {pid} left after {name}: {states:?}"
        );
    }

    /// Kills `nicctl up` with SIGKILL, as a crash would, and returns what it left behind.
    pub fn kill_hard(mut self) -> Leftovers {
        let made = self.made();
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
        // Its namespaces are now the leftovers' to remove (or the next Up's).
        self.ready = false;
        self.before = namespaces();
        self.etc_netns_before = etc_netns();
        Leftovers {
            namespaces: made,
            serial: self.serial.take(),
        }
    }
}

/// True while process `pid` exists.
fn process_alive(pid: u64) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Waits (up to [`NAMES_BUSY_TIMEOUT`]) until no live `nicctl up` started by someone else
/// holds one of `names`, as its state file records: a user's demo or another test suite
/// gets to finish instead of being trampled.
fn wait_names_free<'a>(names: impl Iterator<Item = &'a String> + Clone) {
    let deadline = Instant::now() + NAMES_BUSY_TIMEOUT;
    loop {
        let busy: Vec<String> = live_records()
            .into_iter()
            .filter_map(|(pid, file, held)| {
                let mine: Vec<&String> = names.clone().filter(|n| held.contains(n)).collect();
                (!mine.is_empty()).then(|| format!("{mine:?} held by pid {pid} ({file})"))
            })
            .collect();
        if busy.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "another `nicctl up` holds this file's namespaces for {NAMES_BUSY_TIMEOUT:?}: {}; \
             stop it (kill -INT PID) and run the tests again",
            busy.join("; ")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `(pid, file, namespaces)` of every state file under /run/vpcnic whose process runs.
fn live_records() -> Vec<(u64, String, Vec<String>)> {
    let Ok(dir) = std::fs::read_dir(STATE_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let p = e.ok()?.path();
        if p.extension()? != "json" {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
        let pid = v.get("pid")?.as_u64()?;
        let file = v.get("file").and_then(|f| f.as_str()).unwrap_or("?");
        let held = v
            .get("namespaces")?
            .as_array()?
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        process_alive(pid).then(|| (pid, file.to_string(), held))
    })
    .collect()
}

/// State files under /run/vpcnic that record process `pid`.
fn state_files_of(pid: u32) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(STATE_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v.get("pid").and_then(|p| p.as_u64()))
                == Some(u64::from(pid))
        })
        .collect()
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGTERM);
            if wait_timeout(&mut child, STOP_TIMEOUT).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let mut doomed = self.made();
        doomed.extend(self.inherited.iter().cloned());
        if self.ready {
            doomed.extend(self.instances.iter().chain(&self.gateways).cloned());
        }
        for name in &doomed {
            if namespace_exists(name) {
                delete_namespace(name);
            }
        }
        for name in etc_netns().difference(&self.etc_netns_before) {
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(name));
        }
    }
}
