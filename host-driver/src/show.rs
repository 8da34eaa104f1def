//! `nicctl show`: a NIC's tables as it holds them, read back with `TABLE_READ`.
//!
//! [`NicTables`] is the typed model of what the firmware reports (one row type per table,
//! decoded from the contract's entries); [`Names`] says what the VPC file calls each ID, when
//! a file is known; [`show_text`] prints both. The model serialises to JSON for
//! `nicctl show --json` and for the control socket of `nicctl up`.
use crate::error::{command_label, DriverError, Result};
use crate::nic::{PfDriver, BUF_BYTES};
use crate::tables::{Cidr, Mac, MacDisplay, RouteTarget};
use serde::{Deserialize, Serialize};
use shared_regs::admin::{AdminCmd, Opcode};
use shared_regs::entry::{
    GatewayEntry, GatewayKind, MappingEntry, MappingLocation, RouteEntry, RouteTableEntry,
    SubnetEntry, TableId, TableReadHeader, TableReadQuery, UplinkEntry, VfFlags, VfReadEntry,
    VpcEntry, CURSOR_END, CURSOR_START, MAIN_ROUTE_TABLE,
};
use shared_regs::{Le16, Le32};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The uplink port (`UPLINK_SET`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UplinkRow {
    #[serde(with = "mac_text")]
    pub mac: Mac,
    #[serde(with = "mac_text")]
    pub next_hop_mac: Mac,
    pub underlay_ip: Ipv4Addr,
    pub mtu: u16,
}

/// A VPC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcRow {
    pub id: u16,
    pub vni: u32,
    #[serde(with = "cidr_text")]
    pub cidr: Cidr,
    /// `None`: no main route table yet.
    pub main_route_table: Option<u16>,
    pub dns: Vec<Ipv4Addr>,
}

/// A gateway endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRow {
    pub id: u16,
    /// "internet", "vpn", "nat", or "kind N" for a number the driver does not know.
    pub kind: String,
    pub underlay_ip: Ipv4Addr,
    #[serde(with = "mac_text")]
    pub mac: Mac,
}

/// One route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRow {
    #[serde(with = "cidr_text")]
    pub dest: Cidr,
    pub target: RouteTarget,
}

/// A route table and its routes (the local route included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTableRow {
    pub id: u16,
    pub vpc_id: u16,
    pub routes: Vec<RouteRow>,
}

/// A subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetRow {
    pub id: u16,
    pub vpc_id: u16,
    #[serde(with = "cidr_text")]
    pub cidr: Cidr,
    /// `None`: the VPC's main table.
    pub route_table: Option<u16>,
    #[serde(with = "mac_text")]
    pub gateway_mac: Mac,
}

/// An assigned VF.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfRow {
    pub vf: u16,
    pub subnet_id: u16,
    #[serde(with = "mac_text")]
    pub mac: Mac,
    pub primary_ip: Ipv4Addr,
    pub secondary_ips: Vec<Ipv4Addr>,
    pub src_dst_check: bool,
    /// The VM's driver has enabled the VF's rings.
    pub link_up: bool,
}

/// Where a mapped address lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceRow {
    /// On this NIC's VF.
    LocalVf(u16),
    /// On another host, by its underlay address.
    Remote(Ipv4Addr),
    /// A subnet gateway's own address (made by `SUBNET_ADD`).
    Gateway,
    /// The anchor of the VPC with this ID (address 0.0.0.0, made by `VPC_ADD`).
    VniAnchor(u16),
    /// A subnet's broadcast address (made by `SUBNET_ADD`).
    Broadcast,
    /// A location kind the driver does not know.
    Unknown(u8),
}

/// One mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingRow {
    pub vni: u32,
    pub ip: Ipv4Addr,
    #[serde(with = "mac_text")]
    pub mac: Mac,
    pub place: PlaceRow,
}

/// Every table of one NIC, in ID order (mappings by VNI and address).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicTables {
    pub uplink: Option<UplinkRow>,
    pub vpcs: Vec<VpcRow>,
    pub gateways: Vec<GatewayRow>,
    pub route_tables: Vec<RouteTableRow>,
    pub subnets: Vec<SubnetRow>,
    pub vfs: Vec<VfRow>,
    pub mappings: Vec<MappingRow>,
}

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

fn ip(b: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(b)
}

fn optional_table(id: u16) -> Option<u16> {
    (id != MAIN_ROUTE_TABLE).then_some(id)
}

impl From<&UplinkEntry> for UplinkRow {
    fn from(e: &UplinkEntry) -> Self {
        UplinkRow {
            mac: e.mac,
            next_hop_mac: e.next_hop_mac,
            underlay_ip: ip(e.underlay_ip),
            mtu: e.mtu.get(),
        }
    }
}

impl From<&VpcEntry> for VpcRow {
    fn from(e: &VpcEntry) -> Self {
        VpcRow {
            id: e.id.get(),
            vni: e.vni.get(),
            cidr: (ip(e.cidr), e.cidr_len),
            main_route_table: optional_table(e.main_route_table.get()),
            dns: e
                .dns
                .iter()
                .take(usize::from(e.dns_count))
                .map(|&d| ip(d))
                .collect(),
        }
    }
}

impl From<&GatewayEntry> for GatewayRow {
    fn from(e: &GatewayEntry) -> Self {
        GatewayRow {
            id: e.id.get(),
            kind: GatewayKind::from_u8(e.kind)
                .map(|k| k.name().to_string())
                .unwrap_or_else(|| format!("kind {}", e.kind)),
            underlay_ip: ip(e.underlay_ip),
            mac: e.mac,
        }
    }
}

impl From<&RouteEntry> for RouteRow {
    fn from(e: &RouteEntry) -> Self {
        RouteRow {
            dest: (ip(e.prefix), e.prefix_len),
            target: RouteTarget::from_entry(e),
        }
    }
}

impl From<&SubnetEntry> for SubnetRow {
    fn from(e: &SubnetEntry) -> Self {
        SubnetRow {
            id: e.id.get(),
            vpc_id: e.vpc_id.get(),
            cidr: (ip(e.prefix), e.prefix_len),
            route_table: optional_table(e.route_table_id.get()),
            gateway_mac: e.gateway_mac,
        }
    }
}

impl From<&VfReadEntry> for VfRow {
    fn from(e: &VfReadEntry) -> Self {
        let n = usize::from(e.secondary_count).min(e.secondary.len());
        VfRow {
            vf: e.entry.vf.get(),
            subnet_id: e.entry.subnet_id.get(),
            mac: e.entry.mac,
            primary_ip: ip(e.entry.primary_ip),
            secondary_ips: e.secondary[..n].iter().map(|&a| ip(a)).collect(),
            src_dst_check: VfFlags::from_bits_retain(e.entry.flags.get())
                .contains(VfFlags::SRC_DST_CHECK),
            link_up: e.rings_enabled != 0,
        }
    }
}

impl From<&MappingEntry> for MappingRow {
    fn from(e: &MappingEntry) -> Self {
        // Numbers as the contract gives them (shared_regs::entry::MappingLocation).
        let place = match MappingLocation::from_u8(e.location) {
            Some(MappingLocation::LocalVf) => PlaceRow::LocalVf(e.vf.get()),
            Some(MappingLocation::Remote) => PlaceRow::Remote(ip(e.underlay_ip)),
            Some(MappingLocation::Gateway) => PlaceRow::Gateway,
            Some(MappingLocation::VniAnchor) => PlaceRow::VniAnchor(e.vf.get()),
            Some(MappingLocation::Broadcast) => PlaceRow::Broadcast,
            None => PlaceRow::Unknown(e.location),
        };
        MappingRow {
            vni: e.vni.get(),
            ip: ip(e.ip),
            mac: e.mac,
            place,
        }
    }
}

const HEADER: usize = std::mem::size_of::<TableReadHeader>();

impl PfDriver {
    /// `TABLE_READ`: every entry of `table` (for [`TableId::Route`], of route table
    /// `route_table`), reading on from each answer's cursor until the end.
    pub fn read_table<E>(&self, table: TableId, route_table: u16) -> Result<Vec<E>>
    where
        E: FromBytes + IntoBytes + KnownLayout + Immutable + Copy,
    {
        let size = std::mem::size_of::<E>();
        let mut out = Vec::new();
        let mut cursor = CURSOR_START;
        loop {
            let query = TableReadQuery {
                table: table as u8,
                reserved: 0,
                route_table: Le16::new(route_table),
                cursor: Le32::new(cursor),
            };
            let what = match table {
                TableId::Route => format!("routes of route table {route_table}, from {cursor}"),
                _ => format!("{} table, from {cursor}", table.name()),
            };
            let cmd = AdminCmd::new(Opcode::TableRead, &query);
            let (entries, next) =
                self.execute_with_buf(cmd, &[], Some(BUF_BYTES), what, |done, buf, what| {
                    let bad = |why: String| DriverError::BadCompletion {
                        command: command_label(Opcode::TableRead, what),
                        what: why,
                    };
                    let written = done.result.get() as usize;
                    if !(HEADER..=BUF_BYTES).contains(&written) {
                        return Err(bad(format!(
                            "the firmware says it wrote {written} bytes into a {BUF_BYTES}-byte \
                             buffer; a read holds at least its {HEADER}-byte header"
                        )));
                    }
                    let header: TableReadHeader = buf.read_obj(0)?;
                    let count = header.count.get() as usize;
                    if count.saturating_mul(size) != written - HEADER {
                        let entries = if count == 1 {
                            format!("1 entry of {size} bytes does")
                        } else {
                            format!("{count} entries of {size} bytes do")
                        };
                        return Err(bad(format!(
                            "{entries} not make the {} bytes written after the header",
                            written - HEADER
                        )));
                    }
                    let mut entries = Vec::with_capacity(count);
                    for i in 0..count {
                        entries.push(buf.read_obj::<E>((HEADER + i * size) as u64)?);
                    }
                    Ok((entries, header.next_cursor.get()))
                })?;
            let progressed = !entries.is_empty();
            out.extend(entries);
            if next == CURSOR_END {
                return Ok(out);
            }
            if !progressed || next <= cursor {
                return Err(DriverError::BadCompletion {
                    command: command_label(Opcode::TableRead, table.name()),
                    what: format!(
                        "the read from cursor {cursor} returned nothing new and cursor {next}; \
                         it would never end"
                    ),
                });
            }
            cursor = next;
        }
    }

    /// Every table, read with `TABLE_READ`.
    pub fn read_tables(&self) -> Result<NicTables> {
        let uplink: Vec<UplinkEntry> = self.read_table(TableId::Uplink, 0)?;
        let vpcs: Vec<VpcEntry> = self.read_table(TableId::Vpc, 0)?;
        let gateways: Vec<GatewayEntry> = self.read_table(TableId::Gateway, 0)?;
        let tables: Vec<RouteTableEntry> = self.read_table(TableId::RouteTable, 0)?;
        let mut route_tables = Vec::with_capacity(tables.len());
        for t in &tables {
            let routes: Vec<RouteEntry> = self.read_table(TableId::Route, t.id.get())?;
            route_tables.push(RouteTableRow {
                id: t.id.get(),
                vpc_id: t.vpc_id.get(),
                routes: routes.iter().map(RouteRow::from).collect(),
            });
        }
        let subnets: Vec<SubnetEntry> = self.read_table(TableId::Subnet, 0)?;
        let vfs: Vec<VfReadEntry> = self.read_table(TableId::Vf, 0)?;
        let mappings: Vec<MappingEntry> = self.read_table(TableId::Mapping, 0)?;
        let mut mappings: Vec<MappingRow> = mappings.iter().map(MappingRow::from).collect();
        mappings.sort_by_key(|m| (m.vni, m.ip));
        Ok(NicTables {
            uplink: uplink.first().map(UplinkRow::from),
            vpcs: vpcs.iter().map(VpcRow::from).collect(),
            gateways: gateways.iter().map(GatewayRow::from).collect(),
            route_tables,
            subnets: subnets.iter().map(SubnetRow::from).collect(),
            vfs: vfs.iter().map(VfRow::from).collect(),
            mappings,
        })
    }
}

impl Names {
    /// The names of a VPC file for the NIC its plan for `host` programs.
    pub fn from_config(config: &crate::config::Config, plan: &crate::config::Plan) -> Names {
        use crate::config::model;
        let id = |i: usize| i as u16;
        let nvpcs = config.vpcs.len();
        let mut n = Names::default();
        for (i, v) in config.vpcs.iter().enumerate() {
            n.vpcs.insert(id(i), v.name.clone());
            n.route_tables.insert(id(i), format!("{} main", v.name));
        }
        for (j, t) in config.route_tables.iter().enumerate() {
            n.route_tables.insert(id(nvpcs + j), t.name.clone());
        }
        for (k, s) in config.subnets.iter().enumerate() {
            n.subnets.insert(id(k), s.name.clone());
        }
        for (g, gw) in config.gateways.iter().enumerate() {
            n.gateways.insert(id(g), gw.name.clone());
        }
        for (name, vf) in &plan.vfs {
            n.vfs.insert(*vf, name.clone());
        }
        for (h, host) in config.hosts.iter().enumerate() {
            n.hosts.insert(model::host_underlay(h), host.name.clone());
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
            ]
        })
        .collect();
    columns(
        &mut out,
        &["VPC", "VNI", "CIDR", "main route table", "DNS"],
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

/// MACs as "02:00:0a:00:01:0a" in JSON.
mod mac_text {
    use crate::tables::{Mac, MacDisplay};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mac: &Mac, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&MacDisplay(mac))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("{text:?} is not a MAC address"));
        let bytes: Vec<u8> = text
            .split(':')
            .map(|p| u8::from_str_radix(p, 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        bytes.try_into().map_err(|_| bad())
    }
}

/// CIDRs as "10.0.0.0/16" in JSON.
mod cidr_text {
    use crate::tables::Cidr;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Cidr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}/{}", c.0, c.1))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("{text:?} is not an IPv4 CIDR"));
        let (a, l) = text.split_once('/').ok_or_else(bad)?;
        Ok((a.parse().map_err(|_| bad())?, l.parse().map_err(|_| bad())?))
    }
}

#[cfg(test)]
#[path = "show_tests.rs"]
mod tests;
