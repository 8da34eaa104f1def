//! The staged batch for frames from a VF, in the manner of DPDK's pipeline stages:
//!
//! 1. parse each frame's Ethernet header and read the address it is going to (IPv4
//!    destination, ARP target); from the sender's subnet, guess the lookups its decision
//!    will make (a route lookup for frames to the gateway MAC, a mapping lookup for frames
//!    to an instance of the subnet and ARP requests), and prefetch the table lines they
//!    will read;
//! 2. run those lookups with the batch APIs ([`crate::tables::lpm::RouteTables::lookup_batch`],
//!    then [`crate::tables::mapping::MappingTable::get_batch`] for the mappings the routes
//!    lead to), so the cache misses of the whole batch overlap;
//! 3. decide each frame with the per-frame code of [`super::process_frame`], handing it the
//!    answers as [`Hints`]. A lookup whose key is not the one guessed reads the table, so
//!    the verdicts and bytes are those of [`super::process_frame`] by construction; the
//!    guesses only decide how much time is saved.
//!
//! With a [`FlowCache`], each IPv4 frame's flow is looked up first (its entry prefetched
//! in stage 1 with the rest); a hit is carried out at once and skips the other stages, and
//! a miss is decided as above while a [`Learner`] watches, and its outcome cached.
//!
//! Everything lives in fixed arrays on the stack: no heap.
use super::flow_cache::{self, Action, FlowCache, FlowKey, Learner};
use super::trace::NoTrace;
use super::{eth, from_vf as decide, sender, Hints, Port, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::lpm::{Route, Target};
use crate::tables::mapping::{Mapping, MappingKey};
use crate::tables::Tables;
use shared_regs::stats::Counter;
use shared_regs::ETH_HEADER_LEN;

/// Frames staged together; a longer batch goes in chunks of this many.
const CHUNK: usize = 32;
/// Frames left after the flow cache's hits that are decided one by one, unstaged.
const FEW: usize = 4;
/// Offset in a frame of the IPv4 destination address.
const IPV4_DST: usize = ETH_HEADER_LEN + 16;
/// Offset in a frame of the ARP target protocol address.
const ARP_TPA: usize = ETH_HEADER_LEN + 24;

/// The big-endian word at `at`, if the frame is long enough.
#[inline(always)]
fn be32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

/// A frame's flow and the cache entry it lives in.
type Flow = (FlowKey, usize);

/// Up to [`CHUNK`] lookup keys, each with the index of the frame it is for.
struct Keys<K: Copy> {
    keys: [K; CHUNK],
    frame: [usize; CHUNK],
    n: usize,
}

impl<K: Copy> Keys<K> {
    fn new(fill: K) -> Self {
        Keys {
            keys: [fill; CHUNK],
            frame: [0; CHUNK],
            n: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, key: K, frame: usize) {
        if let (Some(k), Some(f)) = (self.keys.get_mut(self.n), self.frame.get_mut(self.n)) {
            *k = key;
            *f = frame;
            self.n = self.n.wrapping_add(1);
        }
    }

    /// Writes the key in the next place in any case, and keeps it when `keep`.
    #[inline(always)]
    fn push_if(&mut self, keep: bool, key: K, frame: usize) {
        if let (Some(k), Some(f)) = (self.keys.get_mut(self.n), self.frame.get_mut(self.n)) {
            *k = key;
            *f = frame;
            self.n = self.n.wrapping_add(usize::from(keep));
        }
    }

    fn keys(&self) -> &[K] {
        self.keys.get(..self.n).unwrap_or(&[])
    }

    fn iter(&self) -> impl Iterator<Item = (K, usize)> + '_ {
        self.keys().iter().copied().zip(self.frame.iter().copied())
    }
}

/// [`super::process_batch`] for frames from VF `vf`.
pub(super) fn from_vf(
    tables: &Tables<'_>,
    mut cache: Option<&mut FlowCache<'_>>,
    vf: u16,
    frames: &mut [FrameBuf],
    verdicts: &mut [Verdict],
) {
    let Some(sender) = sender(tables, vf) else {
        // As process_frame: a VF without a complete sender context drops as unroutable.
        for (_, v) in frames.iter().zip(verdicts.iter_mut()) {
            *v = Verdict::drop(Port::Vf(vf), Counter::DropNoRoute);
        }
        return;
    };
    for (f, v) in frames.chunks_mut(CHUNK).zip(verdicts.chunks_mut(CHUNK)) {
        chunk(tables, cache.as_deref_mut(), &sender, f, v);
    }
}

/// The three stages over at most [`CHUNK`] frames.
fn chunk(
    tables: &Tables<'_>,
    mut cache: Option<&mut FlowCache<'_>>,
    sender: &Sender<'_>,
    frames: &mut [FrameBuf],
    verdicts: &mut [Verdict],
) {
    // Stage 0, with a cache: each IPv4 frame's flow and the entry it lives in, prefetched,
    // then the hits carried out. `done[i]`: frame i has its verdict.
    let mut flows = [None::<Flow>; CHUNK];
    let mut done = [false; CHUNK];
    let mut hits = 0usize;
    if let Some(cache) = cache.as_deref() {
        for (frame, flow) in frames.iter().zip(flows.iter_mut()) {
            *flow = flow_cache::key_of(sender.vf, frame.data()).map(|key| {
                let slot = cache.slot(&key);
                cache.prefetch(slot);
                (key, slot)
            });
        }
        for (((frame, v), flow), d) in frames
            .iter_mut()
            .zip(verdicts.iter_mut())
            .zip(flows.iter())
            .zip(done.iter_mut())
        {
            let Some(action) = flow.as_ref().and_then(|(k, slot)| cache.get(*slot, k)) else {
                continue;
            };
            let hit = match action {
                Action::ArpReply { mac } => flow_cache::apply_arp(sender, *mac, frame, v),
                _ => flow_cache::apply(tables, sender, action, frame, v),
            };
            if hit {
                *d = true;
                hits = hits.wrapping_add(1);
            }
        }
    }
    if let Some(cache) = cache.as_deref_mut() {
        cache.count_hits(hits as u64);
    }
    let left = frames.len().min(CHUNK).saturating_sub(hits);
    if left == 0 {
        return;
    }
    if hits > 0 && left <= FEW {
        // A few flows the cache has not seen: staging them would cost more than it saves.
        for (((frame, v), flow), d) in frames
            .iter_mut()
            .zip(verdicts.iter_mut())
            .zip(flows.iter())
            .zip(done)
        {
            if !d {
                *v = decide_one(
                    tables,
                    cache.as_deref_mut(),
                    sender,
                    flow,
                    frame,
                    &Hints::NONE,
                );
            }
        }
        return;
    }
    let mut hdrs = [None::<eth::Header>; CHUNK];
    let mut hints = [Hints::NONE; CHUNK];
    let mut routes = Keys::new((0u16, 0u32));
    let mut maps = Keys::new(MappingKey::default());
    let vni = sender.vpc.vni;
    let table = sender.subnet.route_table;
    // Stage 1: parse, guess the lookups, prefetch. Without branches on the kind of frame:
    // the kinds of a batch interleave, and a branch on them would be mispredicted often.
    let gw_mac = sender.subnet.gateway_mac;
    let mut any_routed = false;
    for (i, ((frame, hdr), d)) in frames.iter().zip(hdrs.iter_mut()).zip(done).enumerate() {
        if d {
            continue;
        }
        let data = frame.data();
        *hdr = eth::Header::parse(data);
        let Some(h) = hdr else {
            continue;
        };
        let ipv4 = h.ethertype == eth::ETHERTYPE_IPV4;
        let arp = h.ethertype == eth::ETHERTYPE_ARP;
        let at = if ipv4 { IPV4_DST } else { ARP_TPA };
        let dst = be32(data, at).unwrap_or(0);
        let ok = h.src == sender.cfg.mac && (ipv4 || arp);
        let routed = ok & ipv4 & (h.dst == gw_mac);
        let direct = ok & !routed & sender.subnet.contains(dst);
        let key = MappingKey { vni, ip: dst };
        // Routed frames usually stay in the VPC (its local route): their mapping is the
        // destination's too.
        if routed | direct {
            tables.mappings.prefetch(key);
        }
        any_routed |= routed;
        routes.push_if(routed, (table, dst), i);
        maps.push_if(direct, key, i);
    }
    if any_routed {
        tables.routes.prefetch(table);
    }
    // Stage 2: the route lookups, the mappings they lead to, then every mapping lookup.
    let mut found = [None::<Route>; CHUNK];
    tables.routes.lookup_batch(routes.keys(), &mut found);
    for (((t, ip), i), route) in routes.iter().zip(found.iter()) {
        if let Some(h) = hints.get_mut(i) {
            h.route = Some((t, ip, *route));
        }
        let key = match route.map(|r| r.target) {
            Some(Target::Local) => Some(MappingKey { vni, ip }),
            Some(Target::Instance(addr)) => Some(MappingKey { vni, ip: addr }),
            Some(Target::Peering(peer)) => tables.vpc(peer).map(|p| MappingKey { vni: p.vni, ip }),
            _ => None,
        };
        if let Some(key) = key {
            maps.push(key, i);
        }
    }
    let mut mapped = [None::<Mapping>; CHUNK];
    tables.mappings.get_batch(maps.keys(), &mut mapped);
    for ((key, i), m) in maps.iter().zip(mapped.iter()) {
        if let Some(h) = hints.get_mut(i) {
            h.mapping = Some((key, *m));
        }
    }
    // Stage 3: decide and rewrite each frame (and learn its flow).
    for (((frame, v), (hdr, hint)), (flow, d)) in frames
        .iter_mut()
        .zip(verdicts.iter_mut())
        .zip(hdrs.iter().zip(hints.iter()))
        .zip(flows.iter().zip(done))
    {
        if !d {
            *v = decide_parsed(
                tables,
                cache.as_deref_mut(),
                sender,
                flow,
                *hdr,
                frame,
                hint,
            );
        }
    }
}

/// Decides one frame with the per-frame code, and caches its flow's outcome.
#[inline(always)]
fn decide_one(
    tables: &Tables<'_>,
    cache: Option<&mut FlowCache<'_>>,
    sender: &Sender<'_>,
    flow: &Option<Flow>,
    frame: &mut FrameBuf,
    hint: &Hints,
) -> Verdict {
    let hdr = eth::Header::parse(frame.data());
    decide_parsed(tables, cache, sender, flow, hdr, frame, hint)
}

/// [`decide_one`] for a frame whose Ethernet header is parsed.
#[inline(always)]
fn decide_parsed(
    tables: &Tables<'_>,
    cache: Option<&mut FlowCache<'_>>,
    sender: &Sender<'_>,
    flow: &Option<Flow>,
    hdr: Option<eth::Header>,
    frame: &mut FrameBuf,
    hint: &Hints,
) -> Verdict {
    match (cache, flow) {
        (Some(cache), Some((key, slot))) => {
            let mut learner = Learner::default();
            let v = decide(tables, sender, hdr, frame, hint, &mut learner);
            if let Some(action) = learner.action(v, frame.data()) {
                cache.insert(*slot, *key, action);
            }
            v
        }
        _ => decide(tables, sender, hdr, frame, hint, &mut NoTrace),
    }
}
