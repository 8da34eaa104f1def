//! The firmware's device memory, handed in by the platform. A board gives `static` arrays;
//! hw-sim gives heap allocations. Every slice's length is that table's capacity.
use crate::counters::CounterBlock;
use crate::frame::FrameBuf;
use crate::pipeline::FlowEntry;
use crate::rings::VfRings;
use crate::tables::lpm::RouteSlot;
use crate::tables::mapping::{MappingBucket, MappingTags, UnderlaySlot};
use crate::tables::vpc::{Gateway, RouteTable, Slot, Subnet, VfConfig, Vpc};

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
    /// Mapping table buckets of 4 entries (a power of two of them).
    pub mapping_buckets: &'m mut [MappingBucket],
    /// Their tags: [`MappingTags::lines_for`] the buckets, 8 bytes a bucket.
    pub mapping_tags: &'m mut [MappingTags],
    /// The underlay addresses of remote mappings, each once (at most 65,536 are used).
    pub underlays: &'m mut [UnderlaySlot],
    pub gateways: &'m mut [Slot<Gateway>],
    /// The pipeline batch: frames taken from a ring in one go (32 is a good size).
    pub batch: &'m mut [FrameBuf],
    /// The flow cache: a power of two of entries (64 bytes each), or none to go without.
    pub flow_cache: &'m mut [FlowEntry],
}

/// Firmware memory on the heap, for the simulator, tests and benchmarks (feature `alloc`;
/// never in a firmware image).
#[cfg(any(test, feature = "alloc"))]
pub mod heap {
    extern crate alloc;
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Capacity of each table.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Sizes {
        pub vfs: usize,
        pub vpcs: usize,
        pub subnets: usize,
        pub route_tables: usize,
        pub routes_per_table: usize,
        /// Mapping table buckets, 4 entries each (a power of two).
        pub mapping_buckets: usize,
        /// Distinct underlay addresses (remote hosts) the mappings may use.
        pub underlays: usize,
        pub gateways: usize,
        pub batch: usize,
        /// Flows the flow cache holds (a power of two; 0: no cache).
        pub flow_cache: usize,
    }

    impl Default for Sizes {
        /// Small tables, quick to allocate: what unit tests want.
        fn default() -> Self {
            Sizes {
                vfs: 8,
                vpcs: 16,
                subnets: 32,
                route_tables: 16,
                routes_per_table: 32,
                mapping_buckets: 512,
                underlays: 1024,
                gateways: 8,
                batch: 8,
                flow_cache: 256,
            }
        }
    }

    /// Owns the storage behind a [`FirmwareMemory`]; every entry starts empty.
    pub struct OwnedMemory {
        vf_configs: Vec<Slot<VfConfig>>,
        vf_rings: Vec<VfRings>,
        counters: Vec<CounterBlock>,
        vpcs: Vec<Slot<Vpc>>,
        subnets: Vec<Slot<Subnet>>,
        route_tables: Vec<Slot<RouteTable>>,
        routes: Vec<RouteSlot>,
        routes_per_table: usize,
        mapping_buckets: Vec<MappingBucket>,
        mapping_tags: Vec<MappingTags>,
        underlays: Vec<UnderlaySlot>,
        gateways: Vec<Slot<Gateway>>,
        batch: Vec<FrameBuf>,
        flow_cache: Vec<FlowEntry>,
    }

    impl OwnedMemory {
        /// Storage of the given sizes.
        pub fn new(s: Sizes) -> Self {
            OwnedMemory {
                vf_configs: vec![None; s.vfs],
                vf_rings: vec![VfRings::EMPTY; s.vfs],
                // One block per VF, then the uplink's.
                counters: vec![CounterBlock::ZERO; s.vfs.saturating_add(1)],
                vpcs: vec![None; s.vpcs],
                subnets: vec![None; s.subnets],
                route_tables: vec![None; s.route_tables],
                routes: vec![RouteSlot::EMPTY; s.route_tables.saturating_mul(s.routes_per_table)],
                routes_per_table: s.routes_per_table,
                mapping_buckets: vec![MappingBucket::EMPTY; s.mapping_buckets],
                mapping_tags: vec![MappingTags::EMPTY; MappingTags::lines_for(s.mapping_buckets)],
                underlays: vec![UnderlaySlot::EMPTY; s.underlays],
                gateways: vec![None; s.gateways],
                batch: vec![FrameBuf::EMPTY; s.batch],
                flow_cache: vec![FlowEntry::EMPTY; s.flow_cache],
            }
        }

        /// Lends the storage to the firmware.
        pub fn memory(&mut self) -> FirmwareMemory<'_> {
            FirmwareMemory {
                vf_configs: &mut self.vf_configs,
                vf_rings: &mut self.vf_rings,
                counters: &mut self.counters,
                vpcs: &mut self.vpcs,
                subnets: &mut self.subnets,
                route_tables: &mut self.route_tables,
                routes: &mut self.routes,
                routes_per_table: self.routes_per_table,
                mapping_buckets: &mut self.mapping_buckets,
                mapping_tags: &mut self.mapping_tags,
                underlays: &mut self.underlays,
                gateways: &mut self.gateways,
                batch: &mut self.batch,
                flow_cache: &mut self.flow_cache,
            }
        }
    }
}
