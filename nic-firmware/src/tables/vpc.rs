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
}

/// A slot of an indexed table: empty or holding one entry.
pub type Slot<T> = Option<T>;
