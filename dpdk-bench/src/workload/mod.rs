//! The workloads, drawn from fixed seeds: the benches' VRF route mix, keys and mapping keys
//! (`nic_firmware::workload`, the very code the benches draw them with), and a BGP-like
//! table.
pub mod bgp;

pub use nic_firmware::testing::Rng;
pub use nic_firmware::workload::{
    fill_route_tables, lpm_keys, mapping_keys, mapping_value, vpc_cidr, MappingKeys, HOSTS,
    ROUTES_PER_TABLE,
};

/// Routes of many tables under one numbering: DPDK's tables answer a next hop, which is
/// this id, and the id names the route to compare with ours.
pub struct RouteIds {
    /// Each table's routes, as inserted.
    pub tables: Vec<Vec<nic_firmware::tables::lpm::Route>>,
    /// Id of each table's first route.
    first: Vec<usize>,
}

impl RouteIds {
    pub fn new(tables: Vec<Vec<nic_firmware::tables::lpm::Route>>) -> Self {
        let mut first = Vec::with_capacity(tables.len());
        let mut n = 0;
        for t in &tables {
            first.push(n);
            n += t.len();
        }
        RouteIds { tables, first }
    }

    /// All routes.
    pub fn len(&self) -> usize {
        self.tables.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Id of route `i` of table `t`.
    pub fn id(&self, t: usize, i: usize) -> usize {
        self.first[t] + i
    }

    /// The route with this id and its table.
    pub fn route(&self, id: usize) -> Option<(usize, nic_firmware::tables::lpm::Route)> {
        let t = self.first.partition_point(|&f| f <= id).checked_sub(1)?;
        let r = *self.tables.get(t)?.get(id - self.first[t])?;
        Some((t, r))
    }

    /// Every (table, index in table, route), in id order.
    pub fn iter(
        &self,
    ) -> impl Iterator<Item = (usize, usize, nic_firmware::tables::lpm::Route)> + '_ {
        self.tables
            .iter()
            .enumerate()
            .flat_map(|(t, rs)| rs.iter().enumerate().map(move |(i, r)| (t, i, *r)))
    }
}
