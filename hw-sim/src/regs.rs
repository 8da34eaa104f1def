//! Register files: one BAR0 of 32-bit registers per function, with the host-side access
//! rules of the datasheet and the few side effects silicon applies by itself.
//!
//! The host (driver or VM) goes through [`RegisterFile::host_read`] and
//! [`RegisterFile::host_write`], which enforce alignment, the BAR size and each register's
//! [`Access`]. The firmware goes through [`RegisterFile::dev_read`] and
//! [`RegisterFile::dev_write`], which apply no rules: on the device side every register is
//! plain storage, which is how the firmware writes read-only status and clears self-clearing
//! bits. Both sides run concurrently, so every word is an atomic.
use crate::error::SimError;
use nic_firmware::Function;
use shared_regs::regs::{lookup, Access, Reg};
use shared_regs::{pf, vf};
use std::sync::atomic::{AtomicU32, Ordering};

/// What a host write did besides storing, for the caller to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteEffect {
    /// Nothing beyond the register itself.
    None,
    /// `INTR_MASK` was written: a pending cause may now be unmasked.
    MaskChanged,
    /// The PF's `CONTROL.RESET` was written: the firmware restarts, whatever state it hung in.
    Reset,
}

/// One function's BAR0.
pub(crate) struct RegisterFile {
    function: Function,
    map: &'static [Reg],
    words: Box<[AtomicU32]>,
}

impl RegisterFile {
    /// A register file at its reset values: each register's `reset` from the datasheet map;
    /// for a VF, `VF_INDEX` holds the VF's index.
    pub(crate) fn new(function: Function) -> Self {
        let (map, size) = match function {
            Function::Pf => (pf::REGISTERS, pf::BAR0_SIZE),
            Function::Vf(_) => (vf::REGISTERS, vf::BAR0_SIZE),
        };
        let words: Box<[AtomicU32]> = (0..size / 4).map(|_| AtomicU32::new(0)).collect();
        let file = RegisterFile {
            function,
            map,
            words,
        };
        for r in map {
            file.dev_write(r.offset, r.reset);
        }
        if let Function::Vf(n) = function {
            file.dev_write(vf::VF_INDEX, u32::from(n));
        }
        file
    }

    /// BAR0 size in bytes.
    pub(crate) fn bar_size(&self) -> u64 {
        self.words.len() as u64 * 4
    }

    /// The word index of a host offset, or the error naming it.
    fn host_index(&self, offset: u64) -> Result<usize, SimError> {
        if !offset.is_multiple_of(4) {
            return Err(SimError::MisalignedAccess {
                function: self.function,
                offset,
            });
        }
        let index = usize::try_from(offset / 4).unwrap_or(usize::MAX);
        if index >= self.words.len() {
            return Err(SimError::OutsideBar {
                function: self.function,
                offset,
                bar_size: self.bar_size(),
            });
        }
        Ok(index)
    }

    /// A host read. Offsets with no register read as 0.
    pub(crate) fn host_read(&self, offset: u64) -> Result<u32, SimError> {
        let i = self.host_index(offset)?;
        Ok(self.words[i].load(Ordering::Acquire))
    }

    /// A host write under the register's access rule: read-only registers and offsets with
    /// no register ignore it, RW1C clears the bits written as 1, RW stores. A PF write with
    /// `CONTROL.RESET` set also clears PF `STATUS` at once, so a driver polling for `READY`
    /// never sees the state from before its reset request.
    pub(crate) fn host_write(&self, offset: u64, value: u32) -> Result<WriteEffect, SimError> {
        let i = self.host_index(offset)?;
        let Some(reg) = u32::try_from(offset).ok().and_then(|o| lookup(self.map, o)) else {
            return Ok(WriteEffect::None);
        };
        match reg.access {
            Access::ReadOnly => return Ok(WriteEffect::None),
            Access::WriteOneToClear => {
                self.words[i].fetch_and(!value, Ordering::AcqRel);
            }
            Access::ReadWrite => self.words[i].store(value, Ordering::Release),
        }
        if self.function == Function::Pf
            && reg.offset == pf::CONTROL
            && pf::Control::from_bits_retain(value).contains(pf::Control::RESET)
        {
            self.dev_write(pf::STATUS, 0);
            return Ok(WriteEffect::Reset);
        }
        let mask = match self.function {
            Function::Pf => pf::INTR_MASK,
            Function::Vf(_) => vf::INTR_MASK,
        };
        Ok(if reg.offset == mask {
            WriteEffect::MaskChanged
        } else {
            WriteEffect::None
        })
    }

    /// A device-side read: no rules; offsets outside the BAR read as 0.
    pub(crate) fn dev_read(&self, offset: u32) -> u32 {
        self.words
            .get(offset as usize / 4)
            .map_or(0, |w| w.load(Ordering::Acquire))
    }

    /// A device-side write: no rules; offsets outside the BAR are ignored.
    pub(crate) fn dev_write(&self, offset: u32, value: u32) {
        if let Some(w) = self.words.get(offset as usize / 4) {
            w.store(value, Ordering::Release);
        }
    }

    /// ORs bits in on the device side (interrupt causes); returns the new value.
    pub(crate) fn dev_set_bits(&self, offset: u32, bits: u32) -> u32 {
        self.words
            .get(offset as usize / 4)
            .map_or(0, |w| w.fetch_or(bits, Ordering::AcqRel) | bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_values_come_from_the_datasheet() {
        let pf_file = RegisterFile::new(Function::Pf);
        assert_eq!(
            pf_file.host_read(u64::from(pf::ID)).unwrap(),
            shared_regs::DEVICE_ID_MAGIC
        );
        assert_eq!(
            pf_file.host_read(u64::from(pf::INTR_MASK)).unwrap(),
            u32::MAX
        );
        assert_eq!(pf_file.host_read(u64::from(pf::STATUS)).unwrap(), 0);
        let vf_file = RegisterFile::new(Function::Vf(5));
        assert_eq!(vf_file.host_read(u64::from(vf::VF_INDEX)).unwrap(), 5);
        assert_eq!(
            vf_file.host_read(u64::from(vf::INTR_MASK)).unwrap(),
            u32::MAX
        );
        assert_eq!(vf_file.bar_size(), u64::from(vf::BAR0_SIZE));
    }

    #[test]
    fn read_only_host_writes_are_ignored() {
        let f = RegisterFile::new(Function::Pf);
        f.host_write(u64::from(pf::ID), 0xdead_beef).unwrap();
        assert_eq!(
            f.host_read(u64::from(pf::ID)).unwrap(),
            shared_regs::DEVICE_ID_MAGIC
        );
        f.dev_write(pf::ADMINQ_HEAD, 7);
        f.host_write(u64::from(pf::ADMINQ_HEAD), 0).unwrap();
        assert_eq!(f.host_read(u64::from(pf::ADMINQ_HEAD)).unwrap(), 7);
        let v = RegisterFile::new(Function::Vf(2));
        v.host_write(u64::from(vf::VF_INDEX), 9).unwrap();
        v.host_write(u64::from(vf::MAC_LO), 9).unwrap();
        assert_eq!(v.host_read(u64::from(vf::VF_INDEX)).unwrap(), 2);
        assert_eq!(v.host_read(u64::from(vf::MAC_LO)).unwrap(), 0);
    }

    #[test]
    fn read_write_registers_store_and_the_device_sees_them() {
        let v = RegisterFile::new(Function::Vf(0));
        v.host_write(u64::from(vf::TX_TAIL), 17).unwrap();
        assert_eq!(v.host_read(u64::from(vf::TX_TAIL)).unwrap(), 17);
        assert_eq!(v.dev_read(vf::TX_TAIL), 17);
    }

    #[test]
    fn write_one_to_clear_clears_only_written_bits() {
        let f = RegisterFile::new(Function::Vf(0));
        f.dev_set_bits(vf::INTR_CAUSE, 0b111);
        f.host_write(u64::from(vf::INTR_CAUSE), 0b010).unwrap();
        assert_eq!(f.host_read(u64::from(vf::INTR_CAUSE)).unwrap(), 0b101);
        f.host_write(u64::from(vf::INTR_CAUSE), 0).unwrap();
        assert_eq!(f.host_read(u64::from(vf::INTR_CAUSE)).unwrap(), 0b101);
    }

    #[test]
    fn pf_reset_request_clears_status_at_once() {
        let f = RegisterFile::new(Function::Pf);
        f.dev_write(pf::STATUS, pf::Status::READY.bits());
        f.host_write(u64::from(pf::CONTROL), pf::Control::ADMINQ_ENABLE.bits())
            .unwrap();
        assert_eq!(f.dev_read(pf::STATUS), pf::Status::READY.bits());
        f.host_write(u64::from(pf::CONTROL), pf::Control::RESET.bits())
            .unwrap();
        assert_eq!(f.host_read(u64::from(pf::STATUS)).unwrap(), 0);
        assert_eq!(f.dev_read(pf::CONTROL), pf::Control::RESET.bits());
    }

    #[test]
    fn misaligned_and_out_of_range_offsets_are_rejected_by_name() {
        let f = RegisterFile::new(Function::Vf(3));
        let e = f.host_read(0x42).unwrap_err();
        assert!(matches!(e, SimError::MisalignedAccess { offset: 0x42, .. }));
        assert!(
            e.to_string().contains("VF 3") && e.to_string().contains("0x42"),
            "{e}"
        );
        let e = f.host_write(0x1000, 0).unwrap_err();
        assert!(matches!(e, SimError::OutsideBar { offset: 0x1000, .. }));
        assert!(e.to_string().contains("0x1000"), "{e}");
        assert!(f.host_read(u64::MAX - 3).is_err());
        assert!(f.host_read(0xFFC).is_ok());
    }

    #[test]
    fn mask_writes_are_reported() {
        let f = RegisterFile::new(Function::Pf);
        assert_eq!(
            f.host_write(u64::from(pf::INTR_MASK), 0).unwrap(),
            WriteEffect::MaskChanged
        );
        assert_eq!(
            f.host_write(u64::from(pf::ADMINQ_TAIL), 1).unwrap(),
            WriteEffect::None
        );
    }
}
