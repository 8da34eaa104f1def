//! The one trait every device backend implements: what a PCI function offers a driver.
//!
//! A backend gives 32-bit access to the PF's BAR0, maps host memory for the device's DMA,
//! and routes an MSI-X vector to an eventfd. The in-process simulator, vfio-user and VFIO on
//! real hardware all fit this shape; nothing above this trait knows which one it talks to.
use crate::dma::DmaMemory;
use crate::error::{DriverError, Result};
use vmm_sys_util::eventfd::EventFd;

/// A PCI physical function of a vpcnic device.
pub trait Device: Send + Sync {
    /// What the device is, for error messages: "simulated NIC (in-process)",
    /// "0000:3b:00.0 (vfio)".
    fn describe(&self) -> String;

    /// Size of BAR0 in bytes.
    fn bar0_size(&self) -> u64;

    /// Reads the 32-bit register at byte `offset` of BAR0 (4-byte aligned).
    fn read32(&self, offset: u32) -> Result<u32>;

    /// Writes the 32-bit register at byte `offset` of BAR0 (4-byte aligned).
    fn write32(&self, offset: u32, value: u32) -> Result<()>;

    /// Makes `mem` reachable by the device's DMA at `mem.iova()`.
    fn dma_map(&self, mem: &DmaMemory) -> Result<()>;

    /// Removes the mapping made by [`Device::dma_map`].
    fn dma_unmap(&self, mem: &DmaMemory) -> Result<()>;

    /// Signals `fd` when the device raises MSI-X `vector`; `None` disconnects it.
    fn set_irq(&self, vector: u32, fd: Option<&EventFd>) -> Result<()>;
}

/// A shared device is a device (tests keep a handle on a backend they hand the driver).
impl<D: Device + ?Sized> Device for std::sync::Arc<D> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn bar0_size(&self) -> u64 {
        (**self).bar0_size()
    }
    fn read32(&self, offset: u32) -> Result<u32> {
        (**self).read32(offset)
    }
    fn write32(&self, offset: u32, value: u32) -> Result<()> {
        (**self).write32(offset, value)
    }
    fn dma_map(&self, mem: &DmaMemory) -> Result<()> {
        (**self).dma_map(mem)
    }
    fn dma_unmap(&self, mem: &DmaMemory) -> Result<()> {
        (**self).dma_unmap(mem)
    }
    fn set_irq(&self, vector: u32, fd: Option<&EventFd>) -> Result<()> {
        (**self).set_irq(vector, fd)
    }
}

/// The datasheet name of the PF register at `offset`, or "(unnamed)".
pub fn pf_register_name(offset: u32) -> &'static str {
    shared_regs::regs::lookup(shared_regs::pf::REGISTERS, offset)
        .map(|r| r.name)
        .unwrap_or("(unnamed)")
}

impl DriverError {
    /// A failed register access of a backend, naming the register.
    pub fn register(
        device: &dyn Device,
        access: &'static str,
        offset: u32,
        reason: impl std::fmt::Display,
    ) -> Self {
        DriverError::Register {
            device: device.describe(),
            access,
            register: pf_register_name(offset),
            offset,
            reason: reason.to_string(),
        }
    }

    /// A failed DMA map or unmap of a backend.
    pub fn dma_map(
        device: &dyn Device,
        action: &'static str,
        mem: &DmaMemory,
        reason: impl std::fmt::Display,
    ) -> Self {
        DriverError::DmaMap {
            device: device.describe(),
            action,
            iova: mem.iova(),
            size: mem.size(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_names_come_from_the_map() {
        assert_eq!(pf_register_name(shared_regs::pf::STATUS), "STATUS");
        assert_eq!(
            pf_register_name(shared_regs::pf::ADMINQ_TAIL),
            "ADMINQ_TAIL"
        );
        assert_eq!(pf_register_name(0xffc), "(unnamed)");
    }

    #[test]
    fn every_pf_register_is_named() {
        assert_eq!(
            pf_register_name(shared_regs::pf::CAP_GATEWAYS),
            "CAP_GATEWAYS"
        );
        for r in shared_regs::pf::REGISTERS {
            assert_eq!(pf_register_name(r.offset), r.name);
        }
    }
}
