//! # Trace reports
//!
//! `TRACE` runs the real pipeline over one frame in dry run and writes a report into the
//! command's indirect buffer: a [`TraceHeader`], `step_count` [`TraceStep`]s in the order
//! the pipeline took them, then the frame as it would leave (`frame_len` bytes; empty for a
//! drop). Nothing is sent and no counter moves.
//!
//! A step names the rule of spec/vpc-forwarding.md (`rule` = 1 for F1 ...), what was
//! decided ([`StepKind`]), the table entry it names, and up to four arguments. [`Step`] is
//! the typed form of a step: the firmware builds one and [`Step::encode`]s it, the driver
//! [`Step::decode`]s it, so the meaning of each argument is written once, in the variant's
//! documentation ("wire:"). IPv4 addresses in arguments are host-order `u32`.
use crate::entry::{MappingLocation, RouteTarget, UPLINK_FUNCTION};
use crate::macros::u8_enum;
use crate::{Le16, Le32, MacBytes};
use core::net::Ipv4Addr;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Most steps one report holds; a longer trace keeps its first steps and sets
/// [`TraceHeader::truncated`].
pub const MAX_STEPS: usize = 32;

/// The report's head.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TraceHeader {
    /// [`TraceVerdict`].
    pub verdict: u8,
    /// For a drop, the [`crate::stats::Counter`] that would move; else 0xFF.
    pub drop_counter: u8,
    /// For a drop, the port whose counter it is; for a delivery or reply, the VF; 0xFFFF
    /// for the uplink.
    pub port: Le16,
    /// Steps that follow.
    pub step_count: u8,
    /// 1 when more steps happened than the report holds.
    pub truncated: u8,
    /// Bytes of the outgoing frame after the steps.
    pub frame_len: Le16,
}

/// One decision of the pipeline, as it travels: the record [`Step::encode`] writes and
/// [`Step::decode`] reads.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TraceStep {
    /// The rule: 1 ..= 17 for F1 ..= F17 ([`Step::rule`]).
    pub rule: u8,
    /// [`StepKind`].
    pub kind: u8,
    /// The table entry's ID where the step names one (route table, VF), else [`NO_TABLE`].
    pub table_id: Le16,
    pub a: Le32,
    pub b: Le32,
    pub c: Le32,
    pub d: Le32,
}

/// [`TraceStep::table_id`] of a step that names no table entry.
pub const NO_TABLE: u16 = 0xFFFF;

const _: () = assert!(core::mem::size_of::<TraceHeader>() == 8);
const _: () = assert!(core::mem::size_of::<TraceStep>() == 20);

/// Bytes of a report with `steps` steps and a `frame_len`-byte frame.
pub const fn report_len(steps: usize, frame_len: usize) -> usize {
    core::mem::size_of::<TraceHeader>() + steps * core::mem::size_of::<TraceStep>() + frame_len
}

u8_enum! {
    /// What happened to the frame.
    pub enum TraceVerdict {
        Drop = 0 => "drop",
        /// Delivered to VF `port`.
        ToVf = 1 => "deliver to VF",
        /// Answered by the firmware to VF `port`.
        Reply = 2 => "reply to VF",
        /// Sent out of the uplink.
        ToUplink = 3 => "output to uplink",
    }
}

u8_enum! {
    /// The number of a step's kind ([`TraceStep::kind`]); [`Step`] documents each kind's
    /// arguments.
    pub enum StepKind {
        /// [`Step::Received`].
        Received = 0 => "received",
        /// [`Step::Ethertype`].
        Ethertype = 1 => "ethertype",
        /// [`Step::SrcMac`].
        SrcMac = 2 => "source MAC",
        /// [`Step::ArpRequest`].
        ArpRequest = 3 => "ARP request",
        /// [`Step::ArpAnswer`].
        ArpAnswer = 4 => "ARP answer",
        /// [`Step::Ipv4`].
        Ipv4 = 5 => "IPv4 header",
        /// [`Step::SrcIp`].
        SrcIp = 6 => "source IP check",
        /// [`Step::DstMac`].
        DstMac = 7 => "destination MAC",
        /// [`Step::RouteHit`] and [`Step::RouteMiss`].
        Route = 8 => "route lookup",
        /// [`Step::MappingHit`] and [`Step::MappingMiss`].
        Mapping = 9 => "mapping lookup",
        /// [`Step::DstIp`].
        DstIp = 10 => "destination IP check",
        /// [`Step::Rewrite`].
        Rewrite = 11 => "L2 rewrite",
        /// [`Step::Gateway`].
        Gateway = 12 => "gateway address",
        /// [`Step::Encap`].
        Encap = 13 => "VXLAN encapsulation",
        /// [`Step::Decap`].
        Decap = 14 => "VXLAN decapsulation",
        /// [`Step::Mtu`].
        Mtu = 15 => "MTU",
        /// [`Step::Dhcp`].
        Dhcp = 16 => "DHCP",
        /// [`Step::BcastMcast`].
        BcastMcast = 17 => "broadcast/multicast",
    }
}

u8_enum! {
    /// F3: why an ARP request was answered; `name` is the sub-rule's letter.
    pub enum ArpAnswerCase {
        /// F3a: the target is the subnet gateway.
        Gateway = 0 => "a",
        /// F3b: the target is an instance of the subnet.
        Instance = 1 => "b",
        /// F3d: the target is outside the subnet; the gateway answers.
        OutsideSubnet = 3 => "d",
    }
}

u8_enum! {
    /// F7: what the destination MAC of a VF's IPv4 frame is.
    pub enum DstMacClass {
        /// The subnet gateway's: the packet is routed.
        Gateway = 0 => "subnet gateway",
        /// An instance of the same subnet: delivered without a route lookup.
        Instance = 1 => "same-subnet instance",
    }
}

u8_enum! {
    /// F13: what the MTU rule decided for a packet to encapsulate.
    pub enum MtuAction {
        Fits = 0 => "fits",
        /// Too big with DF set: ICMP fragmentation needed goes back.
        FragNeeded = 1 => "frag-needed",
        /// Too big without DF: fragmented.
        Fragment = 2 => "fragment",
    }
}

/// Where a mapping lookup found an address: a [`MappingLocation`] with its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappedTo {
    /// An instance on a VF of this NIC.
    LocalVf { vf: u16 },
    /// An instance on another host.
    Remote { underlay: Ipv4Addr },
    /// A subnet gateway's own address. The NIC answers for it itself (F10), so it lives at
    /// this host's underlay address (0.0.0.0 before `UPLINK_SET`). ABI 1.2; 0.0.0.0 before.
    Gateway { underlay: Ipv4Addr },
    /// A VNI's anchor (address 0.0.0.0): the VPC with that VNI.
    VniAnchor { vpc: u16 },
    /// A subnet's broadcast address.
    Broadcast,
}

impl MappedTo {
    /// Its location number.
    pub const fn location(self) -> MappingLocation {
        match self {
            MappedTo::LocalVf { .. } => MappingLocation::LocalVf,
            MappedTo::Remote { .. } => MappingLocation::Remote,
            MappedTo::Gateway { .. } => MappingLocation::Gateway,
            MappedTo::VniAnchor { .. } => MappingLocation::VniAnchor,
            MappedTo::Broadcast => MappingLocation::Broadcast,
        }
    }

    const fn argument(self) -> u32 {
        match self {
            MappedTo::LocalVf { vf } => vf as u32,
            MappedTo::Remote { underlay } | MappedTo::Gateway { underlay } => underlay.to_bits(),
            MappedTo::VniAnchor { vpc } => vpc as u32,
            MappedTo::Broadcast => 0,
        }
    }

    const fn from_location(location: MappingLocation, arg: u32) -> Option<MappedTo> {
        let id = if arg <= u16::MAX as u32 {
            Some(arg as u16)
        } else {
            None
        };
        match (location, id) {
            (MappingLocation::LocalVf, Some(vf)) => Some(MappedTo::LocalVf { vf }),
            (MappingLocation::Remote, _) => Some(MappedTo::Remote {
                underlay: Ipv4Addr::from_bits(arg),
            }),
            (MappingLocation::Gateway, _) => Some(MappedTo::Gateway {
                underlay: Ipv4Addr::from_bits(arg),
            }),
            (MappingLocation::VniAnchor, Some(vpc)) => Some(MappedTo::VniAnchor { vpc }),
            (MappingLocation::Broadcast, _) => Some(MappedTo::Broadcast),
            _ => None,
        }
    }
}

/// `c` of a route step that matched nothing: a prefix length above 32.
const ROUTE_MISS: u32 = 0xFFFF;
/// `c` of a mapping step that found nothing: no [`MappingLocation`].
const MAPPING_MISS: u32 = 0xFF;

/// One decision of the pipeline, typed. Each variant says which rule it belongs to
/// ([`Step::rule`]) and, after "wire:", how its fields sit in a [`TraceStep`]; arguments
/// not named there are 0 and `table_id` is [`NO_TABLE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The frame arrived on `function`: a VF (rule F1, the first a VF's frame meets), or
    /// [`UPLINK_FUNCTION`] (F15). Wire: table_id = function, a = ethertype, b = length.
    Received {
        function: u16,
        ethertype: u16,
        len: u32,
    },
    /// F1: the ethertype is accepted. Wire: a = ethertype.
    Ethertype { ethertype: u16 },
    /// F2: the source MAC is the VF's. Wire: table_id = VF.
    SrcMac { vf: u16 },
    /// F3: an ARP request was seen. Wire: a = sender IP, b = target IP.
    ArpRequest { sender: Ipv4Addr, target: Ipv4Addr },
    /// F3: the ARP request was answered with `mac`. Wire: a = target IP, b/c = MAC (bytes
    /// 0-3 / 4-5, as [`crate::vf::mac_to_regs`] packs them), d = [`ArpAnswerCase`].
    ArpAnswer {
        target: Ipv4Addr,
        mac: MacBytes,
        case: ArpAnswerCase,
    },
    /// F4: the IPv4 header is valid. Wire: a = source, b = destination, c = protocol,
    /// d = total length.
    Ipv4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        total_len: u16,
    },
    /// F5: the source is one of the VF's addresses, or `check` (the VF's flag) is off.
    /// Wire: table_id = VF, a = check, b = source.
    SrcIp { vf: u16, check: bool, src: Ipv4Addr },
    /// F7: the destination MAC's class; `vf` is the VF found by that MAC, when the step
    /// names one. Wire: table_id = VF or [`NO_TABLE`], a = [`DstMacClass`].
    DstMac { vf: Option<u16>, class: DstMacClass },
    /// F8: `dst` matched `prefix`/`len` of route table `table`. Wire: table_id = table,
    /// a = destination, b = prefix, c = length | [`crate::entry::RouteTargetKind`] << 8,
    /// d = [`RouteTarget::argument`].
    RouteHit {
        table: u16,
        dst: Ipv4Addr,
        prefix: Ipv4Addr,
        len: u8,
        target: RouteTarget,
    },
    /// F8: no route of table `table` matched `dst`. Wire: table_id = table,
    /// a = destination, c = 0xFFFF (a length above 32).
    RouteMiss { table: u16, dst: Ipv4Addr },
    /// F8: the mapping of (`vni`, `ip`). Wire: a = VNI, b = address, c = [`MappingLocation`],
    /// d = VF index, underlay address or VPC ID ([`MappedTo`]).
    MappingHit {
        vni: u32,
        ip: Ipv4Addr,
        to: MappedTo,
    },
    /// F8: (`vni`, `ip`) has no mapping. Wire: a = VNI, b = address, c = 0xFF.
    MappingMiss { vni: u32, ip: Ipv4Addr },
    /// F5 at the receiving VF. Wire: table_id = VF, a = check, b = destination.
    DstIp { vf: u16, check: bool, dst: Ipv4Addr },
    /// F12: the L2 rewrite for VF `vf`: the source MAC stays the sender's when
    /// `same_subnet`, else it is the receiving subnet's gateway MAC. Wire: table_id = VF,
    /// a = same_subnet.
    Rewrite { vf: u16, same_subnet: bool },
    /// F10: the packet is addressed to a subnet gateway. Wire: a = gateway IP,
    /// b = own_subnet, c = echo (an ICMP echo request).
    Gateway {
        ip: Ipv4Addr,
        own_subnet: bool,
        echo: bool,
    },
    /// F14: encapsulated to `underlay`. Wire: a = underlay destination, b = VNI, c = UDP
    /// source port.
    Encap {
        underlay: Ipv4Addr,
        vni: u32,
        src_port: u16,
    },
    /// F15: decapsulated. Wire: a = outer source, b = VNI, c = inner source,
    /// d = inner destination.
    Decap {
        outer_src: Ipv4Addr,
        vni: u32,
        inner_src: Ipv4Addr,
        inner_dst: Ipv4Addr,
    },
    /// F13: the MTU decision for an IPv4 packet of `len` bytes. Wire: a = length, b = MTU,
    /// c = [`MtuAction`].
    Mtu {
        len: u16,
        mtu: u16,
        action: MtuAction,
    },
    /// F9: a DHCP message of type `request` was answered with type `reply` (message types
    /// of RFC 2132 option 53), offering `offered` (0.0.0.0 for none). Wire: a = request,
    /// b = offered, c = reply.
    Dhcp {
        request: u8,
        offered: Ipv4Addr,
        reply: u8,
    },
    /// F6: a broadcast or multicast packet. Wire: a = destination.
    BcastMcast { dst: Ipv4Addr },
}

/// Why a [`TraceStep`] does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepError {
    /// A kind number this side does not know (a newer peer).
    UnknownKind(u8),
    /// A kind whose arguments are out of the range the contract gives them.
    BadArgument(StepKind),
}

impl core::fmt::Display for StepError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StepError::UnknownKind(k) => write!(f, "unknown step kind {k}"),
            StepError::BadArgument(k) => write!(f, "arguments out of range for {}", k.name()),
        }
    }
}

impl Step {
    /// Its kind number.
    pub const fn kind(&self) -> StepKind {
        match self {
            Step::Received { .. } => StepKind::Received,
            Step::Ethertype { .. } => StepKind::Ethertype,
            Step::SrcMac { .. } => StepKind::SrcMac,
            Step::ArpRequest { .. } => StepKind::ArpRequest,
            Step::ArpAnswer { .. } => StepKind::ArpAnswer,
            Step::Ipv4 { .. } => StepKind::Ipv4,
            Step::SrcIp { .. } => StepKind::SrcIp,
            Step::DstMac { .. } => StepKind::DstMac,
            Step::RouteHit { .. } | Step::RouteMiss { .. } => StepKind::Route,
            Step::MappingHit { .. } | Step::MappingMiss { .. } => StepKind::Mapping,
            Step::DstIp { .. } => StepKind::DstIp,
            Step::Rewrite { .. } => StepKind::Rewrite,
            Step::Gateway { .. } => StepKind::Gateway,
            Step::Encap { .. } => StepKind::Encap,
            Step::Decap { .. } => StepKind::Decap,
            Step::Mtu { .. } => StepKind::Mtu,
            Step::Dhcp { .. } => StepKind::Dhcp,
            Step::BcastMcast { .. } => StepKind::BcastMcast,
        }
    }

    /// The rule of spec/vpc-forwarding.md it belongs to: 1 ..= 17 for F1 ..= F17.
    pub const fn rule(&self) -> u8 {
        match self {
            Step::Received { function, .. } => {
                if *function == UPLINK_FUNCTION {
                    15
                } else {
                    1
                }
            }
            Step::Ethertype { .. } => 1,
            Step::SrcMac { .. } => 2,
            Step::ArpRequest { .. } | Step::ArpAnswer { .. } => 3,
            Step::Ipv4 { .. } => 4,
            Step::SrcIp { .. } | Step::DstIp { .. } => 5,
            Step::BcastMcast { .. } => 6,
            Step::DstMac { .. } => 7,
            Step::RouteHit { .. }
            | Step::RouteMiss { .. }
            | Step::MappingHit { .. }
            | Step::MappingMiss { .. } => 8,
            Step::Dhcp { .. } => 9,
            Step::Gateway { .. } => 10,
            Step::Rewrite { .. } => 12,
            Step::Mtu { .. } => 13,
            Step::Encap { .. } => 14,
            Step::Decap { .. } => 15,
        }
    }

    /// The record as it travels.
    pub fn encode(&self) -> TraceStep {
        let ip = Ipv4Addr::to_bits;
        let (table_id, [a, b, c, d]): (u16, [u32; 4]) = match *self {
            Step::Received {
                function,
                ethertype,
                len,
            } => (function, [ethertype.into(), len, 0, 0]),
            Step::Ethertype { ethertype } => (NO_TABLE, [ethertype.into(), 0, 0, 0]),
            Step::SrcMac { vf } => (vf, [0; 4]),
            Step::ArpRequest { sender, target } => (NO_TABLE, [ip(sender), ip(target), 0, 0]),
            Step::ArpAnswer { target, mac, case } => {
                let (lo, hi) = crate::vf::mac_to_regs(mac);
                (NO_TABLE, [ip(target), lo, hi, case.as_u8().into()])
            }
            Step::Ipv4 {
                src,
                dst,
                protocol,
                total_len,
            } => (
                NO_TABLE,
                [ip(src), ip(dst), protocol.into(), total_len.into()],
            ),
            Step::SrcIp { vf, check, src } => (vf, [check.into(), ip(src), 0, 0]),
            Step::DstMac { vf, class } => (vf.unwrap_or(NO_TABLE), [class.as_u8().into(), 0, 0, 0]),
            Step::RouteHit {
                table,
                dst,
                prefix,
                len,
                target,
            } => {
                let c = u32::from(len) | u32::from(target.kind().as_u8()) << 8;
                (table, [ip(dst), ip(prefix), c, target.argument()])
            }
            Step::RouteMiss { table, dst } => (table, [ip(dst), 0, ROUTE_MISS, 0]),
            Step::MappingHit { vni, ip: addr, to } => (
                NO_TABLE,
                [vni, ip(addr), to.location().as_u8().into(), to.argument()],
            ),
            Step::MappingMiss { vni, ip: addr } => (NO_TABLE, [vni, ip(addr), MAPPING_MISS, 0]),
            Step::DstIp { vf, check, dst } => (vf, [check.into(), ip(dst), 0, 0]),
            Step::Rewrite { vf, same_subnet } => (vf, [same_subnet.into(), 0, 0, 0]),
            Step::Gateway {
                ip: addr,
                own_subnet,
                echo,
            } => (NO_TABLE, [ip(addr), own_subnet.into(), echo.into(), 0]),
            Step::Encap {
                underlay,
                vni,
                src_port,
            } => (NO_TABLE, [ip(underlay), vni, src_port.into(), 0]),
            Step::Decap {
                outer_src,
                vni,
                inner_src,
                inner_dst,
            } => (NO_TABLE, [ip(outer_src), vni, ip(inner_src), ip(inner_dst)]),
            Step::Mtu { len, mtu, action } => {
                (NO_TABLE, [len.into(), mtu.into(), action.as_u8().into(), 0])
            }
            Step::Dhcp {
                request,
                offered,
                reply,
            } => (NO_TABLE, [request.into(), ip(offered), reply.into(), 0]),
            Step::BcastMcast { dst } => (NO_TABLE, [ip(dst), 0, 0, 0]),
        };
        TraceStep {
            rule: self.rule(),
            kind: self.kind().as_u8(),
            table_id: Le16::new(table_id),
            a: Le32::new(a),
            b: Le32::new(b),
            c: Le32::new(c),
            d: Le32::new(d),
        }
    }

    /// The step a record holds. The rule byte is not checked (the record's own rule is what
    /// the firmware said), nor are arguments the kind does not use.
    pub fn decode(raw: &TraceStep) -> Result<Step, StepError> {
        let kind = StepKind::from_u8(raw.kind).ok_or(StepError::UnknownKind(raw.kind))?;
        let bad = StepError::BadArgument(kind);
        let table_id = raw.table_id.get();
        let [a, b, c, d] = [raw.a.get(), raw.b.get(), raw.c.get(), raw.d.get()];
        let ip = Ipv4Addr::from_bits;
        let narrow16 = |v: u32| u16::try_from(v).map_err(|_| bad);
        let narrow8 = |v: u32| u8::try_from(v).map_err(|_| bad);
        let flag = |v: u32| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad),
        };
        Ok(match kind {
            StepKind::Received => Step::Received {
                function: table_id,
                ethertype: narrow16(a)?,
                len: b,
            },
            StepKind::Ethertype => Step::Ethertype {
                ethertype: narrow16(a)?,
            },
            StepKind::SrcMac => Step::SrcMac { vf: table_id },
            StepKind::ArpRequest => Step::ArpRequest {
                sender: ip(a),
                target: ip(b),
            },
            StepKind::ArpAnswer => Step::ArpAnswer {
                target: ip(a),
                mac: crate::vf::mac_from_regs(b, narrow16(c)?.into()),
                case: ArpAnswerCase::from_u8(narrow8(d)?).ok_or(bad)?,
            },
            StepKind::Ipv4 => Step::Ipv4 {
                src: ip(a),
                dst: ip(b),
                protocol: narrow8(c)?,
                total_len: narrow16(d)?,
            },
            StepKind::SrcIp => Step::SrcIp {
                vf: table_id,
                check: flag(a)?,
                src: ip(b),
            },
            StepKind::DstMac => Step::DstMac {
                vf: (table_id != NO_TABLE).then_some(table_id),
                class: DstMacClass::from_u8(narrow8(a)?).ok_or(bad)?,
            },
            StepKind::Route => match u8::try_from(c & 0xFF) {
                Ok(len) if len <= 32 => Step::RouteHit {
                    table: table_id,
                    dst: ip(a),
                    prefix: ip(b),
                    len,
                    target: RouteTarget::from_kind_and_argument(narrow8(c >> 8)?, d).ok_or(bad)?,
                },
                _ => Step::RouteMiss {
                    table: table_id,
                    dst: ip(a),
                },
            },
            StepKind::Mapping if c == MAPPING_MISS => Step::MappingMiss { vni: a, ip: ip(b) },
            StepKind::Mapping => {
                let location = MappingLocation::from_u8(narrow8(c)?).ok_or(bad)?;
                Step::MappingHit {
                    vni: a,
                    ip: ip(b),
                    to: MappedTo::from_location(location, d).ok_or(bad)?,
                }
            }
            StepKind::DstIp => Step::DstIp {
                vf: table_id,
                check: flag(a)?,
                dst: ip(b),
            },
            StepKind::Rewrite => Step::Rewrite {
                vf: table_id,
                same_subnet: flag(a)?,
            },
            StepKind::Gateway => Step::Gateway {
                ip: ip(a),
                own_subnet: flag(b)?,
                echo: flag(c)?,
            },
            StepKind::Encap => Step::Encap {
                underlay: ip(a),
                vni: b,
                src_port: narrow16(c)?,
            },
            StepKind::Decap => Step::Decap {
                outer_src: ip(a),
                vni: b,
                inner_src: ip(c),
                inner_dst: ip(d),
            },
            StepKind::Mtu => Step::Mtu {
                len: narrow16(a)?,
                mtu: narrow16(b)?,
                action: MtuAction::from_u8(narrow8(c)?).ok_or(bad)?,
            },
            StepKind::Dhcp => Step::Dhcp {
                request: narrow8(a)?,
                offered: ip(b),
                reply: narrow8(c)?,
            },
            StepKind::BcastMcast => Step::BcastMcast { dst: ip(a) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    /// One step of each variant, with every typed field off its zero value.
    fn one_of_each() -> [Step; 20] {
        [
            Step::Received {
                function: UPLINK_FUNCTION,
                ethertype: 0x0800,
                len: 9050,
            },
            Step::Ethertype { ethertype: 0x0806 },
            Step::SrcMac { vf: 3 },
            Step::ArpRequest {
                sender: v4(10, 0, 1, 10),
                target: v4(10, 0, 1, 1),
            },
            Step::ArpAnswer {
                target: v4(10, 0, 1, 1),
                mac: [2, 0xfe, 0, 0, 1, 1],
                case: ArpAnswerCase::OutsideSubnet,
            },
            Step::Ipv4 {
                src: v4(10, 0, 1, 10),
                dst: v4(10, 0, 2, 20),
                protocol: 17,
                total_len: 65535,
            },
            Step::SrcIp {
                vf: 1,
                check: true,
                src: v4(10, 0, 1, 11),
            },
            Step::DstMac {
                vf: Some(2),
                class: DstMacClass::Instance,
            },
            Step::RouteHit {
                table: 4,
                dst: v4(10, 99, 0, 5),
                prefix: v4(10, 99, 0, 0),
                len: 16,
                target: RouteTarget::Instance(v4(10, 0, 2, 21)),
            },
            Step::RouteMiss {
                table: 0,
                dst: v4(8, 8, 8, 8),
            },
            Step::MappingHit {
                vni: 100,
                ip: v4(10, 0, 2, 1),
                to: MappedTo::Gateway {
                    underlay: v4(192, 0, 2, 1),
                },
            },
            Step::MappingMiss {
                vni: 0x00FF_FFFF,
                ip: v4(10, 0, 9, 9),
            },
            Step::DstIp {
                vf: 2,
                check: false,
                dst: v4(10, 0, 2, 20),
            },
            Step::Rewrite {
                vf: 2,
                same_subnet: true,
            },
            Step::Gateway {
                ip: v4(10, 0, 1, 1),
                own_subnet: true,
                echo: true,
            },
            Step::Encap {
                underlay: v4(192, 0, 2, 100),
                vni: 100,
                src_port: 65535,
            },
            Step::Decap {
                outer_src: v4(192, 0, 2, 2),
                vni: 300,
                inner_src: v4(10, 1, 1, 40),
                inner_dst: v4(10, 1, 1, 10),
            },
            Step::Mtu {
                len: 1600,
                mtu: 1500,
                action: MtuAction::FragNeeded,
            },
            Step::Dhcp {
                request: 1,
                offered: v4(10, 0, 1, 10),
                reply: 2,
            },
            Step::BcastMcast {
                dst: v4(224, 0, 0, 251),
            },
        ]
    }

    #[test]
    fn every_step_round_trips() {
        for step in one_of_each() {
            let raw = step.encode();
            assert_eq!(Step::decode(&raw), Ok(step), "{raw:?}");
            assert_eq!(raw.rule, step.rule());
        }
        for kind in StepKind::ALL {
            assert!(one_of_each().iter().any(|s| s.kind() == *kind), "{kind:?}");
        }
    }

    #[test]
    fn every_mapping_location_and_route_target_round_trips() {
        let places = [
            MappedTo::LocalVf { vf: 7 },
            MappedTo::Remote {
                underlay: v4(192, 0, 2, 2),
            },
            MappedTo::Gateway {
                underlay: v4(192, 0, 2, 1),
            },
            MappedTo::VniAnchor { vpc: 2 },
            MappedTo::Broadcast,
        ];
        assert_eq!(places.map(|p| p.location()), *MappingLocation::ALL);
        for to in places {
            let step = Step::MappingHit {
                vni: 7,
                ip: v4(10, 0, 0, 0),
                to,
            };
            assert_eq!(Step::decode(&step.encode()), Ok(step));
        }
        let targets = [
            RouteTarget::Local,
            RouteTarget::Blackhole,
            RouteTarget::Gateway(2),
            RouteTarget::Peering(1),
            RouteTarget::Instance(v4(10, 0, 2, 21)),
        ];
        for target in targets {
            let step = Step::RouteHit {
                table: 1,
                dst: v4(10, 0, 2, 20),
                prefix: v4(0, 0, 0, 0),
                len: 0,
                target,
            };
            assert_eq!(Step::decode(&step.encode()), Ok(step));
        }
    }

    #[test]
    fn the_wire_layout_is_the_documented_one() {
        let step = Step::RouteHit {
            table: 3,
            dst: v4(8, 8, 8, 8),
            prefix: v4(0, 0, 0, 0),
            len: 0,
            target: RouteTarget::Gateway(1),
        };
        let raw = step.encode();
        assert_eq!((raw.rule, raw.kind, raw.table_id.get()), (8, 8, 3));
        let args = [raw.a.get(), raw.b.get(), raw.c.get(), raw.d.get()];
        assert_eq!(args, [0x0808_0808, 0, 2 << 8, 1]);
        let miss = Step::MappingMiss {
            vni: 100,
            ip: v4(10, 0, 0, 1),
        }
        .encode();
        assert_eq!((miss.c.get(), miss.table_id.get()), (0xFF, NO_TABLE));
        let rx = Step::Received {
            function: 2,
            ethertype: 0x0800,
            len: 98,
        }
        .encode();
        assert_eq!(
            (rx.rule, rx.table_id.get(), rx.a.get(), rx.b.get()),
            (1, 2, 0x0800, 98)
        );
    }

    #[test]
    fn records_out_of_range_are_refused_not_guessed() {
        let mut raw = Step::Ethertype { ethertype: 0x0800 }.encode();
        raw.kind = 200;
        assert_eq!(Step::decode(&raw), Err(StepError::UnknownKind(200)));
        let mut raw = Step::Mtu {
            len: 1600,
            mtu: 1500,
            action: MtuAction::Fits,
        }
        .encode();
        raw.c = Le32::new(7);
        assert_eq!(
            Step::decode(&raw),
            Err(StepError::BadArgument(StepKind::Mtu))
        );
        let mut raw = Step::MappingMiss {
            vni: 1,
            ip: v4(10, 0, 0, 1),
        }
        .encode();
        raw.c = Le32::new(9);
        assert_eq!(
            Step::decode(&raw),
            Err(StepError::BadArgument(StepKind::Mapping))
        );
        let mut raw = Step::SrcIp {
            vf: 0,
            check: true,
            src: v4(10, 0, 0, 1),
        }
        .encode();
        raw.a = Le32::new(2);
        assert!(Step::decode(&raw).is_err());
        let mut raw = Step::RouteMiss {
            table: 0,
            dst: v4(1, 1, 1, 1),
        }
        .encode();
        raw.c = Le32::new(24 | 9 << 8);
        assert_eq!(
            Step::decode(&raw),
            Err(StepError::BadArgument(StepKind::Route))
        );
    }
}
