//! `nicctl capture`: a running `nicctl up` writes what a VF sends and receives to a pcap
//! file that tcpdump and tshark read. Needs root, tcpdump and tshark. Names: `cp-*`.
mod common;
use common::{run, run_in, Bg, TempFile, Up};
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

/// `nicctl capture ARGS` beside `up`, in the background, once it has said it captures.
fn start_capture(up: &Up, args: &[&str]) -> Bg {
    let mut argv = vec!["capture"];
    argv.extend_from_slice(args);
    let mut capture = up.nicctl_bg(&argv);
    let line = capture.wait_for("capturing ", Duration::from_secs(10));
    assert!(line.starts_with("capturing "), "{line}");
    capture
}

/// Interrupts `capture` (unless it is done already) and returns its stdout.
fn finish(capture: Bg, interrupt: bool) -> String {
    let run = if interrupt {
        capture.interrupt()
    } else {
        capture.finish(Duration::from_secs(10))
    };
    run.expect_ok()
}

fn tool(argv: &[&str]) -> String {
    run(argv).expect_ok()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_ping_captured_reads_back_in_tcpdump_and_tshark() {
    let file = TempFile::with("cp", "toml", FILE);
    let up = Up::start(file.path(), &[]);
    let pcap = TempFile::path_for("cp-ping", "pcap");
    let capture = start_capture(&up, &["cp-a", "-w", pcap.str()]);
    run_in(
        "cp-a",
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.51.1.11"],
    )
    .expect_ok();
    let said = finish(capture, true);
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

    let dump = tool(&["tcpdump", "-n", "-r", pcap.str()]);
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

    let fields = tool(&[
        "tshark",
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
    ]);
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
    let file = TempFile::with("cp-count", "toml", &FILE.replace("cp-", "cq-"));
    let up = Up::start(file.path(), &[]);
    let pcap = TempFile::path_for("cq-count", "pcap");
    let capture = start_capture(&up, &["cq-b", "-w", pcap.str(), "-c", "2"]);
    run_in(
        "cq-a",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.51.1.11"],
    )
    .expect_ok();
    assert_eq!(
        finish(capture, false),
        format!("2 frames of cq-b written to {}\n", pcap.str())
    );
    let records = nicctl::pcap::read_all(std::fs::File::open(pcap.path()).unwrap()).unwrap();
    assert_eq!(records.len(), 2);

    let started = Instant::now();
    let quiet = TempFile::path_for("cq-quiet", "pcap");
    let said = finish(
        start_capture(&up, &["cq-a", "-w", quiet.str(), "--seconds", "1"]),
        false,
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        said.ends_with(&format!("of cq-a written to {}\n", quiet.str())),
        "{said}"
    );
    tool(&["tcpdump", "-r", quiet.str()]);

    let err = up
        .nicctl(&["capture", "cq-zz", "-w", quiet.str()])
        .expect_err();
    assert_eq!(
        err,
        "nicctl: no instance \"cq-zz\" runs here (instances: cq-a, cq-b)\n"
    );
    // Two captures of one VM at once each get every frame.
    let one = TempFile::path_for("cq-one", "pcap");
    let two = TempFile::path_for("cq-two", "pcap");
    let c1 = start_capture(&up, &["cq-a", "-w", one.str()]);
    let c2 = start_capture(&up, &["cq-a", "-w", two.str()]);
    run_in("cq-a", &["ping", "-c", "1", "-W", "2", "10.51.1.11"]).expect_ok();
    let (s1, s2) = (finish(c1, true), finish(c2, true));
    let icmp = |p: &TempFile| {
        tool(&["tcpdump", "-n", "-r", p.str(), "icmp"])
            .lines()
            .count()
    };
    assert_eq!((icmp(&one), icmp(&two)), (2, 2), "{s1} {s2}");
}
