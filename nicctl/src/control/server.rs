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
/// The longest request line: an `apply` carries a whole VPC file (at most 16 MiB of TOML)
/// as JSON. A longer line is answered with an error and its connection closed.
pub const MAX_REQUEST_BYTES: u64 = 32 << 20;
/// Connections served at once; one more is told so and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection that sends no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
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
    /// The watchdog's resets so far.
    resets: Vec<crate::control::ResetLine>,
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
            resets: deployment.resets.clone(),
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
    /// Watches a deployment's NICs and recovers a faulty one.
    watchdog: Option<JoinHandle<()>>,
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
            resets: Vec::new(),
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
            resets: Vec::new(),
            file,
            underlay: String::new(),
            nics,
            captures: HashMap::new(),
        };
        *self.ctx.view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
    }

    fn serve(deployment: Option<Deployment>, view: View, path: &Path) -> io::Result<Server> {
        let listener = bind_private(path)?;
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
        let watchdog = if ctx.deployment.is_some() {
            let c = ctx.clone();
            Some(
                std::thread::Builder::new()
                    .name("nicctl-watchdog".into())
                    .spawn(move || watchdog_loop(&c))?,
            )
        } else {
            None
        };
        Ok(Server {
            ctx,
            path: path.to_path_buf(),
            accept: Some(accept),
            watchdog,
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
        if let Some(t) = self.watchdog.take() {
            let _ = t.join();
        }
        for f in self.ctx.view().captures.values() {
            f.clear();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Looks at every host's NIC every [`watchdog::PERIOD`]; a faulty one is recovered under
/// the deployment's lock (so never during an apply), and the view shows the reset.
fn watchdog_loop(ctx: &Arc<Ctx>) {
    use crate::up::watchdog;
    use host_driver::health::Watch;
    let Some(deployment) = &ctx.deployment else {
        return;
    };
    let mut watches: HashMap<String, Watch> = HashMap::new();
    while !ctx.stop.load(Ordering::Relaxed) {
        std::thread::sleep(watchdog::PERIOD);
        let view = ctx.view();
        for (h, host) in view.nics.hosts().iter().enumerate() {
            let Ok(driver) = view.nics.driver(h) else {
                continue;
            };
            let watch = watches
                .entry(host.name.clone())
                .or_insert_with(|| Watch::new(watchdog::STALL_AFTER));
            let Some(fault) = watch.check(driver) else {
                continue;
            };
            let seen = Instant::now();
            let mut d = deployment.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = d.hosts.iter().position(|x| x.name == host.name) {
                d.recover_host(i, &fault, seen);
            }
            let fresh = View::of(&d, Some(&ctx.view()));
            *ctx.view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
            watch.rearm();
        }
    }
}

impl Ctx {
    /// The view now (an apply may replace it meanwhile; this one stays whole).
    fn view(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Binds a socket at `path` that only its owner can reach from the first moment: bound in
/// a fresh 0700 directory beside it, made 0600, then renamed into place. Only a socket
/// nobody answers on (one a dead server left) is replaced; anything else at `path` is
/// refused and left alone.
fn bind_private(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket: it is left alone; choose another path",
                    path.display()
                ),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is served by another process", path.display()),
            ));
        }
        std::fs::remove_file(path).map_err(named)?;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(named)?;
    let private = dir.join(format!(
        ".{}.{}.bind",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("sock"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(named)?;
    let inside = private.join("s");
    let bound = UnixListener::bind(&inside)
        .and_then(|l| {
            std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&inside, path)?;
            Ok(l)
        })
        .map_err(named);
    let _ = std::fs::remove_dir_all(&private);
    bound
}

fn accept_loop(ctx: &Arc<Ctx>, listener: &UnixListener) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !ctx.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                conns.retain(|t| !t.is_finished());
                if conns.len() >= MAX_CONNECTIONS {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                    let reply: Reply<()> = Reply::Error(format!(
                        "too many connections ({MAX_CONNECTIONS} served at once); try again"
                    ));
                    let _ = answer(&mut stream, &reply);
                    continue;
                }
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
    let mut bytes = Vec::new();
    let mut idle_since = std::time::Instant::now();
    loop {
        if ctx.stop.load(Ordering::Relaxed) || idle_since.elapsed() > IDLE_TIMEOUT {
            return;
        }
        if reader.buffer().is_empty() && wait_readable(fd, TICK) == 0 {
            continue;
        }
        bytes.clear();
        // Never more than one request's worth in memory.
        match io::Read::take(&mut reader, MAX_REQUEST_BYTES + 1).read_until(b'\n', &mut bytes) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        idle_since = std::time::Instant::now();
        if bytes.len() as u64 > MAX_REQUEST_BYTES {
            let reply: Reply<()> = Reply::Error(format!(
                "bad request: longer than {MAX_REQUEST_BYTES} bytes"
            ));
            let _ = answer(&mut out, &reply);
            return;
        }
        let Ok(line) = std::str::from_utf8(&bytes) else {
            let reply: Reply<()> = Reply::Error("bad request: not UTF-8".into());
            if answer(&mut out, &reply).is_err() {
                return;
            }
            continue;
        };
        let request: Request = match serde_json::from_str(line) {
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
            Request::Fault { host, kind } => {
                let done = match &ctx.deployment {
                    Some(d) => d
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .inject_fault(&host, &kind),
                    None => Err("this NIC is an agent's: no fault injector here".into()),
                };
                answer(
                    &mut out,
                    &match done {
                        Ok(()) => Reply::Ok(()),
                        Err(e) => Reply::Error(e),
                    },
                )
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
        resets: view.resets.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use host_driver::backend::sim::SimBackend;
    use std::os::unix::fs::PermissionsExt;

    fn nics() -> Local {
        let backend = SimBackend::start(hw_sim::SimConfig::default()).unwrap();
        Local::device(host_driver::PfDriver::open(Box::new(backend)).unwrap())
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vpcnic-srv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_socket_is_for_its_owner_only_and_never_replaces_a_file() {
        let dir = temp("mode");
        let path = dir.join("c.sock");
        // SAFETY: umask changes this process's creation mask; put back below.
        let old = unsafe { libc::umask(0) };
        let server = Server::start_nics(nics(), "t", &path);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let server = server.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // One that answers is refused; once gone, its socket file is taken over.
        let again = Server::start_nics(nics(), "t", &path).err().unwrap();
        assert!(
            again.to_string().contains("is served by another process"),
            "{again}"
        );
        drop(server);
        std::os::unix::net::UnixListener::bind(&path).unwrap();
        let stale = Server::start_nics(nics(), "t", &path).unwrap();
        drop(stale);
        // A regular file is never deleted.
        std::fs::write(&path, "precious").unwrap();
        let err = Server::start_nics(nics(), "t", &path).err().unwrap();
        assert!(
            err.to_string().contains("exists and is not a socket"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn ask(stream: &mut UnixStream, bytes: &[u8]) -> String {
        stream.write_all(bytes).unwrap();
        let mut line = String::new();
        BufReader::new(stream.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        line
    }

    #[test]
    fn requests_are_bounded_and_bad_bytes_get_an_answer() {
        let dir = temp("limits");
        let path = dir.join("c.sock");
        let _server = Server::start_nics(nics(), "t", &path).unwrap();
        let mut c = UnixStream::connect(&path).unwrap();
        let answer = ask(&mut c, b"{\"op\":\xff\xfe}\n");
        assert!(
            answer.starts_with(r#"{"error":"bad request: not UTF-8"#),
            "{answer}"
        );
        // The connection goes on.
        let answer = ask(&mut c, b"{\"op\":\"status\"}\n");
        assert!(answer.starts_with(r#"{"ok":"#), "{answer}");
        // A line longer than any request is answered and the connection closed.
        let mut long = UnixStream::connect(&path).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0u64;
        while sent <= MAX_REQUEST_BYTES {
            if long.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        let mut line = String::new();
        let _ = BufReader::new(long).read_line(&mut line);
        assert!(line.contains("longer than"), "{line:?}");
        // Connections beyond the cap are told so. Taken one at a time, each answered before
        // the next (a fixed sleep let a loaded machine race the count); `c` is still served
        // and `long`'s thread may still be ending, so the cap is met one or two early.
        let mut held = Vec::new();
        let refusal = loop {
            assert!(
                held.len() <= MAX_CONNECTIONS,
                "{} served at once",
                held.len()
            );
            let mut next = UnixStream::connect(&path).unwrap();
            next.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // A refused connection is answered without being read: the write may fail.
            let _ = next.write_all(b"{\"op\":\"status\"}\n");
            let mut line = String::new();
            let _ = BufReader::new(&mut next).read_line(&mut line);
            if !line.starts_with(r#"{"ok":"#) {
                break line;
            }
            held.push(next);
        };
        assert!(refusal.contains("too many connections"), "{refusal:?}");
        assert!(
            held.len() + 2 >= MAX_CONNECTIONS,
            "refused after {} connections",
            held.len()
        );
        drop(held);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
