//! The VM's VF driver loop: frames its stack writes to the TAP go onto the VF's TX ring,
//! frames the VF receives are written to the TAP. One thread per VM, woken by the TAP and
//! by the VF's interrupt eventfd.
use super::tap::Tap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use vf_driver::VfDriver;

/// Receives a copy of every frame crossing a bridge (for `nicctl capture`).
pub trait FrameTap: Send {
    /// `outbound`: sent by the VM; else received by it.
    fn frame(&mut self, outbound: bool, frame: &[u8]);
}

/// Where a bridge finds its capture hook: set or cleared at any time (the bridge looks at
/// it for every frame).
pub type CaptureSlot = Arc<Mutex<Option<Box<dyn FrameTap>>>>;

/// What a bridge counted, for diagnostics.
#[derive(Debug, Default)]
pub struct BridgeStats {
    pub to_vf: AtomicU64,
    pub to_vm: AtomicU64,
    pub send_errors: AtomicU64,
}

/// A running bridge; dropping it stops and joins the thread.
pub struct Bridge {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<BridgeStats>,
    capture: CaptureSlot,
}

impl Bridge {
    /// Starts moving frames between `tap` and `guest`.
    pub fn spawn(
        tap: Tap,
        guest: VfDriver,
        capture: Option<Box<dyn FrameTap>>,
    ) -> io::Result<Bridge> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(BridgeStats::default());
        let capture: CaptureSlot = Arc::new(Mutex::new(capture));
        let (s, st, c) = (stop.clone(), stats.clone(), capture.clone());
        let thread = std::thread::Builder::new()
            .name(format!("vm-{}", tap.name()))
            .spawn(move || run(tap, guest, &c, &s, &st))?;
        Ok(Bridge {
            stop,
            thread: Some(thread),
            stats,
            capture,
        })
    }

    /// The capture hook's slot: put a [`FrameTap`] in it to see every frame from then on,
    /// take it out to stop.
    pub fn capture_slot(&self) -> CaptureSlot {
        self.capture.clone()
    }

    /// What the bridge has moved so far.
    pub fn stats(&self) -> &BridgeStats {
        &self.stats
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tap_frame(capture: &Mutex<Option<Box<dyn FrameTap>>>, outbound: bool, frame: &[u8]) {
    // A hook that panicked leaves the lock poisoned; frames still flow, uncaptured.
    if let Ok(mut slot) = capture.lock() {
        if let Some(c) = slot.as_mut() {
            c.frame(outbound, frame);
        }
    }
}

fn drain_eventfd(fd: i32) {
    let mut v = [0u8; 8];
    // SAFETY: reads at most 8 bytes into `v`, which outlives the call; the eventfd is
    // non-blocking, so this never waits.
    unsafe { libc::read(fd, v.as_mut_ptr().cast(), v.len()) };
}

fn run(
    tap: Tap,
    mut guest: VfDriver,
    capture: &Mutex<Option<Box<dyn FrameTap>>>,
    stop: &AtomicBool,
    stats: &BridgeStats,
) {
    let mut buf = vec![0u8; 65536];
    let irq = guest.event_fd();
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [
            libc::pollfd {
                fd: tap.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: irq,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, 50) };
        if fds[1].revents != 0 {
            drain_eventfd(irq);
        }
        // Both directions are drained every round: an interrupt may have been coalesced.
        while let Some(frame) = guest.try_recv() {
            tap_frame(capture, false, &frame);
            if tap.write_frame(&frame).is_ok() {
                stats.to_vm.fetch_add(1, Ordering::Relaxed);
            }
        }
        loop {
            match tap.read_frame(&mut buf) {
                Ok(n) => {
                    let frame = &buf[..n];
                    tap_frame(capture, true, frame);
                    match guest.send(frame) {
                        Ok(()) => stats.to_vf.fetch_add(1, Ordering::Relaxed),
                        Err(_) => stats.send_errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
    }
}
