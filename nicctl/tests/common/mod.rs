//! Running `nicctl up` from a test: a guard that starts it, waits for `ready`, and on drop
//! (also when the test fails) stops it and removes whatever it left behind.
//!
//! `up` needs root; tests skip when not root. Namespace names come from the VPC file, so
//! every test file uses names of its own (a prefix per file, e.g. `st-`), and every test of
//! a file names of its own, for tests running side by side.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// True when the tests can create namespaces.
pub fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Fails the test unless it runs as root. Tests that need root are `#[ignore]`d when built
/// by another user (see build.rs), so reaching this as non-root means the build and the
/// run were by different users.
#[macro_export]
macro_rules! need_root {
    () => {
        assert!(
            common::root(),
            "needs root (network namespaces); built as root but run as another user"
        );
    };
}

fn unique(stem: &str, ext: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("{stem}-{}-{n}.{ext}", std::process::id()))
}

/// A file removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    /// A new file holding `text`.
    pub fn with(stem: &str, ext: &str, text: &str) -> TempFile {
        let path = unique(stem, ext);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    /// A path for a file the test makes.
    pub fn path_for(stem: &str, ext: &str) -> TempFile {
        TempFile(unique(stem, ext))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The nicctl binary.
pub fn nicctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_nicctl")
}

/// Runs nicctl.
pub fn nicctl(args: &[&str]) -> Output {
    Command::new(nicctl_bin())
        .args(args)
        .output()
        .expect("nicctl runs")
}

/// Stdout of a successful run.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "nicctl failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Stderr of a failed run.
pub fn failed(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "nicctl succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `program args` inside namespace `ns`.
pub fn exec_in(ns: &str, program: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .output()
        .expect("ip netns exec runs")
}

/// True when namespace `name` exists.
pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// A running `nicctl up`.
pub struct Up {
    child: Option<Child>,
    /// Its control socket.
    pub socket: TempFile,
    /// Its stderr, as a file.
    pub log: TempFile,
    file: PathBuf,
}

impl Up {
    /// Starts `nicctl --socket S up FILE ARGS...` and waits for `ready`; panics with its
    /// stderr when it fails or takes longer than a minute.
    pub fn start(file: &Path, args: &[&str]) -> Up {
        Self::try_start(file, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Up::start`], returning the failure's stderr instead of panicking.
    pub fn try_start(file: &Path, args: &[&str]) -> Result<Up, String> {
        let socket = TempFile::path_for("nicctl-test", "sock");
        let log = TempFile::path_for("nicctl-up", "log");
        let err = std::fs::File::create(log.path()).unwrap();
        let mut child = Command::new(nicctl_bin())
            .args(["--socket", socket.str(), "up"])
            .arg(file)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("nicctl up starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut up = Up {
            child: Some(child),
            socket,
            log,
            file: file.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line == "ready" => return Ok(up),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Some(status) = up.child.as_mut().unwrap().try_wait().unwrap() {
                        up.child = None;
                        return Err(format!("nicctl up exited ({status}):\n{}", up.stderr()));
                    }
                }
                Err(_) => {
                    let status = up.stop();
                    return Err(format!(
                        "nicctl up never said ready ({status:?}):\n{}",
                        up.stderr()
                    ));
                }
            }
        }
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Its pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Runs `nicctl --socket S ARGS`.
    pub fn nicctl(&self, args: &[&str]) -> Output {
        let mut all = vec!["--socket", self.socket.str()];
        all.extend_from_slice(args);
        nicctl(&all)
    }

    /// Sends `signal` and waits up to 20 s for it to exit (then kills it).
    pub fn signal(&mut self, signal: i32) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill has no memory effects; the pid is our child's, not yet waited for.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Stops it as a user would (SIGINT) and waits for it.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        self.signal(libc::SIGINT)
    }

    /// The file it runs.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.stop();
        // Whatever a killed or failed `up` left: the next `up` would remove it; so do we.
        let _ = nicctl::up::state::Registry::default().reap_stale();
    }
}

/// Runs `f` until it returns true or `timeout` passes; returns its last answer.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
