//! [`DeviceSide`]: the device's own view of the board (register files from the inside, DMA,
//! interrupts), for tests of a VM-side driver that stall the firmware and play the device
//! themselves. Feature `testing`; never part of what a driver reaches.
use crate::device::SimPlatform;
use crate::nic::Nic;
use nic_firmware::{DmaError, Function, Platform};
use std::sync::Arc;

/// The device's side of a simulated NIC (what the firmware's platform reaches).
pub struct DeviceSide(SimPlatform);

impl DeviceSide {
    /// The device side of `nic`. Stall the firmware first (`nic.faults().stall_firmware`),
    /// or it plays the device too.
    pub fn of(nic: &Nic) -> DeviceSide {
        DeviceSide(SimPlatform::new(Arc::clone(&nic.shared)))
    }

    /// A register of `func` as the device sees it.
    pub fn read_reg(&mut self, func: Function, offset: u32) -> u32 {
        self.0.read_reg(func, offset)
    }

    /// Sets a register of `func` from the device's side (e.g. a ring head).
    pub fn write_reg(&mut self, func: Function, offset: u32, value: u32) {
        self.0.write_reg(func, offset, value)
    }

    /// Reads `func`'s DMA space.
    pub fn dma_read(&mut self, func: Function, iova: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        self.0.dma_read(func, iova, buf)
    }

    /// Writes `func`'s DMA space.
    pub fn dma_write(&mut self, func: Function, iova: u64, data: &[u8]) -> Result<(), DmaError> {
        self.0.dma_write(func, iova, data)
    }

    /// Raises interrupt `cause` on `func`.
    pub fn raise_irq(&mut self, func: Function, cause: u32) {
        self.0.raise_irq(func, cause)
    }
}
