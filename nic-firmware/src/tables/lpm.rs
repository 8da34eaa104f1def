//! Per-VRF longest-prefix-match route tables.
use super::TableError;

/// What a route points at (F8). Addresses in host byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The VPC CIDR: mapping lookup in the VPC's own VNI.
    Local,
    /// Drop silently.
    Blackhole,
    /// VXLAN to gateway `id`.
    Gateway(u16),
    /// Mapping lookup in the VNI of peer VPC `id`.
    Peering(u16),
    /// Deliver to the instance with this primary address.
    Instance(u32),
}

/// A route: prefix (host byte order, host bits zero), length, target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub prefix: u32,
    pub len: u8,
    pub target: Target,
}

/// One route slot of table storage.
#[derive(Clone, Copy, Debug)]
pub struct RouteSlot {
    route: Option<Route>,
}

impl RouteSlot {
    /// An empty slot, to fill storage with.
    pub const EMPTY: RouteSlot = RouteSlot { route: None };
}

/// The mask of a prefix length (0 ..= 32).
pub fn prefix_mask(len: u8) -> u32 {
    u32::MAX.checked_shl(32u32.saturating_sub(u32::from(len))).unwrap_or(0)
}

/// All route tables (VRFs) over storage the platform provides: `routes_per_table`
/// consecutive slots per table.
pub struct RouteTables<'m> {
    slots: &'m mut [RouteSlot],
    routes_per_table: usize,
}

impl<'m> RouteTables<'m> {
    /// Route tables over `slots`, emptied.
    pub fn new(slots: &'m mut [RouteSlot], routes_per_table: usize) -> Self {
        slots.fill(RouteSlot::EMPTY);
        RouteTables {
            slots,
            routes_per_table: routes_per_table.max(1),
        }
    }

    /// Number of route tables.
    pub fn tables(&self) -> usize {
        self.slots.len() / self.routes_per_table
    }

    /// Routes one table holds.
    pub fn routes_per_table(&self) -> usize {
        self.routes_per_table
    }

    fn table(&self, table: u16) -> Option<&[RouteSlot]> {
        let start = usize::from(table).checked_mul(self.routes_per_table)?;
        self.slots.get(start..start.checked_add(self.routes_per_table)?)
    }

    fn table_mut(&mut self, table: u16) -> Option<&mut [RouteSlot]> {
        let start = usize::from(table).checked_mul(self.routes_per_table)?;
        let end = start.checked_add(self.routes_per_table)?;
        self.slots.get_mut(start..end)
    }

    /// Empties one table.
    pub fn clear_table(&mut self, table: u16) {
        if let Some(t) = self.table_mut(table) {
            t.fill(RouteSlot::EMPTY);
        }
    }

    /// Adds a route; `Exists` for the same prefix and length, `Full` when the table is full,
    /// `NotFound` for a table index past the storage.
    pub fn insert(&mut self, table: u16, route: Route) -> Result<(), TableError> {
        let t = self.table_mut(table).ok_or(TableError::NotFound)?;
        if t
            .iter()
            .flat_map(|s| s.route)
            .any(|r| r.prefix == route.prefix && r.len == route.len)
        {
            return Err(TableError::Exists);
        }
        let free = t
            .iter_mut()
            .find(|s| s.route.is_none())
            .ok_or(TableError::Full)?;
        free.route = Some(route);
        Ok(())
    }

    /// Removes the route with this prefix and length.
    pub fn remove(&mut self, table: u16, prefix: u32, len: u8) -> Result<Route, TableError> {
        let t = self.table_mut(table).ok_or(TableError::NotFound)?;
        let s = t
            .iter_mut()
            .find(|s| matches!(s.route, Some(r) if r.prefix == prefix && r.len == len))
            .ok_or(TableError::NotFound)?;
        s.route.take().ok_or(TableError::NotFound)
    }

    /// The longest-prefix match for `ip` in `table`.
    pub fn lookup(&self, table: u16, ip: u32) -> Option<Route> {
        self.table(table)?
            .iter()
            .flat_map(|s| s.route)
            .filter(|r| ip & prefix_mask(r.len) == r.prefix)
            .max_by_key(|r| r.len)
    }

    /// Every route of `table`.
    pub fn routes(&self, table: u16) -> impl Iterator<Item = Route> + '_ {
        self.table(table)
            .into_iter()
            .flatten()
            .flat_map(|s| s.route)
    }
}
