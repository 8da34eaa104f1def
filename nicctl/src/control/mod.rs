//! The control socket of a running `nicctl up`: a Unix stream socket speaking JSON lines.
//!
//! A client writes one [`Request`] as a JSON object on one line; the server answers with one
//! line, `{"ok": ...}` (the request's reply type below) or `{"error": "..."}`, and waits for
//! the next request. `capture` is the exception: after its `ok` line the connection carries
//! pcap records ([`crate::pcap::record`], no global header) of every frame the instance's VF
//! sends or receives, until the client closes it.
//!
//! ```text
//! > {"op":"stats","host":"h1","vfs":[0],"uplink":false}
//! < {"ok":{"columns":[{"function":"vf0","counters":{"tx_packets":3,...}}]}}
//! ```
//!
//! The requests are the methods of [`crate::nics::Nics`] plus what only a deployment has
//! (status, capture): [`client::Remote`] is `Nics` over the socket, and [`server`] answers
//! with `Nics` over the deployment's drivers, so the socket carries what the driver
//! returns and a command's logic runs once, in the client, whatever it talks to.
//!
//! The socket of each running deployment is recorded in its state file
//! ([`crate::up::state`]); [`find_socket`] finds it.
pub mod client;
pub mod server;

use crate::config::Config;
use host_driver::tables::{Port, StatsFunction};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use shared_regs::stats::{Counter, Counters};
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What a client asks. Hosts are named as the VPC file names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// What runs: [`StatusReply`].
    Status,
    /// The VPC file the deployment runs, validated: [`DescribeReply`].
    Describe,
    /// Counters of a host's NIC: [`StatsReply`]. With no VF and no uplink, every VF and
    /// the uplink.
    Stats {
        host: String,
        #[serde(default)]
        vfs: Vec<u16>,
        #[serde(default)]
        uplink: bool,
    },
    /// A host's tables as its NIC holds them: `host_driver::table_read::NicTables`.
    Tables { host: String },
    /// A host's uplink port (SFP module, link, LEDs): `host_driver::port::PortStatus`.
    Port { host: String },
    /// A dry-run trace of `frame` (hex) arriving on `port` (`vfN` or `uplink`) of a host's
    /// NIC: [`TraceReply`].
    Trace {
        host: String,
        port: String,
        frame: String,
    },
    /// Every frame an instance's VF sends and receives: [`CaptureReply`], then pcap
    /// records.
    Capture { instance: String },
    /// Brings the deployment to `config` (a VPC file the client has validated, named
    /// `file`): [`ApplyReply`].
    Apply { file: String, config: Config },
    /// Makes a host's simulated NIC fail (`hang` or `fatal`), to watch the watchdog
    /// recover it: `()`.
    Fault { host: String, kind: String },
}

/// One change, as `diff` and `apply` print it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeLine {
    /// `+`, `~` or `-`.
    pub op: String,
    /// "vpc", "route", "mapping", "instance", "gateway", ...
    pub object: String,
    pub change: String,
}

impl ChangeLine {
    /// The line of a NIC table change.
    pub fn of(c: &host_driver::reconcile::Change) -> ChangeLine {
        ChangeLine {
            op: c.kind().sign().to_string(),
            object: c.object().to_string(),
            change: c.to_string(),
        }
    }
}

/// One host's NIC changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostChanges {
    pub host: String,
    pub changes: Vec<ChangeLine>,
}

/// `apply`: what was done, in order, and what stopped it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplyReply {
    pub hosts: Vec<HostChanges>,
    /// VMs and gateway namespaces made, removed, moved or changed.
    pub namespaces: Vec<ChangeLine>,
    /// How long it took.
    pub millis: f64,
    /// The failure that stopped it; what was done before stays done, and applying the
    /// file again goes on from there.
    pub error: Option<String>,
}

/// An answer line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    Ok(T),
    Error(String),
}

/// A host of the running deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    pub name: String,
    pub underlay_ip: Ipv4Addr,
    /// (instance, VF).
    pub vfs: Vec<(String, u16)>,
}

/// `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReply {
    pub pid: u32,
    pub file: String,
    pub underlay_namespace: String,
    pub hosts: Vec<HostStatus>,
    pub gateways: Vec<String>,
    /// Every device reset the watchdog made, oldest first.
    #[serde(default)]
    pub resets: Vec<ResetLine>,
}

/// A device the watchdog found faulty, reset and reprogrammed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResetLine {
    pub host: String,
    /// What was wrong: "firmware hung (HEARTBEAT stuck ...)".
    pub cause: String,
    /// From the fault seen to the tables and VFs back, in milliseconds.
    pub recovery_ms: f64,
    /// Unix time of the fault, in seconds.
    pub at: f64,
    /// Empty, or why the recovery failed.
    pub error: String,
}

/// `describe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribeReply {
    pub config: Config,
    /// The table IDs of each NIC the server has, by host: after an apply they are not the
    /// file order of a fresh NIC.
    #[serde(default)]
    pub ids: std::collections::BTreeMap<String, crate::config::ids::Ids>,
}

/// One function's counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsColumn {
    /// "vf0" or "uplink".
    pub function: String,
    /// Counter name to value, in counter order.
    pub counters: IndexMap<String, u64>,
}

/// `stats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply {
    pub columns: Vec<StatsColumn>,
}

impl StatsColumn {
    /// The column of `function` with `counters`.
    pub fn new(function: StatsFunction, counters: &Counters) -> Self {
        StatsColumn {
            function: function.to_string(),
            counters: Counter::ALL
                .iter()
                .map(|&c| (c.name().to_string(), counters.get(c)))
                .collect(),
        }
    }

    /// The function and counters back (counters the client does not know are left out,
    /// missing ones read 0).
    pub fn decode(&self) -> Result<(StatsFunction, Counters), ControlError> {
        use zerocopy::FromZeros;
        let function = parse_port(&self.function).ok_or_else(|| {
            ControlError::Protocol(format!(
                "the server named an unknown function {:?}",
                self.function
            ))
        })?;
        let mut c = Counters::new_zeroed();
        for &k in Counter::ALL {
            if let Some(&v) = self.counters.get(k.name()) {
                c.values[k as usize] = shared_regs::Le64::new(v);
            }
        }
        Ok((function, c))
    }
}

/// `vf3` or `uplink`, as [`StatsFunction`]'s `Display` writes them.
pub fn parse_port(text: &str) -> Option<Port> {
    match text {
        "uplink" => Some(Port::Uplink),
        f => f.strip_prefix("vf")?.parse().ok().map(Port::Vf),
    }
}

/// `trace`: the report as the firmware wrote it, in hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceReply {
    pub report: String,
}

/// Bytes as lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex back to bytes.
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("not hex at digit {i}"))
        })
        .collect()
}

/// `capture`: whose frames follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureReply {
    pub instance: String,
    pub host: String,
    pub vf: u16,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot reach `nicctl up` at {path}: {reason}")]
    Connect { path: String, reason: String },
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    #[error("control socket: unexpected answer: {0}")]
    Protocol(String),
    /// The server refused the request; the message is its reason.
    #[error("{0}")]
    Refused(String),
    /// Several deployments run and none was chosen.
    #[error("{0}")]
    Ambiguous(String),
}

/// The socket to talk to: `explicit` if given, else the socket of the one running
/// deployment of the state directory (`None` when none runs; an error when several do).
pub fn find_socket(
    explicit: Option<&Path>,
    registry: &crate::up::state::Registry,
) -> Result<Option<PathBuf>, ControlError> {
    if let Some(p) = explicit {
        return Ok(Some(p.to_path_buf()));
    }
    let live: Vec<_> = registry
        .live()
        .into_iter()
        .filter(|r| r.socket.is_some())
        .collect();
    match live.len() {
        0 => Ok(None),
        1 => Ok(live[0].socket.clone()),
        _ => {
            let list: Vec<String> = live
                .iter()
                .map(|r| {
                    format!(
                        "pid {} ({}) at {}",
                        r.pid,
                        r.file,
                        r.socket.as_deref().unwrap_or(Path::new("?")).display()
                    )
                })
                .collect();
            Err(ControlError::Ambiguous(format!(
                "{} `nicctl up`s are running: {}; choose one with --socket PATH",
                live.len(),
                list.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_one_json_object_each() {
        let r = Request::Stats {
            host: "h1".into(),
            vfs: vec![0],
            uplink: false,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"op":"stats","host":"h1","vfs":[0],"uplink":false}"#
        );
        let back: Request = serde_json::from_str(r#"{"op":"stats","host":"h2"}"#).unwrap();
        assert_eq!(
            back,
            Request::Stats {
                host: "h2".into(),
                vfs: vec![],
                uplink: false
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"op":"status"}"#
        );
        let e: Reply<TraceReply> = serde_json::from_str(r#"{"error":"no such host"}"#).unwrap();
        assert_eq!(e, Reply::Error("no such host".into()));
        let port = host_driver::port::PortStatus {
            module: host_driver::port::ModuleStatus::Absent,
            link_up: true,
            link_led: true,
            activity_led: false,
        };
        let text = serde_json::to_string(&Reply::Ok(port.clone())).unwrap();
        assert_eq!(
            serde_json::from_str::<Reply<host_driver::port::PortStatus>>(&text).unwrap(),
            Reply::Ok(port)
        );
        assert_eq!(
            from_hex(&to_hex(&[0, 0xab, 0xff])).unwrap(),
            [0, 0xab, 0xff]
        );
        assert!(from_hex("abc").is_err() && from_hex("zz").is_err());
        assert_eq!(parse_port("vf12"), Some(Port::Vf(12)));
        assert_eq!(parse_port("uplink"), Some(Port::Uplink));
        assert_eq!(parse_port("eth0"), None);
    }

    #[test]
    fn a_vpc_file_survives_the_socket() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/three-tier.toml"
        ))
        .unwrap();
        let config = crate::config::parse(&text, &crate::config::Limits::default()).unwrap();
        let json = serde_json::to_string(&DescribeReply {
            config: config.clone(),
            ids: Default::default(),
        })
        .unwrap();
        let back: DescribeReply = serde_json::from_str(&json).unwrap();
        assert_eq!(back.config, config);
    }

    #[test]
    fn the_socket_is_the_one_running_deployments_unless_given() {
        use crate::up::state::{process_start_time, Record, Registry};
        let dir = std::env::temp_dir().join(format!("vpcnic-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let reg = Registry::new(&dir);
        assert_eq!(find_socket(None, &reg).unwrap(), None);
        let given = Path::new("/tmp/given.sock");
        assert_eq!(find_socket(Some(given), &reg).unwrap(), Some(given.into()));
        let me = std::process::id();
        let live = |n: u32, socket: Option<&str>| Record {
            pid: me,
            start_time: process_start_time(me).unwrap(),
            file: format!("f{n}.toml"),
            socket: socket.map(PathBuf::from),
            ..Default::default()
        };
        let write = |n: u32, r: &Record| {
            std::fs::write(
                dir.join(format!("up-{me}_{n}.json")),
                serde_json::to_string(r).unwrap(),
            )
            .unwrap()
        };
        write(0, &live(0, Some("/run/a.sock")));
        write(1, &live(1, None));
        let dead = Record {
            start_time: 1,
            ..live(2, Some("/run/dead.sock"))
        };
        write(2, &dead);
        assert_eq!(
            find_socket(None, &reg).unwrap(),
            Some(PathBuf::from("/run/a.sock")),
            "a deployment not serving yet, or dead, does not count"
        );
        write(3, &live(3, Some("/run/b.sock")));
        let err = find_socket(None, &reg).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "2 `nicctl up`s are running: pid {me} (f0.toml) at /run/a.sock; pid {me} (f3.toml) \
                 at /run/b.sock; choose one with --socket PATH"
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stats_columns_carry_every_counter_by_name() {
        use zerocopy::FromZeros;
        let mut c = Counters::new_zeroed();
        c.values[Counter::TxPackets as usize] = shared_regs::Le64::new(7);
        let col = StatsColumn::new(StatsFunction::Vf(2), &c);
        assert_eq!(col.counters.len(), Counter::ALL.len());
        assert_eq!(col.counters["tx_packets"], 7);
        let json = serde_json::to_string(&col).unwrap();
        let back: StatsColumn = serde_json::from_str(&json).unwrap();
        let (f, c2) = back.decode().unwrap();
        assert_eq!(f, StatsFunction::Vf(2));
        assert_eq!(c2.get(Counter::TxPackets), 7);
    }
}
