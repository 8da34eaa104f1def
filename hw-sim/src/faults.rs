//! Fault injection: the seam through which tests make the silicon misbehave.
use crate::nic::Shared;
use nic_firmware::Function;
use shared_regs::pf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Fault state the device consults.
pub(crate) struct Faults {
    /// Per function (PF first, then VFs): DMA accesses still to fail.
    dma_fail: Box<[AtomicU32]>,
    /// The device thread stops polling the firmware while set.
    stall: AtomicBool,
    /// The firmware hung (or died with `STATUS.FATAL`): no polls until a PF reset.
    hung: AtomicBool,
    /// Held by the device thread across each check of `stall` and the poll that follows,
    /// so that setting the stall can wait out a poll already running.
    run_lock: Mutex<()>,
}

impl Faults {
    pub(crate) fn new(functions: usize) -> Self {
        Faults {
            dma_fail: (0..functions).map(|_| AtomicU32::new(0)).collect(),
            stall: AtomicBool::new(false),
            hung: AtomicBool::new(false),
            run_lock: Mutex::new(()),
        }
    }

    /// Consumes one injected DMA failure of function `index`; true when this access must
    /// fail.
    pub(crate) fn take_dma_failure(&self, index: usize) -> bool {
        self.dma_fail.get(index).is_some_and(|c| {
            c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
        })
    }

    /// The device thread's permission to poll once: `None` while stalled. The guard must be
    /// held for the whole poll.
    pub(crate) fn may_run(&self) -> Option<MutexGuard<'_, ()>> {
        let guard = self.run_lock.lock().unwrap_or_else(|p| p.into_inner());
        let stopped = self.stall.load(Ordering::Acquire) || self.hung.load(Ordering::Acquire);
        (!stopped).then_some(guard)
    }

    /// A PF reset restarts a hung firmware.
    pub(crate) fn reset(&self) {
        self.hung.store(false, Ordering::Release);
    }
}

/// Makes the simulated NIC misbehave, for tests of how the driver copes.
#[derive(Clone)]
pub struct FaultInjector {
    pub(crate) shared: Arc<Shared>,
}

impl FaultInjector {
    /// Fails the next `count` DMA accesses (reads or writes) of `func` with `DmaError`, as an
    /// IOMMU fault would; 0 cancels what is left. A function the NIC does not have is ignored.
    pub fn fail_dma(&self, func: Function, count: u32) {
        if let Some(i) = self.shared.index(func) {
            if let Some(c) = self.shared.faults.dma_fail.get(i) {
                c.store(count, Ordering::Release);
            }
        }
    }

    /// While `on`, the SFP module is pulled from the uplink's cage: nothing answers on its
    /// I2C bus, and the firmware reads the module as absent at its next reset or
    /// `PORT_GET`. Off plugs the configured module back in.
    pub fn sfp_absent(&self, on: bool) {
        self.shared.port.pulled.store(on, Ordering::Release);
    }

    /// The firmware hangs, as a firmware stuck in a loop would: no heartbeat, no admin
    /// completions, no frames, until the driver resets the PF (which restarts it, its
    /// tables empty).
    pub fn hang_firmware(&self) {
        let faults = &self.shared.faults;
        faults.hung.store(true, Ordering::Release);
        drop(faults.run_lock.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The firmware dies with `STATUS.FATAL` set, as after an internal error it cannot
    /// survive; it stays dead until the driver resets the PF.
    pub fn fatal_firmware(&self) {
        self.hang_firmware();
        let pf = self.shared.functions.first();
        if let Some(pf) = pf {
            let status = pf.regs.dev_read(pf::STATUS);
            pf.regs
                .dev_write(pf::STATUS, status | pf::Status::FATAL.bits());
        }
    }

    /// While `on`, the device thread stops calling the firmware: registers still read and
    /// write, but nothing answers (no heartbeat, no admin completions, no frames), as with a
    /// hung firmware. When `stall_firmware(true)` returns, a poll that was running has
    /// finished and no other starts, so a test may then play the firmware's part itself.
    pub fn stall_firmware(&self, on: bool) {
        let faults = &self.shared.faults;
        faults.stall.store(on, Ordering::Release);
        drop(faults.run_lock.lock().unwrap_or_else(|p| p.into_inner()));
        self.shared.wake.ring();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_failures_are_counted_down_per_function() {
        let f = Faults::new(3);
        f.dma_fail[1].store(2, Ordering::Release);
        assert!(!f.take_dma_failure(0));
        assert!(f.take_dma_failure(1));
        assert!(f.take_dma_failure(1));
        assert!(!f.take_dma_failure(1));
        assert!(!f.take_dma_failure(7));
    }
}
