//! The control socket of a running deployment ([`crate::control`] is the protocol). One
//! thread accepts, one thread serves each connection; every NIC call goes through the
//! deployment's shared PF drivers, whose admin queue lock orders them.
use super::bridge::{CaptureSlot, FrameTap};
use super::deployment::Deployment;
use crate::config::{Config, Plan};
use crate::control::{
    resolve_host, resolve_port, CaptureReply, HostPort, HostStatus, PortReply, Reply, Request,
    ShowReply, StatsColumn, StatsReply, StatusReply, TraceReply,
};
use crate::flow::{frame_for, FlowSpec};
use crate::nic::PfDriver;
use crate::report::{stats_functions, trace_text};
use crate::show::{HostTables, Names};
use crate::tables::{Port, StatsFunction};
use serde::Serialize;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// How often idle threads look at the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// Frames a capture buffers for a slow reader before it drops some.
const CAPTURE_QUEUE: usize = 4096;

/// One host as the server sees it.
struct HostCtx {
    name: String,
    plan: Plan,
    driver: Arc<PfDriver>,
}

/// What the connection threads share.
struct Ctx {
    file: String,
    underlay: String,
    config: Config,
    hosts: Vec<HostCtx>,
    captures: HashMap<String, Arc<Fanout>>,
    stop: AtomicBool,
}

/// A running server; dropping it stops every thread and removes the socket.
pub struct Server {
    ctx: Arc<Ctx>,
    path: PathBuf,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `deployment` on a Unix socket at `path`. A socket file left there by a
    /// server that is gone is replaced; one that answers is refused.
    pub fn start(deployment: &Deployment, path: &Path) -> io::Result<Server> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is served by another process", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let captures = deployment
            .vms
            .iter()
            .filter_map(|vm| {
                let slot = vm.bridge()?.capture_slot();
                Some((vm.name().to_string(), Arc::new(Fanout::new(slot))))
            })
            .collect();
        let ctx = Arc::new(Ctx {
            file: deployment
                .record()
                .map(|r| r.file.clone())
                .unwrap_or_default(),
            underlay: deployment
                .underlay_namespace()
                .unwrap_or_default()
                .to_string(),
            config: deployment.config.clone(),
            hosts: deployment
                .hosts
                .iter()
                .map(|h| HostCtx {
                    name: h.name.clone(),
                    plan: h.plan.clone(),
                    driver: h.driver.clone(),
                })
                .collect(),
            captures,
            stop: AtomicBool::new(false),
        });
        let c = ctx.clone();
        let accept = std::thread::Builder::new()
            .name("nicctl-control".into())
            .spawn(move || accept_loop(&c, &listener))?;
        Ok(Server {
            ctx,
            path: path.to_path_buf(),
            accept: Some(accept),
        })
    }

    /// Where it serves.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.ctx.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for f in self.ctx.captures.values() {
            f.clear();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(ctx: &Arc<Ctx>, listener: &UnixListener) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !ctx.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let c = ctx.clone();
                if let Ok(t) = std::thread::Builder::new()
                    .name("nicctl-conn".into())
                    .spawn(move || serve(&c, stream))
                {
                    conns.push(t);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_readable(listener.as_raw_fd(), TICK);
            }
            Err(_) => std::thread::sleep(TICK),
        }
        conns.retain(|t| !t.is_finished());
    }
    for t in conns {
        let _ = t.join();
    }
}

/// Waits up to `timeout` for `fd` to be readable; returns its poll events.
fn wait_readable(fd: i32, timeout: Duration) -> i16 {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
    p.revents
}

fn answer<T: Serialize>(out: &mut UnixStream, reply: &Reply<T>) -> io::Result<()> {
    let mut line = serde_json::to_string(reply).map_err(io::Error::other)?;
    line.push('\n');
    out.write_all(line.as_bytes())
}

fn serve(ctx: &Ctx, stream: UnixStream) {
    let _ = stream.set_nonblocking(false);
    // A client that stops half way through a line, or stops reading, is dropped rather than
    // holding the thread (and `up`'s exit) forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let fd = stream.as_raw_fd();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return;
        }
        if reader.buffer().is_empty() && wait_readable(fd, TICK) == 0 {
            continue;
        }
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let reply: Reply<()> = Reply::Error(format!("bad request: {e}"));
                if answer(&mut out, &reply).is_err() {
                    return;
                }
                continue;
            }
        };
        let sent = match request {
            Request::Status => answer(&mut out, &result(status(ctx))),
            Request::Stats { host, vfs, uplink } => {
                answer(&mut out, &result(stats(ctx, host.as_deref(), &vfs, uplink)))
            }
            Request::Trace {
                host,
                port,
                frame,
                flow,
            } => answer(
                &mut out,
                &result(trace(
                    ctx,
                    host.as_deref(),
                    &port,
                    frame.as_deref(),
                    flow.as_deref(),
                )),
            ),
            Request::Show { host } => answer(&mut out, &result(show(ctx, host.as_deref()))),
            Request::Port { host } => answer(&mut out, &result(port(ctx, host.as_deref()))),
            Request::Capture { instance } => {
                capture(ctx, &instance, out, fd);
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

fn result<T>(r: Result<T, String>) -> Reply<T> {
    match r {
        Ok(v) => Reply::Ok(v),
        Err(e) => Reply::Error(e),
    }
}

fn status(ctx: &Ctx) -> Result<StatusReply, String> {
    Ok(StatusReply {
        pid: std::process::id(),
        file: ctx.file.clone(),
        underlay_namespace: ctx.underlay.clone(),
        hosts: ctx
            .hosts
            .iter()
            .map(|h| HostStatus {
                name: h.name.clone(),
                underlay_ip: h.plan.underlay_ip,
                vfs: h.plan.vfs.clone(),
            })
            .collect(),
        gateways: ctx.config.gateways.iter().map(|g| g.name.clone()).collect(),
    })
}

fn host_ctx(ctx: &Ctx, index: usize) -> Result<&HostCtx, String> {
    let name = &ctx.config.hosts[index].name;
    ctx.hosts
        .iter()
        .find(|h| &h.name == name)
        .ok_or_else(|| format!("host {name} has no NIC in this deployment"))
}

fn stats(
    ctx: &Ctx,
    host: Option<&str>,
    vfs: &[String],
    uplink: bool,
) -> Result<StatsReply, String> {
    let mut chosen = host
        .map(|h| resolve_host(&ctx.config, Some(h)))
        .transpose()?;
    let mut numbers = Vec::new();
    for v in vfs {
        let Some(i) = ctx.config.instance_index(v) else {
            match v.trim_start_matches("vf").parse::<u16>() {
                Ok(n) => numbers.push(n),
                Err(_) => {
                    return Err(format!(
                        "{v:?} is neither a VF number nor an instance of {}",
                        ctx.file
                    ))
                }
            }
            continue;
        };
        let (h, port) = resolve_port(&ctx.config, None, v)?;
        if let Some(c) = chosen.filter(|&c| c != h) {
            return Err(format!(
                "instance {} runs on host {}, not {}",
                ctx.config.instances[i].name, ctx.config.hosts[h].name, ctx.config.hosts[c].name
            ));
        }
        chosen = Some(h);
        if let Port::Vf(n) = port {
            numbers.push(n);
        }
    }
    let h = host_ctx(ctx, chosen.unwrap_or(0))?;
    let functions =
        stats_functions(h.driver.info(), &numbers, uplink).map_err(|e| e.to_string())?;
    let mut columns = Vec::new();
    for f in functions {
        let counters = h.driver.stats(f).map_err(|e| e.to_string())?;
        let instance = match f {
            StatsFunction::Vf(n) => h
                .plan
                .vfs
                .iter()
                .find(|(_, v)| *v == n)
                .map(|(name, _)| name.clone()),
            StatsFunction::Uplink => None,
        };
        columns.push(StatsColumn::new(f, instance, &counters));
    }
    Ok(StatsReply {
        host: h.name.clone(),
        columns,
    })
}

fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("the frame's hex has an odd number of digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("the frame's hex is not hex at digit {i}"))
        })
        .collect()
}

fn trace(
    ctx: &Ctx,
    host: Option<&str>,
    port: &str,
    frame: Option<&str>,
    flow: Option<&str>,
) -> Result<TraceReply, String> {
    let (h, port) = resolve_port(&ctx.config, host, port)?;
    let h = host_ctx(ctx, h)?;
    let (frame, title) = match (frame, flow) {
        (Some(hex), _) => (decode_hex(hex)?, "frame given in hex".to_string()),
        (None, Some(flow)) => {
            let spec = FlowSpec::parse(flow)?;
            (
                frame_for(&ctx.config, &h.plan, port, &spec)?,
                flow.to_string(),
            )
        }
        (None, None) => return Err("give a frame or a flow".into()),
    };
    let report = h.driver.trace(port, &frame).map_err(|e| e.to_string())?;
    Ok(TraceReply {
        text: format!(
            "Flow: {title}, {} bytes in on {port} (host {})\n\n{}",
            frame.len(),
            h.name,
            trace_text(&report)
        ),
    })
}

/// The hosts a request names: `host`, or every host of the file.
fn named_hosts<'c>(ctx: &'c Ctx, host: Option<&str>) -> Result<Vec<&'c HostCtx>, String> {
    let chosen = host
        .map(|h| resolve_host(&ctx.config, Some(h)))
        .transpose()?;
    (0..ctx.config.hosts.len())
        .filter(|&i| chosen.is_none_or(|c| c == i))
        .map(|i| host_ctx(ctx, i))
        .collect()
}

fn show(ctx: &Ctx, host: Option<&str>) -> Result<ShowReply, String> {
    let mut hosts = Vec::new();
    for h in named_hosts(ctx, host)? {
        hosts.push(HostTables {
            host: h.name.clone(),
            tables: h.driver.read_tables().map_err(|e| e.to_string())?,
            names: Names::from_config(&ctx.config, &h.plan),
        });
    }
    Ok(ShowReply { hosts })
}

fn port(ctx: &Ctx, host: Option<&str>) -> Result<PortReply, String> {
    let mut hosts = Vec::new();
    for h in named_hosts(ctx, host)? {
        hosts.push(HostPort {
            host: h.name.clone(),
            port: h.driver.port().map_err(|e| e.to_string())?,
        });
    }
    Ok(PortReply { hosts })
}

fn capture(ctx: &Ctx, instance: &str, mut out: UnixStream, fd: i32) {
    let Some(fanout) = ctx.captures.get(instance) else {
        let known: Vec<&str> = ctx.captures.keys().map(String::as_str).collect();
        let mut known = known;
        known.sort();
        let reply: Reply<()> = Reply::Error(format!(
            "no instance {instance:?} runs here (instances: {})",
            known.join(", ")
        ));
        let _ = answer(&mut out, &reply);
        return;
    };
    let Ok((h, Port::Vf(vf))) = resolve_port(&ctx.config, None, instance) else {
        return;
    };
    let (id, frames) = fanout.subscribe();
    let ack = Reply::Ok(CaptureReply {
        instance: instance.to_string(),
        host: ctx.config.hosts[h].name.clone(),
        vf,
    });
    if answer(&mut out, &ack).is_ok() {
        stream_frames(ctx, &frames, &mut out, fd);
    }
    fanout.unsubscribe(id);
}

fn stream_frames(ctx: &Ctx, frames: &Receiver<Vec<u8>>, out: &mut UnixStream, fd: i32) {
    while !ctx.stop.load(Ordering::Relaxed) {
        match frames.recv_timeout(TICK) {
            Ok(record) => {
                if out.write_all(&record).is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // The client sends nothing more: readable means it has closed.
                if wait_readable(fd, Duration::ZERO) != 0 {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Copies a VM's frames, as pcap records, to every capture of it.
struct Fanout {
    slot: CaptureSlot,
    subscribers: Mutex<Vec<(u64, SyncSender<Vec<u8>>)>>,
    next: AtomicU64,
    dropped: Arc<AtomicU64>,
}

/// The hook a [`Fanout`] puts in its bridge's slot while someone captures.
struct FanoutTap(Arc<Fanout>);

impl FrameTap for FanoutTap {
    fn frame(&mut self, _outbound: bool, frame: &[u8]) {
        let record = crate::pcap::record(SystemTime::now(), frame);
        let subs = self.0.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        for (_, tx) in subs.iter() {
            if let Err(TrySendError::Full(_)) = tx.try_send(record.clone()) {
                self.0.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Fanout {
    fn new(slot: CaptureSlot) -> Fanout {
        Fanout {
            slot,
            subscribers: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A new capture. The bridge's slot is locked before the subscriber list, as the
    /// bridge does when it calls the hook.
    fn subscribe(self: &Arc<Self>) -> (u64, Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::sync_channel(CAPTURE_QUEUE);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.push((id, tx));
        if subs.len() == 1 {
            *slot = Some(Box::new(FanoutTap(self.clone())));
        }
        (id, rx)
    }

    fn unsubscribe(&self, id: u64) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|(i, _)| *i != id);
        if subs.is_empty() {
            *slot = None;
        }
    }

    /// Ends every capture (and the reference cycle through the slot).
    fn clear(&self) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *slot = None;
    }
}
