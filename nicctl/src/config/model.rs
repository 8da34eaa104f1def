//! The validated VPC layout: every reference resolved to an index, every default filled in.
//!
//! Derived values (documented here, relied on by the plan and by `nicctl trace`):
//! - instance MAC, when not given: `02:VV:a:b:c:d`, VV the low byte of the VPC's VNI and
//!   a.b.c.d the primary IPv4 (locally administered, unicast).
//! - subnet gateway MAC: `06:VV:a:b:c:d`, a.b.c.d the gateway address (base + 1).
//! - host underlay IPv4, when not given: `192.0.2.(index + 1)` in host order; the uplink
//!   MAC is `0e:00:` + the address's four bytes and its next hop is `0e:00:c0:00:02:fe`
//!   (192.0.2.254).
//! - gateway underlay IPv4, when not given: `203.0.113.(index + 1)`; its VXLAN MAC is
//!   `0a:00:` + the address's four bytes.
use host_driver::tables::{Cidr, GatewayKind, Mac};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Most hosts the underlay numbering has room for (192.0.2.1 ..= 192.0.2.200).
pub const MAX_HOSTS: usize = 200;
/// Most gateways the underlay numbering has room for (203.0.113.1 ..= 203.0.113.200).
pub const MAX_GATEWAYS: usize = 200;
/// The name of the one host of a file without `[host]` tables.
pub const DEFAULT_HOST: &str = "local";
/// Uplink MTU programmed on every host.
pub const UPLINK_MTU: u16 = 9216;

/// A whole, valid VPC layout. Vectors are in file order; indices are IDs on the NIC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub vpcs: Vec<Vpc>,
    pub gateways: Vec<Gateway>,
    /// The route tables of the file (each VPC's main table is implicit).
    pub route_tables: Vec<RouteTable>,
    pub subnets: Vec<Subnet>,
    pub instances: Vec<Instance>,
    /// At least one.
    pub hosts: Vec<Host>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    pub name: String,
    pub vni: u32,
    pub cidr: Cidr,
    /// Given, or base + 2 of the CIDR.
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    pub name: String,
    #[serde(with = "gateway_kind")]
    pub kind: GatewayKind,
    /// Addresses `nicctl up` puts behind the edge.
    pub hosts: Vec<Cidr>,
    /// Its underlay address, where the NICs send its VXLAN.
    pub underlay: Ipv4Addr,
}

impl Gateway {
    /// Its VXLAN MAC.
    pub fn mac(&self) -> Mac {
        mac_of(0x0a, self.underlay)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    pub name: String,
    /// Index into [`Config::vpcs`].
    pub vpc: usize,
    pub routes: Vec<Route>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dest: Cidr,
    pub target: Target,
}

/// A route target as the VPC file writes it.
///
/// Layer: the VPC file. It names gateways, peer VPCs and instances by their index in this
/// [`Config`] (names resolved, IDs not yet given), and has no `local` target because the file
/// cannot write one. The planner turns it into the driver's
/// [`host_driver::tables::RouteTarget`] once IDs and the instance's address are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// Index into [`Config::gateways`].
    Gateway(usize),
    /// Index into [`Config::vpcs`].
    Peering(usize),
    /// Index into [`Config::instances`].
    Instance(usize),
    Blackhole,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub name: String,
    pub vpc: usize,
    pub cidr: Cidr,
    /// Index into [`Config::route_tables`]; `None` for the VPC's main table.
    pub route_table: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub name: String,
    pub subnet: usize,
    pub ip: Ipv4Addr,
    pub secondary_ips: Vec<Ipv4Addr>,
    pub mac: Mac,
    pub src_dst_check: bool,
    /// Index into [`Config::hosts`].
    pub host: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    /// Its NIC's uplink address on the underlay.
    pub underlay: Ipv4Addr,
}

impl Host {
    /// Its NIC's uplink MAC.
    pub fn uplink_mac(&self) -> Mac {
        mac_of(0x0e, self.underlay)
    }
}

/// A gateway's kind by its name in the VPC file ("internet", "vpn", "nat").
mod gateway_kind {
    use host_driver::tables::GatewayKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &GatewayKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<GatewayKind, D::Error> {
        let name = String::deserialize(d)?;
        GatewayKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == name)
            .ok_or_else(|| serde::de::Error::custom(format!("{name:?} is not a gateway kind")))
    }
}

/// The default MAC of an instance (see the module documentation).
pub fn instance_mac(vni: u32, ip: Ipv4Addr) -> Mac {
    let [a, b, c, d] = ip.octets();
    [0x02, vni as u8, a, b, c, d]
}

/// The gateway MAC of a subnet in a VPC with this VNI.
pub fn subnet_gateway_mac(vni: u32, cidr: Cidr) -> Mac {
    let [a, b, c, d] = crate::config::text::nth(cidr, 1).octets();
    [0x06, vni as u8, a, b, c, d]
}

/// The underlay address of host number `index`, when the file gives none (past
/// [`MAX_HOSTS`], which validation refuses, the last of the range).
pub fn host_underlay(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, numbered(index))
}

/// The underlay address of gateway number `index`, when the file gives none (past
/// [`MAX_GATEWAYS`], which validation refuses, the last of the range).
pub fn gateway_underlay(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, numbered(index))
}

/// `index + 1` as an address byte, at most 254.
fn numbered(index: usize) -> u8 {
    u8::try_from(index.saturating_add(1))
        .unwrap_or(254)
        .min(254)
}

fn mac_of(prefix: u8, ip: Ipv4Addr) -> Mac {
    let [a, b, c, d] = ip.octets();
    [prefix, 0, a, b, c, d]
}

/// The underlay router on the host network: every uplink's next hop.
pub fn underlay_router() -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 254)
}

/// The underlay router on the gateway network.
pub fn gateway_router() -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 254)
}

/// The MAC of the underlay next hop every uplink sends to.
pub const UNDERLAY_NEXT_HOP_MAC: Mac = [0x0e, 0, 192, 0, 2, 254];

impl Config {
    /// The VPC an instance is in.
    pub fn instance_vpc(&self, instance: usize) -> &Vpc {
        &self.vpcs[self.subnets[self.instances[instance].subnet].vpc]
    }

    /// The gateway MAC of subnet `subnet`.
    pub fn subnet_gateway_mac(&self, subnet: usize) -> Mac {
        let s = &self.subnets[subnet];
        subnet_gateway_mac(self.vpcs[s.vpc].vni, s.cidr)
    }

    /// A host's index by name.
    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    /// An instance's index by name.
    pub fn instance_index(&self, name: &str) -> Option<usize> {
        self.instances.iter().position(|i| i.name == name)
    }

    /// The instance holding `ip` (primary or secondary) in VPC `vpc`.
    pub fn instance_at(&self, vpc: usize, ip: Ipv4Addr) -> Option<usize> {
        self.instances.iter().position(|i| {
            self.subnets[i.subnet].vpc == vpc && (i.ip == ip || i.secondary_ips.contains(&ip))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_addresses_are_locally_administered_unicast() {
        let ip = Ipv4Addr::new(10, 0, 1, 10);
        assert_eq!(instance_mac(0x0164, ip), [2, 0x64, 10, 0, 1, 10]);
        assert_eq!(
            subnet_gateway_mac(100, (Ipv4Addr::new(10, 0, 1, 0), 24)),
            [6, 100, 10, 0, 1, 1]
        );
        assert_eq!(host_underlay(0), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(host_underlay(MAX_HOSTS - 1), Ipv4Addr::new(192, 0, 2, 200));
        assert_eq!(gateway_underlay(2), Ipv4Addr::new(203, 0, 113, 3));
        let host = |i| Host {
            name: "h".into(),
            underlay: host_underlay(i),
        };
        let gateway = Gateway {
            name: "g".into(),
            kind: GatewayKind::Internet,
            hosts: Vec::new(),
            underlay: gateway_underlay(0),
        };
        assert_eq!(host(1).uplink_mac(), [0x0e, 0, 192, 0, 2, 2]);
        assert_eq!(gateway.mac(), [0x0a, 0, 203, 0, 113, 1]);
        for mac in [
            instance_mac(7, ip),
            host(0).uplink_mac(),
            gateway.mac(),
            UNDERLAY_NEXT_HOP_MAC,
        ] {
            assert_eq!(mac[0] & 0b11, 0b10, "locally administered unicast: {mac:?}");
        }
    }
}
