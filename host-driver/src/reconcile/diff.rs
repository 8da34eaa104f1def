//! [`diff`]: the ordered changes from what a NIC holds to what it should hold.
use super::{Change, State};
use crate::tables::MappingLocationSpec;
use crate::tables::VpcSpec;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The changes that turn `actual` into `desired`, in make-before-break order:
///
/// 1. what things are sent to, before what sends to them: the uplink, VPCs, gateways, route
///    tables, subnets, VFs and their addresses, mappings (so a mapping exists before any
///    route or VF that leads to it), routes, and last the subnets moved to another route
///    table (whose routes are then in place);
/// 2. then, in the reverse order, what goes: routes (before what they point at), mappings,
///    VF addresses, VFs, subnets, route tables, gateways, VPCs.
///
/// An object whose key stays and whose fields change is replaced in place, so an unchanged
/// prefix never goes without a route and a moving instance's mapping switches in one step.
/// Nothing is emitted for what already matches: `diff(s, s)` is empty.
pub fn diff(desired: &State, actual: &State) -> Vec<Change> {
    let mut out = Vec::new();
    if desired.uplink.is_some() && desired.uplink != actual.uplink {
        out.extend(desired.uplink.clone().map(Change::SetUplink));
    }
    for (id, v) in &desired.vpcs {
        match actual.vpcs.get(id) {
            None => out.push(Change::AddVpc(v.clone())),
            Some(a) if !same_vpc(v, a, actual.domains_unknown) => {
                out.push(Change::ReplaceVpc(v.clone()))
            }
            Some(_) => {}
        }
    }
    for (id, g) in &desired.gateways {
        match actual.gateways.get(id) {
            None => out.push(Change::AddGateway(g.clone())),
            Some(a) if a != g => out.push(Change::ReplaceGateway(g.clone())),
            Some(_) => {}
        }
    }
    let mut moved_tables = Vec::new();
    for (&id, &vpc_id) in &desired.route_tables {
        match actual.route_tables.get(&id) {
            None => out.push(Change::AddRouteTable { id, vpc_id }),
            // A table cannot change VPC in place: it goes and comes back.
            Some(&a) if a != vpc_id => moved_tables.push((id, vpc_id)),
            Some(_) => {}
        }
    }
    let mut moved_subnets = Vec::new();
    let mut replaced_vfs = Vec::new();
    for (id, s) in &desired.subnets {
        match actual.subnets.get(id) {
            None => out.push(Change::AddSubnet(s.clone())),
            Some(a) if a != s => moved_subnets.push(Change::ReplaceSubnet(s.clone())),
            Some(_) => {}
        }
    }
    // New VFs first: a mapping moved early below may lead to one.
    for (&vf, v) in &desired.vfs {
        if !actual.vfs.contains_key(&vf) {
            out.push(Change::SetVf(v.clone()));
        }
    }
    // Mappings already made or removed (before a VF changes instance).
    let mut handled = BTreeSet::new();
    for (&vf, v) in &desired.vfs {
        let Some(a) = actual.vfs.get(&vf) else {
            continue;
        };
        if (a.subnet_id, a.mac, a.primary_ip) != (v.subnet_id, v.mac, v.primary_ip) {
            // Whatever still leads to this VF and will not once it serves its new
            // instance goes or moves first, so no packet meant for the old instance reaches
            // the new one.
            for (&key, &(_, location)) in &actual.mappings {
                if location != MappingLocationSpec::LocalVf(vf)
                    || desired.mappings.get(&key) == actual.mappings.get(&key)
                {
                    continue;
                }
                handled.insert(key);
                out.push(match desired.mappings.get(&key) {
                    Some(&(mac, location)) => Change::ReplaceMapping {
                        vni: key.0,
                        ip: key.1,
                        mac,
                        location,
                    },
                    None => Change::DelMapping {
                        vni: key.0,
                        ip: key.1,
                    },
                });
            }
            // The VF keeps its secondary addresses, which must be valid in its new subnet:
            // those it loses go before the replace.
            let held_addrs = actual
                .vf_addrs
                .range((vf, Ipv4Addr::UNSPECIFIED)..)
                .take_while(|&&(v, _)| v == vf);
            for &(_, ip) in held_addrs {
                if !desired.vf_addrs.contains(&(vf, ip)) {
                    out.push(Change::DelVfAddr { vf, ip });
                }
            }
            out.push(Change::ReplaceVf(v.clone()));
            replaced_vfs.push(vf);
        } else if a.src_dst_check != v.src_dst_check {
            out.push(Change::SetVfFlags {
                vf,
                src_dst_check: v.src_dst_check,
            });
        }
    }
    for &(vf, ip) in &desired.vf_addrs {
        if !actual.vf_addrs.contains(&(vf, ip)) {
            out.push(Change::AddVfAddr { vf, ip });
        }
    }
    for (&(vni, ip), &(mac, location)) in &desired.mappings {
        if handled.contains(&(vni, ip)) {
            continue;
        }
        match actual.mappings.get(&(vni, ip)) {
            None => out.push(Change::AddMapping {
                vni,
                ip,
                mac,
                location,
            }),
            Some(&a) if a != (mac, location) => out.push(Change::ReplaceMapping {
                vni,
                ip,
                mac,
                location,
            }),
            Some(_) => {}
        }
    }
    let table_moves = |table: u16| moved_tables.iter().any(|&(id, _)| id == table);
    for (&(table, dest), &target) in &desired.routes {
        match actual.routes.get(&(table, dest)) {
            Some(_) if table_moves(table) => {}
            None => out.push(Change::AddRoute {
                table,
                dest,
                target,
            }),
            Some(&a) if a != target => out.push(Change::ReplaceRoute {
                table,
                dest,
                target,
            }),
            Some(_) => {}
        }
    }
    out.extend(moved_subnets);

    // What goes, routes first.
    for &(table, dest) in actual.routes.keys() {
        if !desired.routes.contains_key(&(table, dest)) {
            out.push(Change::DelRoute { table, dest });
        }
    }
    for &(vni, ip) in actual.mappings.keys() {
        if !desired.mappings.contains_key(&(vni, ip)) && !handled.contains(&(vni, ip)) {
            out.push(Change::DelMapping { vni, ip });
        }
    }
    for &(vf, ip) in &actual.vf_addrs {
        let gone = !desired.vf_addrs.contains(&(vf, ip));
        if gone && !replaced_vfs.contains(&vf) && desired.vfs.contains_key(&vf) {
            out.push(Change::DelVfAddr { vf, ip });
        }
    }
    for &vf in actual.vfs.keys() {
        if !desired.vfs.contains_key(&vf) {
            out.push(Change::ClearVf(vf));
        }
    }
    for &id in actual.subnets.keys() {
        if !desired.subnets.contains_key(&id) {
            out.push(Change::DelSubnet(id));
        }
    }
    // A VPC that goes names its main table until it goes itself, and a VPC cannot go while
    // a table of it exists: its main table is detached first.
    for (id, v) in &actual.vpcs {
        let main_goes = v
            .main_route_table
            .is_some_and(|t| !desired.route_tables.contains_key(&t));
        if !desired.vpcs.contains_key(id) && main_goes {
            out.push(Change::ReplaceVpc(VpcSpec {
                main_route_table: None,
                ..v.clone()
            }));
        }
    }
    for &id in actual.route_tables.keys() {
        if !desired.route_tables.contains_key(&id) {
            out.push(Change::DelRouteTable(id));
        }
    }
    // A table that changes VPC: gone (its subnets were moved or deleted above), then made
    // again with its routes.
    for &(id, vpc_id) in &moved_tables {
        out.push(Change::DelRouteTable(id));
        out.push(Change::AddRouteTable { id, vpc_id });
        out.extend(routes_of(desired, id));
    }
    for &id in actual.gateways.keys() {
        if !desired.gateways.contains_key(&id) {
            out.push(Change::DelGateway(id));
        }
    }
    for &id in actual.vpcs.keys() {
        if !desired.vpcs.contains_key(&id) {
            out.push(Change::DelVpc(id));
        }
    }
    out
}

/// The same VPC, its DNS domain aside when the NIC could not report it (a firmware older
/// than ABI 1.7).
fn same_vpc(a: &VpcSpec, b: &VpcSpec, domains_unknown: bool) -> bool {
    (a.id, a.vni, a.cidr, a.main_route_table, &a.dns)
        == (b.id, b.vni, b.cidr, b.main_route_table, &b.dns)
        && (domains_unknown || a.domain == b.domain)
}

fn routes_of(s: &State, table: u16) -> impl Iterator<Item = Change> + '_ {
    s.routes
        .range((table, (Ipv4Addr::UNSPECIFIED, 0))..)
        .take_while(move |((t, _), _)| *t == table)
        .map(|(&(table, dest), &target)| Change::AddRoute {
            table,
            dest,
            target,
        })
}
