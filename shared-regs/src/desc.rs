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
//!
//! **Offloads** (ABI 1.5, offered when the VF's `OFFLOADS` register has the bit, see
//! [`crate::vf::Offloads`]):
//! - [`TxFlags::CSUM`]: the device computes the TCP or UDP checksum of an IPv4 frame that is
//!   not a fragment, whatever the field holds.
//! - [`TxFlags::TSO`]: the frame is a TCP/IPv4 *super-frame* of up to 65,535 bytes (the
//!   driver's buffer, not a VF frame: its IPv4 total length may exceed the MTU and is not
//!   checked against the frame). The device cuts its payload into segments of `mss` bytes,
//!   each with the super-frame's headers: IPv4 total length, identification (+1 a segment)
//!   and checksum; TCP sequence number (+ payload offset), checksum, and flags (CWR only on
//!   the first segment, FIN and PSH only on the last). Each segment is then forwarded as a
//!   frame the VF sent (every rule and counter applies to it), with one exception: a
//!   super-frame whose destination is a VF of this NIC that set `CONTROL.RX_GSO` and posted
//!   a buffer that holds it is delivered whole (below).
//! - [`RxFlags::CSUM_VALID`]: the frame's TCP or UDP checksum is right: the device computed
//!   it for a sender that asked for [`TxFlags::CSUM`] or [`TxFlags::TSO`], or checked every
//!   segment it coalesced. Without it the receiver checks the checksum itself.
//! - [`RxFlags::GSO_TCP4`]: the frame is a TCP/IPv4 super-frame, its checksums valid over
//!   the whole frame and `mss` its segment size; the receiver may hand it to its stack as
//!   one coalesced packet (Linux: `SKB_GSO_TCPV4`). Either a local VF's super-frame
//!   delivered whole, or back-to-back segments of one TCP flow that arrived from the uplink
//!   in one batch, coalesced (as Linux's GRO): only segments that cutting at `mss` gives
//!   back byte for byte (but for the IPv4 identification) are coalesced, and only with an
//!   `mss` of at least [`MIN_TSO_MSS`], so that a VM may send the super-frame on as it is.
use crate::{Le16, Le64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Bytes in one descriptor of either ring.
pub const DESC_SIZE: usize = 16;

/// The smallest `mss` a [`TxFlags::TSO`] descriptor may ask for: the least a Linux TCP
/// ever sends (`tcp_min_snd_mss` cannot go lower). It bounds the segments one descriptor
/// makes the device cut (1,365 at most), as NICs bound their TSO mss: a driver with a
/// smaller one segments in software.
pub const MIN_TSO_MSS: u16 = 48;

bitflags::bitflags! {
    /// `TxDesc::flags`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct TxFlags: u16 {
        /// Driver: this descriptor holds the end of the frame (must be set: one buffer a frame).
        const EOP = 1 << 0;
        /// Driver: complete the frame's TCP or UDP checksum (IPv4, not a fragment).
        const CSUM = 1 << 1;
        /// Driver: a TCP/IPv4 super-frame to cut into segments of `mss` payload bytes; the
        /// device completes every checksum.
        const TSO = 1 << 2;
        /// Device: the descriptor is done; `status` is valid.
        const DONE = 1 << 15;
    }

    /// `RxDesc::flags`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RxFlags: u16 {
        /// Device: the frame's TCP or UDP checksum was computed by the device and is right.
        const CSUM_VALID = 1 << 0;
        /// Device: a TCP/IPv4 super-frame of segments of `mss` payload bytes, delivered
        /// whole or coalesced to a VF that set `CONTROL.RX_GSO`.
        const GSO_TCP4 = 1 << 1;
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
    /// The descriptor was malformed (no EOP, zero length or longer than a VF frame; with
    /// `TSO`: not TCP/IPv4, headers cut short, `mss` below [`MIN_TSO_MSS`], or offloads the
    /// VF does not offer).
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
    /// With [`TxFlags::TSO`]: TCP payload bytes a segment, at least [`MIN_TSO_MSS`] (ABI 1.5;
    /// was reserved, 0).
    pub mss: Le16,
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
    /// With [`RxFlags::GSO_TCP4`]: TCP payload bytes a segment, the sender's or the first
    /// coalesced segment's (device; ABI 1.5, was reserved).
    pub mss: Le16,
}

const _: () = assert!(core::mem::size_of::<TxDesc>() == DESC_SIZE);
const _: () = assert!(core::mem::size_of::<RxDesc>() == DESC_SIZE);
