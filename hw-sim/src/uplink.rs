//! The uplink port: a cable with a bounded queue in each direction. The far end is an
//! [`UplinkPort`] (the top-of-rack switch, in tests); the near end is the firmware's
//! `uplink_send`/`uplink_recv`. A full queue drops the frame, as a port with no buffer does.
//!
//! A [`Wire`] plugged into the port takes the place of the queues towards it: the device
//! thread transmits onto it and receives from it itself, as a MAC drives its PHY, with no
//! thread or copy between (frames the far end sends with [`UplinkPort::send`] still arrive).
use crate::device::Wake;
use crate::nic::Shared;
use std::collections::VecDeque;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A wire the device drives itself (a TAP, a socket): see the module.
pub trait Wire: Send + Sync {
    /// Puts `frame` on the wire, without waiting; false when it was lost.
    fn transmit(&self, frame: &[u8]) -> bool;
    /// Takes the next frame off the wire into `buf`, without waiting: its length. A frame
    /// longer than `buf` is dropped, as a MAC drops frames over its maximum length.
    fn receive(&self, buf: &mut [u8]) -> Option<usize>;
    /// A descriptor that polls readable while a frame waits: the idle device sleeps on it.
    fn readable(&self) -> BorrowedFd<'_>;
}

/// Frames each direction buffers before dropping.
pub(crate) const QUEUE_FRAMES: usize = 1024;

/// One direction of the cable: frames in flight, emptied buffers kept for the next frames
/// (a frame a copy and no allocation, as a NIC's buffer pool), and how many wait to
/// receive (a frame wakes someone only if someone waits).
#[derive(Default)]
struct Queue {
    frames: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    waiters: u32,
}

impl Queue {
    /// Queues a copy of `frame`; false when full.
    fn push(&mut self, frame: &[u8]) -> bool {
        if self.frames.len() >= QUEUE_FRAMES {
            return false;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        self.frames.push_back(buf);
        true
    }

    /// Copies the next frame that fits `buf` into it; frames longer are dropped, as a MAC
    /// drops frames over its maximum length.
    fn pop_into(&mut self, buf: &mut [u8]) -> Option<usize> {
        while let Some(frame) = self.frames.pop_front() {
            let n = frame.len();
            let fits = buf.get_mut(..n).map(|dst| dst.copy_from_slice(&frame));
            self.recycle(frame);
            if fits.is_some() {
                return Some(n);
            }
        }
        None
    }

    fn recycle(&mut self, frame: Vec<u8>) {
        if self.spare.len() < QUEUE_FRAMES {
            self.spare.push(frame);
        }
    }
}

/// Both directions of the cable.
#[derive(Default)]
pub(crate) struct Uplink {
    to_device: Mutex<Queue>,
    from_device: Mutex<Queue>,
    from_device_ready: Condvar,
    wire: RwLock<Option<Arc<dyn Wire>>>,
}

impl Uplink {
    fn wire(&self) -> std::sync::RwLockReadGuard<'_, Option<Arc<dyn Wire>>> {
        self.wire.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Device transmits: onto the wire if one is plugged, else into the far end's queue.
    pub(crate) fn transmit(&self, frame: &[u8]) -> bool {
        match self.wire().as_ref() {
            Some(wire) => wire.transmit(frame),
            None => self.push_from_device(frame),
        }
    }

    /// Device receives: what the far end queued, then what the wire holds.
    pub(crate) fn receive(&self, buf: &mut [u8]) -> Option<usize> {
        if let Some(n) = self.pop_to_device(buf) {
            return Some(n);
        }
        self.wire().as_ref()?.receive(buf)
    }

    /// The idle device's sleep: until `wake` rings, the wire has a frame, or `timeout`.
    pub(crate) fn sleep(&self, wake: &Wake, timeout: Duration) {
        let wire = self.wire();
        wake.wait(timeout, wire.as_ref().map(|w| w.readable()));
    }

    /// Far end transmits. False when the device's receive queue was full.
    pub(crate) fn push_to_device(&self, frame: &[u8]) -> bool {
        lock(&self.to_device).push(frame)
    }

    /// Device receives: the next frame that fits `buf`. Frames longer than `buf` are
    /// dropped, as a MAC drops frames over its maximum length.
    pub(crate) fn pop_to_device(&self, buf: &mut [u8]) -> Option<usize> {
        lock(&self.to_device).pop_into(buf)
    }

    /// Device transmits. False when the far end's queue was full.
    pub(crate) fn push_from_device(&self, frame: &[u8]) -> bool {
        let mut q = lock(&self.from_device);
        if !q.push(frame) {
            return false;
        }
        if q.waiters > 0 {
            self.from_device_ready.notify_one();
        }
        true
    }

    /// Far end receives into `buf`, waiting up to `timeout`: the frame's length. Frames
    /// longer than `buf` are dropped.
    pub(crate) fn pop_from_device_into(&self, buf: &mut [u8], timeout: Duration) -> Option<usize> {
        self.wait_from_device(timeout, |q| q.pop_into(buf))
    }

    /// Far end receives, waiting up to `timeout`: the queued frame itself, no copy.
    pub(crate) fn pop_from_device(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.wait_from_device(timeout, |q| q.frames.pop_front())
    }

    /// What `take` gets from the device's queue, waiting up to `timeout` for it.
    fn wait_from_device<T>(
        &self,
        timeout: Duration,
        mut take: impl FnMut(&mut Queue) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut q = lock(&self.from_device);
        loop {
            if let Some(got) = take(&mut q) {
                return Some(got);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            q.waiters += 1;
            q = self
                .from_device_ready
                .wait_timeout(q, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            q.waiters -= 1;
        }
    }
}

/// The longest frame the cable carries: a descriptor's largest length.
pub const MAX_WIRE_FRAME: usize = 65535;

fn lock(q: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    q.lock().unwrap_or_else(|p| p.into_inner())
}

/// The far end of the uplink cable.
#[derive(Clone)]
pub struct UplinkPort {
    pub(crate) shared: Arc<Shared>,
}

impl UplinkPort {
    /// Puts a frame on the wire towards the NIC. Dropped if the NIC's receive queue is full
    /// (a wire does not push back).
    pub fn send(&self, frame: &[u8]) {
        self.shared.uplink.push_to_device(frame);
        self.shared.wake.ring();
    }

    /// Plugs `wire` into the port: from now on the device transmits onto it and receives
    /// from it itself ([`Wire`]). Replaces a wire plugged before.
    pub fn plug(&self, wire: Arc<dyn Wire>) {
        self.set_wire(Some(wire));
    }

    /// Unplugs the wire, if any: frames go through the queues again.
    pub fn unplug(&self) {
        self.set_wire(None);
    }

    fn set_wire(&self, wire: Option<Arc<dyn Wire>>) {
        *self
            .shared
            .uplink
            .wire
            .write()
            .unwrap_or_else(|p| p.into_inner()) = wire;
        // The device, if asleep, goes back to sleep watching the wire it has now.
        self.shared.wake.ring();
    }

    /// The next frame the NIC sent, waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.shared.uplink.pop_from_device(timeout)
    }

    /// [`UplinkPort::recv`] into `buf` (of [`MAX_WIRE_FRAME`] bytes for any frame): its
    /// length. Spares an allocation a frame.
    pub fn recv_into(&self, buf: &mut [u8], timeout: Duration) -> Option<usize> {
        self.shared.uplink.pop_from_device_into(buf, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_flow_in_order_both_ways() {
        let u = Uplink::default();
        assert!(u.push_to_device(b"one"));
        assert!(u.push_to_device(b"two"));
        let mut buf = [0u8; 16];
        assert_eq!(u.pop_to_device(&mut buf), Some(3));
        assert_eq!(&buf[..3], b"one");
        assert_eq!(u.pop_to_device(&mut buf), Some(3));
        assert_eq!(&buf[..3], b"two");
        assert_eq!(u.pop_to_device(&mut buf), None);
        assert!(u.push_from_device(b"out"));
        assert_eq!(
            u.pop_from_device(Duration::ZERO).as_deref(),
            Some(&b"out"[..])
        );
        let t = Instant::now();
        assert_eq!(u.pop_from_device(Duration::from_millis(20)), None);
        assert!(t.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn oversize_frames_are_dropped_and_full_queues_refuse() {
        let u = Uplink::default();
        u.push_to_device(&[0u8; 32]);
        u.push_to_device(b"ok");
        let mut buf = [0u8; 8];
        assert_eq!(u.pop_to_device(&mut buf), Some(2));
        for _ in 0..QUEUE_FRAMES {
            assert!(u.push_from_device(b"x"));
        }
        assert!(!u.push_from_device(b"x"));
    }
}
