//! `nicctl up` shows a progress bar per host whose plan has more than 1,000 commands, when
//! stderr is a terminal (here a pseudo-terminal). Needs root. Names: `pg-*`.
mod common;
use common::TempFile;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// One instance, and 20 route tables of 60 blackhole routes: 1,226 commands.
fn big_file() -> String {
    let mut f = String::from("[vpc.pg]\nvni = 71\ncidr = \"10.71.0.0/16\"\n");
    for t in 0..20 {
        let routes: Vec<String> = (0..60)
            .map(|r| {
                format!(
                    "{{ dest = \"172.{}.{r}.0/24\", target = \"blackhole\" }}",
                    16 + t
                )
            })
            .collect();
        f.push_str(&format!(
            "[route_table.pg-rt{t}]\nvpc = \"pg\"\nroutes = [{}]\n",
            routes.join(", ")
        ));
    }
    f.push_str(
        "[subnet.pg-net]\nvpc = \"pg\"\ncidr = \"10.71.1.0/24\"\nroute_table = \"pg-rt0\"\n\
         [instance.pg-a]\nsubnet = \"pg-net\"\nip = \"10.71.1.10\"\n",
    );
    f
}

/// A pseudo-terminal (controller, device) sized 120 columns.
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
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(device),
        )
    }
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_long_plan_shows_a_bar_for_its_host() {
    need_root!();
    let file = TempFile::with("pg", "toml", &big_file());
    let socket = TempFile::path_for("pg", "sock");
    let (controller, device) = pty();
    let mut child = Command::new(common::nicctl_bin())
        .args(["--socket", socket.str(), "up", file.str()])
        .env("TERM", "xterm")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(device))
        .spawn()
        .unwrap();
    let screen = Arc::new(Mutex::new(Vec::new()));
    let seen = screen.clone();
    let reader = std::thread::spawn(move || {
        let mut tty = std::fs::File::from(controller);
        let mut buf = [0u8; 4096];
        while let Ok(n) = tty.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    // SAFETY: kill has no memory effects; the pid is our child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let _ = nicctl::up::state::Registry::default().reap_stale();
    // The terminal reads end (EOF or EIO) once the child, the last holder of its side, has
    // exited: then the screen holds everything it wrote.
    let _ = reader.join();
    let text = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    assert_eq!(ready.as_deref(), Ok("ready"), "{text}");
    assert!(status.success(), "{status} {text}");
    assert!(
        text.contains("up: host local: programming 1226 commands"),
        "{text}"
    );
    assert!(text.contains("/1226 commands ("), "a bar was drawn: {text}");
    assert!(
        text.contains("up: host local: 1226 commands programmed"),
        "and replaced by a line when done: {text}"
    );
}
