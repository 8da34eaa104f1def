//! [`Change`]: one step of a reconciliation, an admin command (or, for an object changed in
//! place, the commands that replace it) with the object it is about.
use crate::tables::{
    mapping_text, route_text, Cidr, GatewaySpec, Mac, MacDisplay, MappingLocationSpec, RouteTarget,
    SubnetSpec, UplinkSpec, VfSpec, VpcSpec,
};
use std::fmt;
use std::net::Ipv4Addr;

/// One step from what a NIC holds towards what it should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `UPLINK_SET` (the uplink is set in place).
    SetUplink(UplinkSpec),
    AddVpc(VpcSpec),
    /// The VPC with this ID changes (its VNI, CIDR, main table or DNS servers).
    ReplaceVpc(VpcSpec),
    DelVpc(u16),
    AddGateway(GatewaySpec),
    ReplaceGateway(GatewaySpec),
    DelGateway(u16),
    AddRouteTable {
        id: u16,
        vpc_id: u16,
    },
    DelRouteTable(u16),
    AddRoute {
        table: u16,
        dest: Cidr,
        target: RouteTarget,
    },
    /// The route's target changes.
    ReplaceRoute {
        table: u16,
        dest: Cidr,
        target: RouteTarget,
    },
    DelRoute {
        table: u16,
        dest: Cidr,
    },
    AddSubnet(SubnetSpec),
    /// The subnet changes (its route table, typically).
    ReplaceSubnet(SubnetSpec),
    DelSubnet(u16),
    SetVf(VfSpec),
    /// The VF's instance changes (MAC, subnet or primary address).
    ReplaceVf(VfSpec),
    /// Only the VF's source/destination check changes (`VF_FLAGS_SET`).
    SetVfFlags {
        vf: u16,
        src_dst_check: bool,
    },
    ClearVf(u16),
    AddVfAddr {
        vf: u16,
        ip: Ipv4Addr,
    },
    DelVfAddr {
        vf: u16,
        ip: Ipv4Addr,
    },
    AddMapping {
        vni: u32,
        ip: Ipv4Addr,
        mac: Mac,
        location: MappingLocationSpec,
    },
    /// The mapping's MAC or location changes (an instance moved).
    ReplaceMapping {
        vni: u32,
        ip: Ipv4Addr,
        mac: Mac,
        location: MappingLocationSpec,
    },
    DelMapping {
        vni: u32,
        ip: Ipv4Addr,
    },
}

/// What a change does to its object, as `diff` tools mark it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Add,
    Modify,
    Delete,
}

impl Kind {
    /// `+`, `~` or `-`.
    pub fn sign(self) -> char {
        match self {
            Kind::Add => '+',
            Kind::Modify => '~',
            Kind::Delete => '-',
        }
    }
}

impl Change {
    /// Whether it adds, modifies or deletes its object.
    pub fn kind(&self) -> Kind {
        use Change::*;
        match self {
            AddVpc(_)
            | AddGateway(_)
            | AddRouteTable { .. }
            | AddRoute { .. }
            | AddSubnet(_)
            | SetVf(_)
            | AddVfAddr { .. }
            | AddMapping { .. } => Kind::Add,
            SetUplink(_)
            | ReplaceVpc(_)
            | ReplaceGateway(_)
            | ReplaceRoute { .. }
            | ReplaceSubnet(_)
            | ReplaceVf(_)
            | SetVfFlags { .. }
            | ReplaceMapping { .. } => Kind::Modify,
            DelVpc(_)
            | DelGateway(_)
            | DelRouteTable(_)
            | DelRoute { .. }
            | DelSubnet(_)
            | ClearVf(_)
            | DelVfAddr { .. }
            | DelMapping { .. } => Kind::Delete,
        }
    }

    /// The kind of object it is about: "vpc", "route", "mapping", ...
    pub fn object(&self) -> &'static str {
        use Change::*;
        match self {
            SetUplink(_) => "uplink",
            AddVpc(_) | ReplaceVpc(_) | DelVpc(_) => "vpc",
            AddGateway(_) | ReplaceGateway(_) | DelGateway(_) => "gateway",
            AddRouteTable { .. } | DelRouteTable(_) => "route_table",
            AddRoute { .. } | ReplaceRoute { .. } | DelRoute { .. } => "route",
            AddSubnet(_) | ReplaceSubnet(_) | DelSubnet(_) => "subnet",
            SetVf(_) | ReplaceVf(_) | SetVfFlags { .. } | ClearVf(_) => "vf",
            AddVfAddr { .. } | DelVfAddr { .. } => "vf_addr",
            AddMapping { .. } | ReplaceMapping { .. } | DelMapping { .. } => "mapping",
        }
    }
}

/// The object and its fields, without the sign: "route 0.0.0.0/0 in table 2 -> gateway 0".
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Change::*;
        match self {
            SetUplink(u) => f.write_str(&u.describe()),
            AddVpc(v) | ReplaceVpc(v) => {
                write!(f, "{}", v.describe())?;
                if let Some(t) = v.main_route_table {
                    write!(f, ", main table {t}")?;
                }
                if !v.dns.is_empty() {
                    let dns: Vec<String> = v.dns.iter().map(Ipv4Addr::to_string).collect();
                    write!(f, ", dns {}", dns.join(" "))?;
                }
                Ok(())
            }
            DelVpc(id) => write!(f, "vpc {id}"),
            AddGateway(g) | ReplaceGateway(g) => f.write_str(&g.describe()),
            DelGateway(id) => write!(f, "gateway {id}"),
            AddRouteTable { id, vpc_id } => write!(f, "route table {id} of vpc {vpc_id}"),
            DelRouteTable(id) => write!(f, "route table {id}"),
            AddRoute {
                table,
                dest,
                target,
            }
            | ReplaceRoute {
                table,
                dest,
                target,
            } => write!(f, "{} -> {target}", route_text(*table, *dest)),
            DelRoute { table, dest } => f.write_str(&route_text(*table, *dest)),
            AddSubnet(s) | ReplaceSubnet(s) => {
                write!(f, "{}", s.describe())?;
                match s.route_table {
                    Some(t) => write!(f, ", route table {t}"),
                    None => write!(f, ", the VPC's main table"),
                }
            }
            DelSubnet(id) => write!(f, "subnet {id}"),
            SetVf(v) | ReplaceVf(v) => write!(
                f,
                "{}{}",
                v.describe(),
                if v.src_dst_check {
                    ""
                } else {
                    ", source/destination check off"
                }
            ),
            SetVfFlags { vf, src_dst_check } => write!(
                f,
                "vf {vf}: source/destination check {}",
                if *src_dst_check { "on" } else { "off" }
            ),
            ClearVf(vf) => write!(f, "vf {vf}"),
            AddVfAddr { vf, ip } | DelVfAddr { vf, ip } => {
                write!(f, "vf {vf} secondary address {ip}")
            }
            AddMapping {
                vni,
                ip,
                mac,
                location,
            }
            | ReplaceMapping {
                vni,
                ip,
                mac,
                location,
            } => write!(
                f,
                "{} -> {location}, {}",
                mapping_text(*vni, *ip),
                MacDisplay(mac)
            ),
            DelMapping { vni, ip } => f.write_str(&mapping_text(*vni, *ip)),
        }
    }
}
