//! The small indexed tables: VPCs, subnets, route table headers and VF assignments. Indexed
//! by the IDs the host driver chose, so a lookup is one bounds-checked array access.

/// A VPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vpc {
    pub vni: u32,
    /// CIDR base, host byte order.
    pub cidr: u32,
    pub cidr_len: u8,
    /// Main route table, if any.
    pub main_route_table: Option<u16>,
    pub dns: [u32; shared_regs::entry::VPC_DNS_SERVERS],
    pub dns_count: u8,
    /// DNS domain name (DHCP option 15), `domain_len` bytes of ASCII.
    pub domain: [u8; shared_regs::entry::DOMAIN_MAX],
    pub domain_len: u8,
    /// Bit `g` set: a route of this VPC leads to gateway `g`, which may therefore send into
    /// it over VXLAN (F15).
    pub gateway_mask: u64,
}

/// A subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub vpc: u16,
    pub route_table: u16,
    /// CIDR base, host byte order.
    pub prefix: u32,
    pub prefix_len: u8,
    pub gateway_mac: [u8; 6],
}

impl Subnet {
    /// The gateway address: base + 1.
    pub fn gateway_ip(&self) -> u32 {
        self.prefix | 1
    }

    /// True when `ip` is inside the subnet.
    pub fn contains(&self, ip: u32) -> bool {
        ip & super::lpm::prefix_mask(self.prefix_len) == self.prefix
    }

    /// The subnet broadcast (last) address.
    pub fn broadcast(&self) -> u32 {
        self.prefix | !super::lpm::prefix_mask(self.prefix_len)
    }
}

/// A route table (VRF) header; its routes live in [`super::lpm::RouteTables`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteTable {
    pub vpc: u16,
}

/// The instance a VF serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfConfig {
    pub mac: [u8; 6],
    pub subnet: u16,
    /// Primary IPv4, host byte order.
    pub primary_ip: u32,
    pub src_dst_check: bool,
    /// Secondary IPv4s, host byte order; the first `secondary_count` are valid.
    pub secondary: [u32; shared_regs::entry::VF_SECONDARY_ADDRS],
    pub secondary_count: u8,
}

impl VfConfig {
    /// The valid secondary addresses.
    pub fn secondaries(&self) -> &[u32] {
        self.secondary
            .get(..usize::from(self.secondary_count))
            .unwrap_or(&[])
    }

    /// True when `ip` is the primary or a secondary address.
    pub fn owns(&self, ip: u32) -> bool {
        ip == self.primary_ip || self.secondaries().contains(&ip)
    }
}

/// A gateway endpoint reached over the underlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gateway {
    pub kind: u8,
    /// Underlay address, host byte order.
    pub underlay_ip: u32,
    /// Inner destination MAC of frames sent to it.
    pub mac: [u8; 6],
}

/// A slot of an indexed table: empty or holding one entry.
pub type Slot<T> = Option<T>;
