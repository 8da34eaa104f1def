//! # Trace reports
//!
//! `TRACE` runs the real pipeline over one frame in dry run and writes a report into the
//! command's indirect buffer: a [`TraceHeader`], `step_count` [`TraceStep`]s in the order
//! the pipeline took them, then the frame as it would leave (`frame_len` bytes; empty for a
//! drop). Nothing is sent and no counter moves.
//!
//! A step names the rule of spec/vpc-forwarding.md (`rule` = 1 for F1 ...), what was
//! decided ([`StepKind`]), the table it looked in, and up to four arguments whose meaning
//! each [`StepKind`] documents. IPv4 addresses in arguments are host-order `u32`.
use crate::macros::u8_enum;
use crate::{Le16, Le32};
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

/// One decision of the pipeline.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TraceStep {
    /// The rule: 1 ..= 17 for F1 ..= F17.
    pub rule: u8,
    /// [`StepKind`].
    pub kind: u8,
    /// The table entry's ID where the step names one (route table, subnet, VF), else 0xFFFF.
    pub table_id: Le16,
    pub a: Le32,
    pub b: Le32,
    pub c: Le32,
    pub d: Le32,
}

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
    /// What a [`TraceStep`] records, and what its arguments mean.
    pub enum StepKind {
        /// The frame arrived. a = ethertype, b = length, table_id = VF (0xFFFF: uplink).
        Received = 0 => "received",
        /// F1: ethertype accepted. a = ethertype.
        Ethertype = 1 => "ethertype",
        /// F2: source MAC is the VF's.
        SrcMac = 2 => "source MAC",
        /// F3: ARP request seen. a = sender IP, b = target IP.
        ArpRequest = 3 => "ARP request",
        /// F3: ARP answered. a = target IP, b/c = answered MAC (bytes 0-3 / 4-5), d = sub-rule
        /// (0 = a gateway, 1 = b instance, 3 = d outside subnet).
        ArpAnswer = 4 => "ARP answer",
        /// F4: IPv4 header valid. a = source, b = destination, c = protocol, d = total length.
        Ipv4 = 5 => "IPv4 header",
        /// F5: source is one of the VF's addresses (or the check is off: a = 0).
        /// a = check on, b = source.
        SrcIp = 6 => "source IP check",
        /// F7: destination MAC class. a = 0 gateway, 1 same-subnet instance.
        DstMac = 7 => "destination MAC",
        /// F8: route lookup. table_id = route table, a = destination, b = matched prefix,
        /// c = prefix length | target kind << 8 (shared_regs::entry::RouteTarget), d = target
        /// argument (gateway ID, VPC ID, instance IP).
        Route = 8 => "route lookup",
        /// Mapping lookup. a = VNI, b = address, c = location (0 local VF, 1 remote, 2 gateway,
        /// 3 VNI anchor, 4 subnet broadcast, 0xFF none), d = VF index, underlay IP or VPC ID.
        Mapping = 9 => "mapping lookup",
        /// F5 at the receiver. table_id = VF, a = check on, b = destination.
        DstIp = 10 => "destination IP check",
        /// F12: L2 rewrite. table_id = receiving VF, a = 1 when the source MAC is the sender's,
        /// 0 when it is the receiving subnet's gateway MAC.
        Rewrite = 11 => "L2 rewrite",
        /// F10: addressed to a gateway. a = gateway IP, b = 1 own subnet's, c = 1 echo request.
        Gateway = 12 => "gateway address",
        /// F14: encapsulated. a = underlay destination, b = VNI, c = UDP source port.
        Encap = 13 => "VXLAN encapsulation",
        /// F15: decapsulated. a = outer source, b = VNI, c = inner source, d = inner destination.
        Decap = 14 => "VXLAN decapsulation",
        /// F13: MTU decision. a = IPv4 length, b = MTU, c = 0 fits, 1 frag-needed, 2 fragment.
        Mtu = 15 => "MTU",
        /// F9: DHCP message answered. a = message type, b = address offered.
        Dhcp = 16 => "DHCP",
        /// F6: broadcast/multicast seen. a = destination IP.
        BcastMcast = 17 => "broadcast/multicast",
    }
}
