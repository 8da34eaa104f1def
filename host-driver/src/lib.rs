//! # vpcnic host driver
//!
//! The driver of the vpcnic physical function. It knows the device only through
//! `shared-regs` (the device contract) and reaches it only through the [`Device`] trait:
//! 32-bit BAR0 register access, DMA memory and interrupts. Backends: the in-process
//! simulator ([`backend::sim`], feature `sim`) and a PF bound to vfio-pci
//! ([`backend::vfio`]); vfio-user later.
//!
//! - [`device`]: the backend trait.
//! - [`dma`]: memfd-backed DMA buffers and the IOVA allocator.
//! - [`bringup`]: reset, identification, ABI check, capabilities, admin queue start.
//! - [`adminq`]: posting admin commands and waiting for their in-place completion.
//! - [`tables`]: typed table entries and their shared-regs encoding.
//! - [`nic`]: [`PfDriver`], the typed admin calls.
//! - [`trace`]: `TRACE` reports decoded; [`report`] prints them.
//! - [`show`]: the NIC's tables read back (`TABLE_READ`) and printed.
//! - [`config`]: the VPC description file, validated, and planned into driver calls.
//! - [`flow`]: test frames for traces, built from a flow spec and the VPC file.
//! - [`control`]: the JSON-lines protocol of a running `nicctl up`'s control socket.
//! - [`pcap`]: classic pcap files, for `nicctl capture`.
//! - [`port`]: the uplink port (`PORT_GET`): the SFP module the firmware read, link, LEDs.
//! - [`sriov`]: a PF's VFs through sysfs: created, bound to vfio-pci, listed.
//! - `vm`: simulated VMs, network namespaces whose `eth0` is bridged to a VF (feature `sim`).
pub mod adminq;
pub mod backend;
pub mod bringup;
pub mod config;
pub mod control;
pub mod device;
pub mod dma;
pub mod error;
pub mod flow;
pub mod nic;
pub mod pcap;
pub mod port;
pub mod report;
pub mod show;
pub mod sriov;
pub mod tables;
#[cfg(test)]
pub(crate) mod test_utils;
pub mod trace;
pub mod vf_token;
#[cfg(feature = "sim")]
pub mod vm;

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
