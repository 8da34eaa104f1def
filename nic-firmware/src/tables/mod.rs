//! Fixed-capacity, hardware-style tables. Storage is handed in by the platform (device
//! memory), so capacity is fixed when the board or simulator is built, and a full table is
//! an error value, never a crash.
pub mod lpm;
pub mod mapping;
pub mod vpc;

#[cfg(test)]
mod scale_tests;

/// Why a table refused a change. A refused change leaves the table as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// An entry with this key is already there.
    Exists,
    /// No entry has this key.
    NotFound,
    /// No room for another entry.
    Full,
    /// No room in the mapping table's underlay table for another remote host's address
    /// (the mapping table itself has room).
    UnderlayFull,
}

use lpm::RouteTables;
use mapping::MappingTable;
use vpc::{Gateway, RouteTable, Slot, Subnet, VfConfig, Vpc};

/// The uplink port's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uplink {
    pub mac: [u8; 6],
    pub next_hop_mac: [u8; 6],
    /// This host's underlay address, host byte order.
    pub underlay_ip: u32,
    pub mtu: u16,
}

/// Every table the pipeline reads and admin commands change.
pub struct Tables<'m> {
    /// The instance each VF serves; the slice length is the VF count.
    pub vfs: &'m mut [Slot<VfConfig>],
    pub vpcs: &'m mut [Slot<Vpc>],
    pub subnets: &'m mut [Slot<Subnet>],
    pub route_tables: &'m mut [Slot<RouteTable>],
    pub routes: RouteTables<'m>,
    pub mappings: MappingTable<'m>,
    pub gateways: &'m mut [Slot<Gateway>],
    pub uplink: Option<Uplink>,
}

impl<'m> Tables<'m> {
    /// Empty tables over the table storage of `mem`, which keeps its counters, VF rings and
    /// batch (its table slices are left empty).
    pub fn take_from(mem: &mut crate::FirmwareMemory<'m>) -> Tables<'m> {
        use core::mem::take;
        Tables {
            vfs: take(&mut mem.vf_configs),
            vpcs: take(&mut mem.vpcs),
            subnets: take(&mut mem.subnets),
            route_tables: take(&mut mem.route_tables),
            routes: RouteTables::new(take(&mut mem.routes), mem.routes_per_table),
            mappings: MappingTable::new(
                take(&mut mem.mapping_buckets),
                take(&mut mem.mapping_tags),
                take(&mut mem.underlays),
            ),
            gateways: take(&mut mem.gateways),
            uplink: None,
        }
    }
}

impl Tables<'_> {
    /// Empties every table.
    pub fn clear(&mut self) {
        self.vfs.fill(None);
        self.vpcs.fill(None);
        self.subnets.fill(None);
        self.route_tables.fill(None);
        for t in 0..self.route_tables.len() {
            if let Ok(t) = u16::try_from(t) {
                self.routes.clear_table(t);
            }
        }
        self.mappings.clear();
        self.gateways.fill(None);
        self.uplink = None;
    }

    /// The first assigned VF, by index, with MAC `mac` whose instance `fits` (a linear scan
    /// of the VFs: frames addressed by MAC rather than by address, F7 and F15).
    pub fn vf_with_mac(&self, mac: [u8; 6], fits: impl Fn(&VfConfig) -> bool) -> Option<u16> {
        let i = self
            .vfs
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.mac == mac && fits(c)))?;
        u16::try_from(i).ok()
    }

    /// The VF's instance, if it is assigned.
    pub fn vf(&self, vf: u16) -> Option<&VfConfig> {
        self.vfs.get(usize::from(vf))?.as_ref()
    }

    /// A subnet by ID.
    pub fn subnet(&self, id: u16) -> Option<&Subnet> {
        self.subnets.get(usize::from(id))?.as_ref()
    }

    /// A VPC by ID.
    pub fn vpc(&self, id: u16) -> Option<&Vpc> {
        self.vpcs.get(usize::from(id))?.as_ref()
    }

    /// A gateway by ID.
    pub fn gateway(&self, id: u16) -> Option<&Gateway> {
        self.gateways.get(usize::from(id))?.as_ref()
    }

    /// A route table header by ID.
    pub fn route_table(&self, id: u16) -> Option<&RouteTable> {
        self.route_tables.get(usize::from(id))?.as_ref()
    }

    /// True when a route of any table peers with VPC `vpc`.
    pub fn routes_target_vpc(&self, vpc: u16) -> bool {
        (0..self.route_tables.len())
            .filter_map(|t| u16::try_from(t).ok())
            .any(|t| {
                self.routes
                    .routes(t)
                    .any(|r| r.target == lpm::Target::Peering(vpc))
            })
    }

    /// True when a route table of VPC `from` has a peering route to VPC `to`.
    pub fn peers(&self, from: u16, to: u16) -> bool {
        self.route_tables
            .iter()
            .enumerate()
            .filter(|(_, rt)| rt.is_some_and(|rt| rt.vpc == from))
            .filter_map(|(id, _)| u16::try_from(id).ok())
            .any(|id| {
                self.routes
                    .routes(id)
                    .any(|r| r.target == lpm::Target::Peering(to))
            })
    }

    /// Number of VFs.
    pub fn num_vfs(&self) -> u16 {
        u16::try_from(self.vfs.len()).unwrap_or(u16::MAX)
    }
}
