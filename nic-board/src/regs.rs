//! The board's MMIO block: the datasheet of the hardware around the firmware's core.
//!
//! This is the board's side of the chip, not the host contract (that is `shared-regs`): the
//! PF and VF BAR0 register files as the core sees them, the DMA engine, the interrupt
//! block, the timer, the uplink MAC's FIFOs, the SFP cage's I2C controller and the LED
//! GPIOs. Every register is 32 bits wide and 32-bit aligned; buffers are byte arrays read
//! and written as little-endian 32-bit words.
//!
//! Base [`MMIO_BASE`] = `0x4000_0000`, [`MMIO_SIZE`] = 192 KiB:
//!
//! | offset | size | block |
//! | --- | --- | --- |
//! | `0x0_0000` | 4 KiB | PF BAR0 register file (dual-ported: the host reads and writes it over PCIe) |
//! | `0x0_1000 + n * 0x1000` | 4 KiB each | VF *n* BAR0 register file, n < [`VF_WINDOWS`] (15) |
//! | `0x1_0000` | 256 B | DMA engine ([`dma`]) |
//! | `0x1_0100` | 256 B | interrupt block ([`irq`]) |
//! | `0x1_0200` | 256 B | microsecond timer ([`timer`]) |
//! | `0x1_0300` | 256 B | uplink MAC ([`uplink`]) |
//! | `0x1_0400` | 256 B | SFP cage I2C controller ([`i2c`]) |
//! | `0x1_0500` | 256 B | I2C data buffer |
//! | `0x1_0600` | 256 B | GPIO ([`gpio`]): LEDs |
//! | `0x2_0000` | 16 KiB | DMA window: the staging SRAM every DMA transfer reads or fills |
//! | `0x2_4000` | 16 KiB | uplink TX buffer |
//! | `0x2_8000` | 16 KiB | uplink RX buffer: the frame at the head of the RX FIFO |
//!
//! A function number in the DMA and interrupt blocks is 0 for the PF and `1 + n` for VF *n*.

/// Where the block sits in the core's address space.
pub const MMIO_BASE: usize = 0x4000_0000;
/// Bytes of the block.
pub const MMIO_SIZE: usize = 0x2_C000;

/// The PF's BAR0 register file.
pub const PF_WINDOW: usize = 0x0_0000;
/// VF 0's BAR0 register file; VF n is at `VF_WINDOW + n * WINDOW_SIZE`.
pub const VF_WINDOW: usize = 0x0_1000;
/// Bytes of one function's register file (= `shared_regs::pf::BAR0_SIZE`).
pub const WINDOW_SIZE: usize = 0x1000;
/// VF register files the block has.
pub const VF_WINDOWS: u16 = 15;

/// DMA engine. Set `FUNC`, `IOVA_*`, `LEN` (at most [`DMA_WINDOW_SIZE`]), then write `CTRL`;
/// poll `STATUS` until `BUSY` clears. An IOVA the function's owner has not mapped (an IOMMU
/// fault) ends the transfer with `ERROR`, which the next start clears.
pub mod dma {
    pub const BASE: usize = 0x1_0000;
    pub const FUNC: usize = BASE;
    pub const IOVA_LO: usize = BASE + 0x04;
    pub const IOVA_HI: usize = BASE + 0x08;
    pub const LEN: usize = BASE + 0x0C;
    /// Write [`CTRL_READ`] (host memory -> window) or [`CTRL_WRITE`] (window -> host memory).
    pub const CTRL: usize = BASE + 0x10;
    pub const STATUS: usize = BASE + 0x14;
    pub const CTRL_READ: u32 = 1;
    pub const CTRL_WRITE: u32 = 2;
    pub const STATUS_BUSY: u32 = 1 << 0;
    pub const STATUS_ERROR: u32 = 1 << 1;
}

/// Interrupt block: write `FUNC`, then `CAUSE`; the write of `CAUSE` ORs it into the
/// function's `INTR_CAUSE` and sends its MSI-X vector if a bit is unmasked in `INTR_MASK`.
pub mod irq {
    pub const BASE: usize = 0x1_0100;
    pub const FUNC: usize = BASE;
    pub const CAUSE: usize = BASE + 0x04;
}

/// A free-running 64-bit microsecond counter. Reading `LO` latches `HI`.
pub mod timer {
    pub const BASE: usize = 0x1_0200;
    pub const LO: usize = BASE;
    pub const HI: usize = BASE + 0x04;
}

/// Uplink MAC. TX: copy the frame to the TX buffer, write `TX_LEN`, write 1 to `TX_CTRL`;
/// `TX_STATUS.BUSY` is set until the frame left the buffer, `DROPPED` if the MAC dropped it
/// (link down). RX: `RX_LEN` is the length of the frame at the head of the FIFO (0: empty),
/// readable in the RX buffer; write 1 to `RX_POP` to move to the next.
pub mod uplink {
    pub const BASE: usize = 0x1_0300;
    pub const TX_LEN: usize = BASE;
    pub const TX_CTRL: usize = BASE + 0x04;
    pub const TX_STATUS: usize = BASE + 0x08;
    pub const RX_LEN: usize = BASE + 0x0C;
    pub const RX_POP: usize = BASE + 0x10;
    /// Bit 0: the PHY has link. Read-only.
    pub const LINK: usize = BASE + 0x14;
    pub const TX_BUSY: u32 = 1 << 0;
    pub const TX_DROPPED: u32 = 1 << 1;
    pub const TX_BUF: usize = 0x2_4000;
    pub const RX_BUF: usize = 0x2_8000;
    pub const BUF_SIZE: usize = 0x4000;
}

/// SFP cage I2C controller (100 kHz). Write `ADDR` (7-bit), `LEN` (at most 256), fill the
/// data buffer for a write, then `CTRL`: `START_WRITE` or `START_READ`, with `STOP` to end
/// the transaction (a read without it after a write is a repeated start). Poll `STATUS`.
pub mod i2c {
    pub const BASE: usize = 0x1_0400;
    pub const ADDR: usize = BASE;
    pub const CTRL: usize = BASE + 0x04;
    pub const LEN: usize = BASE + 0x08;
    pub const STATUS: usize = BASE + 0x0C;
    pub const DATA: usize = 0x1_0500;
    pub const DATA_SIZE: usize = 0x100;
    pub const CTRL_START_WRITE: u32 = 1 << 0;
    pub const CTRL_START_READ: u32 = 1 << 1;
    pub const CTRL_STOP: u32 = 1 << 2;
    pub const STATUS_BUSY: u32 = 1 << 0;
    pub const STATUS_NACK_ADDR: u32 = 1 << 1;
    pub const STATUS_NACK_DATA: u32 = 1 << 2;
    pub const STATUS_ARB_LOST: u32 = 1 << 3;
}

/// GPIO outputs: `OUT` is the pin levels; writing a mask to `SET` / `CLR` drives those pins
/// high / low.
pub mod gpio {
    pub const BASE: usize = 0x1_0600;
    pub const OUT: usize = BASE;
    pub const SET: usize = BASE + 0x04;
    pub const CLR: usize = BASE + 0x08;
    /// The uplink's link LED.
    pub const PIN_LINK_LED: u8 = 0;
    /// The uplink's activity LED.
    pub const PIN_ACTIVITY_LED: u8 = 1;
}

/// The DMA window: staging SRAM of every transfer.
pub const DMA_WINDOW: usize = 0x2_0000;
/// Bytes of the DMA window: the longest single transfer.
pub const DMA_WINDOW_SIZE: usize = 0x4000;

// The map fits the block and the windows do not overlap.
const _: () = assert!(VF_WINDOW + VF_WINDOWS as usize * WINDOW_SIZE <= dma::BASE);
const _: () = assert!(WINDOW_SIZE == shared_regs::pf::BAR0_SIZE as usize);
const _: () = assert!(WINDOW_SIZE == shared_regs::vf::BAR0_SIZE as usize);
const _: () = assert!(DMA_WINDOW + DMA_WINDOW_SIZE <= uplink::TX_BUF);
const _: () = assert!(uplink::RX_BUF + uplink::BUF_SIZE <= MMIO_SIZE);
const _: () = assert!(uplink::BUF_SIZE >= nic_firmware::frame::MAX_FRAME);
