//! [`Polls`]: how many times the device thread has polled the firmware, and a way to wait
//! for the next ones (a condition variable, so a test waits on the event itself rather
//! than sleeping and hoping).
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Polls {
    count: AtomicU64,
    /// Threads in [`Polls::wait_for`]: the device thread takes the lock only when some wait.
    waiters: AtomicUsize,
    lock: Mutex<()>,
    polled: Condvar,
}

impl Polls {
    /// One more poll done (the device thread).
    pub(crate) fn done_one(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.polled.notify_all();
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until at least `target` polls are done or `timeout` passes; whether they are.
    pub(crate) fn wait_for(&self, target: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        // The count is read under the lock and the device notifies under it, after
        // counting: no poll can slip between the check and the wait.
        while self.count() < target {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            guard = self
                .polled
                .wait_timeout(guard, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        self.count() >= target
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_wakes_on_the_poll_it_waits_for() {
        let polls = Arc::new(Polls::default());
        let p = polls.clone();
        let device = std::thread::spawn(move || {
            while p.waiters.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
            for _ in 0..3 {
                p.done_one();
            }
        });
        assert!(polls.wait_for(3, Duration::from_secs(10)));
        device.join().unwrap();
        assert!(
            !polls.wait_for(4, Duration::from_millis(1)),
            "no fourth poll"
        );
    }
}
