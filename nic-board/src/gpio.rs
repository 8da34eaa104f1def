//! The board's GPIO outputs (see [`crate::regs::gpio`]) as
//! [`embedded_hal::digital::OutputPin`]s, for `nic_firmware::port::led`.
use crate::mmio::Mmio;
use crate::regs::gpio as r;
use core::convert::Infallible;
use embedded_hal::digital::{ErrorType, OutputPin};

/// One output pin.
pub struct BoardPin {
    mmio: Mmio,
    mask: u32,
}

impl BoardPin {
    /// Pin `pin` (0..32) of the GPIO block in `mmio`.
    pub fn new(mmio: Mmio, pin: u8) -> BoardPin {
        BoardPin {
            mmio,
            mask: 1u32.checked_shl(u32::from(pin)).unwrap_or(0),
        }
    }
}

impl ErrorType for BoardPin {
    type Error = Infallible;
}

impl OutputPin for BoardPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.mmio.write(r::CLR, self.mask);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.mmio.write(r::SET, self.mask);
        Ok(())
    }
}
