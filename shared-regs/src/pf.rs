//! # PF BAR0 register map
//!
//! The physical function's BAR0 is [`BAR0_SIZE`] bytes of 32-bit registers. The host driver
//! owns the PF; VMs never see it.
//!
//! The registers, their access, reset values and meaning are declared once in
//! [`REGISTERS`]'s `register_map!`, whose documentation is the datasheet table; each offset
//! is a constant of this module.
//!
//! ## Bring-up
//! 1. Write `CONTROL.RESET`. The device clears `STATUS.READY` at once, the firmware empties
//!    every table, zeroes counters and queue registers, then writes the identification and
//!    capability registers and sets `STATUS.READY`.
//! 2. Poll `STATUS.READY` (the firmware takes well under 100 ms), then check `ID` and the
//!    major `ABI_VERSION`.
//! 3. Program `ADMINQ_BASE_*` and `ADMINQ_SIZE`, set `CONTROL.ADMINQ_ENABLE`.
//!
//! The admin queue protocol is described in [`crate::admin`].
use crate::regs::register_map;

/// Size of PF BAR0 in bytes.
pub const BAR0_SIZE: u32 = 0x1000;

register_map! {
    /// Every PF register, for dumps, the simulator's reset values and the compile-time map
    /// check.
    pub REGISTERS, BAR BAR0_SIZE => {
        0x000 ID: RO = crate::DEVICE_ID_MAGIC, "\"VPCN\" ([`crate::DEVICE_ID_MAGIC`])";
        0x004 ABI_VERSION: RO = 0, "major in bits 31:16, minor in 15:0; valid once `STATUS.READY`";
        0x008 CAPS: RO = 0, "[`Caps`] feature bits";
        0x00C NUM_VFS: RO = 0, "VFs the device exposes";
        0x010 CAP_VPCS: RO = 0, "capacity of the VPC table";
        0x014 CAP_SUBNETS: RO = 0, "capacity of the subnet table";
        0x018 CAP_ROUTE_TABLES: RO = 0, "route tables (VRFs)";
        0x01C CAP_ROUTES: RO = 0, "routes per route table, the implicit local route included";
        0x020 CAP_MAPPINGS: RO = 0, "entries of the (VNI, IPv4) mapping table";
        0x024 CAP_ADMINQ_ENTRIES: RO = 0, "largest admin queue the firmware accepts";
        0x028 CAP_GATEWAYS: RO = 0, "capacity of the gateway table (ABI 1.1)";
        0x02C CAP_UNDERLAYS: RO = 0, "remote hosts (underlay addresses) the mapping table \
            can point to (ABI 1.4)";
        0x040 CONTROL: RW = 0, "[`Control`]; `RESET` self-clears when the reset is taken";
        0x044 STATUS: RO = 0, "[`Status`]";
        0x048 HEARTBEAT: RO = 0, "incremented by the firmware at least every millisecond \
            while it runs";
        0x080 ADMINQ_BASE_LO: RW = 0, "IOVA of the admin queue, bits 31:0 (64-byte aligned)";
        0x084 ADMINQ_BASE_HI: RW = 0, "IOVA of the admin queue, bits 63:32";
        0x088 ADMINQ_SIZE: RW = 0, "admin queue entries, a power of two; 0 disables the queue";
        0x08C ADMINQ_HEAD: RO = 0, "next entry the firmware will take";
        0x090 ADMINQ_TAIL: RW = 0, "doorbell: one past the last entry the driver posted";
        0x0A0 INTR_CAUSE: RW1C = 0, "[`Intr`] causes raised since last cleared";
        0x0A4 INTR_MASK: RW = u32::MAX, "[`Intr`]; a set bit suppresses that cause's MSI";
    }
}

/// Interrupt vector (MSI-X entry) of the PF that carries [`Intr`] causes.
pub const IRQ_VECTOR: u32 = 0;

bitflags::bitflags! {
    /// `CAPS`: what this firmware implements.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Caps: u32 {
        /// ARP proxy (F3).
        const ARP_PROXY = 1 << 0;
        /// Multi-VRF longest-prefix-match routing (F8).
        const MULTI_VRF = 1 << 1;
        /// VXLAN encapsulation on the uplink (F14, F15).
        const VXLAN = 1 << 2;
        /// DHCP server (F9).
        const DHCP = 1 << 3;
        /// Dry-run trace of one frame.
        const TRACE = 1 << 4;
        /// Admin command chains: [`crate::admin::CmdFlags::CHAIN`] and
        /// [`crate::admin::Status::Skipped`].
        const ADMIN_CHAIN = 1 << 5;
    }

    /// `CONTROL`, written by the host.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Control: u32 {
        /// Request a device reset. Self-clearing: the device clears it when the firmware has
        /// taken the reset.
        const RESET = 1 << 0;
        /// Let the firmware take commands from the admin queue.
        const ADMINQ_ENABLE = 1 << 1;
    }

    /// `STATUS`, written by the device.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Status: u32 {
        /// The firmware has finished reset and takes admin commands.
        const READY = 1 << 0;
        /// The admin queue registers were invalid when `ADMINQ_ENABLE` was set (size not a
        /// power of two, too large, or base not 64-byte aligned); the queue is not running.
        const ADMINQ_ERROR = 1 << 1;
        /// The firmware stopped on an unrecoverable error; only a reset leaves this state.
        const FATAL = 1 << 31;
    }

    /// `INTR_CAUSE` and `INTR_MASK` bits.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Intr: u32 {
        /// At least one admin command completed.
        const ADMINQ = 1 << 0;
        /// The firmware became ready after a reset.
        const READY = 1 << 1;
    }
}
