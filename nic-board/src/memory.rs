//! The firmware's tables in static memory, with the board image's capacities.
//!
//! The board has 256 KiB of SRAM; the capacities below keep the tables and buffers at
//! 62 KiB (`size_of::<BoardMemory>()`, at most [`BUDGET`], checked at build time), the rest
//! being stack, the firmware's own state and room to grow: 8 VFs, 16 VPCs, 32 subnets,
//! 16 route tables of 16 routes, 512 mappings of 64 remote hosts, 8 gateways, a batch of 4 jumbo frames, 64 flows. A bigger part raises them here; the host driver
//! reads them from the PF's `CAP_*` registers.
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use nic_firmware::counters::CounterBlock;
use nic_firmware::frame::FrameBuf;
use nic_firmware::pipeline::FlowEntry;
use nic_firmware::rings::VfRings;
use nic_firmware::tables::lpm::RouteSlot;
use nic_firmware::tables::mapping::{MappingBucket, MappingTags, UnderlaySlot};
use nic_firmware::tables::vpc::{Gateway, RouteTable, Slot, Subnet, VfConfig, Vpc};
use nic_firmware::FirmwareMemory;

/// VFs the board serves.
pub const VFS: usize = 8;
pub const VPCS: usize = 16;
pub const SUBNETS: usize = 32;
pub const ROUTE_TABLES: usize = 16;
/// Routes per route table, the local route included.
pub const ROUTES_PER_TABLE: usize = 16;
/// Mapping buckets of 4 slots: 512 mappings.
pub const MAPPING_BUCKETS: usize = 128;
/// Underlay addresses (hosts of remote instances) the mappings may use.
pub const UNDERLAYS: usize = 64;
pub const GATEWAYS: usize = 8;
/// Frames per pipeline batch: each buffer holds a jumbo frame (9.3 KiB).
pub const BATCH: usize = 4;
/// Flows the flow cache holds, 64 bytes each.
pub const FLOW_CACHE: usize = 64;

/// Bytes of RAM the board memory may take.
pub const BUDGET: usize = 120 * 1024;

/// Every table, counter block and batch buffer of the firmware, empty.
pub struct BoardMemory {
    vf_configs: [Slot<VfConfig>; VFS],
    vf_rings: [VfRings; VFS],
    counters: [CounterBlock; VFS + 1],
    vpcs: [Slot<Vpc>; VPCS],
    subnets: [Slot<Subnet>; SUBNETS],
    route_tables: [Slot<RouteTable>; ROUTE_TABLES],
    routes: [RouteSlot; ROUTE_TABLES * ROUTES_PER_TABLE],
    mapping_buckets: [MappingBucket; MAPPING_BUCKETS],
    mapping_tags: [MappingTags; MappingTags::lines_for(MAPPING_BUCKETS)],
    underlays: [UnderlaySlot; UNDERLAYS],
    gateways: [Slot<Gateway>; GATEWAYS],
    batch: [FrameBuf; BATCH],
    flow_cache: [FlowEntry; FLOW_CACHE],
}

const _: () = assert!(core::mem::size_of::<BoardMemory>() <= BUDGET);
const _: () = assert!(VFS <= crate::regs::VF_WINDOWS as usize);

impl BoardMemory {
    /// Empty storage, a constant so a `static` of it is laid out at build time.
    pub const EMPTY: BoardMemory = BoardMemory {
        vf_configs: [None; VFS],
        vf_rings: [VfRings::EMPTY; VFS],
        counters: [CounterBlock::ZERO; VFS + 1],
        vpcs: [None; VPCS],
        subnets: [None; SUBNETS],
        route_tables: [None; ROUTE_TABLES],
        routes: [RouteSlot::EMPTY; ROUTE_TABLES * ROUTES_PER_TABLE],
        mapping_buckets: [MappingBucket::EMPTY; MAPPING_BUCKETS],
        mapping_tags: [MappingTags::EMPTY; MappingTags::lines_for(MAPPING_BUCKETS)],
        underlays: [UnderlaySlot::EMPTY; UNDERLAYS],
        gateways: [None; GATEWAYS],
        batch: [FrameBuf::EMPTY; BATCH],
        flow_cache: [FlowEntry::EMPTY; FLOW_CACHE],
    };

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
            routes_per_table: ROUTES_PER_TABLE,
            mapping_buckets: &mut self.mapping_buckets,
            mapping_tags: &mut self.mapping_tags,
            underlays: &mut self.underlays,
            gateways: &mut self.gateways,
            batch: &mut self.batch,
            flow_cache: &mut self.flow_cache,
        }
    }
}

/// A `static` handed out once as `&'static mut`: how the board gives the firmware its
/// memory without `static mut`.
pub struct TakeOnce<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reachable only through the one `&mut` that `take` hands out.
unsafe impl<T: Send> Sync for TakeOnce<T> {}

impl<T> TakeOnce<T> {
    pub const fn new(value: T) -> Self {
        TakeOnce {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, the first time; `None` after.
    // A `&mut` from a shared `static` is the point: the atomic makes it unique.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut T> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: `taken` was false, so no other reference to the value exists, and none
        // will be made.
        Some(unsafe { &mut *self.value.get() })
    }
}

/// [`BoardMemory`] as a `static` in `.bss`, filled with empty entries when taken.
///
/// A `static` of [`BoardMemory::EMPTY`] would do, but some empty entries (`None` of a type
/// with a niche) are not zero bytes, so the linker would keep the whole block in `.data`:
/// ~62 KiB of flash copied to RAM at boot. This fills it in place instead.
pub struct StaticMemory {
    taken: AtomicBool,
    value: UnsafeCell<MaybeUninit<BoardMemory>>,
}

// SAFETY: the value is reachable only through the one `&mut` that `take` hands out.
unsafe impl Sync for StaticMemory {}

impl Default for StaticMemory {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `empty()` to every element of the array at `array`, in place.
///
/// # Safety
/// `array` must be valid for writes of `[T; N]`.
unsafe fn fill<T, const N: usize>(array: *mut [T; N], empty: impl Fn() -> T) {
    let first = array.cast::<T>();
    for i in 0..N {
        // SAFETY: `i < N`, inside the array the caller vouched for.
        unsafe { first.add(i).write(empty()) };
    }
}

impl StaticMemory {
    pub const fn new() -> Self {
        StaticMemory {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The memory, every entry empty, the first time; `None` after.
    // A `&mut` from a shared `static` is the point: the atomic makes it unique.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut BoardMemory> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        let m = self.value.get().cast::<BoardMemory>();
        // SAFETY: `taken` was false, so nothing else refers to the value; every field is
        // written before the reference is made.
        unsafe {
            fill(&raw mut (*m).vf_configs, || None);
            fill(&raw mut (*m).vf_rings, || VfRings::EMPTY);
            fill(&raw mut (*m).counters, || CounterBlock::ZERO);
            fill(&raw mut (*m).vpcs, || None);
            fill(&raw mut (*m).subnets, || None);
            fill(&raw mut (*m).route_tables, || None);
            fill(&raw mut (*m).routes, || RouteSlot::EMPTY);
            fill(&raw mut (*m).mapping_buckets, || MappingBucket::EMPTY);
            fill(&raw mut (*m).mapping_tags, || MappingTags::EMPTY);
            fill(&raw mut (*m).underlays, || UnderlaySlot::EMPTY);
            fill(&raw mut (*m).gateways, || None);
            fill(&raw mut (*m).batch, || FrameBuf::EMPTY);
            Some(&mut *m)
        }
    }
}
