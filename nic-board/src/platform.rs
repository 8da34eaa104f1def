//! [`nic_firmware::Platform`] over the board's MMIO block (see [`crate::regs`]).
use crate::gpio::BoardPin;
use crate::i2c::BoardI2c;
use crate::mmio::Mmio;
use crate::regs::{self, dma, irq, timer, uplink};
use nic_firmware::{DmaError, Function, Peripherals, Platform};

/// Polls of a busy flag before a transfer is given up as failed: far longer than any
/// transfer the hardware takes (16 KiB at PCIe speed), so only a hung engine reaches it.
pub const SPIN_LIMIT: u32 = 1_000_000;

/// The firmware's platform on the board.
pub struct BoardPlatform {
    mmio: Mmio,
    i2c: BoardI2c,
    link_led: BoardPin,
    activity_led: BoardPin,
}

impl BoardPlatform {
    /// The platform over the board's block, with the SFP cage's I2C controller and the
    /// uplink's LED pins (`regs::gpio::PIN_LINK_LED`, `PIN_ACTIVITY_LED`).
    pub fn new(
        mmio: Mmio,
        i2c: BoardI2c,
        link_led: BoardPin,
        activity_led: BoardPin,
    ) -> BoardPlatform {
        BoardPlatform {
            mmio,
            i2c,
            link_led,
            activity_led,
        }
    }

    /// True when the uplink PHY has link.
    pub fn uplink_link_up(&self) -> bool {
        self.mmio.read(uplink::LINK) & 1 != 0
    }

    fn window(func: Function, offset: u32) -> Option<usize> {
        let offset = usize::try_from(offset).ok()?;
        if offset >= regs::WINDOW_SIZE {
            return None;
        }
        let base = match func {
            Function::Pf => regs::PF_WINDOW,
            Function::Vf(n) if n < regs::VF_WINDOWS => usize::from(n)
                .checked_mul(regs::WINDOW_SIZE)?
                .checked_add(regs::VF_WINDOW)?,
            Function::Vf(_) => return None,
        };
        base.checked_add(offset)
    }

    fn func_number(func: Function) -> u32 {
        match func {
            Function::Pf => 0,
            Function::Vf(n) => u32::from(n).saturating_add(1),
        }
    }

    /// Waits for `mask` to clear in register `reg`; false on a hung engine.
    fn wait_idle(&self, reg: usize, mask: u32) -> bool {
        (0..SPIN_LIMIT).any(|_| self.mmio.read(reg) & mask == 0)
    }

    /// One transfer of at most the window's size: `CTRL_READ` or `CTRL_WRITE`.
    fn dma_chunk(
        &mut self,
        func: Function,
        iova: u64,
        len: usize,
        ctrl: u32,
    ) -> Result<(), DmaError> {
        let len = u32::try_from(len).map_err(|_| DmaError)?;
        self.mmio.write(dma::FUNC, Self::func_number(func));
        self.mmio.write(dma::IOVA_LO, (iova & 0xffff_ffff) as u32);
        self.mmio.write(dma::IOVA_HI, (iova >> 32) as u32);
        self.mmio.write(dma::LEN, len);
        self.mmio.write(dma::CTRL, ctrl);
        if !self.wait_idle(dma::STATUS, dma::STATUS_BUSY) {
            return Err(DmaError);
        }
        if self.mmio.read(dma::STATUS) & dma::STATUS_ERROR != 0 {
            return Err(DmaError);
        }
        Ok(())
    }
}

impl Platform for BoardPlatform {
    type I2c = BoardI2c;
    type Led = BoardPin;

    fn peripherals(&mut self) -> Peripherals<'_, BoardI2c, BoardPin> {
        Peripherals {
            i2c: &mut self.i2c,
            link_led: &mut self.link_led,
            activity_led: &mut self.activity_led,
        }
    }

    fn read_reg(&mut self, func: Function, offset: u32) -> u32 {
        Self::window(func, offset).map_or(0, |at| self.mmio.read(at))
    }

    fn write_reg(&mut self, func: Function, offset: u32, value: u32) {
        if let Some(at) = Self::window(func, offset) {
            self.mmio.write(at, value);
        }
    }

    fn dma_read(&mut self, func: Function, iova: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let mut at = iova;
        for chunk in buf.chunks_mut(regs::DMA_WINDOW_SIZE) {
            self.dma_chunk(func, at, chunk.len(), dma::CTRL_READ)?;
            self.mmio.read_bytes(regs::DMA_WINDOW, chunk);
            at = at.checked_add(chunk.len() as u64).ok_or(DmaError)?;
        }
        Ok(())
    }

    fn dma_write(&mut self, func: Function, iova: u64, data: &[u8]) -> Result<(), DmaError> {
        let mut at = iova;
        for chunk in data.chunks(regs::DMA_WINDOW_SIZE) {
            self.mmio.write_bytes(regs::DMA_WINDOW, chunk);
            self.dma_chunk(func, at, chunk.len(), dma::CTRL_WRITE)?;
            at = at.checked_add(chunk.len() as u64).ok_or(DmaError)?;
        }
        Ok(())
    }

    fn raise_irq(&mut self, func: Function, cause: u32) {
        self.mmio.write(irq::FUNC, Self::func_number(func));
        self.mmio.write(irq::CAUSE, cause);
    }

    fn uplink_send(&mut self, frame: &[u8]) -> bool {
        let Ok(len) = u32::try_from(frame.len()) else {
            return false;
        };
        if frame.len() > uplink::BUF_SIZE || !self.wait_idle(uplink::TX_STATUS, uplink::TX_BUSY) {
            return false;
        }
        self.mmio.write_bytes(uplink::TX_BUF, frame);
        self.mmio.write(uplink::TX_LEN, len);
        self.mmio.write(uplink::TX_CTRL, 1);
        // The MAC decides at once whether it takes the frame (link up, FIFO room).
        self.mmio.read(uplink::TX_STATUS) & uplink::TX_DROPPED == 0
    }

    fn uplink_recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let len = usize::try_from(self.mmio.read(uplink::RX_LEN)).ok()?;
        if len == 0 {
            return None;
        }
        let n = len.min(buf.len()).min(uplink::BUF_SIZE);
        if let Some(dst) = buf.get_mut(..n) {
            self.mmio.read_bytes(uplink::RX_BUF, dst);
        }
        self.mmio.write(uplink::RX_POP, 1);
        Some(n)
    }

    fn now_us(&mut self) -> u64 {
        let lo = self.mmio.read(timer::LO);
        let hi = self.mmio.read(timer::HI);
        (u64::from(hi) << 32) | u64::from(lo)
    }
}
