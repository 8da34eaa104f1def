//! What a VM's driver reaches of its function: the PCI function as a guest sees it. The
//! VM-side VF driver (the `vf-driver` crate) is written against [`GuestPort`].
use crate::error::SimError;
use crate::nic::FunctionPort;
use nic_firmware::Function;
use std::fs::File;
use vmm_sys_util::eventfd::EventFd;

/// What a VM's driver reaches of its VF: BAR0, DMA mappings, interrupt vectors. The
/// in-process [`FunctionPort`] is one; a VF served by `nic-sim` over vfio-user
/// ([`crate::vfio_user::client::VfioUserPort`]) is another.
pub trait GuestPort: Send + Sync + std::fmt::Debug {
    /// Which function this is.
    fn function(&self) -> Function;
    /// Size of BAR0 in bytes.
    fn bar_size(&self) -> u64;
    /// A 32-bit read of BAR0 (4-byte aligned, inside the BAR).
    fn bar_read32(&self, offset: u64) -> Result<u32, SimError>;
    /// A 32-bit write of BAR0 (4-byte aligned, inside the BAR).
    fn bar_write32(&self, offset: u64, value: u32) -> Result<(), SimError>;
    /// Makes `[iova, iova + size)` of the function's DMA space reach `file` from
    /// `file_offset` (all multiples of 4 KiB).
    fn dma_map(&self, iova: u64, size: u64, file: &File, file_offset: u64) -> Result<(), SimError>;
    /// Removes the mappings in `[iova, iova + size)`.
    fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), SimError>;
    /// Wires interrupt `vector` to `eventfd`, or unwires it.
    fn set_irq(&self, vector: u32, eventfd: Option<EventFd>) -> Result<(), SimError>;
}

impl GuestPort for FunctionPort {
    fn function(&self) -> Function {
        FunctionPort::function(self)
    }
    fn bar_size(&self) -> u64 {
        FunctionPort::bar_size(self)
    }
    fn bar_read32(&self, offset: u64) -> Result<u32, SimError> {
        FunctionPort::bar_read32(self, offset)
    }
    fn bar_write32(&self, offset: u64, value: u32) -> Result<(), SimError> {
        FunctionPort::bar_write32(self, offset, value)
    }
    fn dma_map(&self, iova: u64, size: u64, file: &File, file_offset: u64) -> Result<(), SimError> {
        FunctionPort::dma_map(self, iova, size, file, file_offset)
    }
    fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), SimError> {
        FunctionPort::dma_unmap(self, iova, size)
    }
    fn set_irq(&self, vector: u32, eventfd: Option<EventFd>) -> Result<(), SimError> {
        FunctionPort::set_irq(self, vector, eventfd)
    }
}

/// A shared port is a port (a test keeps a handle on the VF its VM drives).
impl<P: GuestPort + ?Sized> GuestPort for std::sync::Arc<P> {
    fn function(&self) -> Function {
        (**self).function()
    }
    fn bar_size(&self) -> u64 {
        (**self).bar_size()
    }
    fn bar_read32(&self, offset: u64) -> Result<u32, SimError> {
        (**self).bar_read32(offset)
    }
    fn bar_write32(&self, offset: u64, value: u32) -> Result<(), SimError> {
        (**self).bar_write32(offset, value)
    }
    fn dma_map(&self, iova: u64, size: u64, file: &File, file_offset: u64) -> Result<(), SimError> {
        (**self).dma_map(iova, size, file, file_offset)
    }
    fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), SimError> {
        (**self).dma_unmap(iova, size)
    }
    fn set_irq(&self, vector: u32, eventfd: Option<EventFd>) -> Result<(), SimError> {
        (**self).set_irq(vector, eventfd)
    }
}
