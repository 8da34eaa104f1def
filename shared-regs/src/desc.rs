//! # VF ring descriptors
//!
//! A VF has one TX ring and one RX ring, each an array of 16-byte descriptors in the VM's
//! memory at the IOVA in `TX_BASE`/`RX_BASE`. Indices run modulo the ring size.
//!
//! **TX.** The driver fills descriptors `[TX_TAIL, ...)` with one whole frame each (no
//! scatter-gather), sets [`TxFlags::EOP`], and writes the new tail to `TX_TAIL`. The device
//! takes descriptors from `TX_HEAD` up to the tail, writes back `status` and
//! [`TxFlags::DONE`], advances `TX_HEAD` and raises `TX_DONE`. A descriptor is the driver's
//! again once `DONE` is set.
//!
//! **RX.** The driver posts empty buffers (`addr`, `buf_len`) and writes `RX_TAIL`. The device
//! fills buffers from `RX_HEAD`, writes `len` and [`RxFlags::DONE`], advances `RX_HEAD` and
//! raises `RX`. A frame for a VF with no posted buffer is dropped and counted
//! (`drop_rx_no_buffer`).
use crate::{Le16, Le64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Bytes in one descriptor of either ring.
pub const DESC_SIZE: usize = 16;

bitflags::bitflags! {
    /// `TxDesc::flags`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct TxFlags: u16 {
        /// Driver: this descriptor holds the end of the frame (must be set: one buffer a frame).
        const EOP = 1 << 0;
        /// Device: the descriptor is done; `status` is valid.
        const DONE = 1 << 15;
    }

    /// `RxDesc::flags`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RxFlags: u16 {
        /// Device: a frame of `len` bytes is in the buffer.
        const DONE = 1 << 15;
    }
}

/// `TxDesc::status` written back by the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum TxStatus {
    /// The frame was taken (forwarded or dropped by policy; see the counters).
    Ok = 0,
    /// The descriptor was malformed (no EOP, zero length or longer than a VF frame).
    BadDescriptor = 1,
    /// The frame buffer could not be read by DMA.
    DmaError = 2,
}

/// A TX descriptor, written by the VM's driver.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TxDesc {
    /// IOVA of the frame.
    pub addr: Le64,
    /// Frame length in bytes.
    pub len: Le16,
    /// [`TxFlags`].
    pub flags: Le16,
    /// [`TxStatus`], written by the device.
    pub status: Le16,
    pub reserved: [u8; 2],
}

/// An RX descriptor.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RxDesc {
    /// IOVA of an empty buffer (driver).
    pub addr: Le64,
    /// Size of that buffer (driver).
    pub buf_len: Le16,
    /// Length of the received frame (device).
    pub len: Le16,
    /// [`RxFlags`] (device).
    pub flags: Le16,
    pub reserved: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<TxDesc>() == DESC_SIZE);
const _: () = assert!(core::mem::size_of::<RxDesc>() == DESC_SIZE);
