//! What a running `nicctl up` owns, recorded in a state file under [`STATE_DIR`], so that
//! a later `up` removes what a killed one left behind and refuses to take a namespace name
//! a live one holds.
//!
//! One file per deployment, `up-<pid>-<n>.json` ([`Record`]), written before anything is
//! created and removed after everything is. A record is live while its process is: the pid
//! and the process's start time (field 22 of `/proc/<pid>/stat`) must both match, so a
//! reused pid does not keep a dead deployment's leftovers alive. Reading, reaping and
//! claiming happen under an exclusive `flock` on `lock` in the directory, so two `up`s
//! starting together cannot both take a name.
//!
//! A dead deployment is reaped by ending the processes left in its namespaces (DHCP
//! clients, or whatever a user started there), deleting the namespaces (its TAP devices and
//! veths die with them), and removing its `/etc/netns/<name>` files, socket and run
//! directory.
use super::netns;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where state files, sockets and DHCP client files live.
pub const STATE_DIR: &str = "/run/vpcnic";

/// The fixed underlay namespace of `nicctl up` before deployments were recorded.
const LEGACY_UNDERLAY: &str = "vpcnic_underlay";

/// One deployment's state file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The `nicctl up` process.
    pub pid: u32,
    /// Its start time in clock ticks after boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
    /// The VPC file, as given.
    pub file: String,
    /// Every network namespace the deployment creates: instances, gateways, the underlay.
    pub namespaces: Vec<String>,
    /// The underlay router's namespace (also in `namespaces`).
    pub underlay: String,
    /// Names `n` whose `/etc/netns/<n>/resolv.conf` the deployment writes (`--dhcp`).
    pub etc_netns: Vec<String>,
    /// The control socket, once it serves.
    pub socket: Option<PathBuf>,
    /// Directory of the deployment's own files (DHCP client leases, pid files, logs).
    pub run_dir: PathBuf,
}

/// A live deployment holds a namespace another one needs.
#[derive(Debug, thiserror::Error)]
#[error(
    "namespace {name} belongs to a running `nicctl up` (pid {pid}, file {file}); stop it first \
     (kill -INT {pid}) or rename the {name} of this file"
)]
pub struct Busy {
    pub name: String,
    pub pid: u32,
    pub file: String,
}

/// Why a deployment could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("state directory {dir}: {reason}")]
    Io { dir: String, reason: String },
    /// Names the deployment needs are taken by something no `nicctl up` recorded.
    #[error(
        "{}: remove them, or rename the instances and gateways of the file",
        .0.iter().map(|t| format!("{t} exists and is not a leftover of nicctl up")).collect::<Vec<_>>().join("; ")
    )]
    Foreign(Vec<String>),
}

/// What a reaped deployment had left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaped {
    pub pid: u32,
    pub file: String,
    /// The namespaces that still existed and were deleted.
    pub namespaces: Vec<String>,
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct Registry {
    dir: PathBuf,
}

/// The start time of process `pid`, or `None` when there is no such process or it has
/// exited (a zombie not yet reaped by its parent).
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from the last
    // ')'. Field 3 (the state) is then the first, field 22 the twentieth.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// True while the process a record names runs.
pub fn is_live(record: &Record) -> bool {
    process_start_time(record.pid) == Some(record.start_time)
}

/// Held while the registry is read and written.
struct Lock(File);

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: flock on a descriptor this struct owns.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(STATE_DIR)
    }
}

impl Registry {
    /// The registry in directory `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Registry {
        Registry { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io_error(&self, what: &str, e: io::Error) -> StateError {
        StateError::Io {
            dir: self.dir.display().to_string(),
            reason: format!("{what}: {e}"),
        }
    }

    fn lock(&self) -> Result<Lock, StateError> {
        // Only its owner writes there (the records name processes to signal).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.dir)
            .map_err(|e| self.io_error("creating it", e))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.dir.join("lock"))
            .map_err(|e| self.io_error("opening its lock", e))?;
        // SAFETY: flock on a descriptor owned by `file`, which outlives the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.io_error("locking it", io::Error::last_os_error()));
        }
        Ok(Lock(file))
    }

    /// Every state file and its record; unreadable ones are skipped.
    pub fn records(&self) -> Vec<(PathBuf, Record)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<(PathBuf, Record)> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("up-") && n.ends_with(".json"))
            })
            .filter_map(|p| {
                let text = fs::read_to_string(&p).ok()?;
                let record = serde_json::from_str(&text).ok()?;
                Some((p, record))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The records of running deployments.
    pub fn live(&self) -> Vec<Record> {
        self.records()
            .into_iter()
            .map(|(_, r)| r)
            .filter(is_live)
            .collect()
    }

    /// Removes what every dead deployment left behind.
    pub fn reap_stale(&self) -> Result<Vec<Reaped>, StateError> {
        let _lock = self.lock()?;
        Ok(self.reap_locked())
    }

    fn reap_locked(&self) -> Vec<Reaped> {
        let records = self.records();
        let live_names: Vec<String> = records
            .iter()
            .filter(|(_, r)| is_live(r))
            .flat_map(|(_, r)| r.namespaces.iter().cloned())
            .collect();
        let mut reaped = Vec::new();
        for (path, record) in records.into_iter().filter(|(_, r)| !is_live(r)) {
            let mut gone = Vec::new();
            for ns in &record.namespaces {
                if live_names.contains(ns) || !netns::exists(ns) {
                    continue;
                }
                netns::delete(ns);
                gone.push(ns.clone());
            }
            remove_owned_files(&record, &live_names);
            let _ = fs::remove_file(&path);
            reaped.push(Reaped {
                pid: record.pid,
                file: record.file,
                namespaces: gone,
            });
        }
        // The one underlay of `nicctl up`s from before state files.
        if !live_names.iter().any(|n| n == LEGACY_UNDERLAY) && netns::exists(LEGACY_UNDERLAY) {
            netns::delete(LEGACY_UNDERLAY);
            reaped.push(Reaped {
                pid: 0,
                file: "`nicctl up` (without state files)".into(),
                namespaces: vec![LEGACY_UNDERLAY.into()],
            });
        }
        reaped
    }

    /// Reaps dead deployments, then records `record` as `up-<tag>.json` (its `pid` and
    /// `start_time` are filled in here) unless a live deployment holds one of its
    /// namespaces. Returns the claim, which removes the state file when dropped, and what
    /// was reaped.
    pub fn claim(&self, mut record: Record, tag: &str) -> Result<(Claim, Vec<Reaped>), StateError> {
        let _lock = self.lock()?;
        let reaped = self.reap_locked();
        for (_, other) in self.records() {
            if let Some(name) = record
                .namespaces
                .iter()
                .find(|n| other.namespaces.contains(n))
            {
                return Err(Busy {
                    name: name.clone(),
                    pid: other.pid,
                    file: other.file.clone(),
                }
                .into());
            }
        }
        // What is left now is no dead deployment's: someone else's, never to be touched.
        let mut foreign: Vec<String> = record
            .namespaces
            .iter()
            .filter(|n| **n != record.underlay && netns::exists(n))
            .map(|n| format!("a network namespace named {n}"))
            .collect();
        foreign.extend(
            record
                .etc_netns
                .iter()
                .map(|n| etc_netns_dir(n))
                .filter(|d| d.exists())
                .map(|d| d.display().to_string()),
        );
        if !foreign.is_empty() {
            return Err(StateError::Foreign(foreign));
        }
        record.pid = std::process::id();
        record.start_time = process_start_time(record.pid).unwrap_or(0);
        let path = self.dir.join(format!("up-{tag}.json"));
        if path.exists() {
            return Err(self.io_error(
                "recording the deployment",
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ),
            ));
        }
        let claim = Claim { path, record };
        claim
            .write()
            .map_err(|e| self.io_error("writing a state file", e))?;
        Ok((claim, reaped))
    }
}

/// `<pid>_<n>` with `n` counting up in this process: a tag no other running deployment
/// has. A deployment's state file, socket, run directory and underlay namespace carry it.
pub fn unique_tag() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}_{n}", std::process::id())
}

/// Removes the files a record names: `/etc/netns/<n>/resolv.conf` (and the directory when
/// that leaves it empty), the socket, and the run directory. Names a live deployment holds
/// are left alone.
fn remove_owned_files(record: &Record, live_names: &[String]) {
    for name in record.etc_netns.iter().filter(|n| !live_names.contains(n)) {
        remove_etc_netns(name);
    }
    if let Some(s) = &record.socket {
        let _ = fs::remove_file(s);
    }
    if !record.run_dir.as_os_str().is_empty() {
        let _ = fs::remove_dir_all(&record.run_dir);
    }
}

/// `/etc/netns/<name>`.
pub fn etc_netns_dir(name: &str) -> PathBuf {
    Path::new("/etc/netns").join(name)
}

/// Removes `/etc/netns/<name>/resolv.conf`, and the directory if that empties it.
pub fn remove_etc_netns(name: &str) {
    let dir = etc_netns_dir(name);
    let _ = fs::remove_file(dir.join("resolv.conf"));
    let _ = fs::remove_dir(&dir);
}

/// A recorded deployment: dropping it removes its files and its state file (after the
/// deployment has removed its namespaces).
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    record: Record,
}

impl Claim {
    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is recorded.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Records the control socket.
    pub fn set_socket(&mut self, socket: Option<PathBuf>) -> io::Result<()> {
        self.record.socket = socket;
        self.write()
    }

    /// Changes what is recorded, and writes it.
    pub fn update(&mut self, change: impl FnOnce(&mut Record)) -> io::Result<()> {
        change(&mut self.record);
        self.write()
    }

    /// Writes the file whole, then renames it into place: a reader never sees half.
    fn write(&self) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let text = serde_json::to_string_pretty(&self.record).map_err(io::Error::other)?;
        let _ = fs::remove_file(&tmp);
        // 0600 from the start: the record is no one else's to read.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        io::Write::write_all(&mut f, (text + "\n").as_bytes())?;
        fs::rename(&tmp, &self.path)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        for ns in &self.record.namespaces {
            if netns::exists(ns) {
                netns::delete(ns);
            }
        }
        remove_owned_files(&self.record, &[]);
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_registry(tag: &str) -> Registry {
        let dir = std::env::temp_dir().join(format!("vpcnic-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Registry::new(dir)
    }

    #[test]
    fn this_process_is_live_and_a_changed_start_time_is_not() {
        let me = std::process::id();
        let start = process_start_time(me).expect("own stat");
        let r = Record {
            pid: me,
            start_time: start,
            ..Default::default()
        };
        assert!(is_live(&r));
        assert!(!is_live(&Record {
            start_time: start + 1,
            ..r.clone()
        }));
        assert_eq!(process_start_time(u32::MAX), None);
        // An exited child its parent has not waited for yet is a zombie: not live.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while process_start_time(pid).is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(process_start_time(pid), None, "zombie {pid} reads as gone");
        child.wait().unwrap();
    }

    #[test]
    fn state_files_are_for_root_only() {
        use std::os::unix::fs::PermissionsExt;
        let reg = temp_registry("mode");
        // SAFETY: umask only changes this process's file creation mask.
        let old = unsafe { libc::umask(0) };
        let claimed = reg.claim(Record::default(), &unique_tag());
        // SAFETY: as above, putting it back.
        unsafe { libc::umask(old) };
        let (claim, _) = claimed.unwrap();
        let mode = fs::metadata(claim.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", claim.path().display());
        let dir_mode = fs::metadata(reg.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            dir_mode & 0o022,
            0,
            "the state directory is writable by others"
        );
    }

    #[test]
    fn claims_conflict_on_a_namespace_and_dead_records_are_reaped() {
        let reg = temp_registry("claim");
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (a, reaped) = reg
            .claim(
                Record {
                    file: "a.toml".into(),
                    namespaces: names(&["st-unit-a", "st-unit-shared"]),
                    ..Default::default()
                },
                &unique_tag(),
            )
            .unwrap();
        assert!(reaped.is_empty());
        assert!(a.path().exists());
        assert_eq!(a.record().pid, std::process::id());

        let err = reg
            .claim(
                Record {
                    file: "b.toml".into(),
                    namespaces: names(&["st-unit-b", "st-unit-shared"]),
                    ..Default::default()
                },
                &unique_tag(),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "namespace st-unit-shared belongs to a running `nicctl up` (pid {}, file a.toml); \
                 stop it first (kill -INT {}) or rename the st-unit-shared of this file",
                std::process::id(),
                std::process::id()
            )
        );

        // A record of a process that is gone (a start time no process has) is reaped.
        let dead_run = reg.dir().join("dead-run");
        fs::create_dir_all(&dead_run).unwrap();
        let dead = Record {
            pid: std::process::id(),
            start_time: 1,
            file: "dead.toml".into(),
            namespaces: names(&["st-unit-shared"]),
            run_dir: dead_run.clone(),
            ..Default::default()
        };
        let dead_path = reg.dir().join("up-1_0.json");
        fs::write(&dead_path, serde_json::to_string(&dead).unwrap()).unwrap();
        assert_eq!(reg.records().len(), 2);
        assert_eq!(reg.live().len(), 1);
        let reaped = reg.reap_stale().unwrap();
        assert_eq!(reaped.len(), 1);
        assert_eq!(reaped[0].file, "dead.toml");
        assert!(
            reaped[0].namespaces.is_empty(),
            "a name a live record holds is not touched"
        );
        assert!(!dead_path.exists());
        assert!(!dead_run.exists());

        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
        let (b, _) = reg
            .claim(
                Record {
                    namespaces: names(&["st-unit-shared"]),
                    ..Default::default()
                },
                &unique_tag(),
            )
            .unwrap();
        drop(b);
        let _ = fs::remove_dir_all(reg.dir());
    }
}
