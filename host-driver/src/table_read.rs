//! A NIC's tables as it holds them, read back with `TABLE_READ`.
//!
//! [`NicTables`] is the typed model of what the firmware reports (one row type per table,
//! decoded from the contract's entries). It serialises (serde) so that a tool can print it
//! as JSON or hand it over a socket.
use crate::error::{command_label, DriverError, Result};
use crate::nic::{PfDriver, BUF_BYTES};
use crate::tables::{Cidr, Mac, RouteTarget};
use serde::{Deserialize, Serialize};
use shared_regs::admin::{AdminCmd, Opcode};
use shared_regs::entry::{
    GatewayEntry, GatewayKind, MappingEntry, MappingLocation, RouteEntry, RouteTableEntry,
    SubnetEntry, TableId, TableReadHeader, TableReadQuery, UplinkEntry, VfFlags, VfReadEntry,
    VpcDomainEntry, VpcEntry, CURSOR_END, CURSOR_START, MAIN_ROUTE_TABLE,
};
use shared_regs::{Le16, Le32};
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
    /// The DNS domain (DHCP option 15); `None` for none, or when the firmware cannot say
    /// ([`NicTables::domains_read`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
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
    /// The firmware reported the VPCs' DNS domains (ABI 1.7 and later).
    #[serde(default)]
    pub domains_read: bool,
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
            domain: None,
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
        let mut vpcs: Vec<VpcRow> = self
            .read_table::<VpcEntry>(TableId::Vpc, 0)?
            .iter()
            .map(VpcRow::from)
            .collect();
        let domains_read = self.info().abi_minor >= 7;
        if domains_read {
            for d in self.read_table::<VpcDomainEntry>(TableId::VpcDomain, 0)? {
                let name = d.name.get(..usize::from(d.len)).unwrap_or(&d.name);
                // Both tables come in VPC ID order.
                if let Ok(i) = vpcs.binary_search_by_key(&d.vpc_id.get(), |v| v.id) {
                    vpcs[i].domain = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
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
            vpcs,
            gateways: gateways.iter().map(GatewayRow::from).collect(),
            route_tables,
            subnets: subnets.iter().map(SubnetRow::from).collect(),
            vfs: vfs.iter().map(VfRow::from).collect(),
            mappings,
            domains_read,
        })
    }
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

impl NicTables {
    /// The tables with every ID replaced by what it stands for (a VPC by its VNI, a gateway by
    /// its underlay address, a route table by its VPC and routes, a subnet by its CIDR, a VF by
    /// its MAC): a NIC that kept its IDs across a change and a fresh one agree on this.
    pub fn canonical(&self) -> std::collections::BTreeSet<String> {
        let t = self;
        let vni = |id: u16| t.vpcs.iter().find(|v| v.id == id).map(|v| v.vni);
        let gateway = |id: u16| {
            t.gateways
                .iter()
                .find(|g| g.id == id)
                .map(|g| g.underlay_ip)
        };
        let target = |r: &RouteTarget| match *r {
            RouteTarget::Gateway(id) => format!("gateway {:?}", gateway(id)),
            RouteTarget::Peering(id) => format!("peering {:?}", vni(id)),
            other => other.to_string(),
        };
        let table = |id: Option<u16>| {
            let t = t.route_tables.iter().find(|t| Some(t.id) == id);
            t.map(|t| {
                let mut routes: Vec<String> = t
                    .routes
                    .iter()
                    .map(|r| format!("{:?} {}", r.dest, target(&r.target)))
                    .collect();
                routes.sort();
                format!("vpc {:?} [{}]", vni(t.vpc_id), routes.join(", "))
            })
        };
        let vf_mac = |vf: u16| t.vfs.iter().find(|v| v.vf == vf).map(|v| v.mac);
        let subnet = |id: u16| t.subnets.iter().find(|s| s.id == id).map(|s| s.cidr);
        let mut out = std::collections::BTreeSet::new();
        out.insert(format!("{:?}", t.uplink));
        for v in &t.vpcs {
            out.insert(format!(
                "vpc {} {:?} {:?} main {:?}",
                v.vni,
                v.cidr,
                v.dns,
                table(v.main_route_table)
            ));
        }
        for g in &t.gateways {
            out.insert(format!("gateway {} {} {:?}", g.underlay_ip, g.kind, g.mac));
        }
        for rt in &t.route_tables {
            out.insert(format!("table {:?}", table(Some(rt.id))));
        }
        for s in &t.subnets {
            out.insert(format!(
                "subnet {:?} {:?} {:?} {:?}",
                vni(s.vpc_id),
                s.cidr,
                table(s.route_table),
                s.gateway_mac
            ));
        }
        for v in &t.vfs {
            let mut sec = v.secondary_ips.clone();
            sec.sort();
            out.insert(format!(
                "vf {:?} {:?} {} {sec:?} {} {}",
                v.mac,
                subnet(v.subnet_id),
                v.primary_ip,
                v.src_dst_check,
                v.link_up
            ));
        }
        for m in &t.mappings {
            let place = match m.place {
                PlaceRow::LocalVf(vf) => format!("vf {:?}", vf_mac(vf)),
                PlaceRow::VniAnchor(id) => format!("anchor {:?}", vni(id)),
                other => format!("{other:?}"),
            };
            out.insert(format!("mapping {} {} {:?} {place}", m.vni, m.ip, m.mac));
        }
        out
    }
}

#[cfg(test)]
#[path = "table_read_tests.rs"]
mod tests;
