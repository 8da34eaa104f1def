//! `nicctl up FILE` as a user runs it: [`Up::start`] starts the binary on a VPC file and
//! waits for its `ready` line; the test runs real tools inside the namespaces it made
//! ([`super::netns`]) and `nicctl` commands beside it ([`Up::nicctl`]), then stops it
//! ([`Up::stop`]), which checks that every namespace, device and file it made is gone.
//!
//! - The tests need root (network namespaces, TAP devices): [`Up::start`] fails the test
//!   when it does not run as root ([`super::need_root`]).
//! - Deployments never overlap: an [`Up`] holds the lock [`serial`] for its whole life, a
//!   static mutex within the test binary and an `flock` between test binaries. Before it
//!   starts, it waits for a `nicctl up` of someone else's that holds one of its
//!   namespaces' names to end.
//! - An [`Up`] cleans up when it is dropped, also when the test fails: it ends `nicctl up`
//!   (SIGTERM, then SIGKILL), ends what still runs in the namespaces it made, and deletes
//!   those namespaces, the `/etc/netns` entries it made, and what a killed deployment left.
//! - Each serves its control socket at a path of its own ([`Up::socket`]).
use super::netns::{delete_namespace, dir_names, namespace_exists, namespaces};
use super::proc::{Bg, NoLine, Run, Stream, RUN_TIMEOUT, STOP_TIMEOUT};
use super::{eventually, need_root, nicctl_bin, TempFile};
use nicctl::config::Limits;
use nicctl::up::state::{Record, Registry};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long `nicctl up` may take to print `ready` (`--dhcp` waits for every lease).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a test waits for another `nicctl up` to release the namespace names it needs.
pub const NAMES_BUSY_TIMEOUT: Duration = Duration::from_secs(120);
/// Where `ip netns exec` finds a namespace's own files (`--dhcp` writes resolv.conf there).
const ETC_NETNS: &str = "/etc/netns";

/// Held while a deployment runs: no two deployments overlap, in this test binary (the
/// mutex) or in another one (the `flock`).
pub struct Serial {
    _guard: MutexGuard<'static, ()>,
    _lock: File,
}

/// Waits for the right to run a deployment; the test must run as root.
pub fn serial() -> Serial {
    need_root();
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

/// The network devices of the test's own (root) namespace.
fn root_links() -> BTreeSet<String> {
    dir_names("/sys/class/net")
}

/// The names a VPC file gives namespaces: `(instances, gateways)`.
fn file_names(file: &Path) -> (Vec<String>, Vec<String>) {
    let config = nicctl::config::load(file, &Limits::vfs(u32::from(hw_sim::MAX_VFS)))
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    (
        config.instances.into_iter().map(|i| i.name).collect(),
        config.gateways.into_iter().map(|g| g.name).collect(),
    )
}

/// The state files under /run/vpcnic that record process `pid`.
pub fn state_files_of(pid: u32) -> Vec<PathBuf> {
    Registry::default()
        .records()
        .into_iter()
        .filter(|(_, r)| r.pid == pid)
        .map(|(path, _)| path)
        .collect()
}

/// Waits (up to [`NAMES_BUSY_TIMEOUT`]) until no live `nicctl up` started by someone else
/// holds one of `names`, as its state file records: a user's demo or another test suite
/// gets to finish instead of being trampled. No event says when another process' deployment
/// ends: this polls.
fn wait_names_free(names: &[&String]) {
    let busy = || -> Vec<String> {
        Registry::default()
            .live()
            .into_iter()
            .filter_map(|r| {
                let held: Vec<&&String> =
                    names.iter().filter(|n| r.namespaces.contains(n)).collect();
                (!held.is_empty()).then(|| format!("{held:?} held by pid {} ({})", r.pid, r.file))
            })
            .collect()
    };
    if !eventually(NAMES_BUSY_TIMEOUT, || busy().is_empty()) {
        panic!(
            "another `nicctl up` holds this file's namespaces for {NAMES_BUSY_TIMEOUT:?}: {}; \
             stop it (kill -INT PID) and run the tests again",
            busy().join("; ")
        );
    }
}

/// A running `nicctl up FILE`. Dropping it ends it and removes what it made.
pub struct Up {
    file: PathBuf,
    bg: Bg,
    /// Its control socket.
    socket: TempFile,
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

/// What a `nicctl up` killed with SIGKILL left behind, for the next [`Up`] to meet
/// ([`Up::start_after`]); dropped instead, it removes it all.
pub struct Leftovers {
    /// The namespaces the killed deployment had made.
    pub namespaces: BTreeSet<String>,
    /// The `/etc/netns` entries it had made.
    etc_netns: BTreeSet<String>,
    /// `None` once handed on to the next [`Up`].
    serial: Option<Serial>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if self.serial.is_none() {
            return;
        }
        // What the next `nicctl up` would remove (the killed one's DHCP clients, state file
        // and run directory too), then whatever is still there.
        let _ = Registry::default().reap_stale();
        for name in &self.namespaces {
            delete_namespace(name);
        }
        for name in &self.etc_netns {
            let _ = std::fs::remove_dir_all(Path::new(ETC_NETNS).join(name));
        }
    }
}

impl Up {
    /// Starts `nicctl up FILE ARGS` and waits for `ready`; fails the test (and cleans up)
    /// when it ends first or takes longer than [`READY_TIMEOUT`].
    pub fn start(file: &Path, args: &[&str]) -> Up {
        Up::launch(file, args, serial(), BTreeSet::new(), false)
    }

    /// As [`Up::start`], with its stderr a terminal (a pseudo-terminal of 120 columns):
    /// what a user sees, progress bars included, is [`Up::stderr`].
    pub fn start_on_terminal(file: &Path, args: &[&str]) -> Up {
        Up::launch(file, args, serial(), BTreeSet::new(), true)
    }

    /// Starts another `nicctl up` after one was killed, in the same turn of the lock; the
    /// leftovers it does not remove are removed with it.
    pub fn start_after(mut leftovers: Leftovers, file: &Path, args: &[&str]) -> Up {
        let serial = leftovers.serial.take().expect("leftovers hold the lock");
        let inherited = std::mem::take(&mut leftovers.namespaces);
        Up::launch(file, args, serial, inherited, false)
    }

    fn launch(
        file: &Path,
        args: &[&str],
        serial: Serial,
        inherited: BTreeSet<String>,
        terminal: bool,
    ) -> Up {
        let (instances, gateways) = file_names(file);
        wait_names_free(&instances.iter().chain(&gateways).collect::<Vec<_>>());
        let socket = TempFile::path_for("nicctl-up", "sock");
        let mut cmd = Command::new(nicctl_bin());
        if args.contains(&"--etcd") {
            // The boards of `up --etcd` are nic-sim processes: built if need be.
            cmd.env("VPCNIC_NIC_SIM", tests::vfio_user::nic_sim());
        }
        cmd.arg("--socket")
            .arg(socket.path())
            .arg("up")
            .arg(file)
            .args(args);
        let command = format!(
            "nicctl --socket {} up {} {}",
            socket.str(),
            file.display(),
            args.join(" ")
        );
        let before = namespaces();
        let links_before = root_links();
        let etc_netns_before = dir_names(ETC_NETNS);
        let mut up = Up {
            file: file.to_path_buf(),
            bg: Bg::start(cmd, command, terminal),
            socket,
            before,
            links_before,
            etc_netns_before,
            instances,
            gateways,
            inherited,
            ready: false,
            serial: Some(serial),
        };
        match up.bg.wait_line(READY_TIMEOUT, |s, l| {
            s == Stream::Stdout && l.trim() == "ready"
        }) {
            Ok(_) => up.ready = true,
            Err(NoLine::Ended) => {
                let status = up.bg.stop(libc::SIGKILL, STOP_TIMEOUT);
                panic!(
                    "nicctl up {} ended before `ready` ({status:?}):\n{}",
                    up.file.display(),
                    up.log()
                );
            }
            Err(NoLine::TimedOut) => panic!(
                "nicctl up {} printed no `ready` within {READY_TIMEOUT:?}:\n{}",
                up.file.display(),
                up.log()
            ),
        }
        up
    }

    /// What `nicctl up` printed so far, line by line, each line after `stdout: ` or
    /// `stderr: `.
    pub fn log(&self) -> String {
        let mut log = String::new();
        for (name, text) in [("stdout", self.bg.stdout()), ("stderr", self.bg.stderr())] {
            for line in text.lines() {
                log.push_str(&format!("{name}: {line}\n"));
            }
        }
        log
    }

    /// What `nicctl up` printed on stderr so far (on a terminal: what the terminal shows).
    pub fn stderr(&self) -> String {
        self.bg.stderr()
    }

    /// The `nicctl up` process.
    pub fn pid(&self) -> u32 {
        self.bg.pid()
    }

    /// The control socket it serves.
    pub fn socket(&self) -> &Path {
        self.socket.path()
    }

    /// Its state file's record (its namespaces, underlay, run directory, socket).
    pub fn record(&self) -> Record {
        let pid = self.pid();
        Registry::default()
            .records()
            .into_iter()
            .find(|(_, r)| r.pid == pid)
            .unwrap_or_else(|| panic!("no state file records pid {pid}"))
            .1
    }

    /// The underlay router's namespace (`vpcnic_ul_...`).
    pub fn underlay(&self) -> String {
        self.record().underlay
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

    /// `nicctl --socket SOCKET ARGS`, beside this deployment, in the background.
    pub fn nicctl_bg(&self, args: &[&str]) -> Bg {
        let mut argv = vec![nicctl_bin(), "--socket", self.socket.str()];
        argv.extend_from_slice(args);
        Bg::spawn(None, &argv)
    }

    /// `nicctl --socket SOCKET ARGS`, beside this deployment, to its end.
    pub fn nicctl(&self, args: &[&str]) -> Run {
        self.nicctl_bg(args).finish(RUN_TIMEOUT)
    }

    /// `nicctl apply FILE` to this deployment; on success its instances and gateways are
    /// `file`'s from now on (those [`Up::stop`] checks were made, and removes).
    pub fn apply(&mut self, file: &Path) -> Run {
        let path = file.to_str().expect("a UTF-8 path");
        let run = self.nicctl(&["apply", path]);
        if run.ok() {
            self.now_runs(file);
        }
        run
    }

    /// Its instances and gateways are `file`'s from now on (applied some other way, through
    /// etcd say): those [`Up::stop`] checks were made, and removes.
    pub fn now_runs(&mut self, file: &Path) {
        let (instances, gateways) = file_names(file);
        self.instances = instances;
        self.gateways = gateways;
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

    /// Stops it as a user does (SIGTERM), checks that it ends cleanly and that every
    /// namespace, device and file it made is gone, and returns what it printed
    /// ([`Up::log`]).
    pub fn stop(self) -> String {
        self.stop_with(libc::SIGTERM)
    }

    /// Stops it with `sig` (SIGTERM or SIGINT), and checks as [`Up::stop`] does.
    pub fn stop_with(mut self, sig: i32) -> String {
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
        let status = self.bg.stop(sig, STOP_TIMEOUT);
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
        for (what, now, before) in [
            (
                "devices in the root namespace",
                root_links(),
                &self.links_before,
            ),
            (
                "/etc/netns entries",
                dir_names(ETC_NETNS),
                &self.etc_netns_before,
            ),
        ] {
            let new: Vec<&String> = now.difference(before).collect();
            assert!(new.is_empty(), "{what} left after {name}: {new:?}\n{log}");
        }
        let states = state_files_of(pid);
        assert!(
            states.is_empty(),
            "state files of pid {pid} left after {name}: {states:?}"
        );
        log
    }

    /// Kills `nicctl up` with SIGKILL, as a crash would, and returns what it left behind.
    pub fn kill_hard(mut self) -> Leftovers {
        let made = self.made();
        self.bg.kill();
        // Its namespaces and files are now the leftovers' to remove (or the next Up's).
        let etc_now = dir_names(ETC_NETNS);
        let etc_netns = etc_now
            .difference(&self.etc_netns_before)
            .cloned()
            .collect();
        self.ready = false;
        self.before = namespaces();
        self.etc_netns_before = etc_now;
        Leftovers {
            namespaces: made,
            etc_netns,
            serial: self.serial.take(),
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.bg.stop(libc::SIGTERM, STOP_TIMEOUT);
        let mut doomed = self.made();
        doomed.extend(self.inherited.iter().cloned());
        for name in &doomed {
            if namespace_exists(name) {
                delete_namespace(name);
            }
        }
        for name in dir_names(ETC_NETNS).difference(&self.etc_netns_before) {
            let _ = std::fs::remove_dir_all(Path::new(ETC_NETNS).join(name));
        }
        if self.serial.is_some() {
            // Whatever a `nicctl up` killed meanwhile left (its state file, its run
            // directory): what the next one would remove.
            let _ = Registry::default().reap_stale();
        }
    }
}
