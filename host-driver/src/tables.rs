//! Typed table programming: the Rust-side description of each table entry, converted to the
//! shared-regs entry format an admin command carries, plus a short text naming the entry
//! for error messages ("vpc 3, vni 100, 10.0.0.0/16").
//!
//! The driver checks here only what cannot be encoded (too many DNS servers); every range
//! and consistency rule is the firmware's to enforce, so that the device stays the one
//! authority on what its tables accept.
use crate::error::{DriverError, Result};
use serde::{Deserialize, Serialize};
pub use shared_regs::entry::GatewayKind;
use shared_regs::entry::{
    self, GatewayEntry, MappingEntry, MappingLocation, RouteEntry, SubnetEntry, UplinkEntry,
    VfAddrEntry, VfEntry, VfFlags, VfFlagsEntry, VpcEntry, DOMAIN_MAX, MAIN_ROUTE_TABLE,
    UPLINK_FUNCTION, VPC_DNS_SERVERS,
};
use shared_regs::{Le16, Le32, MacBytes};
use std::fmt;
use std::net::Ipv4Addr;

/// A MAC address in wire order.
pub type Mac = MacBytes;

/// An IPv4 prefix: base address and length.
pub type Cidr = (Ipv4Addr, u8);

/// `aa:bb:cc:dd:ee:ff`.
pub struct MacDisplay<'a>(pub &'a Mac);

impl fmt::Display for MacDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

fn cidr_text((ip, len): Cidr) -> String {
    format!("{ip}/{len}")
}

/// A VPC (`VPC_ADD`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcSpec {
    /// Index in the VPC table.
    pub id: u16,
    /// 24-bit VNI, unique among VPCs.
    pub vni: u32,
    pub cidr: Cidr,
    /// The route table subnets without their own use; `None` for none yet.
    pub main_route_table: Option<u16>,
    /// DNS servers for DHCP, at most 4; empty means the default (base + 2).
    pub dns: Vec<Ipv4Addr>,
    /// DNS domain name for DHCP (option 15): ASCII, at most [`DOMAIN_MAX`] bytes. It
    /// travels in `VPC_ADD`'s indirect buffer.
    pub domain: Option<String>,
}

impl VpcSpec {
    /// The `VPC_ADD` parameters.
    pub fn to_entry(&self) -> Result<VpcEntry> {
        if self.dns.len() > VPC_DNS_SERVERS {
            return Err(DriverError::InvalidArgument(format!(
                "{}: {} DNS servers given, a VPC carries at most {VPC_DNS_SERVERS}",
                self.describe(),
                self.dns.len()
            )));
        }
        let mut dns = [[0u8; 4]; VPC_DNS_SERVERS];
        for (slot, ip) in dns.iter_mut().zip(&self.dns) {
            *slot = ip.octets();
        }
        Ok(VpcEntry {
            id: Le16::new(self.id),
            main_route_table: Le16::new(self.main_route_table.unwrap_or(MAIN_ROUTE_TABLE)),
            vni: Le32::new(self.vni),
            cidr: self.cidr.0.octets(),
            cidr_len: self.cidr.1,
            dns_count: self.dns.len() as u8,
            reserved: [0; 2],
            dns,
        })
    }

    /// The bytes of the domain name `VPC_ADD` carries, if any: refused when empty, longer
    /// than [`DOMAIN_MAX`] or not ASCII (the characters themselves are the firmware's to
    /// judge).
    pub fn domain_bytes(&self) -> Result<Option<&[u8]>> {
        let Some(domain) = &self.domain else {
            return Ok(None);
        };
        let bad = |why: String| {
            Err(DriverError::InvalidArgument(format!(
                "{}: domain {domain:?} {why}",
                self.describe()
            )))
        };
        if domain.is_empty() {
            return bad("is empty; leave it out for none".into());
        }
        if let Some((at, c)) = domain.char_indices().find(|(_, c)| !c.is_ascii()) {
            return bad(format!(
                "has the non-ASCII character {c:?} at byte {at}; a DNS domain name is ASCII"
            ));
        }
        if domain.len() > DOMAIN_MAX {
            return bad(format!(
                "is {} bytes long, a VPC carries at most {DOMAIN_MAX}",
                domain.len()
            ));
        }
        Ok(Some(domain.as_bytes()))
    }

    /// "vpc 3, vni 100, 10.0.0.0/16".
    pub fn describe(&self) -> String {
        format!(
            "vpc {}, vni {}, {}",
            self.id,
            self.vni,
            cidr_text(self.cidr)
        )
    }
}

/// A gateway endpoint reached over the underlay (`GATEWAY_ADD`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySpec {
    /// Index in the gateway table; routes name the gateway by it.
    pub id: u16,
    pub kind: GatewayKind,
    /// VXLAN destination of frames routed to it, and a trusted outer source (F15).
    pub underlay_ip: Ipv4Addr,
    /// Inner destination MAC of frames sent to it.
    pub mac: Mac,
}

impl GatewaySpec {
    /// The `GATEWAY_ADD` parameters.
    pub fn to_entry(&self) -> GatewayEntry {
        GatewayEntry {
            id: Le16::new(self.id),
            kind: self.kind as u8,
            reserved: 0,
            underlay_ip: self.underlay_ip.octets(),
            mac: self.mac,
            reserved2: [0; 2],
        }
    }

    /// "gateway 0 (internet), underlay 192.0.2.100, 02:00:00:00:ff:01".
    pub fn describe(&self) -> String {
        format!(
            "gateway {} ({}), underlay {}, {}",
            self.id,
            self.kind.name(),
            self.underlay_ip,
            MacDisplay(&self.mac)
        )
    }
}

/// The `VF_ADDR_ADD` / `VF_ADDR_DEL` parameters.
pub fn vf_addr_entry(vf: u16, ip: Ipv4Addr) -> VfAddrEntry {
    VfAddrEntry {
        vf: Le16::new(vf),
        reserved: [0; 2],
        ip: ip.octets(),
    }
}

fn vf_flags(src_dst_check: bool) -> VfFlags {
    if src_dst_check {
        VfFlags::SRC_DST_CHECK
    } else {
        VfFlags::empty()
    }
}

/// The `VF_FLAGS_SET` parameters.
pub fn vf_flags_entry(vf: u16, src_dst_check: bool) -> VfFlagsEntry {
    VfFlagsEntry {
        vf: Le16::new(vf),
        flags: Le16::new(vf_flags(src_dst_check).bits()),
    }
}

/// A subnet (`SUBNET_ADD`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetSpec {
    /// Index in the subnet table.
    pub id: u16,
    pub vpc_id: u16,
    /// Prefix inside the VPC CIDR, /16 ..= /28.
    pub cidr: Cidr,
    /// Its own route table, or `None` for the VPC's main table.
    pub route_table: Option<u16>,
    /// MAC of the subnet gateway (base + 1).
    pub gateway_mac: Mac,
}

impl SubnetSpec {
    /// The `SUBNET_ADD` parameters.
    pub fn to_entry(&self) -> SubnetEntry {
        SubnetEntry {
            id: Le16::new(self.id),
            vpc_id: Le16::new(self.vpc_id),
            route_table_id: Le16::new(self.route_table.unwrap_or(MAIN_ROUTE_TABLE)),
            prefix_len: self.cidr.1,
            reserved: 0,
            prefix: self.cidr.0.octets(),
            gateway_mac: self.gateway_mac,
            reserved2: [0; 2],
        }
    }

    /// "subnet 2 of vpc 1, 10.0.1.0/24".
    pub fn describe(&self) -> String {
        format!(
            "subnet {} of vpc {}, {}",
            self.id,
            self.vpc_id,
            cidr_text(self.cidr)
        )
    }
}

/// Where a route sends what it matches (F8).
///
/// Layer: the driver. The one type the driver programs a route with (`ROUTE_ADD`), reads one
/// back into (`nicctl show`, its JSON) and names one in a decoded trace. It is the contract's
/// [`entry::RouteTarget`] plus what only a driver needs: [`RouteTarget::Unknown`] keeps a
/// kind number a newer device reports instead of refusing the whole table, and it has a
/// serialised form and the text tools print. The firmware refuses `Local` and unknown
/// kinds in `ROUTE_ADD`; the driver leaves that judgement to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteTarget {
    /// The VPC CIDR, made by the firmware: a mapping lookup.
    Local,
    /// Drop silently.
    Blackhole,
    /// A gateway by ID.
    Gateway(u16),
    /// A peered VPC by ID.
    Peering(u16),
    /// An instance (middlebox) by its primary IPv4.
    Instance(Ipv4Addr),
    /// A target kind number this driver does not know.
    Unknown(u8),
}

impl From<entry::RouteTarget> for RouteTarget {
    fn from(t: entry::RouteTarget) -> RouteTarget {
        match t {
            entry::RouteTarget::Local => RouteTarget::Local,
            entry::RouteTarget::Blackhole => RouteTarget::Blackhole,
            entry::RouteTarget::Gateway(id) => RouteTarget::Gateway(id),
            entry::RouteTarget::Peering(id) => RouteTarget::Peering(id),
            entry::RouteTarget::Instance(ip) => RouteTarget::Instance(ip),
        }
    }
}

impl RouteTarget {
    /// The target of a route as `TABLE_READ` reports it.
    pub fn from_entry(e: &RouteEntry) -> RouteTarget {
        e.route_target()
            .map_or(RouteTarget::Unknown(e.target_kind), RouteTarget::from)
    }

    /// The contract's form; `None` for [`RouteTarget::Unknown`].
    pub fn to_contract(self) -> Option<entry::RouteTarget> {
        Some(match self {
            RouteTarget::Local => entry::RouteTarget::Local,
            RouteTarget::Blackhole => entry::RouteTarget::Blackhole,
            RouteTarget::Gateway(id) => entry::RouteTarget::Gateway(id),
            RouteTarget::Peering(id) => entry::RouteTarget::Peering(id),
            RouteTarget::Instance(ip) => entry::RouteTarget::Instance(ip),
            RouteTarget::Unknown(_) => return None,
        })
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteTarget::Local => f.write_str("local"),
            RouteTarget::Blackhole => f.write_str("blackhole"),
            RouteTarget::Gateway(id) => write!(f, "gateway {id}"),
            RouteTarget::Peering(id) => write!(f, "peering to vpc {id}"),
            RouteTarget::Instance(ip) => write!(f, "instance {ip}"),
            RouteTarget::Unknown(kind) => write!(f, "target kind {kind}"),
        }
    }
}

/// The `ROUTE_ADD` / `ROUTE_DEL` parameters (`target` is ignored by `ROUTE_DEL`). An
/// unknown kind goes as its number with no argument, for the firmware to refuse.
pub fn route_entry(table: u16, dest: Cidr, target: RouteTarget) -> RouteEntry {
    let contract = target.to_contract();
    let mut e = RouteEntry::new(
        table,
        dest.0,
        dest.1,
        contract.unwrap_or(entry::RouteTarget::Blackhole),
    );
    if let RouteTarget::Unknown(kind) = target {
        e.target_kind = kind;
    }
    e
}

/// "route 0.0.0.0/0 in table 1".
pub fn route_text(table: u16, dest: Cidr) -> String {
    format!("route {} in table {table}", cidr_text(dest))
}

/// Where a mapped instance address lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingLocationSpec {
    /// On a VF of this NIC.
    LocalVf(u16),
    /// On another host, by its underlay IPv4.
    Remote(Ipv4Addr),
}

impl fmt::Display for MappingLocationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingLocationSpec::LocalVf(vf) => write!(f, "local vf {vf}"),
            MappingLocationSpec::Remote(ip) => write!(f, "remote host {ip}"),
        }
    }
}

/// The `MAPPING_ADD` parameters (`MAPPING_DEL` reads only `vni` and `ip`).
pub fn mapping_entry(vni: u32, ip: Ipv4Addr, mac: Mac, loc: MappingLocationSpec) -> MappingEntry {
    let (location, vf, underlay) = match loc {
        MappingLocationSpec::LocalVf(vf) => (MappingLocation::LocalVf, vf, [0; 4]),
        MappingLocationSpec::Remote(ip) => (MappingLocation::Remote, 0, ip.octets()),
    };
    MappingEntry {
        vni: Le32::new(vni),
        ip: ip.octets(),
        mac,
        location: location as u8,
        reserved: 0,
        vf: Le16::new(vf),
        reserved2: [0; 2],
        underlay_ip: underlay,
    }
}

/// "mapping vni 100 10.0.1.5".
pub fn mapping_text(vni: u32, ip: Ipv4Addr) -> String {
    format!("mapping vni {vni} {ip}")
}

/// The instance a VF serves (`VF_SET`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VfSpec {
    pub vf: u16,
    pub subnet_id: u16,
    /// Unicast MAC the VM sees on its VF.
    pub mac: Mac,
    pub primary_ip: Ipv4Addr,
    /// Source/destination check (F5); on for ordinary instances.
    pub src_dst_check: bool,
}

impl VfSpec {
    /// The `VF_SET` parameters.
    pub fn to_entry(&self) -> VfEntry {
        VfEntry {
            vf: Le16::new(self.vf),
            subnet_id: Le16::new(self.subnet_id),
            flags: Le16::new(vf_flags(self.src_dst_check).bits()),
            reserved: [0; 2],
            mac: self.mac,
            reserved2: [0; 2],
            primary_ip: self.primary_ip.octets(),
        }
    }

    /// "vf 0 in subnet 2, 10.0.1.10, 02:00:00:00:00:01".
    pub fn describe(&self) -> String {
        format!(
            "vf {} in subnet {}, {}, {}",
            self.vf,
            self.subnet_id,
            self.primary_ip,
            MacDisplay(&self.mac)
        )
    }
}

/// The uplink port's addresses (`UPLINK_SET`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UplinkSpec {
    pub mac: Mac,
    pub next_hop_mac: Mac,
    /// This host's underlay address: VXLAN source and the only address decapsulated.
    pub underlay_ip: Ipv4Addr,
    /// Uplink IP MTU (9216 is usual).
    pub mtu: u16,
}

impl UplinkSpec {
    /// The `UPLINK_SET` parameters.
    pub fn to_entry(&self) -> UplinkEntry {
        UplinkEntry {
            mac: self.mac,
            next_hop_mac: self.next_hop_mac,
            underlay_ip: self.underlay_ip.octets(),
            mtu: Le16::new(self.mtu),
            reserved: [0; 2],
        }
    }

    /// "uplink 192.0.2.1, mtu 9216".
    pub fn describe(&self) -> String {
        format!("uplink {}, mtu {}", self.underlay_ip, self.mtu)
    }
}

/// Whose counters `GET_STATS` / `CLEAR_STATS` read, and the port a traced frame arrives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatsFunction {
    Vf(u16),
    Uplink,
}

/// A port of the NIC: a VF or the uplink.
pub type Port = StatsFunction;

impl StatsFunction {
    /// The function number of [`shared_regs::entry::StatsQuery`].
    pub fn index(self) -> u16 {
        match self {
            StatsFunction::Vf(n) => n,
            StatsFunction::Uplink => UPLINK_FUNCTION,
        }
    }

    /// The function a number names: [`UPLINK_FUNCTION`] or a VF.
    pub fn from_index(index: u16) -> Self {
        match index {
            UPLINK_FUNCTION => StatsFunction::Uplink,
            n => StatsFunction::Vf(n),
        }
    }
}

impl fmt::Display for StatsFunction {
    /// "vf0", "uplink": the column names of `nicctl stats`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsFunction::Vf(n) => write!(f, "vf{n}"),
            StatsFunction::Uplink => f.write_str("uplink"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_regs::entry::RouteTargetKind;
    use zerocopy::IntoBytes;

    #[test]
    fn vpc_entry_encodes_ids_cidr_and_dns() {
        let spec = VpcSpec {
            id: 3,
            vni: 0x0001_0203,
            cidr: (Ipv4Addr::new(10, 0, 0, 0), 16),
            main_route_table: None,
            dns: vec![Ipv4Addr::new(10, 0, 0, 2)],
            domain: None,
        };
        let e = spec.to_entry().unwrap();
        let b = e.as_bytes();
        assert_eq!(&b[0..2], &[3, 0]);
        assert_eq!(&b[2..4], &[0xff, 0xff], "no main table is MAIN_ROUTE_TABLE");
        assert_eq!(&b[4..8], &[3, 2, 1, 0], "VNI little-endian");
        assert_eq!(&b[8..12], &[10, 0, 0, 0]);
        assert_eq!((b[12], b[13]), (16, 1));
        assert_eq!(&b[16..20], &[10, 0, 0, 2]);
        assert_eq!(spec.describe(), "vpc 3, vni 66051, 10.0.0.0/16");

        let too_many = VpcSpec {
            dns: vec![Ipv4Addr::LOCALHOST; 5],
            ..spec
        };
        let err = too_many.to_entry().unwrap_err();
        assert!(err.to_string().contains("5 DNS servers"), "{err}");
    }

    #[test]
    fn domain_is_checked_before_it_is_sent() {
        let spec = |d: &str| VpcSpec {
            id: 1,
            vni: 7,
            cidr: (Ipv4Addr::new(10, 0, 0, 0), 16),
            main_route_table: None,
            dns: vec![],
            domain: Some(d.to_string()),
        };
        assert_eq!(
            spec("prod.internal").domain_bytes().unwrap(),
            Some(&b"prod.internal"[..])
        );
        let max = "a".repeat(DOMAIN_MAX);
        assert_eq!(spec(&max).domain_bytes().unwrap().unwrap().len(), 64);
        let err = |d: &str| spec(d).domain_bytes().unwrap_err().to_string();
        assert_eq!(
            err(&"a".repeat(DOMAIN_MAX + 1)),
            format!(
                "invalid argument: vpc 1, vni 7, 10.0.0.0/16: domain {:?} is 65 bytes long, \
                 a VPC carries at most 64",
                "a".repeat(65)
            )
        );
        assert_eq!(
            err("prod.intérnal"),
            "invalid argument: vpc 1, vni 7, 10.0.0.0/16: domain \"prod.intérnal\" has the \
             non-ASCII character 'é' at byte 8; a DNS domain name is ASCII"
        );
        assert!(err("").contains("domain \"\" is empty"), "{}", err(""));
        let none = VpcSpec {
            domain: None,
            ..spec("x")
        };
        assert_eq!(none.domain_bytes().unwrap(), None);
    }

    #[test]
    fn gateway_vf_addr_and_flags_entries() {
        let g = GatewaySpec {
            id: 0x0102,
            kind: GatewayKind::Nat,
            underlay_ip: Ipv4Addr::new(192, 0, 2, 100),
            mac: [2, 0, 0, 0, 0xff, 1],
        };
        assert_eq!(
            g.to_entry().as_bytes(),
            &[2, 1, 2, 0, 192, 0, 2, 100, 2, 0, 0, 0, 0xff, 1, 0, 0]
        );
        assert_eq!(
            g.describe(),
            "gateway 258 (nat), underlay 192.0.2.100, 02:00:00:00:ff:01"
        );
        assert_eq!(
            vf_addr_entry(3, Ipv4Addr::new(10, 0, 1, 11)).as_bytes(),
            &[3, 0, 0, 0, 10, 0, 1, 11]
        );
        assert_eq!(vf_flags_entry(2, true).as_bytes(), &[2, 0, 1, 0]);
        assert_eq!(vf_flags_entry(2, false).as_bytes(), &[2, 0, 0, 0]);
        assert_eq!(GatewayKind::Internet.name(), "internet");
        assert_eq!(GatewayKind::Vpn.name(), "vpn");
    }

    #[test]
    fn route_targets_encode_kind_and_argument() {
        let e = route_entry(
            1,
            (Ipv4Addr::new(0, 0, 0, 0), 0),
            RouteTarget::Gateway(0x0102),
        );
        assert_eq!(e.as_bytes(), &[1, 0, 0, 2, 0, 0, 0, 0, 2, 1, 0, 0]);
        let e = route_entry(
            2,
            (Ipv4Addr::new(10, 1, 0, 0), 16),
            RouteTarget::Instance(Ipv4Addr::new(10, 0, 1, 9)),
        );
        assert_eq!(e.target_kind, RouteTargetKind::Instance.as_u8());
        assert_eq!(e.target, [10, 0, 1, 9]);
        assert_eq!(
            route_entry(0, (Ipv4Addr::UNSPECIFIED, 0), RouteTarget::Blackhole).target_kind,
            RouteTargetKind::Blackhole.as_u8()
        );
        assert_eq!(
            route_entry(0, (Ipv4Addr::UNSPECIFIED, 0), RouteTarget::Peering(4)).target,
            [4, 0, 0, 0]
        );
        let odd = route_entry(0, (Ipv4Addr::UNSPECIFIED, 0), RouteTarget::Unknown(9));
        assert_eq!((odd.target_kind, odd.target), (9, [0; 4]));
    }

    #[test]
    fn route_targets_read_back_as_programmed() {
        let dest = (Ipv4Addr::new(10, 1, 0, 0), 16);
        for t in [
            RouteTarget::Local,
            RouteTarget::Blackhole,
            RouteTarget::Gateway(3),
            RouteTarget::Peering(u16::MAX),
            RouteTarget::Instance(Ipv4Addr::new(10, 0, 2, 5)),
            RouteTarget::Unknown(77),
        ] {
            assert_eq!(RouteTarget::from_entry(&route_entry(1, dest, t)), t);
        }
        assert_eq!(RouteTarget::Peering(2).to_string(), "peering to vpc 2");
        assert_eq!(RouteTarget::Unknown(9).to_string(), "target kind 9");
    }

    #[test]
    fn mapping_vf_uplink_and_subnet_entries() {
        let mac = [2, 0, 0, 0, 0, 9];
        let m = mapping_entry(
            100,
            Ipv4Addr::new(10, 0, 1, 5),
            mac,
            MappingLocationSpec::Remote(Ipv4Addr::new(192, 0, 2, 7)),
        );
        assert_eq!(m.location, MappingLocation::Remote as u8);
        assert_eq!(m.underlay_ip, [192, 0, 2, 7]);
        let m = mapping_entry(
            100,
            Ipv4Addr::new(10, 0, 1, 5),
            mac,
            MappingLocationSpec::LocalVf(6),
        );
        assert_eq!(
            (m.location, m.vf.get()),
            (MappingLocation::LocalVf as u8, 6)
        );

        let vf = VfSpec {
            vf: 1,
            subnet_id: 2,
            mac,
            primary_ip: Ipv4Addr::new(10, 0, 1, 10),
            src_dst_check: true,
        };
        assert_eq!(vf.to_entry().flags.get(), VfFlags::SRC_DST_CHECK.bits());
        let off = VfSpec {
            src_dst_check: false,
            ..vf.clone()
        };
        assert_eq!(off.to_entry().flags.get(), 0);
        assert_eq!(
            vf.describe(),
            "vf 1 in subnet 2, 10.0.1.10, 02:00:00:00:00:09"
        );

        let s = SubnetSpec {
            id: 2,
            vpc_id: 1,
            cidr: (Ipv4Addr::new(10, 0, 1, 0), 24),
            route_table: None,
            gateway_mac: mac,
        };
        assert_eq!(s.to_entry().route_table_id.get(), MAIN_ROUTE_TABLE);
        assert_eq!(s.to_entry().prefix, [10, 0, 1, 0]);

        let u = UplinkSpec {
            mac,
            next_hop_mac: [2, 0, 0, 0, 0, 1],
            underlay_ip: Ipv4Addr::new(192, 0, 2, 1),
            mtu: 9216,
        };
        assert_eq!(u.to_entry().mtu.get(), 9216);
        assert_eq!(StatsFunction::Uplink.index(), UPLINK_FUNCTION);
        for f in [StatsFunction::Uplink, StatsFunction::Vf(3)] {
            assert_eq!(StatsFunction::from_index(f.index()), f);
        }
        assert_eq!(StatsFunction::Vf(3).to_string(), "vf3");
    }
}
