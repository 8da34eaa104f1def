//! The interrupt block: per function, `INTR_CAUSE`/`INTR_MASK` and one MSI-X vector that the
//! host wires to an eventfd (as `VFIO_DEVICE_SET_IRQS` with `EVENTFD` would).
//!
//! Each function has one vector (the datasheet's `IRQ_VECTOR` = 0). A raised cause is
//! latched in `INTR_CAUSE` whether masked or not; the vector fires when any cause bit that
//! was just raised, or is pending when the host clears its mask bit, is unmasked. Every such
//! event writes 1 to the eventfd, so a driver that clears causes before looking at its
//! rings never loses a wake-up.
use crate::error::SimError;
use crate::regs::RegisterFile;
use nic_firmware::Function;
use shared_regs::{pf, vf};
use std::sync::Mutex;
use vmm_sys_util::eventfd::EventFd;

/// Vectors each function has.
pub(crate) const VECTORS: u32 = 1;

/// One function's interrupt vector.
pub(crate) struct IrqLine {
    function: Function,
    eventfd: Mutex<Option<EventFd>>,
}

impl IrqLine {
    pub(crate) fn new(function: Function) -> Self {
        IrqLine {
            function,
            eventfd: Mutex::new(None),
        }
    }

    /// Wires (or, with `None`, unwires) `vector` to an eventfd.
    pub(crate) fn set(&self, vector: u32, eventfd: Option<EventFd>) -> Result<(), SimError> {
        if vector >= VECTORS {
            return Err(SimError::NoSuchVector {
                function: self.function,
                vector,
                vectors: VECTORS,
            });
        }
        *self.eventfd.lock().unwrap_or_else(|p| p.into_inner()) = eventfd;
        Ok(())
    }

    /// Device side: latches `cause` into `INTR_CAUSE` and signals the vector if any of those
    /// bits is unmasked.
    pub(crate) fn raise(&self, regs: &RegisterFile, cause: u32) {
        let (cause_reg, mask_reg) = offsets(self.function);
        regs.dev_set_bits(cause_reg, cause);
        if cause & !regs.dev_read(mask_reg) != 0 {
            self.signal();
        }
    }

    /// After a host write to `INTR_MASK`: signals if a pending cause is now unmasked.
    pub(crate) fn mask_changed(&self, regs: &RegisterFile) {
        let (cause_reg, mask_reg) = offsets(self.function);
        if regs.dev_read(cause_reg) & !regs.dev_read(mask_reg) != 0 {
            self.signal();
        }
    }

    fn signal(&self) {
        if let Some(efd) = self
            .eventfd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            // An eventfd write fails only when the counter would overflow, and then the
            // host has a wake-up pending anyway.
            let _ = efd.write(1);
        }
    }
}

fn offsets(function: Function) -> (u32, u32) {
    match function {
        Function::Pf => (pf::INTR_CAUSE, pf::INTR_MASK),
        Function::Vf(_) => (vf::INTR_CAUSE, vf::INTR_MASK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmm_sys_util::eventfd::EFD_NONBLOCK;

    fn wired(function: Function) -> (RegisterFile, IrqLine, EventFd) {
        let regs = RegisterFile::new(function);
        let line = IrqLine::new(function);
        let efd = EventFd::new(EFD_NONBLOCK).unwrap();
        line.set(0, Some(efd.try_clone().unwrap())).unwrap();
        (regs, line, efd)
    }

    #[test]
    fn masked_cause_is_latched_but_does_not_signal() {
        let (regs, line, efd) = wired(Function::Vf(1));
        line.raise(&regs, vf::Intr::RX.bits());
        assert!(efd.read().is_err(), "masked cause must not signal");
        assert_eq!(regs.dev_read(vf::INTR_CAUSE), vf::Intr::RX.bits());
    }

    #[test]
    fn unmasked_cause_signals() {
        let (regs, line, efd) = wired(Function::Pf);
        regs.host_write(u64::from(pf::INTR_MASK), !pf::Intr::ADMINQ.bits())
            .unwrap();
        line.raise(&regs, pf::Intr::READY.bits());
        assert!(efd.read().is_err(), "READY is still masked");
        line.raise(&regs, pf::Intr::ADMINQ.bits());
        assert_eq!(efd.read().unwrap(), 1);
        line.raise(&regs, pf::Intr::ADMINQ.bits());
        line.raise(&regs, pf::Intr::ADMINQ.bits());
        assert_eq!(efd.read().unwrap(), 2, "every raise signals");
    }

    #[test]
    fn unmasking_a_pending_cause_signals() {
        let (regs, line, efd) = wired(Function::Vf(0));
        line.raise(&regs, vf::Intr::TX_DONE.bits());
        assert!(efd.read().is_err());
        regs.host_write(u64::from(vf::INTR_MASK), 0).unwrap();
        line.mask_changed(&regs);
        assert_eq!(efd.read().unwrap(), 1);
    }

    #[test]
    fn unwired_and_unknown_vectors() {
        let (regs, line, efd) = wired(Function::Vf(0));
        regs.host_write(u64::from(vf::INTR_MASK), 0).unwrap();
        line.set(0, None).unwrap();
        line.raise(&regs, vf::Intr::RX.bits());
        assert!(efd.read().is_err());
        let e = line.set(1, None).unwrap_err();
        assert!(
            e.to_string().contains("VF 0") && e.to_string().contains("vector 1"),
            "{e}"
        );
    }
}
