//! Whether a state fits a NIC's tables (its `CAP_*` registers), checked before any change
//! is made: a file too big for the NIC is refused whole, naming the table, where applying
//! it would go part-way until the firmware refused an entry.
//!
//! Counts are what the firmware stores, its own entries included: a route table's local
//! route, and in the mapping table a VPC's anchor and a subnet's gateway and broadcast
//! entries. Passing is necessary, not sufficient: the mapping table is hashed, and a bucket
//! may fill before the table does.
use super::State;
use crate::bringup::DeviceInfo;
use crate::tables::MappingLocationSpec;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// A table the state needs more entries of than the NIC has.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("it needs {needs} {what}, and the NIC holds {holds} ({register})")]
pub struct NoRoom {
    /// What runs short, e.g. "VPCs" or "routes in route table 3".
    pub what: String,
    pub needs: usize,
    pub holds: u32,
    /// The capability register that says how many the NIC holds.
    pub register: &'static str,
}

/// Entries the firmware adds to the mapping table for each VPC (its anchor) and each
/// subnet (gateway and broadcast).
const MAPPINGS_PER_VPC: usize = 1;
const MAPPINGS_PER_SUBNET: usize = 2;

impl State {
    /// Whether this state fits a NIC that reported `info`; the first table that does not.
    /// A capacity an older device does not report (gateways before ABI 1.1, remote hosts
    /// before 1.4) is not checked.
    pub fn fits(&self, info: &DeviceInfo) -> Result<(), NoRoom> {
        // `None`: a capacity the device does not report.
        let check = |what: String, needs: usize, holds: Option<u32>, register| match holds {
            Some(holds) if needs > holds as usize => Err(NoRoom {
                what,
                needs,
                holds,
                register,
            }),
            _ => Ok(()),
        };
        check("VPCs".into(), self.vpcs.len(), Some(info.vpcs), "CAP_VPCS")?;
        check(
            "subnets".into(),
            self.subnets.len(),
            Some(info.subnets),
            "CAP_SUBNETS",
        )?;
        check(
            "route tables".into(),
            self.route_tables.len(),
            Some(info.route_tables),
            "CAP_ROUTE_TABLES",
        )?;
        let mut per_table: BTreeMap<u16, usize> = BTreeMap::new();
        for (table, _) in self.routes.keys() {
            *per_table.entry(*table).or_default() += 1;
        }
        for (table, routes) in per_table {
            check(
                format!("routes in route table {table} (its local route included)"),
                routes + 1,
                Some(info.routes_per_table),
                "CAP_ROUTES",
            )?;
        }
        check(
            "gateways".into(),
            self.gateways.len(),
            (info.abi_minor >= 1).then_some(info.gateways),
            "CAP_GATEWAYS",
        )?;
        let mappings = self.mappings.len()
            + MAPPINGS_PER_VPC * self.vpcs.len()
            + MAPPINGS_PER_SUBNET * self.subnets.len();
        check(
            "mapping entries (each VPC's anchor and each subnet's gateway and broadcast \
             included)"
                .into(),
            mappings,
            Some(info.mappings),
            "CAP_MAPPINGS",
        )?;
        let hosts = self.remote_hosts();
        check(
            "remote hosts that mappings point to".into(),
            hosts.len(),
            (info.abi_minor >= 4).then_some(info.underlays),
            "CAP_UNDERLAYS",
        )
    }

    /// The other hosts this NIC's mappings point to: one entry each in its underlay table.
    pub fn remote_hosts(&self) -> BTreeSet<Ipv4Addr> {
        self.mappings
            .values()
            .filter_map(|(_, at)| match at {
                MappingLocationSpec::Remote(ip) => Some(*ip),
                MappingLocationSpec::LocalVf(_) => None,
            })
            .collect()
    }
}
