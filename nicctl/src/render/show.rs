//! `nicctl show`: one NIC's tables as it holds them (the driver's [`NicTables`], read back
//! with `TABLE_READ`) with what the VPC file calls each ID ([`Names`]), as text.

use host_driver::table_read::{NicTables, PlaceRow};
use host_driver::tables::RouteTarget;
use host_driver::tables::{Cidr, MacDisplay};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

/// What the VPC file calls the NIC's IDs (each map may be empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    pub vpcs: BTreeMap<u16, String>,
    pub subnets: BTreeMap<u16, String>,
    pub route_tables: BTreeMap<u16, String>,
    pub gateways: BTreeMap<u16, String>,
    /// Instance on each VF.
    pub vfs: BTreeMap<u16, String>,
    /// Host of each underlay address.
    pub hosts: BTreeMap<Ipv4Addr, String>,
    /// Instance holding (VNI, address).
    pub instances: Vec<(u32, Ipv4Addr, String)>,
}

/// One NIC's tables as `nicctl show` reports them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTables {
    /// The host of the VPC file, or the device's name.
    pub host: String,
    pub tables: NicTables,
    pub names: Names,
}

impl Names {
    /// The names of a VPC file for the NIC its plan for `host` programs.
    pub fn from_config(config: &crate::config::Config, plan: &crate::config::Plan) -> Names {
        let ids = &plan.ids;
        let mut n = Names::default();
        for ((v, &id), &main) in config.vpcs.iter().zip(&ids.vpcs).zip(&ids.main_tables) {
            n.vpcs.insert(id, v.name.clone());
            n.route_tables.insert(main, format!("{} main", v.name));
        }
        for (t, &id) in config.route_tables.iter().zip(&ids.route_tables) {
            n.route_tables.insert(id, t.name.clone());
        }
        for (s, &id) in config.subnets.iter().zip(&ids.subnets) {
            n.subnets.insert(id, s.name.clone());
        }
        for (gw, &id) in config.gateways.iter().zip(&ids.gateways) {
            n.gateways.insert(id, gw.name.clone());
        }
        for (name, vf) in &plan.vfs {
            n.vfs.insert(*vf, name.clone());
        }
        for host in &config.hosts {
            n.hosts.insert(host.underlay, host.name.clone());
        }
        for inst in &config.instances {
            let vni = config.vpcs[config.subnets[inst.subnet].vpc].vni;
            for &a in std::iter::once(&inst.ip).chain(&inst.secondary_ips) {
                n.instances.push((vni, a, inst.name.clone()));
            }
        }
        n
    }

    fn instance(&self, vni: u32, ip: Ipv4Addr) -> Option<&str> {
        self.instances
            .iter()
            .find(|(v, a, _)| *v == vni && *a == ip)
            .map(|(_, _, n)| n.as_str())
    }
}

/// "2 (public)" when the ID has a name, else "2".
fn named(id: u16, names: &BTreeMap<u16, String>) -> String {
    match names.get(&id) {
        Some(n) => format!("{id} ({n})"),
        None => id.to_string(),
    }
}

fn cidr(c: Cidr) -> String {
    format!("{}/{}", c.0, c.1)
}

/// Rows under a header, each column as wide as its widest cell, indented two spaces.
fn columns(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
    }
}

/// `nicctl show` for one NIC.
pub fn show_text(h: &HostTables) -> String {
    let (t, n) = (&h.tables, &h.names);
    let mut out = String::new();
    match &t.uplink {
        Some(u) => {
            let _ = writeln!(
                out,
                "Host {}: uplink {} ({}), next hop {}, MTU {}",
                h.host,
                u.underlay_ip,
                MacDisplay(&u.mac),
                MacDisplay(&u.next_hop_mac),
                u.mtu
            );
        }
        None => {
            let _ = writeln!(out, "Host {}: uplink not set", h.host);
        }
    }

    let _ = writeln!(out, "\nVFs ({})", t.vfs.len());
    let rows: Vec<Vec<String>> = t
        .vfs
        .iter()
        .map(|v| {
            let secondary: Vec<String> = v.secondary_ips.iter().map(|a| a.to_string()).collect();
            vec![
                format!("vf{}", v.vf),
                n.vfs.get(&v.vf).cloned().unwrap_or_else(|| "-".into()),
                MacDisplay(&v.mac).to_string(),
                named(v.subnet_id, &n.subnets),
                v.primary_ip.to_string(),
                if secondary.is_empty() {
                    "-".into()
                } else {
                    secondary.join(",")
                },
                (if v.src_dst_check { "on" } else { "off" }).into(),
                (if v.link_up { "up" } else { "down" }).into(),
            ]
        })
        .collect();
    columns(
        &mut out,
        &[
            "VF",
            "instance",
            "MAC",
            "subnet",
            "primary",
            "secondary",
            "src/dst check",
            "link",
        ],
        &rows,
    );

    let _ = writeln!(out, "\nVPCs ({})", t.vpcs.len());
    let rows: Vec<Vec<String>> = t
        .vpcs
        .iter()
        .map(|v| {
            let dns: Vec<String> = v.dns.iter().map(|a| a.to_string()).collect();
            vec![
                named(v.id, &n.vpcs),
                v.vni.to_string(),
                cidr(v.cidr),
                v.main_route_table
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-".into()),
                if dns.is_empty() {
                    "default".into()
                } else {
                    dns.join(",")
                },
                match (&v.domain, t.domains_read) {
                    (Some(d), _) => d.clone(),
                    (None, true) => "-".into(),
                    // A firmware older than ABI 1.7 does not say.
                    (None, false) => "?".into(),
                },
            ]
        })
        .collect();
    columns(
        &mut out,
        &["VPC", "VNI", "CIDR", "main route table", "DNS", "domain"],
        &rows,
    );

    let _ = writeln!(out, "\nSubnets ({})", t.subnets.len());
    let rows: Vec<Vec<String>> = t
        .subnets
        .iter()
        .map(|s| {
            vec![
                named(s.id, &n.subnets),
                named(s.vpc_id, &n.vpcs),
                cidr(s.cidr),
                s.route_table
                    .map(|r| named(r, &n.route_tables))
                    .unwrap_or_else(|| "main".into()),
                MacDisplay(&s.gateway_mac).to_string(),
            ]
        })
        .collect();
    columns(
        &mut out,
        &["subnet", "VPC", "CIDR", "route table", "gateway MAC"],
        &rows,
    );

    let _ = writeln!(out, "\nRoute tables ({})", t.route_tables.len());
    for rt in &t.route_tables {
        let _ = writeln!(
            out,
            "  table {} of VPC {}",
            named(rt.id, &n.route_tables),
            named(rt.vpc_id, &n.vpcs)
        );
        let width = rt
            .routes
            .iter()
            .map(|r| cidr(r.dest).len())
            .max()
            .unwrap_or(0);
        for r in &rt.routes {
            let target = match r.target {
                RouteTarget::Local => "local".to_string(),
                RouteTarget::Blackhole => "blackhole".to_string(),
                RouteTarget::Gateway(g) => format!("gateway {}", named(g, &n.gateways)),
                RouteTarget::Peering(v) => format!("peering to VPC {}", named(v, &n.vpcs)),
                RouteTarget::Instance(a) => {
                    let who = n
                        .instances
                        .iter()
                        .find(|(_, ip, _)| *ip == a)
                        .map(|(_, _, name)| format!(" ({name})"))
                        .unwrap_or_default();
                    format!("instance {a}{who}")
                }
                RouteTarget::Unknown(k) => format!("unknown target kind {k}"),
            };
            let _ = writeln!(out, "    {:<width$}  -> {target}", cidr(r.dest));
        }
    }

    let _ = writeln!(out, "\nGateways ({})", t.gateways.len());
    let rows: Vec<Vec<String>> = t
        .gateways
        .iter()
        .map(|g| {
            vec![
                named(g.id, &n.gateways),
                g.kind.clone(),
                g.underlay_ip.to_string(),
                MacDisplay(&g.mac).to_string(),
            ]
        })
        .collect();
    columns(&mut out, &["gateway", "kind", "underlay", "MAC"], &rows);

    let _ = writeln!(out, "\nMappings ({})", t.mappings.len());
    let rows: Vec<Vec<String>> = t
        .mappings
        .iter()
        .map(|m| {
            let place = match m.place {
                PlaceRow::LocalVf(vf) => format!("local vf{vf}"),
                PlaceRow::Remote(a) => match n.hosts.get(&a) {
                    Some(host) => format!("host {host} ({a})"),
                    None => format!("host {a}"),
                },
                PlaceRow::Gateway => "subnet gateway".into(),
                PlaceRow::VniAnchor(v) => format!("anchor of VPC {}", named(v, &n.vpcs)),
                PlaceRow::Broadcast => "subnet broadcast".into(),
                PlaceRow::Unknown(k) => format!("unknown location {k}"),
            };
            vec![
                m.vni.to_string(),
                m.ip.to_string(),
                MacDisplay(&m.mac).to_string(),
                place,
                n.instance(m.vni, m.ip).unwrap_or("-").to_string(),
            ]
        })
        .collect();
    columns(
        &mut out,
        &["VNI", "address", "MAC", "location", "instance"],
        &rows,
    );
    out
}

#[cfg(test)]
#[path = "show_tests.rs"]
mod tests;
