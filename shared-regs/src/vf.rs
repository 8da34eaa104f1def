//! # VF BAR0 register map
//!
//! Each virtual function has its own BAR0 of [`BAR0_SIZE`] bytes, mapped into the VM that owns
//! the VF. The VM's driver owns the rings; the MAC, link and MTU are set by the PF through
//! admin commands and are read-only to the VF.
//!
//! | offset | name | access | reset | meaning |
//! | --- | --- | --- | --- | --- |
//! | 0x000 | `VF_INDEX` | RO | n | this VF's index on its PF |
//! | 0x004 | `MAC_LO` | RO | 0 | MAC bytes 0..4 (byte 0 in bits 7:0) |
//! | 0x008 | `MAC_HI` | RO | 0 | MAC bytes 4..6 in bits 15:0 |
//! | 0x00C | `LINK` | RO | 0 | [`Link`]: up once the PF has assigned the VF to a subnet |
//! | 0x010 | `MTU` | RO | 0 | IPv4 MTU, 9001 when the link is up |
//! | 0x014 | `CONTROL` | RW | 0 | [`Control`]; the firmware serves the rings only when `ENABLE` is set |
//! | 0x040 | `TX_BASE_LO` | RW | 0 | IOVA of the TX ring, bits 31:0 (16-byte aligned) |
//! | 0x044 | `TX_BASE_HI` | RW | 0 | IOVA bits 63:32 |
//! | 0x048 | `TX_SIZE` | RW | 0 | descriptors, a power of two up to [`MAX_RING_SIZE`] |
//! | 0x04C | `TX_HEAD` | RO | 0 | next descriptor the device will take |
//! | 0x050 | `TX_TAIL` | RW | 0 | doorbell: one past the last descriptor posted |
//! | 0x080 | `RX_BASE_LO` | RW | 0 | IOVA of the RX ring, bits 31:0 |
//! | 0x084 | `RX_BASE_HI` | RW | 0 | IOVA bits 63:32 |
//! | 0x088 | `RX_SIZE` | RW | 0 | descriptors, a power of two up to [`MAX_RING_SIZE`] |
//! | 0x08C | `RX_HEAD` | RO | 0 | next buffer the device will fill |
//! | 0x090 | `RX_TAIL` | RW | 0 | doorbell: one past the last empty buffer posted |
//! | 0x0A0 | `INTR_CAUSE` | RW1C | 0 | [`Intr`] |
//! | 0x0A4 | `INTR_MASK` | RW | all ones | [`Intr`]; a set bit suppresses that cause's MSI |
//!
//! Ring protocol: see [`crate::desc`]. Ring registers are read by the firmware when
//! `CONTROL.ENABLE` goes from 0 to 1; changing them while enabled is undefined.
use crate::regs::{map_is_valid, Access, Reg};

/// Size of a VF's BAR0 in bytes.
pub const BAR0_SIZE: u32 = 0x1000;
/// Largest ring the firmware accepts, in descriptors.
pub const MAX_RING_SIZE: u32 = 4096;

pub const VF_INDEX: u32 = 0x000;
pub const MAC_LO: u32 = 0x004;
pub const MAC_HI: u32 = 0x008;
pub const LINK: u32 = 0x00C;
pub const MTU: u32 = 0x010;
pub const CONTROL: u32 = 0x014;
pub const TX_BASE_LO: u32 = 0x040;
pub const TX_BASE_HI: u32 = 0x044;
pub const TX_SIZE: u32 = 0x048;
pub const TX_HEAD: u32 = 0x04C;
pub const TX_TAIL: u32 = 0x050;
pub const RX_BASE_LO: u32 = 0x080;
pub const RX_BASE_HI: u32 = 0x084;
pub const RX_SIZE: u32 = 0x088;
pub const RX_HEAD: u32 = 0x08C;
pub const RX_TAIL: u32 = 0x090;
pub const INTR_CAUSE: u32 = 0x0A0;
pub const INTR_MASK: u32 = 0x0A4;

/// Interrupt vector of a VF that carries its [`Intr`] causes.
pub const IRQ_VECTOR: u32 = 0;

bitflags::bitflags! {
    /// `LINK`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Link: u32 {
        /// The VF is assigned to a subnet and forwards traffic.
        const UP = 1 << 0;
    }

    /// `CONTROL`, written by the VM's driver.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Control: u32 {
        /// Serve the TX and RX rings.
        const ENABLE = 1 << 0;
    }

    /// `INTR_CAUSE` and `INTR_MASK` bits.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Intr: u32 {
        /// TX descriptors were completed.
        const TX_DONE = 1 << 0;
        /// Frames were written to RX buffers.
        const RX = 1 << 1;
        /// A ring register was invalid when `ENABLE` was set; the rings are not served.
        const RING_ERROR = 1 << 2;
    }
}

/// Every VF register, for dumps and for the compile-time map check.
pub const REGISTERS: &[Reg] = &[
    Reg::new(VF_INDEX, "VF_INDEX", 0, Access::ReadOnly),
    Reg::new(MAC_LO, "MAC_LO", 0, Access::ReadOnly),
    Reg::new(MAC_HI, "MAC_HI", 0, Access::ReadOnly),
    Reg::new(LINK, "LINK", 0, Access::ReadOnly),
    Reg::new(MTU, "MTU", 0, Access::ReadOnly),
    Reg::new(CONTROL, "CONTROL", 0, Access::ReadWrite),
    Reg::new(TX_BASE_LO, "TX_BASE_LO", 0, Access::ReadWrite),
    Reg::new(TX_BASE_HI, "TX_BASE_HI", 0, Access::ReadWrite),
    Reg::new(TX_SIZE, "TX_SIZE", 0, Access::ReadWrite),
    Reg::new(TX_HEAD, "TX_HEAD", 0, Access::ReadOnly),
    Reg::new(TX_TAIL, "TX_TAIL", 0, Access::ReadWrite),
    Reg::new(RX_BASE_LO, "RX_BASE_LO", 0, Access::ReadWrite),
    Reg::new(RX_BASE_HI, "RX_BASE_HI", 0, Access::ReadWrite),
    Reg::new(RX_SIZE, "RX_SIZE", 0, Access::ReadWrite),
    Reg::new(RX_HEAD, "RX_HEAD", 0, Access::ReadOnly),
    Reg::new(RX_TAIL, "RX_TAIL", 0, Access::ReadWrite),
    Reg::new(INTR_CAUSE, "INTR_CAUSE", 0, Access::WriteOneToClear),
    Reg::new(INTR_MASK, "INTR_MASK", u32::MAX, Access::ReadWrite),
];

const _: () = assert!(map_is_valid(REGISTERS, BAR0_SIZE));

/// Packs a MAC into the (`MAC_LO`, `MAC_HI`) register pair.
pub const fn mac_to_regs(mac: [u8; 6]) -> (u32, u32) {
    (
        u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        u32::from_le_bytes([mac[4], mac[5], 0, 0]),
    )
}

/// Unpacks a MAC from the (`MAC_LO`, `MAC_HI`) register pair.
pub const fn mac_from_regs(lo: u32, hi: u32) -> [u8; 6] {
    let l = lo.to_le_bytes();
    let h = hi.to_le_bytes();
    [l[0], l[1], l[2], l[3], h[0], h[1]]
}
