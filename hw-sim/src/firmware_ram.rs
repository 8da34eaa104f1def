//! The firmware's device memory, allocated on the heap from a [`SimConfig`].
//!
//! This is the one place that knows the shape of [`FirmwareMemory`]: the firmware's memory
//! layout is still moving, and keeping every allocation here keeps such a change to one
//! file. Each slice is filled with its element's empty value, which is what the firmware
//! expects of memory it has not yet reset.
use crate::nic::SimConfig;
use nic_firmware::counters::CounterBlock;
use nic_firmware::frame::FrameBuf;
use nic_firmware::rings::VfRings;
use nic_firmware::tables::lpm::RouteSlot;
use nic_firmware::tables::mapping::MappingBucket;
use nic_firmware::tables::vpc::{RouteTable, Slot, Subnet, VfConfig, Vpc};
use nic_firmware::FirmwareMemory;

/// Owns the storage behind a [`FirmwareMemory`].
pub(crate) struct FirmwareRam {
    vf_configs: Vec<Slot<VfConfig>>,
    vf_rings: Vec<VfRings>,
    counters: Vec<CounterBlock>,
    vpcs: Vec<Slot<Vpc>>,
    subnets: Vec<Slot<Subnet>>,
    route_tables: Vec<Slot<RouteTable>>,
    routes: Vec<RouteSlot>,
    routes_per_table: usize,
    mapping_buckets: Vec<MappingBucket>,
    batch: Vec<FrameBuf>,
}

impl FirmwareRam {
    /// Storage for the capacities of `cfg` (which [`SimConfig::validate`] has checked).
    pub(crate) fn new(cfg: &SimConfig) -> Self {
        let vfs = usize::from(cfg.num_vfs);
        let route_tables = usize::from(cfg.route_tables);
        let routes_per_table = usize::from(cfg.routes_per_table);
        FirmwareRam {
            vf_configs: vec![None; vfs],
            vf_rings: vec![VfRings::EMPTY; vfs],
            // One block per VF, then the uplink's.
            counters: vec![CounterBlock::ZERO; vfs + 1],
            vpcs: vec![None; usize::from(cfg.vpcs)],
            subnets: vec![None; usize::from(cfg.subnets)],
            route_tables: vec![None; route_tables],
            routes: vec![RouteSlot::EMPTY; route_tables * routes_per_table],
            routes_per_table,
            mapping_buckets: vec![MappingBucket::EMPTY; cfg.mapping_buckets as usize],
            batch: vec![FrameBuf::EMPTY; usize::from(cfg.batch)],
        }
    }

    /// Lends the storage to the firmware.
    pub(crate) fn memory(&mut self) -> FirmwareMemory<'_> {
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
            batch: &mut self.batch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slice_has_its_configured_capacity() {
        let cfg = SimConfig {
            num_vfs: 3,
            vpcs: 4,
            subnets: 5,
            route_tables: 6,
            routes_per_table: 7,
            mapping_buckets: 8,
            batch: 2,
        };
        let mut ram = FirmwareRam::new(&cfg);
        let m = ram.memory();
        assert_eq!(m.vf_configs.len(), 3);
        assert_eq!(m.vf_rings.len(), 3);
        assert_eq!(m.counters.len(), 4);
        assert_eq!(m.vpcs.len(), 4);
        assert_eq!(m.subnets.len(), 5);
        assert_eq!(m.route_tables.len(), 6);
        assert_eq!(m.routes.len(), 42);
        assert_eq!(m.routes_per_table, 7);
        assert_eq!(m.mapping_buckets.len(), 8);
        assert_eq!(m.batch.len(), 2);
        assert!(m.vf_configs.iter().all(Option::is_none));
        assert!(m.vf_rings.iter().all(|r| *r == VfRings::EMPTY));
        assert!(m.counters.iter().all(|c| *c == CounterBlock::ZERO));
        assert!(m.batch.iter().all(FrameBuf::is_empty));
    }
}
