//! # Statistics
//!
//! Each VF and the uplink have one block of [`Counters`]: `COUNTER_COUNT` little-endian u64s
//! in the order of [`Counter`]. `GET_STATS` copies a block to the host. Directions are the
//! port's own: on a VF, `tx` is what the VM sent and `rx` what it was given; on the uplink,
//! `rx` is what arrived from the wire and `tx` what left for it.
//!
//! A frame that enters the NIC and is not forwarded moves exactly one counter from
//! `drop_ethertype` on (F17), named after the rule of spec/vpc-forwarding.md that dropped
//! it. The block it moves in is the sending port's, except `drop_dst_ip` and
//! `drop_rx_no_buffer`, which belong to the port the frame was for.
use crate::Le64;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

macro_rules! counters {
    ($($(#[$m:meta])* $name:ident = $text:expr;)*) => {
        /// One counter of a [`Counters`] block, by position.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Counter { $($(#[$m])* $name,)* }

        impl Counter {
            /// Every counter in block order.
            pub const ALL: &'static [Counter] = &[$(Counter::$name,)*];

            /// The counter's name, as the spec, `nicctl stats` and traces write it.
            pub const fn name(self) -> &'static str {
                match self { $(Counter::$name => $text,)* }
            }
        }
    };
}

counters! {
    /// Frames the function sent.
    TxPackets = "tx_packets";
    /// Bytes of those frames.
    TxBytes = "tx_bytes";
    /// Frames delivered to the function.
    RxPackets = "rx_packets";
    /// Bytes of those frames.
    RxBytes = "rx_bytes";
    /// Frames the firmware answered to this VF itself: ARP proxy (F3), gateway ping (F10),
    /// DHCP (F9).
    Replies = "replies";
    /// F1: not ARP or IPv4.
    DropEthertype = "drop_ethertype";
    /// F2: source MAC not the VF's.
    DropSrcMac = "drop_src_mac";
    /// F3, F4: malformed ARP or IPv4.
    DropMalformed = "drop_malformed";
    /// F3c: ARP for an unassigned address of the subnet.
    ArpUnanswered = "arp_unanswered";
    /// F3e and ARP replies/gratuitous ARP from a VM: consumed.
    ArpIgnored = "arp_ignored";
    /// F5: source IP not one of the VF's.
    DropSrcIp = "drop_src_ip";
    /// F5: destination IP not one of the receiving VF's.
    DropDstIp = "drop_dst_ip";
    /// F6: broadcast or multicast.
    DropBcastMcast = "drop_bcast_mcast";
    /// F7: destination MAC neither the gateway's nor a same-subnet instance's.
    DropDstMac = "drop_dst_mac";
    /// F8: no matching route.
    DropNoRoute = "drop_no_route";
    /// F8, F15: no mapping for the destination.
    DropNoMapping = "drop_no_mapping";
    /// F8: blackhole route.
    DropBlackhole = "drop_blackhole";
    /// F9: DHCP with a chaddr other than the VF's MAC.
    DropDhcpSpoof = "drop_dhcp_spoof";
    /// F10: ping to another subnet's gateway.
    DropForeignGateway = "drop_foreign_gateway";
    /// F10: non-ICMP-echo to a gateway address.
    DropToGateway = "drop_to_gateway";
    /// F13: longer than the MTU.
    DropOversize = "drop_oversize";
    /// F15: uplink frame not VXLAN to this host and a known VNI.
    DropUplinkForeign = "drop_uplink_foreign";
    /// F15: inner source not plausible for the outer source.
    DropDecapSpoof = "drop_decap_spoof";
    /// The destination function had no posted RX buffer (or one too small).
    DropRxNoBuffer = "drop_rx_no_buffer";
    /// A frame could not be read or written by DMA.
    DropDmaError = "drop_dma_error";
    /// The feature the frame needs is not in this firmware.
    DropUnsupported = "drop_unsupported";
    /// F9: DHCP RELEASE and DECLINE, consumed by the server (ABI 1.1).
    DhcpConsumed = "dhcp_consumed";
}

/// Number of counters in a block.
pub const COUNTER_COUNT: usize = Counter::ALL.len();
/// Position of the first drop counter: every counter from here on is a drop (F17).
pub const FIRST_DROP: Counter = Counter::DropEthertype;

impl Counter {
    /// True for counters that count frames that were not forwarded.
    pub const fn is_drop(self) -> bool {
        self as u8 >= FIRST_DROP as u8
    }
}

/// A function's counters as `GET_STATS` writes them.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Counters {
    pub values: [Le64; COUNTER_COUNT],
}

impl Counters {
    /// The value of one counter.
    pub fn get(&self, c: Counter) -> u64 {
        self.values
            .get(c as usize)
            .map(|v| v.get())
            .unwrap_or_default()
    }

    /// Sum of every drop counter.
    pub fn drops(&self) -> u64 {
        Counter::ALL
            .iter()
            .filter(|c| c.is_drop())
            .map(|&c| self.get(c))
            .sum()
    }
}

const _: () = assert!(core::mem::size_of::<Counters>() == 8 * COUNTER_COUNT);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_in_declaration_order() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        assert!(!Counter::Replies.is_drop());
        assert!(Counter::DropEthertype.is_drop());
        assert!(Counter::DropUnsupported.is_drop());
    }
}
