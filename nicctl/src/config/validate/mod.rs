//! Checks a [`RawFile`] completely and builds the [`Config`], or returns every error.
//!
//! Sections are checked in the order vpc, gateway, route_table, subnet, instance, host, and
//! entries in file order, so errors come out in a stable order. A value that is itself
//! wrong is not checked further (an unparsable CIDR does not also "overlap" anything).
mod gateway;
mod host;
mod instance;
mod route_table;
mod subnet;
mod vpc;

use gateway::check_gateways;
use host::{check_hosts, check_vf_counts};
use instance::check_instances;
use route_table::{check_eni_targets, check_route_tables};
use subnet::check_subnets;
use vpc::check_vpcs;

use crate::config::file::{RawFile, RawInstance, RawRoute, RawSubnet, RawVpc, Text};
use crate::config::model::{
    self, Config, Gateway, Host, Instance, Route, RouteTable, Subnet, Target, Vpc,
};
use crate::config::text::{self, cidr_text, contains, is_valid_name, NAME_RULE};
use crate::config::{ConfigError, ConfigErrors};
use host_driver::tables::{Cidr, GatewayKind, MacDisplay};
use indexmap::IndexMap;
use shared_regs::entry::{DOMAIN_MAX, VF_SECONDARY_ADDRS, VNI_MAX, VPC_DNS_SERVERS};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// What the NIC can hold. `vfs` is always checked (instances per host); the table
/// capacities only when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub vfs: u32,
    pub vpcs: Option<u32>,
    pub subnets: Option<u32>,
    /// Route tables, the main table of every VPC included.
    pub route_tables: Option<u32>,
    /// Routes per table, the local route included.
    pub routes_per_table: Option<u32>,
    pub gateways: Option<u32>,
}

impl Default for Limits {
    /// The built-in simulator's default NIC (8 VFs), capacities unknown.
    fn default() -> Self {
        Limits::vfs(8)
    }
}

impl Limits {
    /// Only a VF count.
    pub fn vfs(vfs: u32) -> Self {
        Limits {
            vfs,
            vpcs: None,
            subnets: None,
            route_tables: None,
            routes_per_table: None,
            gateways: None,
        }
    }

    /// Everything a device reported at bring-up.
    pub fn from_info(info: &host_driver::DeviceInfo) -> Self {
        Limits {
            vfs: info.num_vfs,
            vpcs: Some(info.vpcs),
            subnets: Some(info.subnets),
            route_tables: Some(info.route_tables),
            routes_per_table: Some(info.routes_per_table),
            gateways: Some(info.gateways),
        }
    }
}

/// Collects errors, and remembers the file text for line numbers.
struct Checker<'a> {
    src: &'a str,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn err(&mut self, place: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            place: place.into(),
            reason: reason.into(),
            at: None,
        });
    }

    /// An error about the text of `value`, located by its span.
    fn err_at(&mut self, place: impl Into<String>, value: &Text, reason: String) {
        self.errors.push(ConfigError {
            place: place.into(),
            reason,
            at: Some(text::line_col(self.src, value.span().start)),
        });
    }

    fn name(&mut self, section: &str, name: &str) {
        if !is_valid_name(name) {
            self.err(
                format!("{section}.{name}"),
                format!(
                    "the name {name:?} does not match {NAME_RULE} (names name network namespaces)"
                ),
            );
        }
    }

    fn parse<T>(
        &mut self,
        place: &str,
        value: &Text,
        parse: impl Fn(&str) -> Result<T, text::TextError>,
    ) -> Option<T> {
        match parse(value.get_ref()) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.err_at(place, value, reason.to_string());
                None
            }
        }
    }

    /// Index of `name` in `section`, or an error naming the known entries.
    fn reference<V>(
        &mut self,
        place: &str,
        what: &str,
        map: &IndexMap<String, V>,
        name: &Text,
    ) -> Option<usize> {
        let found = map.get_index_of(name.get_ref().as_str());
        if found.is_none() {
            let known: Vec<&str> = map.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                format!("the file has no {what}")
            } else {
                format!("known: {}", text::few(&known))
            };
            self.err(
                place,
                format!("unknown {what} {:?} ({known})", name.get_ref()),
            );
        }
        found
    }

    fn capacity(&mut self, place: &str, what: &str, count: usize, cap: Option<u32>) {
        if let Some(cap) = cap {
            if count > cap as usize {
                self.err(place, format!("{count} {what} but the NIC holds {cap}"));
            }
        }
    }
}

/// Checks `raw` (parsed from `src`) against the rules of spec/vpc-config.md and the NIC's
/// `limits`.
pub fn validate(raw: &RawFile, src: &str, limits: &Limits) -> Result<Config, ConfigErrors> {
    let mut c = Checker {
        src,
        errors: Vec::new(),
    };
    let vpcs = check_vpcs(&mut c, raw);
    let gateways = check_gateways(&mut c, raw, limits);
    let route_tables = check_route_tables(&mut c, raw, &vpcs, limits);
    let subnets = check_subnets(&mut c, raw, &vpcs, &route_tables);
    let hosts = check_hosts(&mut c, raw);
    let instances = check_instances(&mut c, raw, &vpcs, &subnets);
    check_eni_targets(&mut c, raw, &subnets, &instances);
    // Instances and gateways each name a network namespace: one name, one thing.
    for name in raw.instance.keys() {
        if raw.gateway.contains_key(name) {
            c.err(
                format!("instance.{name}"),
                format!(
                    "the name {name} is gateway {name}'s too: instances and gateways each name \
                     a network namespace"
                ),
            );
        }
    }
    check_vf_counts(&mut c, raw, &hosts, &instances, limits);
    let route_table_count = vpcs.len() + route_tables.len();
    c.capacity("vpc", "VPCs", vpcs.len(), limits.vpcs);
    c.capacity("subnet", "subnets", subnets.len(), limits.subnets);
    c.capacity(
        "route_table",
        "route tables (one main table per VPC included)",
        route_table_count,
        limits.route_tables,
    );
    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    // No error: every Option below is Some.
    Ok(Config {
        vpcs: vpcs.into_iter().map(|v| v.expect("valid vpc")).collect(),
        gateways,
        route_tables: route_tables
            .into_iter()
            .map(|t| t.expect("valid route table"))
            .collect(),
        subnets: subnets
            .into_iter()
            .map(|s| s.expect("valid subnet"))
            .collect(),
        instances: instances
            .into_iter()
            .map(|i| i.expect("valid instance"))
            .collect(),
        hosts,
    })
}

#[cfg(test)]
mod tests;
