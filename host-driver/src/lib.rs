//! # vpcnic host driver
//!
//! The driver of the vpcnic physical function. It knows the device only through
//! `shared-regs` (the device contract) and reaches it only through the [`Device`] trait:
//! 32-bit BAR0 register access, DMA memory and interrupts. Backends: the in-process
//! simulator ([`backend::sim`], feature `sim`) and a PF bound to vfio-pci
//! ([`backend::vfio`]); a simulator process over vfio-user ([`backend::vfio_user`]).
//!
//! A library only: no command line, no printing, no file formats. The operator's tool is the
//! `nicctl` crate on top of it.
//!
//! - [`device`]: the backend trait.
//! - [`dma`]: memfd-backed DMA buffers and the IOVA allocator.
//! - [`bringup`]: reset, identification, ABI check, capabilities, admin queue start.
//! - [`adminq`]: posting admin commands and waiting for their in-place completion.
//! - [`batch`]: many table commands per doorbell, completions collected in order.
//! - [`tables`]: typed table entries and their shared-regs encoding.
//! - [`nic`]: [`PfDriver`], the typed admin calls.
//! - [`trace`]: `TRACE` reports decoded into types.
//! - [`reconcile`]: what the NIC should hold against what it holds, as ordered admin
//!   commands (make-before-break), and their application.
//! - [`table_read`]: the NIC's tables read back (`TABLE_READ`) into typed rows.
//! - [`port`]: the uplink port (`PORT_GET`): the SFP module the firmware read, link, LEDs.
//! - [`sriov`]: a PF's VFs through sysfs: created, bound to vfio-pci, listed.
//! - [`vf_token`]: the VF token of a PF that vfio-pci owns.
pub mod adminq;
pub mod backend;
pub mod batch;
pub mod bringup;
pub mod device;
pub mod dma;
pub mod error;
pub mod health;
pub mod nic;
pub mod port;
pub mod reconcile;
pub mod sriov;
pub mod table_read;
pub mod tables;
#[cfg(test)]
pub(crate) mod test_utils;
pub mod trace;
pub mod vf_token;

pub use batch::Batch;
pub use bringup::{DeviceInfo, Options};
pub use device::Device;
pub use dma::{DmaMemory, IovaAllocator};
pub use error::{DriverError, Result};
pub use nic::PfDriver;
pub use tables::{
    Cidr, GatewayKind, GatewaySpec, Mac, MappingLocationSpec, Port, RouteTarget, StatsFunction,
    SubnetSpec, UplinkSpec, VfSpec, VpcSpec,
};
pub use trace::TraceReport;
