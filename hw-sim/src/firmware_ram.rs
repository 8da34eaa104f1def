//! The firmware's device memory, allocated on the heap with the capacities of a
//! [`SimConfig`]: the "silicon" choices a board makes with static arrays.
use crate::nic::SimConfig;
use nic_firmware::memory::heap::{OwnedMemory, Sizes};

/// Flows the simulated NIC's flow cache holds: 65,536 x 64 B = 4 MiB, as a NIC's SRAM
/// cache for the flows of its VMs.
const FLOW_CACHE: usize = 1 << 16;

/// Storage for the capacities of `cfg` (which [`SimConfig::validate`] has checked).
pub(crate) fn allocate(cfg: &SimConfig) -> OwnedMemory {
    OwnedMemory::new(Sizes {
        vfs: usize::from(cfg.num_vfs),
        vpcs: usize::from(cfg.vpcs),
        subnets: usize::from(cfg.subnets),
        route_tables: usize::from(cfg.route_tables),
        routes_per_table: usize::from(cfg.routes_per_table),
        mapping_buckets: cfg.mapping_buckets as usize,
        underlays: cfg.underlays as usize,
        gateways: usize::from(cfg.gateways),
        batch: usize::from(cfg.batch),
        flow_cache: FLOW_CACHE,
    })
}
