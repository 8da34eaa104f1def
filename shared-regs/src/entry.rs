//! # Table entry formats
//!
//! The inline parameters of admin commands. Tables are indexed by IDs the host driver
//! chooses (0 .. the capacity in the matching `CAP_*` register); the mapping table is keyed
//! by (VNI, IPv4) and routes by (route table, prefix, length). IPv4 addresses are 4 bytes in
//! network order, MACs 6 bytes in wire order.
use crate::macros::u8_enum;
use crate::{Ipv4Bytes, Le16, Le32, MacBytes};
use core::net::Ipv4Addr;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The route table ID a subnet names to use its VPC's main table.
pub const MAIN_ROUTE_TABLE: u16 = 0xFFFF;
/// The function index that names the uplink in [`StatsQuery`].
pub const UPLINK_FUNCTION: u16 = 0xFFFF;
/// Largest VNI (24 bits).
pub const VNI_MAX: u32 = 0x00FF_FFFF;
/// DNS servers a VPC entry carries.
pub const VPC_DNS_SERVERS: usize = 4;

/// Parameters of commands that name one entry by ID (`*_DEL`, `VF_CLEAR`).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IdParam {
    pub id: Le16,
}

/// `GET_STATS` / `CLEAR_STATS`: a VF index, or [`UPLINK_FUNCTION`].
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct StatsQuery {
    pub function: Le16,
}

/// `VPC_ADD`: a VPC, its VNI and CIDR, and the main route table of its subnets.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VpcEntry {
    /// Index in the VPC table.
    pub id: Le16,
    /// Route table used by subnets that name [`MAIN_ROUTE_TABLE`]; it must be a table of
    /// this VPC when such a subnet is added. [`MAIN_ROUTE_TABLE`] here means none.
    pub main_route_table: Le16,
    /// VXLAN network identifier, 1 ..= [`VNI_MAX`], unique among VPCs.
    pub vni: Le32,
    /// VPC CIDR base (host bits zero).
    pub cidr: Ipv4Bytes,
    /// VPC CIDR prefix length, 1 ..= 32.
    pub cidr_len: u8,
    /// How many of `dns` are valid (0 = default: base + 2).
    pub dns_count: u8,
    pub reserved: [u8; 2],
    /// DNS servers handed out by DHCP (option 6).
    pub dns: [Ipv4Bytes; VPC_DNS_SERVERS],
}

/// `SUBNET_ADD`: a CIDR inside its VPC, the route table it uses and its gateway MAC.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SubnetEntry {
    /// Index in the subnet table.
    pub id: Le16,
    /// The VPC it belongs to.
    pub vpc_id: Le16,
    /// Its route table, or [`MAIN_ROUTE_TABLE`].
    pub route_table_id: Le16,
    /// Prefix length, 16 ..= 28 (as in Amazon VPC).
    pub prefix_len: u8,
    pub reserved: u8,
    /// CIDR base (host bits zero), inside the VPC CIDR, overlapping no other subnet.
    pub prefix: Ipv4Bytes,
    /// MAC of the subnet's gateway (base + 1): answers ARP and DHCP, source of routed frames.
    pub gateway_mac: MacBytes,
    pub reserved2: [u8; 2],
}

/// `ROUTE_TABLE_ADD`: a route table (VRF) of a VPC. The firmware adds the local route for
/// the VPC CIDR; it cannot be deleted.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RouteTableEntry {
    /// Index in the route table table.
    pub id: Le16,
    /// The VPC it belongs to.
    pub vpc_id: Le16,
}

u8_enum! {
    /// The number of a [`RouteTarget`] kind: [`RouteEntry::target_kind`], and the kind byte
    /// of a trace's route step.
    pub enum RouteTargetKind {
        /// [`RouteTarget::Local`].
        Local = 0 => "local",
        /// [`RouteTarget::Blackhole`].
        Blackhole = 1 => "blackhole",
        /// [`RouteTarget::Gateway`].
        Gateway = 2 => "gateway",
        /// [`RouteTarget::Peering`].
        Peering = 3 => "peering",
        /// [`RouteTarget::Instance`].
        Instance = 4 => "instance",
    }
}

/// Where a route sends what it matches (F8), with its argument.
///
/// Layer: the contract (ABI). This is what a [`RouteEntry`] carries in `target_kind` and
/// `target`, and what a trace's route step names ([`crate::trace::Step::RouteHit`]), typed.
/// The firmware's tables and the driver convert to and from it at their edges, so the
/// numbers and the argument encoding are written only here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// The VPC CIDR: mapping lookup in the VPC's VNI. Only the firmware adds it.
    Local,
    /// Drop silently.
    Blackhole,
    /// A gateway (internet, VPN, NAT) by gateway ID: VXLAN to it.
    Gateway(u16),
    /// Peering: mapping lookup in the VNI of the VPC with this ID.
    Peering(u16),
    /// An instance (middlebox) by its primary IPv4.
    Instance(Ipv4Addr),
}

impl RouteTarget {
    /// Its kind number.
    pub const fn kind(self) -> RouteTargetKind {
        match self {
            RouteTarget::Local => RouteTargetKind::Local,
            RouteTarget::Blackhole => RouteTargetKind::Blackhole,
            RouteTarget::Gateway(_) => RouteTargetKind::Gateway,
            RouteTarget::Peering(_) => RouteTargetKind::Peering,
            RouteTarget::Instance(_) => RouteTargetKind::Instance,
        }
    }

    /// The argument as a number, as a trace step carries it: the ID, or the instance
    /// address as a host-order `u32`; 0 when there is none.
    pub const fn argument(self) -> u32 {
        match self {
            RouteTarget::Local | RouteTarget::Blackhole => 0,
            RouteTarget::Gateway(id) | RouteTarget::Peering(id) => id as u32,
            RouteTarget::Instance(ip) => ip.to_bits(),
        }
    }

    /// The target of a kind number and a numeric argument ([`RouteTarget::argument`]);
    /// `None` for an unknown kind or an ID above `u16::MAX`.
    pub const fn from_kind_and_argument(kind: u8, arg: u32) -> Option<RouteTarget> {
        let id = if arg <= u16::MAX as u32 {
            Some(arg as u16)
        } else {
            None
        };
        match (RouteTargetKind::from_u8(kind), id) {
            (Some(RouteTargetKind::Local), _) => Some(RouteTarget::Local),
            (Some(RouteTargetKind::Blackhole), _) => Some(RouteTarget::Blackhole),
            (Some(RouteTargetKind::Gateway), Some(id)) => Some(RouteTarget::Gateway(id)),
            (Some(RouteTargetKind::Peering), Some(id)) => Some(RouteTarget::Peering(id)),
            (Some(RouteTargetKind::Instance), _) => {
                Some(RouteTarget::Instance(Ipv4Addr::from_bits(arg)))
            }
            _ => None,
        }
    }

    /// `target_kind` and `target` as a [`RouteEntry`] carries them: IDs as little-endian
    /// `u32` like every number of the contract, an instance address in network order like
    /// every address in a layout.
    pub const fn to_entry_fields(self) -> (u8, [u8; 4]) {
        let arg = match self {
            RouteTarget::Instance(ip) => ip.octets(),
            _ => self.argument().to_le_bytes(),
        };
        (self.kind().as_u8(), arg)
    }

    /// The target of a [`RouteEntry`]'s `target_kind` and `target`; `None` for an unknown
    /// kind or an ID above `u16::MAX`.
    pub const fn from_entry_fields(kind: u8, target: [u8; 4]) -> Option<RouteTarget> {
        let arg = if kind == RouteTargetKind::Instance.as_u8() {
            u32::from_be_bytes(target)
        } else {
            u32::from_le_bytes(target)
        };
        RouteTarget::from_kind_and_argument(kind, arg)
    }
}

/// `ROUTE_ADD` / `ROUTE_DEL`: one route of a route table.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RouteEntry {
    /// The route table.
    pub table_id: Le16,
    /// Prefix length, 0 ..= 32.
    pub prefix_len: u8,
    /// [`RouteTargetKind`].
    pub target_kind: u8,
    /// Destination prefix (host bits zero).
    pub prefix: Ipv4Bytes,
    /// The target's argument ([`RouteTarget::to_entry_fields`]): gateway ID or peer VPC ID
    /// (little-endian), or instance IPv4 (network order).
    pub target: [u8; 4],
}

impl RouteEntry {
    /// The entry for a route of table `table_id` to `prefix`/`prefix_len`.
    pub const fn new(table_id: u16, prefix: Ipv4Addr, prefix_len: u8, target: RouteTarget) -> Self {
        let (target_kind, target) = target.to_entry_fields();
        RouteEntry {
            table_id: Le16::new(table_id),
            prefix_len,
            target_kind,
            prefix: prefix.octets(),
            target,
        }
    }

    /// Its target, or `None` when the kind or argument is not one the contract defines.
    pub const fn route_target(&self) -> Option<RouteTarget> {
        RouteTarget::from_entry_fields(self.target_kind, self.target)
    }
}

u8_enum! {
    /// Where a mapped address lives.
    pub enum MappingLocation {
        /// On a VF of this NIC (`vf`).
        LocalVf = 0 => "local VF",
        /// On another host, reached by VXLAN to `underlay_ip`.
        Remote = 1 => "remote host",
        /// Read only (`TABLE_READ`): a subnet gateway's own address, made by `SUBNET_ADD`.
        Gateway = 2 => "subnet gateway",
        /// Read only (`TABLE_READ`): a VNI's anchor (address 0.0.0.0), made by `VPC_ADD`;
        /// `vf` holds the VPC ID.
        VniAnchor = 3 => "VNI anchor",
        /// Read only (`TABLE_READ`): a subnet's broadcast address, made by `SUBNET_ADD`.
        Broadcast = 4 => "subnet broadcast",
    }
}

/// `MAPPING_ADD` / `MAPPING_DEL`: (VNI, IPv4) -> (MAC, local VF or remote host).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct MappingEntry {
    /// VNI of the VPC the address is in.
    pub vni: Le32,
    /// The instance address.
    pub ip: Ipv4Bytes,
    /// The instance MAC.
    pub mac: MacBytes,
    /// [`MappingLocation`].
    pub location: u8,
    pub reserved: u8,
    /// The VF, for [`MappingLocation::LocalVf`].
    pub vf: Le16,
    pub reserved2: [u8; 2],
    /// The remote host's underlay address, for [`MappingLocation::Remote`].
    pub underlay_ip: Ipv4Bytes,
}

bitflags::bitflags! {
    /// `VfEntry::flags`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct VfFlags: u16 {
        /// Source/destination check (F5). The default for an instance.
        const SRC_DST_CHECK = 1 << 0;
    }
}

/// `VF_SET`: the instance a VF serves.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VfEntry {
    /// VF index, below `NUM_VFS`.
    pub vf: Le16,
    /// The subnet the instance is in.
    pub subnet_id: Le16,
    /// [`VfFlags`].
    pub flags: Le16,
    pub reserved: [u8; 2],
    /// The instance MAC (unicast), shown to the VF in `MAC_LO`/`MAC_HI`.
    pub mac: MacBytes,
    pub reserved2: [u8; 2],
    /// Primary IPv4, inside the subnet and not a reserved address.
    pub primary_ip: Ipv4Bytes,
}

/// `UPLINK_SET`: the uplink port's addresses.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct UplinkEntry {
    /// The uplink's own MAC.
    pub mac: MacBytes,
    /// MAC of the underlay next hop.
    pub next_hop_mac: MacBytes,
    /// This host's underlay IPv4: VXLAN source, and the only address decapsulated.
    pub underlay_ip: Ipv4Bytes,
    /// Uplink IP MTU (default 9216).
    pub mtu: Le16,
    pub reserved: [u8; 2],
}

/// Secondary addresses a VF holds besides its primary one.
pub const VF_SECONDARY_ADDRS: usize = 7;
/// Longest DNS domain name a VPC carries.
pub const DOMAIN_MAX: usize = 64;

/// `VF_ADDR_ADD` / `VF_ADDR_DEL`: a secondary IPv4 of a VF, inside its subnet and not a
/// reserved address.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VfAddrEntry {
    pub vf: Le16,
    pub reserved: [u8; 2],
    pub ip: Ipv4Bytes,
}

/// `VF_FLAGS_SET`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VfFlagsEntry {
    pub vf: Le16,
    /// [`VfFlags`].
    pub flags: Le16,
}

u8_enum! {
    /// Kinds of gateway (informational: every kind is reached the same way). The names are
    /// the ones the VPC file uses.
    pub enum GatewayKind {
        Internet = 0 => "internet",
        Vpn = 1 => "vpn",
        Nat = 2 => "nat",
    }
}

/// `GATEWAY_ADD`: an edge reached over the underlay. Routes name it by `id`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct GatewayEntry {
    /// Index in the gateway table.
    pub id: Le16,
    /// [`GatewayKind`].
    pub kind: u8,
    pub reserved: u8,
    /// The gateway's underlay address: VXLAN destination, and a trusted outer source (F15).
    pub underlay_ip: Ipv4Bytes,
    /// Inner destination MAC of frames sent to the gateway (its VXLAN device's MAC).
    pub mac: MacBytes,
    pub reserved2: [u8; 2],
}

/// `TRACE`: the port the frame arrives on (a VF index or [`UPLINK_FUNCTION`]) and its
/// length in the indirect buffer.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TraceQuery {
    pub port: Le16,
    pub frame_len: Le16,
}

u8_enum! {
    /// The tables `TABLE_READ` reads, and the format of each one's entries in the buffer.
    pub enum TableId {
        /// [`VpcEntry`] (the domain name is in [`TableId::VpcDomain`]).
        Vpc = 1 => "VPC",
        /// [`SubnetEntry`].
        Subnet = 2 => "subnet",
        /// [`RouteTableEntry`].
        RouteTable = 3 => "route table",
        /// [`RouteEntry`] of route table `TableReadQuery::route_table`, the local route
        /// included, in (prefix, length) order.
        Route = 4 => "route",
        /// [`MappingEntry`], firmware-made entries included ([`MappingLocation::Gateway`],
        /// [`MappingLocation::VniAnchor`], [`MappingLocation::Broadcast`]).
        Mapping = 5 => "mapping",
        /// [`VfReadEntry`] of each assigned VF.
        Vf = 6 => "VF",
        /// [`GatewayEntry`].
        Gateway = 7 => "gateway",
        /// One [`UplinkEntry`] once `UPLINK_SET` has run.
        Uplink = 8 => "uplink",
        /// [`VpcDomainEntry`] of each VPC that has a DNS domain (ABI 1.7; an older
        /// firmware refuses the table as a bad argument).
        VpcDomain = 9 => "VPC domain",
    }
}

/// A VPC's DNS domain as `TABLE_READ` reports it ([`TableId::VpcDomain`]): what `VPC_ADD`
/// took in its indirect buffer.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VpcDomainEntry {
    /// The VPC's index in the VPC table.
    pub vpc_id: Le16,
    /// Bytes of `name` that hold the domain, 1 ..= [`DOMAIN_MAX`].
    pub len: u8,
    pub reserved: u8,
    /// The domain in ASCII, zero after `len`.
    pub name: [u8; DOMAIN_MAX],
}

/// The cursor value that starts a read, and that `next_cursor` holds when the table is done.
pub const CURSOR_START: u32 = 0;
/// `TableReadHeader::next_cursor` at the end of the table.
pub const CURSOR_END: u32 = u32::MAX;

/// `TABLE_READ`: which table, and where to go on from (0 to start; then the previous
/// read's `next_cursor`).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TableReadQuery {
    /// [`TableId`].
    pub table: u8,
    pub reserved: u8,
    /// For [`TableId::Route`]: the route table.
    pub route_table: Le16,
    pub cursor: Le32,
}

/// Head of a `TABLE_READ` buffer.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TableReadHeader {
    /// Entries that follow.
    pub count: Le32,
    /// Cursor for the next read, or [`CURSOR_END`].
    pub next_cursor: Le32,
}

/// A VF as `TABLE_READ` reports it: its `VF_SET` entry, link, and secondary addresses.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VfReadEntry {
    pub entry: VfEntry,
    pub secondary_count: u8,
    /// 1 when the VM's driver has enabled the rings.
    pub rings_enabled: u8,
    pub reserved: [u8; 2],
    pub secondary: [Ipv4Bytes; VF_SECONDARY_ADDRS],
}

u8_enum! {
    /// [`PortInfo::sfp`]: what the firmware found in the SFP cage.
    pub enum SfpState {
        /// The module answered; its identity fields are valid.
        Present = 0 => "present",
        /// Nothing answered at I2C address 0x50: the cage is empty.
        Absent = 1 => "absent",
        /// The I2C bus failed otherwise.
        BusError = 2 => "I2C bus error",
    }
}

/// `PORT_GET`: the uplink port as the firmware sees it, written to the indirect buffer.
/// The module's identity is page A0h of its EEPROM (SFF-8472); text fields are ASCII,
/// trailing spaces removed, NUL padded.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PortInfo {
    /// [`SfpState`].
    pub sfp: u8,
    /// 1 when a module is present (`sfp` is [`SfpState::Present`]).
    pub present: u8,
    /// SFF-8024 identifier byte (0x03: SFP/SFP+/SFP28).
    pub identifier: u8,
    /// 1 when `CC_BASE` matches bytes 0..63 of the EEPROM.
    pub checksum_ok: u8,
    /// 1 when the uplink is configured (`UPLINK_SET`): the link LED's input.
    pub link_up: u8,
    /// 1 while the link LED is lit.
    pub link_led: u8,
    /// 1 while the activity LED is lit.
    pub activity_led: u8,
    pub reserved: u8,
    /// Vendor name (bytes 20..36).
    pub vendor: [u8; 16],
    /// Vendor part number (bytes 40..56).
    pub part: [u8; 16],
    /// Vendor serial number (bytes 68..84).
    pub serial: [u8; 16],
}

/// A short name of the module type an SFF-8024 identifier byte ([`PortInfo::identifier`])
/// names: what the firmware logs and `nicctl port` shows.
pub fn sff8024_identifier_name(id: u8) -> &'static str {
    match id {
        0x00 => "unknown",
        0x03 => "SFP/SFP+/SFP28",
        0x0C => "QSFP",
        0x0D => "QSFP+",
        0x11 => "QSFP28",
        0x18 => "QSFP-DD",
        _ => "other",
    }
}

macro_rules! fits_params {
    ($($t:ty),*) => { $(const _: () = assert!(core::mem::size_of::<$t>() <= crate::admin::PARAMS_SIZE);)* };
}
fits_params!(
    IdParam,
    StatsQuery,
    VpcEntry,
    SubnetEntry,
    RouteTableEntry,
    RouteEntry,
    MappingEntry,
    VfEntry,
    UplinkEntry,
    VfAddrEntry,
    VfFlagsEntry,
    GatewayEntry,
    TraceQuery,
    TableReadQuery
);
const _: () = assert!(core::mem::size_of::<VfReadEntry>() == 52);
const _: () = assert!(core::mem::size_of::<TableReadHeader>() == 8);
const _: () = assert!(core::mem::size_of::<GatewayEntry>() == 16);
const _: () = assert!(core::mem::size_of::<VpcEntry>() == 32);
const _: () = assert!(core::mem::size_of::<VpcDomainEntry>() == 68);
const _: () = assert!(core::mem::size_of::<SubnetEntry>() == 20);
const _: () = assert!(core::mem::size_of::<RouteEntry>() == 12);
const _: () = assert!(core::mem::size_of::<MappingEntry>() == 24);
const _: () = assert!(core::mem::size_of::<VfEntry>() == 20);
const _: () = assert!(core::mem::size_of::<UplinkEntry>() == 20);
const _: () = assert!(core::mem::size_of::<PortInfo>() == 56);

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn route_targets_round_trip_through_entries() {
        let targets = [
            RouteTarget::Local,
            RouteTarget::Blackhole,
            RouteTarget::Gateway(0x0102),
            RouteTarget::Peering(u16::MAX),
            RouteTarget::Instance(Ipv4Addr::new(10, 0, 1, 9)),
        ];
        for t in targets {
            let e = RouteEntry::new(3, Ipv4Addr::new(10, 0, 0, 0), 16, t);
            assert_eq!(e.route_target(), Some(t));
            let (kind, arg) = (t.kind().as_u8(), t.argument());
            assert_eq!(RouteTarget::from_kind_and_argument(kind, arg), Some(t));
        }
        assert_eq!(targets.map(|t| t.kind()), *RouteTargetKind::ALL);
    }

    #[test]
    fn route_entries_keep_their_byte_layout() {
        let gw = RouteEntry::new(1, Ipv4Addr::UNSPECIFIED, 0, RouteTarget::Gateway(0x0102));
        assert_eq!(gw.as_bytes(), &[1, 0, 0, 2, 0, 0, 0, 0, 2, 1, 0, 0]);
        let eni = RouteTarget::Instance(Ipv4Addr::new(10, 0, 1, 9)).to_entry_fields();
        assert_eq!(eni, (4, [10, 0, 1, 9]));
    }

    #[test]
    fn unknown_kinds_and_wide_ids_are_refused() {
        assert_eq!(RouteTarget::from_entry_fields(5, [0; 4]), None);
        assert_eq!(RouteTarget::from_entry_fields(2, [0, 0, 1, 0]), None);
        assert_eq!(RouteTarget::from_kind_and_argument(3, 0x1_0000), None);
    }
}
