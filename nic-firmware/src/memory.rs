//! The firmware's device memory, handed in by the platform. A board gives `static` arrays;
//! hw-sim gives heap allocations. Every slice's length is that table's capacity.
use crate::counters::CounterBlock;
use crate::frame::FrameBuf;
use crate::rings::VfRings;
use crate::tables::lpm::RouteSlot;
use crate::tables::mapping::MappingBucket;
use crate::tables::vpc::{RouteTable, Slot, Subnet, VfConfig, Vpc};

/// Storage for every table, counter and batch buffer of the firmware.
///
/// Fill each slice with its element's empty value (`None`, `EMPTY`, `ZERO`).
pub struct FirmwareMemory<'m> {
    /// One per VF: the instance it serves. Its length is the VF count.
    pub vf_configs: &'m mut [Slot<VfConfig>],
    /// One per VF: ring state.
    pub vf_rings: &'m mut [VfRings],
    /// One per VF, then one for the uplink (so one longer than `vf_configs`).
    pub counters: &'m mut [CounterBlock],
    pub vpcs: &'m mut [Slot<Vpc>],
    pub subnets: &'m mut [Slot<Subnet>],
    pub route_tables: &'m mut [Slot<RouteTable>],
    /// `route_tables.len() * routes_per_table` slots.
    pub routes: &'m mut [RouteSlot],
    /// Routes each route table holds, the local route included.
    pub routes_per_table: usize,
    pub mapping_buckets: &'m mut [MappingBucket],
    /// The pipeline batch: frames taken from a ring in one go (32 is a good size).
    pub batch: &'m mut [FrameBuf],
}
