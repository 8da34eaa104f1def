//! `nicctl capture`: a running `nicctl up` writes what a VF sends and receives to a pcap
//! file that tcpdump and tshark read. Needs root, tcpdump and tshark. Names: `cp-*`.
mod common;
use common::{exec_in, failed, nicctl_bin, TempFile, Up};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const FILE: &str = r#"
[vpc.cp]
vni = 51
cidr = "10.51.0.0/16"

[subnet.cp-net]
vpc = "cp"
cidr = "10.51.1.0/24"

[instance.cp-a]
subnet = "cp-net"
ip = "10.51.1.10"

[instance.cp-b]
subnet = "cp-net"
ip = "10.51.1.11"
"#;

/// A `nicctl capture` running in the background, once it has said it captures.
struct Capture {
    child: std::process::Child,
}

impl Capture {
    fn start(up: &Up, args: &[&str]) -> Capture {
        let mut child = Command::new(nicctl_bin())
            .args(["--socket", up.socket.str(), "capture"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("capture says it started");
        assert!(line.starts_with("capturing "), "{line}");
        Capture { child }
    }

    /// Interrupts it (unless it is done already) and returns its stdout.
    fn finish(mut self, interrupt: bool) -> String {
        if interrupt {
            // SAFETY: kill has no memory effects; the pid is our child's.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        }
        let out = wait_output(&mut self.child, Duration::from_secs(10));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

fn wait_output(child: &mut std::process::Child, timeout: Duration) -> std::process::Output {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("capture did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    std::process::Output {
        status: child.wait().unwrap(),
        stdout,
        stderr: Vec::new(),
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_ping_captured_reads_back_in_tcpdump_and_tshark() {
    need_root!();
    let file = TempFile::with("cp", "toml", FILE);
    let up = Up::start(file.path(), &[]);
    let pcap = TempFile::path_for("cp-ping", "pcap");
    let capture = Capture::start(&up, &["cp-a", "-w", pcap.str()]);
    let ping = exec_in(
        "cp-a",
        "ping",
        &["-c", "2", "-i", "0.2", "-W", "2", "10.51.1.11"],
    );
    assert!(ping.status.success(), "{ping:?}");
    let said = capture.finish(true);
    let frames: u64 = said
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        said.ends_with(&format!("of cp-a written to {}\n", pcap.str())),
        "{said}"
    );
    assert!(frames >= 4, "{said}");

    let dump = tool("tcpdump", &["-n", "-r", pcap.str()]);
    let requests = dump
        .lines()
        .filter(|l| l.contains("IP 10.51.1.10 > 10.51.1.11: ICMP echo request"))
        .count();
    let replies = dump
        .lines()
        .filter(|l| l.contains("IP 10.51.1.11 > 10.51.1.10: ICMP echo reply"))
        .count();
    assert_eq!((requests, replies), (2, 2), "{dump}");
    assert_eq!(dump.lines().count() as u64, frames, "{dump}");

    let fields = tool(
        "tshark",
        &[
            "-r",
            pcap.str(),
            "-Y",
            "icmp",
            "-T",
            "fields",
            "-e",
            "eth.src",
            "-e",
            "icmp.type",
        ],
    );
    let rows: Vec<&str> = fields.lines().collect();
    assert_eq!(
        rows,
        [
            "02:33:0a:33:01:0a\t8",
            "02:33:0a:33:01:0b\t0",
            "02:33:0a:33:01:0a\t8",
            "02:33:0a:33:01:0b\t0"
        ],
        "cp-a's echo requests, cp-b's replies (sent to cp-a by the NIC)"
    );
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_capture_stops_after_a_count_or_some_seconds() {
    need_root!();
    let file = TempFile::with("cp-count", "toml", &FILE.replace("cp-", "cq-"));
    let up = Up::start(file.path(), &[]);
    let pcap = TempFile::path_for("cq-count", "pcap");
    let capture = Capture::start(&up, &["cq-b", "-w", pcap.str(), "-c", "2"]);
    let ping = exec_in(
        "cq-a",
        "ping",
        &["-c", "3", "-i", "0.2", "-W", "2", "10.51.1.11"],
    );
    assert!(ping.status.success(), "{ping:?}");
    assert_eq!(
        capture.finish(false),
        format!("2 frames of cq-b written to {}\n", pcap.str())
    );
    let records = nicctl::pcap::read_all(std::fs::File::open(pcap.path()).unwrap()).unwrap();
    assert_eq!(records.len(), 2);

    let started = Instant::now();
    let quiet = TempFile::path_for("cq-quiet", "pcap");
    let capture = Capture::start(&up, &["cq-a", "-w", quiet.str(), "--seconds", "1"]);
    let said = capture.finish(false);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        said.ends_with(&format!("of cq-a written to {}\n", quiet.str())),
        "{said}"
    );
    tool("tcpdump", &["-r", quiet.str()]);

    let err = failed(&up.nicctl(&["capture", "cq-zz", "-w", quiet.str()]));
    assert_eq!(
        err,
        "nicctl: no instance \"cq-zz\" runs here (instances: cq-a, cq-b)\n"
    );
    // Two captures of one VM at once each get every frame.
    let one = TempFile::path_for("cq-one", "pcap");
    let two = TempFile::path_for("cq-two", "pcap");
    let c1 = Capture::start(&up, &["cq-a", "-w", one.str()]);
    let c2 = Capture::start(&up, &["cq-a", "-w", two.str()]);
    assert!(
        exec_in("cq-a", "ping", &["-c", "1", "-W", "2", "10.51.1.11"])
            .status
            .success()
    );
    let (s1, s2) = (c1.finish(true), c2.finish(true));
    let icmp = |p: &TempFile| {
        tool("tcpdump", &["-n", "-r", p.str(), "icmp"])
            .lines()
            .count()
    };
    assert_eq!((icmp(&one), icmp(&two)), (2, 2), "{s1} {s2}");
}
