//! # The reconciler
//!
//! What a NIC should hold ([`State`], from the operator's desired state) against what it
//! holds ([`State::from_tables`], read back with `TABLE_READ`, never remembered), as the
//! ordered list of admin commands that takes one to the other ([`diff`]), and their
//! application ([`apply`]). Programming a fresh NIC is the case where it holds nothing.
//!
//! The order is make-before-break: everything a packet may be sent to exists before
//! anything that sends to it, and goes after it (see [`diff`]).
mod apply;
mod change;
mod diff;
mod room;

pub use apply::{apply, ApplyError};
pub use change::{Change, Kind};
pub use diff::diff;
pub use room::NoRoom;

use crate::table_read::{NicTables, PlaceRow};
use crate::tables::{
    Cidr, GatewaySpec, Mac, MappingLocationSpec, RouteTarget, SubnetSpec, UplinkSpec, VfSpec,
    VpcSpec,
};
use shared_regs::entry::GatewayKind;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// Everything of a NIC's tables that the operator decides, keyed as the NIC keys it. What the
/// firmware makes by itself (each table's local route, the VPC anchor, subnet gateway and
/// broadcast mappings) and what the VMs decide (a VF's link) are not part of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub uplink: Option<UplinkSpec>,
    pub vpcs: BTreeMap<u16, VpcSpec>,
    pub gateways: BTreeMap<u16, GatewaySpec>,
    /// Route table ID to its VPC's ID.
    pub route_tables: BTreeMap<u16, u16>,
    /// (route table, prefix) to target.
    pub routes: BTreeMap<(u16, Cidr), RouteTarget>,
    pub subnets: BTreeMap<u16, SubnetSpec>,
    pub vfs: BTreeMap<u16, VfSpec>,
    /// (VF, secondary address).
    pub vf_addrs: BTreeSet<(u16, Ipv4Addr)>,
    /// (VNI, address) to the instance's MAC and where it lives.
    pub mappings: BTreeMap<(u32, Ipv4Addr), (Mac, MappingLocationSpec)>,
    /// Read back from a firmware older than ABI 1.7, which cannot report the VPCs' DNS
    /// domains: [`diff`] then takes them as they are wanted.
    pub domains_unknown: bool,
}

/// A part of the NIC's tables that [`State`] cannot say, so [`State::from_tables`] refuses
/// rather than guess.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadBackError {
    #[error("gateway {id} has kind {kind:?}, which this driver does not know")]
    GatewayKind { id: u16, kind: String },
}

impl State {
    /// What the NIC holds, from its tables as read back.
    pub fn from_tables(t: &NicTables) -> Result<State, ReadBackError> {
        let mut s = State {
            domains_unknown: !t.domains_read,
            uplink: t.uplink.as_ref().map(|u| UplinkSpec {
                mac: u.mac,
                next_hop_mac: u.next_hop_mac,
                underlay_ip: u.underlay_ip,
                mtu: u.mtu,
            }),
            ..State::default()
        };
        for v in &t.vpcs {
            s.vpcs.insert(
                v.id,
                VpcSpec {
                    id: v.id,
                    vni: v.vni,
                    cidr: v.cidr,
                    main_route_table: v.main_route_table,
                    dns: v.dns.clone(),
                    domain: v.domain.clone(),
                },
            );
        }
        for g in &t.gateways {
            let kind = GatewayKind::ALL
                .iter()
                .copied()
                .find(|k| k.name() == g.kind)
                .ok_or_else(|| ReadBackError::GatewayKind {
                    id: g.id,
                    kind: g.kind.clone(),
                })?;
            s.gateways.insert(
                g.id,
                GatewaySpec {
                    id: g.id,
                    kind,
                    underlay_ip: g.underlay_ip,
                    mac: g.mac,
                },
            );
        }
        for rt in &t.route_tables {
            s.route_tables.insert(rt.id, rt.vpc_id);
            for r in &rt.routes {
                // The local route is the firmware's, made with the table.
                if r.target != RouteTarget::Local {
                    s.routes.insert((rt.id, r.dest), r.target);
                }
            }
        }
        for n in &t.subnets {
            // The firmware records "the VPC's main table" as that table's ID.
            let main = s.vpcs.get(&n.vpc_id).and_then(|v| v.main_route_table);
            s.subnets.insert(
                n.id,
                SubnetSpec {
                    id: n.id,
                    vpc_id: n.vpc_id,
                    cidr: n.cidr,
                    route_table: n.route_table.filter(|&t| Some(t) != main),
                    gateway_mac: n.gateway_mac,
                },
            );
        }
        for v in &t.vfs {
            s.vfs.insert(
                v.vf,
                VfSpec {
                    vf: v.vf,
                    subnet_id: v.subnet_id,
                    mac: v.mac,
                    primary_ip: v.primary_ip,
                    src_dst_check: v.src_dst_check,
                },
            );
            s.vf_addrs
                .extend(v.secondary_ips.iter().map(|&ip| (v.vf, ip)));
        }
        for m in &t.mappings {
            let location = match m.place {
                PlaceRow::LocalVf(vf) => MappingLocationSpec::LocalVf(vf),
                PlaceRow::Remote(ip) => MappingLocationSpec::Remote(ip),
                // Made by VPC_ADD and SUBNET_ADD, gone with them.
                PlaceRow::Gateway | PlaceRow::VniAnchor(_) | PlaceRow::Broadcast => continue,
                // Not something MAPPING_ADD makes; left alone.
                PlaceRow::Unknown(_) => continue,
            };
            s.mappings.insert((m.vni, m.ip), (m.mac, location));
        }
        Ok(s)
    }

    /// How many entries it has (for progress and summaries).
    pub fn len(&self) -> usize {
        usize::from(self.uplink.is_some())
            + self.vpcs.len()
            + self.gateways.len()
            + self.route_tables.len()
            + self.routes.len()
            + self.subnets.len()
            + self.vfs.len()
            + self.vf_addrs.len()
            + self.mappings.len()
    }

    /// Whether it holds nothing (a fresh NIC).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests;
