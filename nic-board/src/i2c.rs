//! The SFP cage's I2C controller (see [`crate::regs::i2c`]) as an
//! [`embedded_hal::i2c::I2c`] bus, for `nic_firmware::port::sfp`.
use crate::mmio::Mmio;
use crate::platform::SPIN_LIMIT;
use crate::regs::i2c as r;
use embedded_hal::i2c::{
    ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation, SevenBitAddress,
};

/// The board's I2C controller.
pub struct BoardI2c {
    mmio: Mmio,
}

impl BoardI2c {
    /// The controller in `mmio` (the board's block).
    pub fn new(mmio: Mmio) -> BoardI2c {
        BoardI2c { mmio }
    }

    fn run(&mut self, addr: u8, len: usize, ctrl: u32) -> Result<(), ErrorKind> {
        let len = u32::try_from(len).map_err(|_| ErrorKind::Overrun)?;
        self.mmio.write(r::ADDR, u32::from(addr));
        self.mmio.write(r::LEN, len);
        self.mmio.write(r::CTRL, ctrl);
        let status = (0..SPIN_LIMIT)
            .map(|_| self.mmio.read(r::STATUS))
            .find(|s| s & r::STATUS_BUSY == 0)
            .ok_or(ErrorKind::Other)?;
        if status & r::STATUS_NACK_ADDR != 0 {
            Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))
        } else if status & r::STATUS_NACK_DATA != 0 {
            Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data))
        } else if status & r::STATUS_ARB_LOST != 0 {
            Err(ErrorKind::ArbitrationLoss)
        } else {
            Ok(())
        }
    }
}

impl ErrorType for BoardI2c {
    type Error = ErrorKind;
}

impl I2c<SevenBitAddress> for BoardI2c {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), ErrorKind> {
        let last = operations.len().saturating_sub(1);
        for (i, op) in operations.iter_mut().enumerate() {
            let stop = if i == last { r::CTRL_STOP } else { 0 };
            match op {
                Operation::Write(data) => {
                    for chunk in data.chunks(r::DATA_SIZE) {
                        self.mmio.write_bytes(r::DATA, chunk);
                        self.run(address, chunk.len(), r::CTRL_START_WRITE | stop)?;
                    }
                }
                Operation::Read(buf) => {
                    for chunk in buf.chunks_mut(r::DATA_SIZE) {
                        self.run(address, chunk.len(), r::CTRL_START_READ | stop)?;
                        self.mmio.read_bytes(r::DATA, chunk);
                    }
                }
            }
        }
        Ok(())
    }
}
