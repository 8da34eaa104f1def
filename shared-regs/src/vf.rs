//! # VF BAR0 register map
//!
//! Each virtual function has its own BAR0 of [`BAR0_SIZE`] bytes, mapped into the VM that owns
//! the VF. The VM's driver owns the rings; the MAC, link and MTU are set by the PF through
//! admin commands and are read-only to the VF.
//!
//! The registers, their access, reset values and meaning are declared once in
//! [`REGISTERS`]'s `register_map!`, whose documentation is the datasheet table; each offset
//! is a constant of this module.
//!
//! Ring protocol: see [`crate::desc`]. Ring registers are read by the firmware when
//! `CONTROL.ENABLE` goes from 0 to 1; changing them while enabled is undefined.
//!
//! Stopping the rings is a handshake (ABI 1.6), as a virtio device's reset is: the firmware
//! samples `CONTROL` when it polls, so a 1 -> 0 -> 1 quicker than a poll would go unseen and
//! the old rings would be served at their old heads. A driver that clears `ENABLE` waits
//! until `STATUS.RINGS_UP` reads 0 before it sets new ring registers, sets `ENABLE` again or
//! takes back the rings' memory: from then on the device touches none of it. (An older
//! device reads `STATUS` 0 at once.)
use crate::regs::register_map;

/// Size of a VF's BAR0 in bytes.
pub const BAR0_SIZE: u32 = 0x1000;
/// Largest ring the firmware accepts, in descriptors.
pub const MAX_RING_SIZE: u32 = 4096;

register_map! {
    /// Every VF register, for dumps, the simulator's reset values and the compile-time map
    /// check.
    pub REGISTERS, BAR BAR0_SIZE => {
        0x000 VF_INDEX: RO = 0, "this VF's index on its PF (the device sets it at reset)";
        0x004 MAC_LO: RO = 0, "MAC bytes 0..4 (byte 0 in bits 7:0)";
        0x008 MAC_HI: RO = 0, "MAC bytes 4..6 in bits 15:0";
        0x00C LINK: RO = 0, "[`Link`]: up once the PF has assigned the VF to a subnet";
        0x010 MTU: RO = 0, "IPv4 MTU, 9001 when the link is up";
        0x014 CONTROL: RW = 0, "[`Control`]; the firmware serves the rings only when \
            `ENABLE` is set";
        0x018 OFFLOADS: RO = 0, "[`Offloads`] the device offers this VF (ABI 1.5; 0 on an \
            older device)";
        0x01C STATUS: RO = 0, "[`Status`]: whether the device serves the rings (ABI 1.6; 0 \
            on an older device)";
        0x040 TX_BASE_LO: RW = 0, "IOVA of the TX ring, bits 31:0 (16-byte aligned)";
        0x044 TX_BASE_HI: RW = 0, "IOVA of the TX ring, bits 63:32";
        0x048 TX_SIZE: RW = 0, "TX descriptors, a power of two up to [`MAX_RING_SIZE`]";
        0x04C TX_HEAD: RO = 0, "next descriptor the device will take";
        0x050 TX_TAIL: RW = 0, "doorbell: one past the last descriptor posted";
        0x080 RX_BASE_LO: RW = 0, "IOVA of the RX ring, bits 31:0";
        0x084 RX_BASE_HI: RW = 0, "IOVA of the RX ring, bits 63:32";
        0x088 RX_SIZE: RW = 0, "RX descriptors, a power of two up to [`MAX_RING_SIZE`]";
        0x08C RX_HEAD: RO = 0, "next buffer the device will fill";
        0x090 RX_TAIL: RW = 0, "doorbell: one past the last empty buffer posted";
        0x0A0 INTR_CAUSE: RW1C = 0, "[`Intr`]";
        0x0A4 INTR_MASK: RW = u32::MAX, "[`Intr`]; a set bit suppresses that cause's MSI";
    }
}

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
        /// Deliver TCP super-frames whole, and coalesce segments from the uplink
        /// ([`crate::desc::RxFlags::GSO_TCP4`]), into RX buffers large enough; without it
        /// (or when the next buffer is too small) they arrive as segments.
        const RX_GSO = 1 << 1;
    }

    /// `STATUS`, written by the device.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Status: u32 {
        /// The device serves the rings it took at the last `ENABLE` 0 -> 1. Cleared once it
        /// has seen `ENABLE` at 0 and let go of them (heads back at 0), or refused them.
        const RINGS_UP = 1 << 0;
    }

    /// `OFFLOADS`: what the device does for this VF's driver.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Offloads: u32 {
        /// [`crate::desc::TxFlags::CSUM`].
        const TX_CSUM = 1 << 0;
        /// [`crate::desc::TxFlags::TSO`].
        const TSO4 = 1 << 1;
        /// [`crate::desc::RxFlags::CSUM_VALID`].
        const RX_CSUM = 1 << 2;
        /// [`Control::RX_GSO`] and [`crate::desc::RxFlags::GSO_TCP4`].
        const RX_GSO = 1 << 3;
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
