//! The platform the firmware runs on: hw-sim's device thread today, a SmartNIC board later.
//!
//! The firmware touches the outside world only through this trait, so the same code runs
//! in the simulator, on a board and under a fuzzer.

/// A PCI function of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    /// The physical function, owned by the host driver.
    Pf,
    /// Virtual function `n`, owned by a VM.
    Vf(u16),
}

/// A DMA transfer touched memory the function's owner has not mapped for the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaError;

/// The uplink port's peripherals, borrowed from the platform for one use: the SFP cage's
/// I2C bus (the module's EEPROM answers at 0x50) and the two LED pins.
pub struct Peripherals<'a, I, L> {
    pub i2c: &'a mut I,
    pub link_led: &'a mut L,
    pub activity_led: &'a mut L,
}

/// What the firmware needs from the chip around it.
pub trait Platform {
    /// The SFP cage's I2C bus.
    type I2c: embedded_hal::i2c::I2c;
    /// An LED output pin (active high).
    type Led: embedded_hal::digital::OutputPin;

    /// The uplink port's I2C bus and LED pins.
    fn peripherals(&mut self) -> Peripherals<'_, Self::I2c, Self::Led>;
    /// Reads a 32-bit register of `func`'s BAR0 (device side: no access rules apply).
    fn read_reg(&mut self, func: Function, offset: u32) -> u32;
    /// Writes a 32-bit register of `func`'s BAR0 (device side: read-only registers included).
    fn write_reg(&mut self, func: Function, offset: u32, value: u32);
    /// Reads `buf.len()` bytes at `iova` in `func`'s DMA address space.
    fn dma_read(&mut self, func: Function, iova: u64, buf: &mut [u8]) -> Result<(), DmaError>;
    /// Writes `data` at `iova` in `func`'s DMA address space.
    fn dma_write(&mut self, func: Function, iova: u64, data: &[u8]) -> Result<(), DmaError>;
    /// Sets `cause` bits in `func`'s `INTR_CAUSE`; the interrupt block signals the function's
    /// vector if any of them is unmasked.
    fn raise_irq(&mut self, func: Function, cause: u32);
    /// Queues a frame on the uplink port. False when the port dropped it.
    fn uplink_send(&mut self, frame: &[u8]) -> bool;
    /// Takes the next frame received on the uplink port into `buf`, returning its length.
    fn uplink_recv(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// A monotonic clock in microseconds.
    fn now_us(&mut self) -> u64;
}
