//! The server's side of the control socket of a running deployment. One thread accepts,
//! one thread serves each connection. Each request is a [`Nics`] call on the deployment's
//! [`Local`] NICs (their PF drivers are shared with the deployment, whose admin queue lock
//! orders the calls); what the driver returns goes back as it is.
use super::{
    from_hex, parse_port, to_hex, ApplyReply, CaptureReply, ChangeLine, DescribeReply, HostChanges,
    HostStatus, Reply, Request, StatsColumn, StatsReply, StatusReply, TraceReply,
};
use crate::error::{CliError, Result};
use crate::nics::{Local, Nics};
use crate::up::bridge::{CaptureSlot, FrameTap};
use crate::up::deployment::Deployment;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How often idle threads look at the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// Frames a capture buffers for a slow reader before it drops some.
const CAPTURE_QUEUE: usize = 4096;

/// What the connection threads share.
struct Ctx {
    /// Locked while a file is applied to it (and so one apply at a time); `None` when the
    /// server serves NICs only (an agent's).
    deployment: Option<Mutex<Deployment>>,
    /// What requests read: replaced whole after an apply.
    view: RwLock<Arc<View>>,
    stop: AtomicBool,
}

/// The deployment as requests see it.
struct View {
    file: String,
    underlay: String,
    nics: Local,
    captures: HashMap<String, Arc<Fanout>>,
}

impl View {
    /// The view of `deployment`; captures of VMs that still bridge through the same
    /// capture slot carry on from `before`.
    fn of(deployment: &Deployment, before: Option<&View>) -> View {
        let captures = deployment
            .vms
            .iter()
            .filter_map(|vm| {
                let slot = vm.bridge()?.capture_slot();
                let same = before
                    .and_then(|b| b.captures.get(vm.name()))
                    .filter(|f| Arc::ptr_eq(&f.slot, &slot))
                    .cloned();
                Some((
                    vm.name().to_string(),
                    same.unwrap_or_else(|| Arc::new(Fanout::new(slot))),
                ))
            })
            .collect::<HashMap<_, _>>();
        if let Some(b) = before {
            // Captures of VMs that went (or were booted again) end.
            for (name, f) in &b.captures {
                if !captures.get(name).is_some_and(|g| Arc::ptr_eq(f, g)) {
                    f.clear();
                }
            }
        }
        View {
            file: deployment
                .record()
                .map(|r| r.file.clone())
                .unwrap_or_default(),
            underlay: deployment
                .underlay_namespace()
                .unwrap_or_default()
                .to_string(),
            nics: Local::programmed(
                deployment.config.clone(),
                deployment
                    .hosts
                    .iter()
                    .map(|h| (h.plan.clone(), h.driver.clone()))
                    .collect(),
            ),
            captures,
        }
    }
}

/// A running server; dropping it stops every thread and removes the socket.
pub struct Server {
    ctx: Arc<Ctx>,
    path: PathBuf,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `deployment` on a Unix socket at `path`, and owns it from now on (dropping
    /// the server removes it). A socket file left there by a server that is gone is
    /// replaced; one that answers is refused.
    pub fn start(deployment: Deployment, path: &Path) -> io::Result<Server> {
        let view = View::of(&deployment, None);
        Server::serve(Some(deployment), view, path)
    }

    /// Serves NICs only (an agent's): status, tables, counters, trace. [`Server::set_nics`]
    /// replaces them.
    pub fn start_nics(nics: Local, file: &str, path: &Path) -> io::Result<Server> {
        let view = View {
            file: file.to_string(),
            underlay: String::new(),
            nics,
            captures: HashMap::new(),
        };
        Server::serve(None, view, path)
    }

    /// Serves `nics` from now on.
    pub fn set_nics(&self, nics: Local) {
        let file = self.ctx.view().file.clone();
        let view = View {
            file,
            underlay: String::new(),
            nics,
            captures: HashMap::new(),
        };
        *self.ctx.view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
    }

    fn serve(deployment: Option<Deployment>, view: View, path: &Path) -> io::Result<Server> {
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
        let ctx = Arc::new(Ctx {
            view: RwLock::new(Arc::new(view)),
            deployment: deployment.map(Mutex::new),
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

    /// The deployment it serves (waits for an apply in progress); `None` for NICs only.
    pub fn deployment(&self) -> Option<MutexGuard<'_, Deployment>> {
        self.ctx
            .deployment
            .as_ref()
            .map(|d| d.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.ctx.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for f in self.ctx.view().captures.values() {
            f.clear();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Ctx {
    /// The view now (an apply may replace it meanwhile; this one stays whole).
    fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
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
        let view = ctx.view();
        let nics = &view.nics;
        let sent = match request {
            Request::Status => answer(&mut out, &result(Ok(status(&view)))),
            Request::Describe => answer(&mut out, &result(describe(nics))),
            Request::Stats { host, vfs, uplink } => {
                answer(&mut out, &result(stats(nics, &host, &vfs, uplink)))
            }
            Request::Tables { host } => answer(
                &mut out,
                &result(host_index(nics, &host).and_then(|h| nics.tables(h))),
            ),
            Request::Port { host } => answer(
                &mut out,
                &result(host_index(nics, &host).and_then(|h| nics.port(h))),
            ),
            Request::Trace { host, port, frame } => {
                answer(&mut out, &result(trace(nics, &host, &port, &frame)))
            }
            Request::Apply { file, config } => {
                drop(view);
                match &ctx.deployment {
                    Some(d) => answer(&mut out, &Reply::Ok(apply(ctx, d, &file, &config))),
                    None => answer(
                        &mut out,
                        &Reply::<()>::Error(
                            "this is an agent's NIC: apply the file to the store \
                             (nicctl apply FILE --etcd URLS)"
                                .into(),
                        ),
                    ),
                }
            }
            Request::Capture { instance } => {
                capture(ctx, &view, &instance, out, fd);
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

fn result<T>(r: Result<T>) -> Reply<T> {
    match r {
        Ok(v) => Reply::Ok(v),
        Err(e) => Reply::Error(e.to_string()),
    }
}

fn describe(nics: &Local) -> Result<DescribeReply> {
    let config = nics
        .config()
        .cloned()
        .ok_or_else(|| CliError::Usage("this deployment runs no VPC file".into()))?;
    let ids = nics
        .hosts()
        .iter()
        .filter_map(|h| h.plan.as_ref().map(|p| (h.name.clone(), p.ids.clone())))
        .collect();
    Ok(DescribeReply { config, ids })
}

/// Applies `config` (validated by the client) to the deployment, then makes the view
/// show it.
fn apply(
    ctx: &Ctx,
    deployment: &Mutex<Deployment>,
    file: &str,
    config: &crate::config::Config,
) -> ApplyReply {
    let mut deployment = deployment.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let (report, error) = deployment.apply(config, file);
    let error = error.map(|e| e.to_string());
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let view = View::of(&deployment, Some(&ctx.view()));
    *ctx.view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
    ApplyReply {
        hosts: report
            .hosts
            .iter()
            .map(|(host, changes)| HostChanges {
                host: host.clone(),
                changes: changes.iter().map(ChangeLine::of).collect(),
            })
            .collect(),
        namespaces: report
            .namespaces
            .iter()
            .map(|c| ChangeLine {
                op: c.kind().sign().to_string(),
                object: c.object().to_string(),
                change: c.to_string(),
            })
            .collect(),
        millis,
        error,
    }
}

fn status(view: &View) -> StatusReply {
    StatusReply {
        pid: std::process::id(),
        file: view.file.clone(),
        underlay_namespace: view.underlay.clone(),
        hosts: view
            .nics
            .hosts()
            .iter()
            .filter_map(|h| {
                let plan = h.plan.as_ref()?;
                Some(HostStatus {
                    name: h.name.clone(),
                    underlay_ip: plan.underlay_ip,
                    vfs: plan.vfs.clone(),
                })
            })
            .collect(),
        gateways: view
            .nics
            .config()
            .map(|c| c.gateways.iter().map(|g| g.name.clone()).collect())
            .unwrap_or_default(),
    }
}

/// The index of the host named `name`.
fn host_index(nics: &Local, name: &str) -> Result<usize> {
    nics.resolve_host(Some(name))
}

fn stats(nics: &Local, host: &str, vfs: &[u16], uplink: bool) -> Result<StatsReply> {
    let columns = nics.stats(host_index(nics, host)?, vfs, uplink)?;
    Ok(StatsReply {
        columns: columns
            .iter()
            .map(|(f, c)| StatsColumn::new(*f, c))
            .collect(),
    })
}

fn trace(nics: &Local, host: &str, port: &str, frame: &str) -> Result<TraceReply> {
    let h = host_index(nics, host)?;
    let port = parse_port(port)
        .ok_or_else(|| CliError::Usage(format!("{port:?} is not a port: vfN or uplink")))?;
    let frame =
        from_hex(frame).map_err(|why| CliError::Usage(format!("the frame's hex: {why}")))?;
    Ok(TraceReply {
        report: to_hex(&nics.trace_bytes(h, port, &frame)?),
    })
}

fn capture(ctx: &Ctx, view: &View, instance: &str, mut out: UnixStream, fd: i32) {
    let Some(fanout) = view.captures.get(instance).cloned() else {
        let known: Vec<&str> = view.captures.keys().map(String::as_str).collect();
        let mut known = known;
        known.sort();
        let reply: Reply<()> = Reply::Error(format!(
            "no instance {instance:?} runs here (instances: {})",
            known.join(", ")
        ));
        let _ = answer(&mut out, &reply);
        return;
    };
    let Some((h, vf)) = view.nics.instance_vf(instance) else {
        return;
    };
    let (id, frames) = fanout.subscribe();
    let ack = Reply::Ok(CaptureReply {
        instance: instance.to_string(),
        host: view.nics.hosts()[h].name.clone(),
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
