//! # vpcnic device contract
//!
//! This crate is the datasheet of the vpcnic SmartNIC, written as code. Everything the host
//! driver and the firmware must agree on lives here once: the PF and VF register maps, the
//! VF ring descriptor formats, the admin queue command format with its opcodes and status
//! codes, the table entry formats carried by admin commands, and the statistics layout.
//!
//! All multi-byte fields are **little-endian** and all structures are `#[repr(C)]` with
//! byte-aligned fields (`zerocopy` `Unaligned`), so a structure can be read straight out of
//! a DMA buffer at any offset. Every structure's size is checked at compile time.
//!
//! ## Functions and regions
//! | function | region | size | what it holds |
//! | --- | --- | --- | --- |
//! | PF | BAR0 | [`pf::BAR0_SIZE`] | identification, capabilities, control/status, heartbeat, admin queue, interrupts |
//! | VF *n* | BAR0 | [`vf::BAR0_SIZE`] | the VF's MAC (read-only), link, MTU, TX and RX rings, interrupts |
//!
//! Registers are 32 bits wide and must be accessed with aligned 32-bit reads and writes.
//!
//! ## Conventions in the register tables
//! - **RO**: written by the device, read by the host; host writes are ignored.
//! - **RW**: written by the host, read by the device.
//! - **RW1C**: set by the device; the host clears a bit by writing 1 to it.
#![no_std]
#![forbid(unsafe_code)]

mod macros;

pub mod admin;
pub mod desc;
pub mod entry;
pub mod pf;
pub mod regs;
pub mod stats;
pub mod trace;
pub mod vf;

/// Little-endian field types used in every layout of this crate.
pub use zerocopy::byteorder::little_endian::{U16 as Le16, U32 as Le32, U64 as Le64};

/// Major ABI version. A driver refuses a device whose major version differs from its own.
pub const ABI_VERSION_MAJOR: u16 = 1;
/// Minor ABI version. Raised for backwards-compatible additions (new opcodes, new counters)
/// and for changes of meaning an older peer reads without harm:
/// - 1.1: gateways, secondary addresses, VF flags, VPC domain, VXLAN, MTU, `TRACE`.
/// - 1.2: a trace's mapping step that finds a subnet gateway gives this host's underlay
///   address as its argument (it was 0), see [`trace::MappedTo::Gateway`].
/// - 1.3: [`admin::CmdFlags::REPLACE`]: `VPC_ADD`, `SUBNET_ADD`, `ROUTE_ADD`,
///   `MAPPING_ADD`, `VF_SET`, `GATEWAY_ADD` and `UPLINK_SET` replace an existing entry in
///   place (make-before-break changes of a running VPC).
/// - 1.4: [`admin::Status::UnderlayFull`]: a mapping to a new remote host when the NIC
///   holds as many remote hosts as it can (an older driver reports an unknown status);
///   [`pf::CAP_UNDERLAYS`] says how many that is.
/// - 1.5: VF offloads: [`vf::OFFLOADS`], [`vf::Control::RX_GSO`], checksum and TSO flags
///   and the `mss` fields of the descriptors (were reserved, 0), see [`desc`].
/// - 1.6: [`vf::STATUS`]: the device says when it has let go of a VF's rings, so that a
///   driver restarting them never races the firmware's poll (see [`vf`]).
/// - 1.7: `TABLE_READ` of [`entry::TableId::VpcDomain`]: the VPCs' DNS domains, so that a
///   driver reading back what a NIC holds sees a changed domain.
pub const ABI_VERSION_MINOR: u16 = 7;
/// The value of [`pf::ABI_VERSION`]: major in bits 31:16, minor in bits 15:0.
pub const ABI_VERSION: u32 = ((ABI_VERSION_MAJOR as u32) << 16) | ABI_VERSION_MINOR as u32;

/// The value of [`pf::ID`]: the ASCII bytes "VPCN" read as a little-endian u32.
pub const DEVICE_ID_MAGIC: u32 = u32::from_le_bytes(*b"VPCN");

/// Largest Ethernet frame (without FCS) a VF may send or receive: MTU 9001 plus the
/// 14-byte Ethernet header.
pub const VF_MAX_FRAME: usize = VF_MTU as usize + ETH_HEADER_LEN;
/// Longest TCP super-frame a VF driver may hand over with `TxFlags::TSO` or receive with
/// `RxFlags::GSO_TCP4`, Ethernet header included (a descriptor's length is 16 bits).
pub const MAX_SUPER_FRAME: usize = u16::MAX as usize;
/// The IPv4 MTU of every VF (F13).
pub const VF_MTU: u32 = 9001;
/// Length of an untagged Ethernet header.
pub const ETH_HEADER_LEN: usize = 14;

/// An IPv4 address as it sits in a layout: four bytes in network order.
pub type Ipv4Bytes = [u8; 4];
/// A MAC address as it sits in a layout.
pub type MacBytes = [u8; 6];
