//! Real tools inside network namespaces (`ip netns exec NAME ...`), for the `up_*` tests:
//! commands run to completion with a timeout ([`run_in`], [`ping`]), and tools that run in
//! the background while the test acts ([`Bg`], [`Sniffer`] for tcpdump and tshark), ended
//! when the test is done with them or when it fails.
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::up::{signal, wait_timeout};

/// How long a command may run before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a sniffer may take to start capturing.
pub const SNIFFER_START: Duration = Duration::from_secs(15);

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// True when it exited with status 0.
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    /// Everything it printed, for failure messages.
    pub fn text(&self) -> String {
        format!(
            "$ {}\n{}{}[{}]",
            self.command, self.stdout, self.stderr, self.status
        )
    }

    /// Fails the test unless it exited with status 0; returns its stdout.
    pub fn expect_ok(self) -> String {
        assert!(self.ok(), "command failed:\n{}", self.text());
        self.stdout
    }
}

fn spawn_reader(mut from: impl Read + Send + 'static) -> (Arc<Mutex<String>>, JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let t = text.clone();
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            t.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (text, handle)
}

fn command_in(ns: Option<&str>, argv: &[&str]) -> Command {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).args(argv);
            c
        }
        None => {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn describe(ns: Option<&str>, argv: &[&str]) -> String {
    match ns {
        Some(ns) => format!("ip netns exec {ns} {}", argv.join(" ")),
        None => argv.join(" "),
    }
}

fn run_with(ns: Option<&str>, argv: &[&str], timeout: Duration) -> Run {
    let command = describe(ns, argv);
    let mut child = command_in(ns, argv)
        .spawn()
        .unwrap_or_else(|e| panic!("{command}: {e} (is {} installed?)", argv[0]));
    let (out, out_t) = spawn_reader(child.stdout.take().expect("piped"));
    let (err, err_t) = spawn_reader(child.stderr.take().expect("piped"));
    let Some(status) = wait_timeout(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{command} did not end within {timeout:?}:\n{}{}",
            out.lock().unwrap(),
            err.lock().unwrap()
        );
    };
    let _ = out_t.join();
    let _ = err_t.join();
    let (stdout, stderr) = (out.lock().unwrap().clone(), err.lock().unwrap().clone());
    Run {
        command,
        status,
        stdout,
        stderr,
    }
}

/// Runs `argv` inside namespace `ns` to its end ([`RUN_TIMEOUT`] at most).
pub fn run_in(ns: &str, argv: &[&str]) -> Run {
    run_with(Some(ns), argv, RUN_TIMEOUT)
}

/// Runs command line `line` (words split at spaces, no quoting) inside namespace `ns`.
pub fn sh_in(ns: &str, line: &str) -> Run {
    let argv: Vec<&str> = line.split_whitespace().collect();
    run_in(ns, &argv)
}

/// Runs `argv` in the test's own namespace to its end ([`RUN_TIMEOUT`] at most).
pub fn run(argv: &[&str]) -> Run {
    run_with(None, argv, RUN_TIMEOUT)
}

/// `ip -j ARGS` inside `ns`, parsed.
pub fn ip_json(ns: &str, args: &[&str]) -> serde_json::Value {
    let mut argv = vec!["ip", "-j"];
    argv.extend_from_slice(args);
    let out = run_in(ns, &argv).expect_ok();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {}: {e}: {out}", args.join(" ")))
}

/// What a `ping` printed, parsed.
#[derive(Debug)]
pub struct Ping {
    /// Replies received ("N received").
    pub received: u32,
    /// The TTL of every reply ("ttl=64").
    pub ttls: Vec<u32>,
    /// Everything it printed.
    pub text: String,
}

/// Runs `ping ARGS` inside `ns`.
pub fn ping(ns: &str, args: &[&str]) -> Ping {
    let mut argv = vec!["ping"];
    argv.extend_from_slice(args);
    let run = run_in(ns, &argv);
    let text = run.text();
    let received = run
        .stdout
        .lines()
        .find_map(|l| {
            let (_, after) = l.split_once(" packets transmitted, ")?;
            after.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0);
    let ttls = run
        .stdout
        .lines()
        .filter_map(|l| {
            let (_, after) = l.split_once("ttl=")?;
            after.split_whitespace().next()?.parse().ok()
        })
        .collect();
    Ping {
        received,
        ttls,
        text,
    }
}

/// Runs `ping ARGS` inside `ns`, its arguments given as one line split at spaces.
pub fn ping_line(ns: &str, args: &str) -> Ping {
    let argv: Vec<&str> = args.split_whitespace().collect();
    ping(ns, &argv)
}

/// One ping from `ns` to `dst` that must be answered; returns it.
pub fn ping_answers(ns: &str, dst: &str) -> Ping {
    let p = ping(ns, &["-c", "1", "-W", "2", dst]);
    assert_eq!(p.received, 1, "{ns} -> {dst} must be answered:\n{}", p.text);
    p
}

/// A ping from `ns` to `dst` that must go unanswered (within a second).
pub fn ping_fails(ns: &str, dst: &str) -> Ping {
    let p = ping(ns, &["-c", "1", "-W", "1", dst]);
    assert_eq!(
        p.received, 0,
        "{ns} -> {dst} must get no answer:\n{}",
        p.text
    );
    p
}

/// A tool running in the background while the test acts; dropping it kills it.
pub struct Bg {
    command: String,
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Bg {
    /// Starts `argv` inside `ns` (or the test's own namespace with `None`).
    pub fn spawn(ns: Option<&str>, argv: &[&str]) -> Bg {
        let command = describe(ns, argv);
        let mut child = command_in(ns, argv)
            .spawn()
            .unwrap_or_else(|e| panic!("{command}: {e} (is {} installed?)", argv[0]));
        let (stdout, out_t) = spawn_reader(child.stdout.take().expect("piped"));
        let (stderr, err_t) = spawn_reader(child.stderr.take().expect("piped"));
        Bg {
            command,
            child: Some(child),
            stdout,
            stderr,
            readers: vec![out_t, err_t],
        }
    }

    /// Waits until its stdout or stderr holds `needle`; fails the test after `timeout` or
    /// when it ends first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.stdout.lock().unwrap().contains(needle)
                || self.stderr.lock().unwrap().contains(needle);
            if seen {
                return;
            }
            let ended = self
                .child
                .as_mut()
                .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
            if ended || Instant::now() >= deadline {
                std::thread::sleep(Duration::from_millis(50));
                panic!(
                    "{} {} before printing {needle:?}:\n{}{}",
                    self.command,
                    if ended { "ended" } else { "timed out" },
                    self.stdout.lock().unwrap(),
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends it with SIGINT (SIGKILL if it lingers) and returns what it printed:
    /// `(stdout, stderr)`.
    pub fn interrupt(mut self) -> (String, String) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), libc::SIGINT);
            if wait_timeout(&mut child, Duration::from_secs(5)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (out, err)
    }

    /// Waits up to `timeout` for it to end by itself and returns `(stdout, stderr)`; kills
    /// it and fails the test when it does not.
    pub fn finish(mut self, timeout: Duration) -> (String, String) {
        let mut child = self.child.take().expect("running");
        if wait_timeout(&mut child, timeout).is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not end within {timeout:?}:\n{}{}",
                self.command,
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (out, err)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A packet capture (tcpdump or tshark) running inside a namespace, one line per packet.
pub struct Sniffer {
    bg: Bg,
}

impl Sniffer {
    /// `tcpdump -n -l -i IFACE ARGS FILTER` inside `ns`, once it listens. Add `-Q in` to
    /// see only what arrives.
    pub fn tcpdump(ns: &str, iface: &str, args: &[&str], filter: &str) -> Sniffer {
        let mut argv = vec!["tcpdump", "-n", "-l", "-i", iface];
        argv.extend_from_slice(args);
        argv.push(filter);
        let mut bg = Bg::spawn(Some(ns), &argv);
        bg.wait_for("listening on", SNIFFER_START);
        Sniffer { bg }
    }

    /// `tshark -n -l -i IFACE -f FILTER ARGS` inside `ns`, once it says it captures. Its
    /// capture process may start a moment later: warm it up with traffic until
    /// [`Sniffer::packets_so_far`] moves.
    pub fn tshark(ns: &str, iface: &str, filter: &str, args: &[&str]) -> Sniffer {
        let mut argv = vec!["tshark", "-n", "-l", "-i", iface, "-f", filter];
        argv.extend_from_slice(args);
        let mut bg = Bg::spawn(Some(ns), &argv);
        bg.wait_for("Capturing on", SNIFFER_START);
        Sniffer { bg }
    }

    /// How many packet lines it has printed so far.
    pub fn packets_so_far(&self) -> usize {
        self.bg
            .stdout
            .lock()
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }

    /// Waits a moment for the last packets, stops the capture and returns one line per
    /// packet.
    pub fn stop(self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        let (out, _) = self.bg.interrupt();
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Waits until something in `ns` listens on TCP port `port`.
pub fn wait_listening(ns: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let filter = format!("sport = :{port}");
    loop {
        let out = run_in(ns, &["ss", "-Hltn", &filter]);
        if !out.stdout.trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on TCP port {port} in {ns}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Network namespaces a test makes itself; dropping this deletes them.
pub struct TempNamespaces {
    names: Vec<String>,
}

impl TempNamespaces {
    /// Creates `names` (replacing stale ones), each with its loopback up.
    pub fn create(names: &[&str]) -> TempNamespaces {
        let t = TempNamespaces {
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        for n in names {
            let _ = run(&["ip", "netns", "delete", n]);
            run(&["ip", "netns", "add", n]).expect_ok();
            run(&["ip", "-n", n, "link", "set", "lo", "up"]).expect_ok();
        }
        t
    }
}

impl Drop for TempNamespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "delete", n]).output();
        }
    }
}

/// The lines of `text` that hold `needle`.
pub fn lines_with<'a>(text: &'a [String], needle: &str) -> Vec<&'a String> {
    text.iter().filter(|l| l.contains(needle)).collect()
}
