//! Processes a test starts: a command run to its end ([`run`], [`Run`]), or one that runs in
//! the background while the test acts ([`Bg`]: `nicctl up`, a capture, tcpdump, an iperf3
//! server). Threads read their output as it comes and another waits for their exit, each
//! sending an event: a test waits for a line, an exit or the end of the output, never for a
//! while.
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a command may run before the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to end after SIGINT or SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the output of a process that ended may take to reach its end (EOF): only
/// longer when something it started still holds its stdout or stderr.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

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

    /// Fails the test if it exited with status 0; returns its stderr.
    pub fn expect_err(self) -> String {
        assert!(!self.ok(), "command succeeded:\n{}", self.text());
        self.stderr
    }
}

/// Runs `argv` in the test's own namespace to its end ([`RUN_TIMEOUT`] at most).
pub fn run(argv: &[&str]) -> Run {
    Bg::spawn(None, argv).finish(RUN_TIMEOUT)
}

/// Runs `argv` inside network namespace `ns` to its end ([`RUN_TIMEOUT`] at most).
pub fn run_in(ns: &str, argv: &[&str]) -> Run {
    Bg::spawn(Some(ns), argv).finish(RUN_TIMEOUT)
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory preconditions; a pid that is gone just fails.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Which output a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What the watching threads report.
enum Event {
    Line(Stream, String),
    /// The process ended (it is not reaped yet).
    Exited,
}

/// Why [`Bg::wait_line`] found no line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoLine {
    /// The process ended first.
    Ended,
    /// It still runs.
    TimedOut,
}

/// A process running in the background while the test acts; dropping it kills it.
pub struct Bg {
    command: String,
    child: Child,
    /// Its exit status once reaped; until then its pid cannot be reused, so signalling it
    /// is safe.
    status: Option<ExitStatus>,
    events: mpsc::Receiver<Event>,
    /// The exit event came.
    exited: bool,
    /// Every watcher is done: the output reached its end and the process ended.
    closed: bool,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Bg {
    /// Starts `argv` inside namespace `ns` (or the test's own namespace with `None`), its
    /// stdin empty, its stdout and stderr read.
    pub fn spawn(ns: Option<&str>, argv: &[&str]) -> Bg {
        let (mut cmd, command) = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(argv);
                (c, format!("ip netns exec {ns} {}", argv.join(" ")))
            }
            None => {
                let mut c = Command::new(argv[0]);
                c.args(&argv[1..]);
                (c, argv.join(" "))
            }
        };
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        Bg::start(cmd, command, false)
    }

    /// Starts `cmd` (`command` describes it in messages) with an empty stdin and its stdout
    /// read; its stderr is read from a pipe, or with `terminal` from a pseudo-terminal of
    /// 120 columns (with `TERM=xterm`), as a user's terminal shows it.
    pub fn start(mut cmd: Command, command: String, terminal: bool) -> Bg {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let screen = if terminal {
            let (controller, device) = pty();
            cmd.env("TERM", "xterm").stderr(Stdio::from(device));
            Some(std::fs::File::from(controller))
        } else {
            cmd.stderr(Stdio::piped());
            None
        };
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{command}: {e} (is it installed?)"));
        // The child holds the terminal's device now; ours is closed (dropped with `cmd`),
        // so the controller reads its end once the child and what it started are gone.
        drop(cmd);
        let (tx, events) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout is piped");
        read_lines(out, Stream::Stdout, stdout.clone(), tx.clone());
        match (screen, child.stderr.take()) {
            (Some(tty), _) => read_lines(tty, Stream::Stderr, stderr.clone(), tx.clone()),
            (None, Some(err)) => read_lines(err, Stream::Stderr, stderr.clone(), tx.clone()),
            (None, None) => unreachable!("stderr is piped"),
        }
        watch_exit(child.id(), tx);
        Bg {
            command,
            child,
            status: None,
            events,
            exited: false,
            closed: false,
            stdout,
            stderr,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its command and what it printed so far, for failure messages.
    pub fn text(&self) -> String {
        format!("$ {}\n{}{}", self.command, self.stdout(), self.stderr())
    }

    /// The next event before `deadline`; `None` at the deadline or when no more will come.
    fn next(&mut self, deadline: Instant) -> Option<Event> {
        if self.closed {
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(left) {
            Ok(Event::Exited) => {
                self.exited = true;
                Some(Event::Exited)
            }
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.closed = true;
                self.exited = true;
                None
            }
        }
    }

    /// Waits up to `timeout` for a line that `wanted` accepts and returns it; the lines an
    /// earlier wait went past are not looked at again.
    pub fn wait_line(
        &mut self,
        timeout: Duration,
        mut wanted: impl FnMut(Stream, &str) -> bool,
    ) -> Result<String, NoLine> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline) {
                Some(Event::Line(stream, line)) if wanted(stream, &line) => return Ok(line),
                Some(_) => {}
                None if self.exited => return Err(NoLine::Ended),
                None => return Err(NoLine::TimedOut),
            }
        }
    }

    /// Waits for a line holding `needle` on its stdout or stderr and returns it; fails the
    /// test after `timeout`, or when it ends first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        match self.wait_line(timeout, |_, line| line.contains(needle)) {
            Ok(line) => line,
            Err(why) => {
                if why == NoLine::Ended {
                    self.drain();
                }
                panic!(
                    "{} {} before printing {needle:?}:\n{}",
                    self.command,
                    if why == NoLine::Ended {
                        "ended"
                    } else {
                        "timed out"
                    },
                    self.text()
                );
            }
        }
    }

    /// Waits up to `timeout` for it to end; its exit status, or `None` when it still runs.
    /// Once it has ended, what it printed is all in [`Bg::stdout`] and [`Bg::stderr`].
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            let deadline = Instant::now() + timeout;
            while !self.exited {
                if self.next(deadline).is_none() && !self.exited {
                    return None;
                }
            }
            // It has ended: this reaps it without blocking.
            self.status = Some(self.child.wait().expect("waiting for a child"));
            // Its exit can come before the readers of its output reach the end of it.
            self.drain();
        }
        self.status
    }

    /// Waits (briefly) until its output reaches its end, so that everything it printed is
    /// in [`Bg::stdout`] and [`Bg::stderr`]; after it ended.
    fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !self.closed {
            if self.next(deadline).is_none() && !self.closed {
                return;
            }
        }
    }

    /// Sends it `sig` (unless it has been reaped).
    pub fn signal(&self, sig: i32) {
        if self.status.is_none() {
            signal(self.pid(), sig);
        }
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(libc::SIGKILL);
        self.wait(STOP_TIMEOUT)
            .unwrap_or_else(|| panic!("{} outlived SIGKILL", self.command))
    }

    /// Sends it `sig` and waits up to `timeout` for it to end, then for its output's end;
    /// its exit status, or `None` when it did not end and was killed.
    pub fn stop(&mut self, sig: i32, timeout: Duration) -> Option<ExitStatus> {
        self.signal(sig);
        let status = self.wait(timeout);
        if status.is_none() {
            self.kill();
        }
        self.drain();
        status
    }

    fn into_run(mut self, status: ExitStatus) -> Run {
        self.drain();
        Run {
            command: self.command.clone(),
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// Waits up to `timeout` for it to end by itself and returns what it printed; kills it
    /// and fails the test when it does not end.
    pub fn finish(mut self, timeout: Duration) -> Run {
        match self.wait(timeout) {
            Some(status) => self.into_run(status),
            None => {
                self.kill();
                self.drain();
                panic!(
                    "{} did not end within {timeout:?}:\n{}",
                    self.command,
                    self.text()
                );
            }
        }
    }

    /// Ends it with SIGINT (SIGKILL if it lingers past [`STOP_TIMEOUT`]) and returns what
    /// it printed.
    pub fn interrupt(mut self) -> Run {
        let status = match self.stop(libc::SIGINT, STOP_TIMEOUT) {
            Some(status) => status,
            None => self.wait(Duration::ZERO).expect("killed"),
        };
        self.into_run(status)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }
}

/// Reads `from` line by line into `text`, and sends each line as an event; its end (EOF, or
/// EIO from a terminal whose other side is closed) drops the sender.
fn read_lines(
    from: impl Read + Send + 'static,
    stream: Stream,
    text: Arc<Mutex<String>>,
    events: mpsc::Sender<Event>,
) {
    std::thread::spawn(move || {
        let mut from = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            // On an error, what was read before it is in `buf`.
            let read = from.read_until(b'\n', &mut buf);
            if !buf.is_empty() {
                let chunk = String::from_utf8_lossy(&buf);
                text.lock().unwrap().push_str(&chunk);
                let line = chunk.trim_end_matches(['\n', '\r']).to_string();
                let _ = events.send(Event::Line(stream, line));
            }
            if !matches!(read, Ok(n) if n > 0) {
                return;
            }
        }
    });
}

/// Sends [`Event::Exited`] once process `pid` (a child of this process) has ended, leaving
/// it to be reaped by its [`Child`] (`WNOWAIT`): until then its pid stays its own.
fn watch_exit(pid: u32, events: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        loop {
            // SAFETY: an all-zero siginfo_t is a valid value for waitid to overwrite.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid writes only into `info`, which outlives the call.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            // EINTR: again; any other error (ECHILD: already reaped) also means it ended.
            if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                break;
            }
        }
        let _ = events.send(Event::Exited);
    });
}

/// A pseudo-terminal (controller, device) sized 120 columns by 40 rows.
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut controller, mut device) = (-1, -1);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into the integers it is given; the name and
    // termios pointers may be null; `size` outlives the call.
    let rc = unsafe {
        libc::openpty(
            &mut controller,
            &mut device,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    for fd in [controller, device] {
        // SAFETY: fcntl on a descriptor just opened here; no memory is involved. Close on
        // exec: no other child started meanwhile holds the terminal open.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(rc, 0, "fcntl: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(device),
        )
    }
}
