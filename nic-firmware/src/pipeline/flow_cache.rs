//! The flow cache in front of the pipeline, as SmartNICs keep one (Azure's GFT, OVS's
//! exact-match cache): the first packet of a flow from a VF takes the whole pipeline, and
//! what it resolved to (the VF it went to and the MACs it got, or the VXLAN destination and
//! inner MACs) is kept in a fixed-size, direct-mapped table; the flow's next packets skip
//! the rules and the lookups.
//!
//! # Why a hit decides as the pipeline would
//!
//! The key is what a forwarding decision of IPv4 from a VF reads besides per-packet
//! fields: the sender VF (its MAC, subnet, check and VPC), the destination MAC (F6, F7, the
//! gateway MAC of F8) and both addresses (F5 at both ends, F6, F10, F8's lookups). Each
//! rule that could decide otherwise for the same key reads something per packet, and a hit
//! checks it again or leaves the packet to the pipeline:
//!
//! - F1, F2, F4: the ethertype and source MAC are compared, and the IPv4 header is checked
//!   here as F4 does (version, checksum, lengths); a header with options goes to the pipeline.
//! - F13: the VF MTU, and the path MTU of an encapsulated flow (a longer packet goes to
//!   the pipeline, which fragments or answers frag-needed).
//! - F9 (DHCP) needs a destination that is broadcast or the gateway, and F10 the gateway
//!   address: no cached flow has either, since only plain deliveries are cached.
//! - F14's UDP source port hashes the ports: computed for each packet.
//!
//! Any change to the tables (every admin command the firmware completes) moves the
//! cache's generation, and an entry of an older generation is a miss: nothing stale is
//! ever used, at the cost of refilling after a change. Frames from the uplink, ARP and
//! everything else go through the pipeline as before.
use super::trace::{Step, Tracer};
use super::vxlan::{self, Encap, OVERHEAD};
use super::{arp, eth, mtu, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::Tables;
use shared_regs::stats::Counter;
use shared_regs::trace::MtuAction;
use shared_regs::ETH_HEADER_LEN;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// What a flow's packets are looked up by: the sender VF, the destination MAC and both
/// addresses (of an ARP request: the sender's and the target's), packed in two words so
/// that a lookup compares two integers. An IPv4 flow and an ARP request may share a key;
/// the action then says which one it was cached for, and the other misses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct FlowKey {
    /// Source address (high half) and destination address, as the header has them.
    addrs: u64,
    /// Destination MAC (high 48 bits) and VF.
    mac_vf: u64,
}

/// What a flow resolved to. Laid out as C does, the MACs first in every variant: a hit
/// reads its fields in place from the entry, and the MACs it writes into the frame are two
/// aligned loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, u8)]
pub(crate) enum Action {
    /// Deliver to local VF `vf` with these destination and source MACs (F12).
    ToVf { macs: [u8; 12], vf: u16 },
    /// Encapsulate toward `underlay` with `vni` (F14), the inner frame with these MACs, on
    /// a path of `mtu` bytes (F13).
    ToUplink {
        macs: [u8; 12],
        mtu: u16,
        underlay: u32,
        vni: u32,
    },
    /// Answer an ARP request with `mac` (F3).
    ArpReply { mac: [u8; 6] },
}

/// One cached flow. Generation 0 is an empty entry (the cache's generation starts at 1).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct FlowEntry {
    generation: u32,
    key: FlowKey,
    action: Action,
}

const _: () = assert!(core::mem::size_of::<FlowEntry>() == 64);

impl FlowEntry {
    /// An empty entry, to fill storage with.
    pub const EMPTY: FlowEntry = FlowEntry {
        generation: 0,
        key: FlowKey {
            addrs: 0,
            mac_vf: 0,
        },
        action: Action::ToVf {
            macs: [0; 12],
            vf: 0,
        },
    };
}

/// The flow cache over storage the platform provides. Its length, a power of two, is the
/// number of flows it holds; an empty slice turns it off.
pub struct FlowCache<'m> {
    entries: &'m mut [FlowEntry],
    mask: usize,
    generation: u32,
    hits: u64,
}

impl<'m> FlowCache<'m> {
    /// A cache over `entries`, emptied. A length that is not a power of two is cut to the
    /// largest power of two below it.
    pub fn new(entries: &'m mut [FlowEntry]) -> Self {
        let usable = match entries.len() {
            0 => 0,
            n => 1usize << n.ilog2(),
        };
        let (entries, _) = entries.split_at_mut(usable);
        entries.fill(FlowEntry::EMPTY);
        FlowCache {
            mask: usable.wrapping_sub(1),
            entries,
            generation: 1,
            hits: 0,
        }
    }

    /// Number of flows it can hold.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Packets decided by a cached flow since the cache was made.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    pub(crate) fn count_hits(&mut self, n: u64) {
        self.hits = self.hits.wrapping_add(n);
    }

    /// Flows of the current generation it holds (for tests: a linear scan).
    pub fn occupied(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.generation == self.generation)
            .count()
    }

    /// Forgets every flow: the tables changed.
    pub fn invalidate(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 changes the oldest generations come round again: start clean.
            self.entries.fill(FlowEntry::EMPTY);
            self.generation = 1;
        }
    }

    /// The entry `key` lives in.
    #[inline(always)]
    pub(crate) fn slot(&self, key: &FlowKey) -> usize {
        let h = key.addrs ^ key.mac_vf.rotate_left(17);
        (crate::tables::mapping::fmix64_round(h) as usize) & self.mask
    }

    /// Starts bringing entry `slot` into the cache. Changes nothing.
    #[inline(always)]
    pub(crate) fn prefetch(&self, slot: usize) {
        if let Some(e) = self.entries.get(slot) {
            crate::tables::mapping::prefetch((e as *const FlowEntry).cast::<u8>());
        }
    }

    /// The action cached for `key` (whose entry is `slot`), if any of this generation.
    #[inline(always)]
    pub(crate) fn get(&self, slot: usize, key: &FlowKey) -> Option<&Action> {
        let e = self.entries.get(slot)?;
        (e.generation == self.generation && e.key == *key).then_some(&e.action)
    }

    /// Caches `action` for `key` (whose entry is `slot`), in place of whatever shared its
    /// entry.
    pub(crate) fn insert(&mut self, slot: usize, key: FlowKey, action: Action) {
        let generation = self.generation;
        if let Some(e) = self.entries.get_mut(slot) {
            *e = FlowEntry {
                generation,
                key,
                action,
            };
        }
    }
}

/// The Ethernet and IPv4 headers of an IPv4 frame without IP options, in wire order.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct Headers {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    ethertype: [u8; 2],
    /// The IPv4 header's first three words.
    ip: [[u8; 4]; 3],
    /// Source and destination address.
    addrs: [u8; 8],
}

const _: () = assert!(core::mem::size_of::<Headers>() == ETH_HEADER_LEN + 20);

impl Headers {
    fn of(data: &[u8]) -> Option<&Headers> {
        Headers::ref_from_prefix(data).ok().map(|(h, _)| h)
    }

    /// Writes the destination and source MAC (F12's rewrite, as cached).
    #[inline(always)]
    fn set_macs(&mut self, macs: &[u8; 12]) {
        let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5] = *macs;
        self.dst_mac = [d0, d1, d2, d3, d4, d5];
        self.src_mac = [s0, s1, s2, s3, s4, s5];
    }

    #[inline(always)]
    fn addrs(&self) -> u64 {
        u64::from_be_bytes(self.addrs)
    }
}

/// The flow key of an IPv4 frame or an ARP message from VF `vf` (`None` for anything
/// else, or too short).
#[inline(always)]
pub(crate) fn key_of(vf: u16, data: &[u8]) -> Option<FlowKey> {
    let h = Headers::of(data)?;
    let addrs = match u16::from_be_bytes(h.ethertype) {
        eth::ETHERTYPE_IPV4 => h.addrs(),
        eth::ETHERTYPE_ARP => arp::addrs(data)?,
        _ => return None,
    };
    let [a, b, c, d, e, f] = h.dst_mac;
    Some(FlowKey {
        addrs,
        mac_vf: u64::from_be_bytes([a, b, c, d, e, f, 0, 0]) | u64::from(vf),
    })
}

/// What a hit needs of an IPv4 header that passed F4: the fields of
/// [`super::ipv4::Ipv4Info`] it uses, the protocol as the header has it (converting it to
/// smoltcp's type and back cost a jump table each way).
struct Plain {
    src: u32,
    dst: u32,
    protocol: u8,
    total_len: usize,
    later_fragment: bool,
}

/// F4 for the common header, 20 bytes without options, as [`super::ipv4::parse`] decides
/// it, in a frame of `len` bytes; `None` for a header the pipeline must judge (options, or
/// anything F4 refuses).
#[inline(always)]
fn plain_header(h: &Headers, len: usize) -> Option<Plain> {
    let [first, flags_offset, ttl_protocol] = h.ip.map(u32::from_be_bytes);
    let addrs = h.addrs();
    let (src, dst) = ((addrs >> 32) as u32, addrs as u32);
    if first >> 24 != 0x45 {
        return None;
    }
    let total_len = (first & 0xffff) as usize;
    if total_len < 20 || total_len > len.saturating_sub(ETH_HEADER_LEN) {
        return None;
    }
    let words = [first, flags_offset, ttl_protocol, src, dst];
    if super::ipv4::ones_complement_sum(words) != 0xffff {
        return None;
    }
    Some(Plain {
        src,
        dst,
        protocol: (ttl_protocol >> 16) as u8,
        total_len,
        later_fragment: flags_offset & 0x1fff != 0,
    })
}

/// F14's UDP source port for the packet `ip` in `frame`, as [`Encap::new`] computes it.
#[inline(always)]
fn flow_port(ip: &Plain, frame: &[u8]) -> u16 {
    // A plain header has no options: the L4 header follows it directly. Its first word is
    // all `ports` reads, there when the packet holds it (`total_len` was checked against
    // the frame's length).
    const L4: usize = ETH_HEADER_LEN + super::ipv4::HEADER_LEN;
    let whole = !ip.later_fragment && ip.total_len >= super::ipv4::HEADER_LEN + 4;
    let l4 = frame.get(L4..L4 + 4).filter(|_| whole).unwrap_or(&[]);
    vxlan::flow_port_of(ip.src, ip.dst, ip.protocol, vxlan::ports(ip.protocol, l4))
}

/// Carries out a cached action on a frame of its flow from `sender`, as the pipeline would
/// have decided it, writing the verdict to `verdict` (in place: a returned verdict was
/// copied through the stack, and that copy stalled on store forwarding). False: this
/// packet needs the pipeline (its header, its length, or a wrong source MAC), and the
/// frame and `verdict` are as they were.
#[inline(always)]
pub(crate) fn apply(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    action: &Action,
    frame: &mut FrameBuf,
    verdict: &mut Verdict,
) -> bool {
    let len = frame.len();
    let Ok((h, _)) = Headers::mut_from_prefix(frame.data_mut()) else {
        return false;
    };
    if h.src_mac != sender.cfg.mac || u16::from_be_bytes(h.ethertype) != eth::ETHERTYPE_IPV4 {
        return false;
    }
    let Some(ip) = plain_header(h, len) else {
        return false;
    };
    if mtu::exceeds_vf_mtu(ip.total_len) {
        return false;
    }
    let end = ETH_HEADER_LEN.saturating_add(ip.total_len);
    match action {
        Action::ToVf { vf, macs } => {
            h.set_macs(macs);
            frame.truncate(end);
            *verdict = Verdict::ToVf { vf: *vf };
            true
        }
        Action::ToUplink {
            macs,
            mtu,
            underlay,
            vni,
        } => {
            let Some(uplink) = tables.uplink.filter(|_| ip.total_len <= usize::from(*mtu)) else {
                return false;
            };
            h.set_macs(macs);
            frame.truncate(end);
            let encap = Encap {
                underlay_dst: *underlay,
                vni: *vni,
                src_port: flow_port(&ip, frame.data()),
            };
            *verdict = if vxlan::encapsulate(frame, &uplink, &encap) {
                Verdict::ToUplink
            } else {
                sender.drop(Counter::DropOversize)
            };
            true
        }
        // An ARP answer's key on an IPv4 packet: a miss.
        Action::ArpReply { .. } => false,
    }
}

/// Answers an ARP request from `sender` with the cached answer `mac`, as the pipeline
/// would, into `verdict`. False: the frame needs the pipeline (not a well-formed request
/// from the sender's MAC). Out of line: the IPv4 hits stay short.
#[inline(never)]
pub(crate) fn apply_arp(
    sender: &Sender<'_>,
    mac: [u8; 6],
    frame: &mut FrameBuf,
    verdict: &mut Verdict,
) -> bool {
    let from_sender = Headers::of(frame.data()).is_some_and(|h| {
        h.src_mac == sender.cfg.mac && u16::from_be_bytes(h.ethertype) == eth::ETHERTYPE_ARP
    });
    if !from_sender {
        return false;
    }
    match arp::cached_reply(sender, frame, mac) {
        Some(v) => {
            *verdict = v;
            true
        }
        None => false,
    }
}

/// Watches the pipeline decide a flow's first packet, for what to cache.
#[derive(Default)]
pub(crate) struct Learner {
    arp_answer: Option<[u8; 6]>,
    rewrite: Option<u16>,
    encap: Option<(u32, u32)>,
    fits: Option<u16>,
}

impl Tracer for Learner {
    #[inline(always)]
    fn step(&mut self, step: Step) {
        match step {
            Step::Rewrite { vf, .. } => self.rewrite = Some(vf),
            Step::ArpAnswer { mac, .. } => self.arp_answer = Some(mac),
            Step::Encap { underlay, vni, .. } => self.encap = Some((underlay.into(), vni)),
            Step::Mtu {
                mtu,
                action: MtuAction::Fits,
                ..
            } => self.fits = Some(mtu),
            _ => {}
        }
    }
}

impl Learner {
    /// What to cache for the packet the pipeline just decided `verdict` on, leaving
    /// `frame` as it made it: only plain deliveries, encapsulations and ARP answers.
    pub(crate) fn action(&self, verdict: Verdict, frame: &[u8]) -> Option<Action> {
        if let (Verdict::Reply { .. }, Some(mac)) = (verdict, self.arp_answer) {
            return Some(Action::ArpReply { mac });
        }
        match (verdict, self.rewrite, self.encap, self.fits) {
            (Verdict::ToVf { vf }, Some(to), None, _) if vf == to => Some(Action::ToVf {
                macs: frame.get(..12)?.try_into().ok()?,
                vf,
            }),
            (Verdict::ToUplink, None, Some((underlay, vni)), Some(mtu)) => Some(Action::ToUplink {
                macs: frame
                    .get(OVERHEAD..OVERHEAD.checked_add(12)?)?
                    .try_into()
                    .ok()?,
                mtu,
                underlay,
                vni,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    /// `plain_header` accepts exactly the option-less headers F4 accepts, with the same
    /// fields and the same F14 source port: random headers, half of them with a right
    /// checksum.
    #[test]
    fn plain_header_decides_as_f4() {
        let mut rng = Rng(3);
        let mut accepted = 0;
        for _ in 0..200_000 {
            let len = ETH_HEADER_LEN + 20 + rng.below(60) as usize;
            let mut frame: std::vec::Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            frame[14] = if rng.chance(80) {
                0x45
            } else {
                rng.next_u32() as u8
            };
            let total = if rng.chance(80) {
                len - 14 - rng.below(4) as usize
            } else {
                rng.below(80) as usize
            };
            frame[16..18].copy_from_slice(&(total as u16).to_be_bytes());
            // Mostly first fragments or whole packets, mostly TCP and UDP: the cases
            // whose ports go into F14's source port.
            if rng.chance(70) {
                frame[20..22].copy_from_slice(if rng.chance(50) { &[0x40, 0] } else { &[0, 0] });
            }
            frame[23] = match rng.below(3) {
                0 => 6,
                1 => 17,
                _ => frame[23],
            };
            if rng.chance(50) {
                frame[24..26].copy_from_slice(&[0, 0]);
                let mut sum: u32 = frame[14..34]
                    .chunks(2)
                    .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                    .sum();
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                frame[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            }
            let h = Headers::of(&frame).unwrap();
            let fast = plain_header(h, frame.len());
            let slow = super::super::ipv4::parse(&frame[14..]).filter(|ip| ip.header_len == 20);
            match (&fast, &slow) {
                (Some(f), Some(s)) => {
                    accepted += 1;
                    assert_eq!(f.total_len, s.total_len);
                    assert_eq!(f.protocol, u8::from(s.protocol));
                    assert_eq!(f.later_fragment, s.later_fragment);
                    assert_eq!((f.src, f.dst), (s.src, s.dst));
                    let port = Encap::new(0, 0, s, &frame).src_port;
                    assert_eq!(flow_port(f, &frame), port, "{frame:02x?}");
                }
                (None, None) => {}
                _ => panic!(
                    "fast {} slow {}: {frame:02x?}",
                    fast.is_some(),
                    slow.is_some()
                ),
            }
        }
        assert!(accepted > 10_000, "{accepted}");
    }
}
