//! Network namespaces and real tools inside them (`ip netns exec NAME ...`): which
//! namespaces exist, commands run to completion ([`run_in`], [`sh_in`], [`ip_json`],
//! [`ping`]), packet captures that run while the test acts ([`Sniffer`] for tcpdump and
//! tshark), and namespaces a test makes itself ([`TempNamespaces`]).
use super::eventually;
use super::proc::{run, run_in, signal, Bg};
use super::up::{serial, Serial};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// How long a sniffer may take to start capturing.
pub const SNIFFER_START: Duration = Duration::from_secs(15);
/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";

/// The names in directory `dir` (none when it does not exist).
pub fn dir_names(dir: impl AsRef<Path>) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The network namespaces that exist, by name.
pub fn namespaces() -> BTreeSet<String> {
    dir_names(NETNS_DIR)
}

/// True when namespace `name` exists.
pub fn namespace_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// Deletes namespace `name`, after ending every process in it (whatever a test or a DHCP
/// client left there), so that deleting it really frees it.
pub fn delete_namespace(name: &str) {
    if let Ok(out) = std::process::Command::new("ip")
        .args(["netns", "pids", name])
        .output()
    {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse() {
                signal(pid, libc::SIGKILL);
            }
        }
    }
    let _ = std::process::Command::new("ip")
        .args(["netns", "delete", name])
        .output();
}

/// Runs command line `line` (words split at spaces, no quoting) inside namespace `ns`.
pub fn sh_in(ns: &str, line: &str) -> super::Run {
    let argv: Vec<&str> = line.split_whitespace().collect();
    run_in(ns, &argv)
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
    // The number after `marker` on each line that has one.
    let numbers_after = |marker: &str| -> Vec<u32> {
        run.stdout
            .lines()
            .filter_map(|l| {
                l.split_once(marker)?
                    .1
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    };
    Ping {
        received: numbers_after(" packets transmitted, ")
            .first()
            .copied()
            .unwrap_or(0),
        ttls: numbers_after("ttl="),
        text: run.text(),
    }
}

/// Runs `ping ARGS` inside `ns`, its arguments given as one line split at spaces.
pub fn ping_line(ns: &str, args: &str) -> Ping {
    let argv: Vec<&str> = args.split_whitespace().collect();
    ping(ns, &argv)
}

/// What a `ping -i INTERVAL -c COUNT` lost: `(sent, lost, milliseconds of traffic lost)`
/// (each lost request stands for the time between two requests as they were really sent).
pub fn ping_loss(text: &str) -> (u64, u64, f64) {
    let line = text
        .lines()
        .find(|l| l.contains(" packets transmitted, "))
        .unwrap_or_else(|| panic!("no ping summary: {text}"));
    let number_before = |marker: &str| -> f64 {
        let head = line.split(marker).next().unwrap_or("");
        head.rsplit([' ', ','])
            .find(|w| !w.is_empty())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no number before {marker:?}: {line}"))
    };
    let sent = number_before(" packets transmitted") as u64;
    let received = number_before(" received") as u64;
    let millis = number_before("ms");
    let lost = sent - received;
    (sent, lost, lost as f64 * millis / sent as f64)
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
        packet_lines(&self.bg.stdout()).len()
    }

    /// Stops the capture and returns one line per packet. It waits a moment first: no
    /// event tells that the last packet that crossed the interface has reached the capture
    /// (and a capture that must see nothing proves it only over some time).
    pub fn stop(self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        packet_lines(&self.bg.interrupt().stdout)
    }
}

fn packet_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Waits until something in `ns` listens on TCP port `port`.
pub fn wait_listening(ns: &str, port: u16) {
    let filter = format!("sport = :{port}");
    assert!(
        eventually(Duration::from_secs(10), || {
            !run_in(ns, &["ss", "-Hltn", &filter])
                .stdout
                .trim()
                .is_empty()
        }),
        "nothing listens on TCP port {port} in {ns}"
    );
}

/// Network namespaces a test makes itself; dropping this deletes them. While they exist,
/// the test holds the lock of deployments ([`serial`]): an [`super::Up`] checks that every
/// namespace that appears while it runs is gone after it.
pub struct TempNamespaces {
    names: Vec<String>,
    _serial: Serial,
}

impl TempNamespaces {
    /// Creates `names` (replacing stale ones), each with its loopback up.
    pub fn create(names: &[&str]) -> TempNamespaces {
        let t = TempNamespaces {
            names: names.iter().map(|n| n.to_string()).collect(),
            _serial: serial(),
        };
        for n in names {
            delete_namespace(n);
            run(&["ip", "netns", "add", n]).expect_ok();
            run(&["ip", "-n", n, "link", "set", "lo", "up"]).expect_ok();
        }
        t
    }
}

impl Drop for TempNamespaces {
    fn drop(&mut self) {
        for n in &self.names {
            delete_namespace(n);
        }
    }
}
