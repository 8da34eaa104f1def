//! The uplink port: a cable with a bounded queue in each direction. The far end is an
//! [`UplinkPort`] (the top-of-rack switch, in tests); the near end is the firmware's
//! `uplink_send`/`uplink_recv`. A full queue drops the frame, as a port with no buffer does.
use crate::nic::Shared;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Frames each direction buffers before dropping.
pub(crate) const QUEUE_FRAMES: usize = 1024;

/// Both directions of the cable.
#[derive(Default)]
pub(crate) struct Uplink {
    to_device: Mutex<VecDeque<Vec<u8>>>,
    from_device: Mutex<VecDeque<Vec<u8>>>,
    from_device_ready: Condvar,
}

impl Uplink {
    /// Far end transmits. False when the device's receive queue was full.
    pub(crate) fn push_to_device(&self, frame: &[u8]) -> bool {
        let mut q = self.to_device.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= QUEUE_FRAMES {
            return false;
        }
        q.push_back(frame.to_vec());
        true
    }

    /// Device receives: the next frame that fits `buf`. Frames longer than `buf` are
    /// dropped, as a MAC drops frames over its maximum length.
    pub(crate) fn pop_to_device(&self, buf: &mut [u8]) -> Option<usize> {
        let mut q = self.to_device.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(frame) = q.pop_front() {
            if let Some(dst) = buf.get_mut(..frame.len()) {
                dst.copy_from_slice(&frame);
                return Some(frame.len());
            }
        }
        None
    }

    /// Device transmits. False when the far end's queue was full.
    pub(crate) fn push_from_device(&self, frame: &[u8]) -> bool {
        let mut q = self.from_device.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= QUEUE_FRAMES {
            return false;
        }
        q.push_back(frame.to_vec());
        self.from_device_ready.notify_all();
        true
    }

    /// Far end receives, waiting up to `timeout`.
    pub(crate) fn pop_from_device(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut q = self.from_device.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(frame) = q.pop_front() {
                return Some(frame);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            q = self
                .from_device_ready
                .wait_timeout(q, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
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

    /// The next frame the NIC sent, waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.shared.uplink.pop_from_device(timeout)
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
