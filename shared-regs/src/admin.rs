//! # Admin queue
//!
//! The host driver programs every table through one ring of [`AdminCmd`] entries (64 bytes
//! each) in host memory at `ADMINQ_BASE`, `ADMINQ_SIZE` entries long.
//!
//! 1. The driver writes a command into entry `ADMINQ_TAIL % size` with `flags` = 0, then
//!    writes the new tail to `ADMINQ_TAIL` (the doorbell).
//! 2. The firmware takes entries from `ADMINQ_HEAD`, validates every field, applies the
//!    command or changes nothing, and writes the entry back **in place**: `status`,
//!    `result`, and last [`CmdFlags::DONE`]. Then it advances `ADMINQ_HEAD` and raises
//!    `INTR_CAUSE.ADMINQ`.
//! 3. The driver waits for `DONE` (or for the head to pass the entry) and reads the status.
//!
//! Commands are applied one at a time and in order, between batches of the pipeline: the
//! pipeline sees a table before or after a command, never half way.
//!
//! ## Replace in place (ABI 1.3)
//!
//! Changing an object the pipeline depends on by delete-then-add would open a window in
//! which packets fall to another route, or to none. Instead, the commands that create a
//! keyed object (`VPC_ADD`, `SUBNET_ADD`, `ROUTE_ADD`, `MAPPING_ADD`, `VF_SET`,
//! `GATEWAY_ADD`, `UPLINK_SET`) take [`CmdFlags::REPLACE`]: the entry with the same key
//! must exist (else [`Status::NotFound`], nothing changed) and its changeable fields take
//! the command's values in one step, validated exactly as the add validates them. The
//! pipeline sees the old entry or the new one, never a mix and never none; counters, rings
//! and everything else the command does not name are left as they are. What an opcode lets
//! change, and which fields are the object's identity (a change there is a different object:
//! delete and add), is in each opcode's documentation. `REPLACE` on any other opcode is
//! [`Status::BadArgument`]. An older device (ABI 1.2 and before) ignores the flag and runs
//! the add, which an existing key refuses with [`Status::Exists`]: a driver sends `REPLACE`
//! only to a device of ABI 1.3 or later.
//!
//! ## Batches (ABI 1.3)
//!
//! A driver may post many entries before one doorbell write and collect their completions
//! in order as the `DONE` flags appear. A firmware with [`crate::pf::Caps::ADMIN_CHAIN`]
//! also honours [`CmdFlags::CHAIN`]: a command so flagged is skipped (completed with
//! [`Status::Skipped`], nothing changed) when the command before it in the ring did not
//! complete with [`Status::Ok`]. A batch whose every command but the first carries `CHAIN`
//! therefore stops at its first refusal: the commands before it are applied, none after.
//!
//! Parameters up to 40 bytes travel inline in [`AdminCmd::params`] as one of the entry
//! structures of [`crate::entry`]; larger results (statistics) go to an indirect buffer at
//! `buf_addr`/`buf_len` in host memory.
use crate::{Le16, Le32, Le64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Bytes in one admin queue entry.
pub const CMD_SIZE: usize = 64;
/// Bytes of inline parameters in one entry.
pub const PARAMS_SIZE: usize = 40;

bitflags::bitflags! {
    /// `AdminCmd::flags`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct CmdFlags: u16 {
        /// Driver: skip this command (complete it with [`Status::Skipped`]) unless the
        /// command before it in the ring completed with [`Status::Ok`]. Only for a device
        /// with [`crate::pf::Caps::ADMIN_CHAIN`].
        const CHAIN = 1 << 0;
        /// Driver (ABI 1.3): replace the existing entry with this key in place instead of
        /// adding one; [`Status::NotFound`] when there is none. See "Replace in place".
        const REPLACE = 1 << 1;
        /// Device: the command is complete and `status`/`result` are valid.
        const DONE = 1 << 15;
    }
}

/// One admin queue entry: command on the way in, completion on the way out.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AdminCmd {
    /// [`Opcode`].
    pub opcode: Le16,
    /// [`CmdFlags`]; the driver writes 0, [`CmdFlags::CHAIN`] (batches) and/or
    /// [`CmdFlags::REPLACE`] where an opcode takes it.
    pub flags: Le16,
    /// [`Status`], written by the device.
    pub status: Le16,
    /// The driver's tag; the device leaves it unchanged.
    pub cookie: Le16,
    /// IOVA of an indirect buffer, for commands that name one.
    pub buf_addr: Le64,
    /// Length of the indirect buffer.
    pub buf_len: Le32,
    /// Written by the device: bytes written to the indirect buffer, or a command-specific
    /// value (see each opcode).
    pub result: Le32,
    /// Inline parameters: an entry of [`crate::entry`] at offset 0, zero padded.
    pub params: [u8; PARAMS_SIZE],
}

const _: () = assert!(core::mem::size_of::<AdminCmd>() == CMD_SIZE);

impl AdminCmd {
    /// A command with `params` copied from an entry structure (which must fit).
    pub fn new<P: IntoBytes + Immutable>(opcode: Opcode, params: &P) -> Self {
        let mut cmd = AdminCmd::new_zeroed();
        cmd.opcode = Le16::new(opcode as u16);
        let bytes = params.as_bytes();
        let n = bytes.len().min(PARAMS_SIZE);
        cmd.params[..n].copy_from_slice(&bytes[..n]);
        cmd
    }

    /// The inline parameters read as entry structure `P`.
    pub fn params_as<P: FromBytes + KnownLayout + Immutable>(&self) -> Option<P> {
        P::read_from_prefix(&self.params).ok().map(|(p, _)| p)
    }

    /// The completion status, if the device has written one.
    pub fn completion(&self) -> Option<Result<(), Status>> {
        if CmdFlags::from_bits_retain(self.flags.get()).contains(CmdFlags::DONE) {
            Some(Status::from_u16(self.status.get()).into_result())
        } else {
            None
        }
    }
}

macro_rules! opcodes {
    ($($(#[$m:meta])* $name:ident = $val:expr, $text:expr;)*) => {
        /// Admin command opcodes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Opcode { $($(#[$m])* $name = $val,)* }

        impl Opcode {
            /// Every opcode, in numeric order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name,)*];

            /// The opcode with this number.
            pub fn from_u16(v: u16) -> Option<Opcode> {
                match v { $($val => Some(Opcode::$name),)* _ => None }
            }

            /// The datasheet name, as `nicctl` prints it.
            pub fn name(self) -> &'static str {
                match self { $(Opcode::$name => $text,)* }
            }
        }
    };
}

opcodes! {
    /// Does nothing; completes with OK. Params: none. (ABI 1.0)
    Nop = 0x0001, "NOP";
    /// Copies one function's [`crate::stats::Counters`] to the indirect buffer.
    /// Params: [`crate::entry::StatsQuery`]. Result: bytes written. (ABI 1.0)
    GetStats = 0x0002, "GET_STATS";
    /// Zeroes one function's counters. Params: [`crate::entry::StatsQuery`]. (ABI 1.0)
    ClearStats = 0x0003, "CLEAR_STATS";
    /// Adds a VPC. Params: [`crate::entry::VpcEntry`]. An indirect buffer, if given, holds
    /// the VPC's DNS domain name (DHCP option 15) in ASCII, at most
    /// [`crate::entry::DOMAIN_MAX`] bytes. (ABI 1.0; the domain 1.1.)
    ///
    /// With [`CmdFlags::REPLACE`] (ABI 1.3): sets the main route table, the DNS servers and
    /// the domain (none without a buffer) of VPC `id`. Its `vni` and CIDR are its identity
    /// (every mapping is keyed by the VNI, every route table holds the CIDR's local route):
    /// a different value is `BAD_ARGUMENT`. Subnets keep the route table they were given.
    VpcAdd = 0x0010, "VPC_ADD";
    /// Deletes a VPC that no subnet or route table uses. Params: [`crate::entry::IdParam`].
    /// (ABI 1.0)
    VpcDel = 0x0011, "VPC_DEL";
    /// Adds a subnet. Params: [`crate::entry::SubnetEntry`]. (ABI 1.0)
    ///
    /// With [`CmdFlags::REPLACE`] (ABI 1.3): sets the route table (another table of the same
    /// VPC, or [`crate::entry::MAIN_ROUTE_TABLE`]) and the gateway MAC of subnet `id`, its
    /// gateway and broadcast mappings included, while VFs use it. Its VPC and CIDR are its
    /// identity: a different value is `BAD_ARGUMENT`.
    SubnetAdd = 0x0020, "SUBNET_ADD";
    /// Deletes a subnet no VF uses. Params: [`crate::entry::IdParam`]. (ABI 1.0)
    SubnetDel = 0x0021, "SUBNET_DEL";
    /// Adds a route table (VRF) holding the VPC's local route. Params:
    /// [`crate::entry::RouteTableEntry`]. (ABI 1.0) No `REPLACE`: its only field, the VPC,
    /// is its identity; its routes change with `ROUTE_ADD`+`REPLACE`, the subnets that use
    /// it with `SUBNET_ADD`+`REPLACE`.
    RouteTableAdd = 0x0030, "ROUTE_TABLE_ADD";
    /// Deletes a route table no subnet uses. Params: [`crate::entry::IdParam`]. (ABI 1.0)
    RouteTableDel = 0x0031, "ROUTE_TABLE_DEL";
    /// Adds a route. Params: [`crate::entry::RouteEntry`]. (ABI 1.0)
    ///
    /// With [`CmdFlags::REPLACE`] (ABI 1.3): sets the target of the existing route with this
    /// table, prefix and length (`NOT_FOUND` if there is none: a replace never adds, so a
    /// driver whose view of the table is stale learns it instead of adding a route it did
    /// not mean to). The next lookup finds the new target; the prefix never falls to a
    /// shorter route in between. The local route's target cannot change (`BAD_ARGUMENT`).
    RouteAdd = 0x0040, "ROUTE_ADD";
    /// Deletes the route with this table, prefix and length. Params:
    /// [`crate::entry::RouteEntry`] (target ignored). (ABI 1.0)
    RouteDel = 0x0041, "ROUTE_DEL";
    /// Adds a mapping. Params: [`crate::entry::MappingEntry`]. (ABI 1.0)
    ///
    /// With [`CmdFlags::REPLACE`] (ABI 1.3): sets the MAC and location (local VF or remote
    /// host) of the existing instance mapping (VNI, address): an instance moving between
    /// this host and another switches in one step. `NOT_FOUND` if there is none;
    /// `BAD_ARGUMENT` for a firmware-made mapping (subnet gateway, broadcast, VNI anchor).
    MappingAdd = 0x0050, "MAPPING_ADD";
    /// Deletes the mapping with this VNI and address. Params: [`crate::entry::MappingEntry`]
    /// (only `vni` and `ip` read). (ABI 1.0)
    MappingDel = 0x0051, "MAPPING_DEL";
    /// Assigns a VF to an instance: MAC, subnet, primary address, flags. The VF's link goes
    /// up. Params: [`crate::entry::VfEntry`]. A VF already assigned gets `EXISTS`. (ABI 1.0)
    ///
    /// With [`CmdFlags::REPLACE`] (ABI 1.3): re-sets an assigned VF's MAC, subnet, primary
    /// address and flags in place (`NOT_FOUND` if it is not assigned). Its link stays up,
    /// its rings and counters are untouched, its secondary addresses are kept and must be
    /// valid in the new subnet (`BAD_ARGUMENT` otherwise, as must a primary address that is
    /// one of them: remove such secondaries first).
    VfSet = 0x0060, "VF_SET";
    /// Unassigns a VF; its link goes down. Params: [`crate::entry::IdParam`]. (ABI 1.0)
    VfClear = 0x0061, "VF_CLEAR";
    /// Adds a secondary address to an assigned VF (at most
    /// [`crate::entry::VF_SECONDARY_ADDRS`]). Params: [`crate::entry::VfAddrEntry`].
    /// (ABI 1.1) No `REPLACE`: the address is the whole entry; moving it to another VF is
    /// add on the new VF, mapping replace, delete on the old one.
    VfAddrAdd = 0x0062, "VF_ADDR_ADD";
    /// Removes a secondary address. Params: [`crate::entry::VfAddrEntry`]. (ABI 1.1)
    VfAddrDel = 0x0063, "VF_ADDR_DEL";
    /// Changes an assigned VF's flags (source/destination check). Params:
    /// [`crate::entry::VfFlagsEntry`]. (ABI 1.1; it replaces in place by nature.)
    VfFlagsSet = 0x0064, "VF_FLAGS_SET";
    /// Sets the uplink port. Params: [`crate::entry::UplinkEntry`]. (ABI 1.0; it replaces
    /// in place by nature.)
    ///
    /// With [`CmdFlags::REPLACE`] (ABI 1.3): the same, but `NOT_FOUND` when no uplink is set
    /// yet, like every replace.
    UplinkSet = 0x0070, "UPLINK_SET";
    /// Adds a gateway endpoint (internet, VPN or NAT gateway reached over VXLAN). Params:
    /// [`crate::entry::GatewayEntry`]. (ABI 1.1)
    ///
    /// With [`CmdFlags::REPLACE`] (ABI 1.3): sets the kind, underlay address and MAC of
    /// gateway `id` while routes lead to it. `NOT_FOUND` if there is none.
    GatewayAdd = 0x0080, "GATEWAY_ADD";
    /// Deletes a gateway no route uses. Params: [`crate::entry::IdParam`]. (ABI 1.1)
    GatewayDel = 0x0081, "GATEWAY_DEL";
    /// Runs the pipeline in dry run over one frame and reports every decision, sending
    /// nothing and counting nothing. Params: [`crate::entry::TraceQuery`]. The indirect
    /// buffer holds the frame on the way in and a [`crate::trace`] report on the way out.
    /// Result: report bytes. (ABI 1.1)
    Trace = 0x0090, "TRACE";
    /// Reads a table as the NIC holds it, from a cursor. Params:
    /// [`crate::entry::TableReadQuery`]. The indirect buffer receives a
    /// [`crate::entry::TableReadHeader`] and as many whole entries of the table's read format
    /// ([`crate::entry::TableId`]) as fit. Result: bytes written. (ABI 1.1)
    TableRead = 0x00A0, "TABLE_READ";
    /// Reads the uplink port: the SFP module's identity (read again from its EEPROM now),
    /// the link state and the LEDs. Params: none. The indirect buffer receives a
    /// [`crate::entry::PortInfo`]. Result: bytes written. (ABI 1.1)
    PortGet = 0x00B0, "PORT_GET";
}

impl Opcode {
    /// True for the opcodes that take [`CmdFlags::REPLACE`] (ABI 1.3).
    pub const fn takes_replace(self) -> bool {
        matches!(
            self,
            Opcode::VpcAdd
                | Opcode::SubnetAdd
                | Opcode::RouteAdd
                | Opcode::MappingAdd
                | Opcode::VfSet
                | Opcode::UplinkSet
                | Opcode::GatewayAdd
        )
    }
}

macro_rules! statuses {
    ($($(#[$m:meta])* $name:ident = $val:expr, $text:expr;)*) => {
        /// Completion status codes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Status { $($(#[$m])* $name = $val,)* }

        impl Status {
            /// The status with this number; unknown numbers read as `Unknown`.
            pub fn from_u16(v: u16) -> Status {
                match v { $($val => Status::$name,)* _ => Status::Unknown }
            }

            /// What the status means, for error messages.
            pub fn description(self) -> &'static str {
                match self { $(Status::$name => $text,)* }
            }
        }
    };
}

statuses! {
    /// The command was applied.
    Ok = 0, "ok";
    /// The opcode is not one the firmware knows.
    BadOpcode = 1, "unknown opcode";
    /// A parameter is out of range or inconsistent (an index past the table, a prefix length
    /// over 32, a VNI of 0 or over 24 bits, a CIDR with host bits set, ...).
    BadArgument = 2, "bad argument";
    /// The entry to delete or to refer to does not exist.
    NotFound = 3, "not found";
    /// An entry with this key already exists.
    Exists = 4, "already exists";
    /// The table has no free entry.
    TableFull = 5, "table full";
    /// The indirect buffer could not be read or written by DMA.
    DmaError = 6, "DMA error on the command buffer";
    /// The entry is still used by another (a subnet by a VF, a route table by a subnet, ...).
    InUse = 7, "still in use";
    /// The indirect buffer is too small for the result.
    BufferTooSmall = 8, "buffer too small";
    /// Not applied: the command carries [`CmdFlags::CHAIN`] and the one before it failed.
    Skipped = 9, "skipped: an earlier command of its chain failed";
    /// A mapping to a remote host new to the NIC, whose underlay table (the addresses of
    /// the remote hosts its mappings point to) is full; the mapping table itself has room.
    UnderlayFull = 10, "underlay table full: no room for another remote host's address";
    /// A status this driver does not know.
    Unknown = 0xFFFF, "unknown status";
}

impl Status {
    /// `Ok(())` for [`Status::Ok`], the status as an error otherwise.
    pub fn into_result(self) -> Result<(), Status> {
        match self {
            Status::Ok => Ok(()),
            s => Err(s),
        }
    }
}

impl core::fmt::Display for Status {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_numbers_round_trip() {
        for &op in Opcode::ALL {
            assert_eq!(Opcode::from_u16(op as u16), Some(op));
        }
        assert_eq!(Opcode::from_u16(0xBEEF), None);
    }

    #[test]
    fn completion_reads_done_and_status() {
        let mut cmd = AdminCmd::new(Opcode::Nop, &[0u8; 0]);
        assert_eq!(cmd.completion(), None);
        cmd.status = Le16::new(Status::TableFull as u16);
        cmd.flags = Le16::new(CmdFlags::DONE.bits());
        assert_eq!(cmd.completion(), Some(Err(Status::TableFull)));
    }
}
