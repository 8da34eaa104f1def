//! The control socket of a running `nicctl up`: a Unix stream socket speaking JSON lines.
//!
//! A client writes one [`Request`] as a JSON object on one line; the server answers with one
//! line, `{"ok": ...}` (the request's reply type below) or `{"error": "..."}`, and waits for
//! the next request. `capture` is the exception: after its `ok` line the connection carries
//! pcap records ([`crate::pcap::record`], no global header) of every frame the instance's VF
//! sends or receives, until the client closes it.
//!
//! ```text
//! > {"op":"stats","host":null,"vfs":["web1"],"uplink":false}
//! < {"ok":{"host":"h1","columns":[{"function":"vf0","instance":"web1","counters":{...}}]}}
//! ```
//!
//! The socket of each running deployment is recorded in its state file
//! ([`crate::vm::state`]); [`find_socket`] finds it.
use crate::config::Config;
use crate::show::HostTables;
use crate::tables::{Port, StatsFunction};
use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shared_regs::stats::{Counter, Counters};
use std::io::{self, BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// What runs: [`StatusReply`].
    Status,
    /// Counters: [`StatsReply`]. `vfs` are VF numbers or instance names; with none and no
    /// uplink, every VF and the uplink. `host` defaults to the instances' host, else the
    /// first.
    Stats {
        host: Option<String>,
        #[serde(default)]
        vfs: Vec<String>,
        #[serde(default)]
        uplink: bool,
    },
    /// A dry-run trace: [`TraceReply`]. `port` is `vfN`, `uplink` or an instance name;
    /// `frame` is hex, `flow` a flow spec ([`crate::flow::FlowSpec`]).
    Trace {
        host: Option<String>,
        port: String,
        frame: Option<String>,
        flow: Option<String>,
    },
    /// The tables as the NICs hold them: [`ShowReply`]; every host unless one is named.
    Show { host: Option<String> },
    /// The uplink port of each NIC (SFP module, link, LEDs): [`PortReply`]; every host
    /// unless one is named.
    Port { host: Option<String> },
    /// Every frame an instance's VF sends and receives: [`CaptureReply`], then pcap
    /// records.
    Capture { instance: String },
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    pub pid: u32,
    pub file: String,
    pub underlay_namespace: String,
    pub hosts: Vec<HostStatus>,
    pub gateways: Vec<String>,
}

/// One function's counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsColumn {
    /// "vf0" or "uplink".
    pub function: String,
    /// The instance on the VF.
    pub instance: Option<String>,
    /// Counter name to value, in counter order.
    pub counters: IndexMap<String, u64>,
}

/// `stats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply {
    pub host: String,
    pub columns: Vec<StatsColumn>,
}

impl StatsColumn {
    /// The column of `function` with `counters`.
    pub fn new(function: StatsFunction, instance: Option<String>, counters: &Counters) -> Self {
        StatsColumn {
            function: function.to_string(),
            instance,
            counters: Counter::ALL
                .iter()
                .map(|&c| (c.name().to_string(), counters.get(c)))
                .collect(),
        }
    }

    /// The function and counters back (counters the driver does not know are left out,
    /// missing ones read 0).
    pub fn decode(&self) -> Result<(StatsFunction, Counters), String> {
        use zerocopy::FromZeros;
        let function = match self.function.as_str() {
            "uplink" => StatsFunction::Uplink,
            f => f
                .strip_prefix("vf")
                .and_then(|n| n.parse().ok())
                .map(StatsFunction::Vf)
                .ok_or_else(|| format!("the server named an unknown function {f:?}"))?,
        };
        let mut c = Counters::new_zeroed();
        for &k in Counter::ALL {
            if let Some(&v) = self.counters.get(k.name()) {
                c.values[k as usize] = shared_regs::Le64::new(v);
            }
        }
        Ok((function, c))
    }
}

/// `trace`: the report as `nicctl trace` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceReply {
    pub text: String,
}

/// `show`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowReply {
    pub hosts: Vec<HostTables>,
}

/// `port`: each host's uplink port as its firmware reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortReply {
    pub hosts: Vec<HostPort>,
}

/// One host's uplink port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPort {
    pub host: String,
    pub port: crate::port::PortStatus,
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
}

/// How long a client waits for an answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a running `nicctl up`.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ControlError> {
        let stream = UnixStream::connect(path).map_err(|e| ControlError::Connect {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends `request` and reads its answer.
    pub fn call<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T, ControlError> {
        let mut line =
            serde_json::to_string(request).map_err(|e| ControlError::Protocol(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(ControlError::Protocol(
                "the server closed the connection".into(),
            ));
        }
        match serde_json::from_str::<Reply<T>>(&answer) {
            Ok(Reply::Ok(v)) => Ok(v),
            Ok(Reply::Error(e)) => Err(ControlError::Refused(e)),
            Err(e) => Err(ControlError::Protocol(format!("{e}: {}", answer.trim()))),
        }
    }

    /// The connection, for what follows a `capture` answer (the reader may hold bytes
    /// already read).
    pub fn into_reader(self) -> BufReader<UnixStream> {
        self.reader
    }
}

/// The host named `host`, or the file's first host.
pub fn resolve_host(config: &Config, host: Option<&str>) -> Result<usize, String> {
    match host {
        None => Ok(0),
        Some(h) => config.host_index(h).ok_or_else(|| {
            let known: Vec<&str> = config.hosts.iter().map(|h| h.name.as_str()).collect();
            format!(
                "unknown host {h:?} (hosts of the file: {})",
                known.join(", ")
            )
        }),
    }
}

/// A port named on the command line: `vfN` or `uplink` of `host` (default the first
/// host), or an instance's name, which stands for its VF on its own host. Returns the
/// host's index and the port.
pub fn resolve_port(
    config: &Config,
    host: Option<&str>,
    port: &str,
) -> Result<(usize, Port), String> {
    if let Some(i) = config.instance_index(port) {
        let inst = &config.instances[i];
        let own = inst.host;
        let h = resolve_host(config, host)?;
        if host.is_some() && h != own {
            return Err(format!(
                "instance {port} runs on host {}, not {}",
                config.hosts[own].name, config.hosts[h].name
            ));
        }
        // The plan gives a host's instances VFs 0, 1, ... in file order.
        let vf = config.instances[..i]
            .iter()
            .filter(|j| j.host == own)
            .count();
        return Ok((own, Port::Vf(vf as u16)));
    }
    let h = resolve_host(config, host)?;
    if port == "uplink" {
        return Ok((h, Port::Uplink));
    }
    port.strip_prefix("vf")
        .and_then(|n| n.parse().ok())
        .map(|n| (h, Port::Vf(n)))
        .ok_or_else(|| {
            format!("{port:?} is not a port: vf0, vf1, ... or uplink, nor an instance of the file")
        })
}

/// The socket to talk to: `explicit` if given, else the socket of the one running
/// deployment of the state directory (`None` when none runs; an error when several do).
#[cfg(feature = "sim")]
pub fn find_socket(
    explicit: Option<&Path>,
    registry: &crate::vm::state::Registry,
) -> Result<Option<PathBuf>, String> {
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
            Err(format!(
                "{} `nicctl up`s are running: {}; choose one with --socket PATH",
                live.len(),
                list.join("; ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_one_json_object_each() {
        let r = Request::Stats {
            host: None,
            vfs: vec!["web1".into()],
            uplink: false,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"op":"stats","host":null,"vfs":["web1"],"uplink":false}"#
        );
        let back: Request = serde_json::from_str(r#"{"op":"stats","host":"h2"}"#).unwrap();
        assert_eq!(
            back,
            Request::Stats {
                host: Some("h2".into()),
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
        assert_eq!(
            serde_json::to_string(&Request::Port { host: None }).unwrap(),
            r#"{"op":"port","host":null}"#
        );
        let port = PortReply {
            hosts: vec![HostPort {
                host: "h1".into(),
                port: crate::port::PortStatus {
                    module: crate::port::ModuleStatus::Absent,
                    link_up: true,
                    link_led: true,
                    activity_led: false,
                },
            }],
        };
        let text = serde_json::to_string(&Reply::Ok(port.clone())).unwrap();
        assert_eq!(
            serde_json::from_str::<Reply<PortReply>>(&text).unwrap(),
            Reply::Ok(port)
        );
    }

    #[test]
    fn ports_are_vfs_the_uplink_or_instances_on_their_host() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/three-tier.toml"
        ))
        .unwrap();
        let config = crate::config::parse(&text, &crate::config::Limits::default()).unwrap();
        assert_eq!(resolve_port(&config, None, "vf2"), Ok((0, Port::Vf(2))));
        assert_eq!(
            resolve_port(&config, Some("h2"), "uplink"),
            Ok((1, Port::Uplink))
        );
        // db1 is the second instance of h2 (after web2).
        assert_eq!(resolve_port(&config, None, "db1"), Ok((1, Port::Vf(1))));
        assert_eq!(
            resolve_port(&config, Some("h1"), "fw1"),
            Ok((0, Port::Vf(2)))
        );
        assert_eq!(
            resolve_port(&config, Some("h1"), "db1").unwrap_err(),
            "instance db1 runs on host h2, not h1"
        );
        assert_eq!(
            resolve_port(&config, Some("h9"), "vf0").unwrap_err(),
            "unknown host \"h9\" (hosts of the file: h1, h2)"
        );
        assert_eq!(
            resolve_port(&config, None, "eth0").unwrap_err(),
            "\"eth0\" is not a port: vf0, vf1, ... or uplink, nor an instance of the file"
        );
        // Agrees with the plan.
        let plan = crate::config::plan(&config, "h2").unwrap();
        assert!(plan.vfs.contains(&("db1".to_string(), 1)));
    }

    #[cfg(feature = "sim")]
    #[test]
    fn the_socket_is_the_one_running_deployments_unless_given() {
        use crate::vm::state::{process_start_time, Record, Registry};
        let dir = std::env::temp_dir().join(format!("vpcnic-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let reg = Registry::new(&dir);
        assert_eq!(find_socket(None, &reg), Ok(None));
        let given = Path::new("/tmp/given.sock");
        assert_eq!(find_socket(Some(given), &reg), Ok(Some(given.into())));
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
            find_socket(None, &reg),
            Ok(Some(PathBuf::from("/run/a.sock"))),
            "a deployment not serving yet, or dead, does not count"
        );
        write(3, &live(3, Some("/run/b.sock")));
        let err = find_socket(None, &reg).unwrap_err();
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
        let col = StatsColumn::new(StatsFunction::Vf(2), Some("web1".into()), &c);
        assert_eq!(col.counters.len(), Counter::ALL.len());
        assert_eq!(col.counters["tx_packets"], 7);
        let json = serde_json::to_string(&col).unwrap();
        let back: StatsColumn = serde_json::from_str(&json).unwrap();
        let (f, c2) = back.decode().unwrap();
        assert_eq!(f, StatsFunction::Vf(2));
        assert_eq!(c2.get(Counter::TxPackets), 7);
    }
}
