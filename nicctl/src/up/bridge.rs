//! The VM's VF driver loop: frames its stack writes to the TAP go onto the VF's TX ring,
//! frames the VF receives are written to the TAP. One thread per VM, woken by the TAP and
//! by the VF's interrupt eventfd.
//!
//! A bridge can be re-plugged into another VF (an instance moving hosts): its thread stops
//! and hands back the TAP, the old VF driver detaches, and a new thread bridges the same
//! TAP, counters and capture hook to the new VF. The VM's `eth0` never goes down, so its
//! sockets live on.
use super::tap::Tap;
use super::vnet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use shared_regs::vf::Offloads;
use vf_driver::{TxOffload, VfDriver};

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
    /// Written to stop the thread at once rather than at its next poll timeout (an
    /// instance moving hosts has no VF meanwhile).
    wake: Arc<OwnedFd>,
    /// The thread, which returns the TAP when stopped.
    thread: Option<JoinHandle<Option<Tap>>>,
    /// The TAP while unplugged.
    parked: Option<Tap>,
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
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we
        // own from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nothing else.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut b = Bridge {
            stop: Arc::new(AtomicBool::new(false)),
            wake,
            thread: None,
            parked: Some(tap),
            stats: Arc::new(BridgeStats::default()),
            capture: Arc::new(Mutex::new(capture)),
        };
        b.plug(guest)?;
        Ok(b)
    }

    /// Bridges the TAP to `guest`'s VF from now on; the VF it was plugged into (if any) is
    /// let go first, its driver detached.
    pub fn plug(&mut self, guest: VfDriver) -> io::Result<()> {
        self.unplug();
        let Some(tap) = self.parked.take() else {
            return Err(io::Error::other("the bridge lost its TAP"));
        };
        // The VM's kernel segments when this VF does not.
        if let Err(e) = tap.set_tso(guest.offloads().contains(Offloads::TSO4)) {
            self.parked = Some(tap);
            return Err(e);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, c) = (stop.clone(), self.stats.clone(), self.capture.clone());
        let wake = self.wake.clone();
        let name = format!("vm-{}", tap.name());
        // The TAP comes back if the thread cannot start: it is moved in only on success.
        let (tx, rx) = std::sync::mpsc::channel::<Tap>();
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            rx.recv()
                .ok()
                .map(|tap| run(tap, guest, &c, &s, &st, wake.as_raw_fd()))
        });
        match spawned {
            Ok(thread) => {
                // The receiver lives until it has the TAP.
                let _ = tx.send(tap);
                self.stop = stop;
                self.thread = Some(thread);
                Ok(())
            }
            Err(e) => {
                self.parked = Some(tap);
                Err(e)
            }
        }
    }

    /// Stops bridging: frames the VM sends wait in the TAP, and its VF driver detaches.
    pub fn unplug(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from `one`, which outlives the call, to an eventfd we own.
        unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        if let Some(t) = self.thread.take() {
            if let Ok(Some(tap)) = t.join() {
                self.parked = Some(tap);
            }
        }
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
        self.unplug();
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
    wake: i32,
) -> Tap {
    // A TAP with offloads puts a virtio-net header before every frame.
    let hdr = if tap.vnet() { vnet::VNET_HDR_LEN } else { 0 };
    let irq = guest.event_fd();
    let offloads = guest.offloads();
    // A stop meant for the thread before this one.
    drain_eventfd(wake);
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
            libc::pollfd {
                fd: wake,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of three pollfd for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), 3, 50) };
        if fds[2].revents != 0 {
            break;
        }
        if fds[1].revents != 0 {
            drain_eventfd(irq);
        }
        // Both directions are drained every round: an interrupt may have been coalesced.
        // Frames go between the TAP and the VF's buffers in place, with no copy between.
        while let Some(written) = guest.recv_in_place(|frame, meta| {
            tap_frame(capture, false, frame);
            let mut head = [0u8; vnet::VNET_HDR_LEN];
            if hdr > 0 {
                head = vnet::inbound(meta, frame).to_bytes();
            }
            tap.write_parts(&head[..hdr], frame).is_ok()
        }) {
            if written {
                stats.to_vm.fetch_add(1, Ordering::Relaxed);
            }
        }
        loop {
            let (mut empty, mut read) = (false, false);
            let sent = guest.send_in_place(|buf| {
                read = true;
                let mut head = [0u8; vnet::VNET_HDR_LEN];
                let n = match tap.read_parts(&mut head[..hdr], buf) {
                    Ok(n) if n >= hdr => n - hdr,
                    Ok(_) => return None,
                    Err(_) => {
                        // WouldBlock, or a TAP gone: either way nothing more this round.
                        empty = true;
                        return None;
                    }
                };
                let frame = &mut buf[..n];
                let offload = if hdr > 0 {
                    let h = vnet::VnetHdr::parse(&head)?;
                    vnet::outbound(&h, frame, offloads).ok()?.offload
                } else {
                    TxOffload::None
                };
                tap_frame(capture, true, frame);
                Some((n, offload))
            });
            // A TX ring that stayed full: the frames wait in the TAP for the next round.
            if empty || !read {
                break;
            }
            let count = match sent {
                Ok(true) => &stats.to_vf,
                _ => &stats.send_errors,
            };
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
    tap
}
