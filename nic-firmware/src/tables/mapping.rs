//! The exact-match mapping table: (VNI, IPv4) -> (MAC, local VF or remote host).
//!
//! # Design
//!
//! A hardware-style bucketed cuckoo hash, in the manner of DPDK `rte_hash`:
//!
//! - The 64-bit key `vni << 32 | ip` is mixed by a multiply-xorshift finaliser (murmur3
//!   `fmix64`). Its low bits pick the primary bucket, bits 32.. an XOR distance `d` to the
//!   alternate bucket (`b2 = b1 ^ d`, `d != 0`, so the two buckets differ whenever there are
//!   two or more), and its top 14 bits are the entry's tag (signature; never zero).
//! - A bucket holds [`MappingTable::SLOTS_PER_BUCKET`] = 8 slots. A slot's tag is 0 when the
//!   slot is empty. The eight tags of a bucket sit in its first 16 bytes, so a lookup
//!   compares tags first and only reads the key of a slot whose tag matches (a false match
//!   is 1 in 16,383 per occupied slot). A lookup touches at most its 2 buckets.
//! - Insert puts the key in a free slot of either bucket. When both are full it searches a
//!   cuckoo path breadth first (at most [`BFS_QUEUE`] buckets, so at most a few hundred
//!   bucket reads and a path of a handful of moves), without changing anything. Only when a
//!   path ending in a free slot is found does it move entries, from the path's end backwards:
//!   each entry is first copied into its alternate bucket and only then overwritten, so every
//!   entry is findable at every instant (at worst twice, with equal values). When no path is
//!   found the result is [`TableError::Full`] and the table is exactly as it was.
//! - [`MappingTable::get_batch`] looks up many keys in three passes (tags of both buckets,
//!   then the matching slot's key and value, then the compare), as DPDK's bulk lookup does,
//!   so that the cache misses of 16 keys overlap; on 1M entries it takes 0.6 to 0.8 times
//!   the time of single lookups (`cargo bench -p nic-firmware --features testing --bench
//!   mapping`).
//! - Writes publish a slot by writing its key and value first and its tag last (with a
//!   compiler fence between), and retire it by clearing the tag first, so a lookup never
//!   sees a half-written entry.
//! - [`MappingTable::replace`] changes a value make-before-break: it publishes the new value
//!   in a free slot of one of the key's two buckets, then retires the old slot, so a lookup
//!   finds the old value or the new one at every instant, never a mix and never none. Only
//!   when both buckets are full is the slot rewritten in place (retired, written, published
//!   again): a lookup racing that on hardware would miss the key for that moment (never see
//!   a mix); the firmware runs commands between pipeline batches, so it never does here.
//!
//! # Capacity and memory
//!
//! The table uses the largest power-of-two prefix of the bucket slice it is given (a slice
//! of 1,000 buckets uses 512 of them; give a power of two). Capacity is buckets x 8 entries.
//! Measured load at the first `Full` is about 98.7 to 100 % for random keys (the tests assert
//! >= 90 %).
//!
//! A bucket is 160 bytes (tags and location kinds 16, keys 64, underlay address or VF 32,
//! MACs 48), so an entry costs **20 bytes** of device memory per slot, about 20.3 bytes per
//! stored entry at the load reached at `Full`. The hash is fixed (hardware tables use a
//! fixed CRC as well); keys are chosen by the operator, not by remote parties.
use super::TableError;
use core::sync::atomic::{compiler_fence, Ordering};

/// Key of a mapping: the VPC's VNI and an instance address (host byte order).
///
/// F16 (VPCs are separate address spaces) holds by construction, and this key is where: the
/// VNI is part of every lookup, and the pipeline takes it only from the sender's own VPC,
/// from the peer VPC of an explicit `pcx:` route (F8), or from the VNI of a decapsulated
/// frame (F15), so no lookup finds an instance of a VPC it has no peering with, whatever
/// addresses overlap. What else could cross stays inside one VPC too: a subnet's route
/// table is one of its own VPC's (the admin handler refuses another), delivery by MAC (F7)
/// looks only in the sender's subnet, and a gateway target is reached with the sender's
/// VNI. Only the PF's admin queue changes or reads the tables; no VF register reaches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct MappingKey {
    pub vni: u32,
    pub ip: u32,
}

impl MappingKey {
    fn packed(self) -> u64 {
        (u64::from(self.vni) << 32) | u64::from(self.ip)
    }

    fn unpacked(k: u64) -> Self {
        MappingKey {
            vni: (k >> 32) as u32,
            ip: (k & 0xffff_ffff) as u32,
        }
    }
}

/// Where a mapped instance lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// On this NIC's VF.
    LocalVf(u16),
    /// On another host, by underlay IPv4 (host byte order).
    Remote { underlay_ip: u32 },
    /// A subnet's gateway address (base + 1), with the gateway MAC: the NIC itself
    /// answers for it (F10); nothing is forwarded to it.
    Gateway,
    /// A subnet's broadcast address (its last): nothing is delivered to it (F6).
    Broadcast,
    /// The anchor of a VNI: key (VNI, 0.0.0.0) names the VPC with that VNI, so that
    /// decapsulation finds a VPC by VNI in one lookup (F15). Never an instance.
    Vpc(u16),
}

/// The value of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub mac: [u8; 6],
    pub location: Location,
}

/// Slots per bucket.
const SLOTS: usize = 8;
/// The tag bits of a slot's meta word; 0 means empty.
const TAG_MASK: u16 = 0x3fff;
/// The meta bits of the location kind.
const KIND_LOCAL: u16 = 0;
const KIND_REMOTE: u16 = 0x4000;
const KIND_GATEWAY: u16 = 0x8000;
const KIND_VPC: u16 = 0xc000;
const KIND_MASK: u16 = 0xc000;
/// The address word of a [`Location::Broadcast`] entry (kind [`KIND_GATEWAY`]).
const BROADCAST_ADDR: u32 = 1;
/// Buckets the cuckoo path search visits at most (2 roots, 16 at depth 1, 128 at depth 2,
/// the rest at depth 3). 256 x 8 bytes of stack.
pub const BFS_QUEUE: usize = 256;

/// One bucket of table storage: 8 slots, 160 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct MappingBucket {
    /// Per slot: tag (bits 0..14, 0 = empty) and location kind (bits 14..16).
    meta: [u16; SLOTS],
    /// Per slot: `vni << 32 | ip`.
    keys: [u64; SLOTS],
    /// Per slot: underlay IPv4, or the VF index.
    addrs: [u32; SLOTS],
    /// Per slot: instance MAC.
    macs: [[u8; 6]; SLOTS],
}

const _: () = assert!(core::mem::size_of::<MappingBucket>() == 160);

impl MappingBucket {
    /// An empty bucket, to fill storage with.
    pub const EMPTY: MappingBucket = MappingBucket {
        meta: [0; SLOTS],
        keys: [0; SLOTS],
        addrs: [0; SLOTS],
        macs: [[0; 6]; SLOTS],
    };

    fn tag(&self, slot: usize) -> u16 {
        self.meta.get(slot).map_or(0, |m| m & TAG_MASK)
    }

    fn free_slot(&self) -> Option<usize> {
        self.meta.iter().position(|m| m & TAG_MASK == 0)
    }

    /// The first slot holding `tag`.
    fn tag_match(&self, tag: u16) -> Option<usize> {
        self.meta.iter().position(|m| m & TAG_MASK == tag)
    }

    fn find(&self, tag: u16, key: u64) -> Option<usize> {
        self.meta
            .iter()
            .zip(self.keys.iter())
            .position(|(m, k)| m & TAG_MASK == tag && *k == key)
    }

    fn entry(&self, slot: usize) -> Option<(MappingKey, Mapping)> {
        let meta = *self.meta.get(slot)?;
        if meta & TAG_MASK == 0 {
            return None;
        }
        let key = MappingKey::unpacked(*self.keys.get(slot)?);
        let addr = *self.addrs.get(slot)?;
        let location = match meta & KIND_MASK {
            KIND_REMOTE => Location::Remote { underlay_ip: addr },
            KIND_GATEWAY if addr == BROADCAST_ADDR => Location::Broadcast,
            KIND_GATEWAY => Location::Gateway,
            KIND_VPC => Location::Vpc((addr & 0xffff) as u16),
            _ => Location::LocalVf((addr & 0xffff) as u16),
        };
        let mac = *self.macs.get(slot)?;
        Some((key, Mapping { mac, location }))
    }

    /// Writes key and value, then publishes the tag.
    fn publish(&mut self, slot: usize, tag: u16, key: u64, value: Mapping) {
        let (addr, kind) = match value.location {
            Location::LocalVf(vf) => (u32::from(vf), KIND_LOCAL),
            Location::Remote { underlay_ip } => (underlay_ip, KIND_REMOTE),
            Location::Gateway => (0, KIND_GATEWAY),
            Location::Broadcast => (BROADCAST_ADDR, KIND_GATEWAY),
            Location::Vpc(id) => (u32::from(id), KIND_VPC),
        };
        if let (Some(k), Some(a), Some(m)) = (
            self.keys.get_mut(slot),
            self.addrs.get_mut(slot),
            self.macs.get_mut(slot),
        ) {
            *k = key;
            *a = addr;
            *m = value.mac;
        } else {
            return;
        }
        compiler_fence(Ordering::Release);
        if let Some(m) = self.meta.get_mut(slot) {
            *m = (tag & TAG_MASK) | kind;
        }
    }

    /// Clears the tag first, then the data.
    fn retire(&mut self, slot: usize) {
        if let Some(m) = self.meta.get_mut(slot) {
            *m = 0;
        }
        compiler_fence(Ordering::Release);
        if let (Some(k), Some(a), Some(m)) = (
            self.keys.get_mut(slot),
            self.addrs.get_mut(slot),
            self.macs.get_mut(slot),
        ) {
            *k = 0;
            *a = 0;
            *m = [0; 6];
        }
    }
}

/// A key's hash-derived placement.
#[derive(Clone, Copy)]
struct Hashed {
    key: u64,
    tag: u16,
    primary: usize,
    /// XOR distance between the two buckets (non-zero when there are >= 2 buckets).
    dist: usize,
}

/// murmur3 `fmix64`: a fast, well-mixing 64-bit finaliser.
fn fmix64(x: u64) -> u64 {
    let mut x = fmix64_round(x);
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// The first round of [`fmix64`]: one multiply, enough that every input bit moves every
/// output bit for a port hash or a direct-mapped index (F14's source port, the flow cache).
#[inline(always)]
pub(crate) fn fmix64_round(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// A node of the cuckoo path search: a full bucket, reached by moving the entry in slot
/// `slot` of the parent node's bucket into this one.
#[derive(Clone, Copy)]
struct Node {
    bucket: u32,
    parent: u16,
    slot: u8,
}

const NO_PARENT: u16 = u16::MAX;

/// The mapping table over storage the platform provides.
pub struct MappingTable<'m> {
    buckets: &'m mut [MappingBucket],
    /// Buckets in use minus one (the count is a power of two); unused when `nbuckets == 0`.
    mask: usize,
    nbuckets: usize,
    len: usize,
}

impl<'m> MappingTable<'m> {
    /// Entries one bucket holds.
    pub const SLOTS_PER_BUCKET: usize = SLOTS;

    /// A table over `buckets`, emptied. Uses the largest power-of-two prefix of the slice.
    pub fn new(buckets: &'m mut [MappingBucket]) -> Self {
        // Bucket indexes travel as u32 in the path search.
        let usable = buckets.len().min(1 << 31);
        let nbuckets = if usable == 0 {
            0
        } else {
            1usize << usable.ilog2()
        };
        let mut t = MappingTable {
            buckets,
            mask: nbuckets.saturating_sub(1),
            nbuckets,
            len: 0,
        };
        t.clear();
        t
    }

    /// Nominal capacity in entries (buckets in use x 8). Random keys fill about 99 % of it.
    pub fn capacity(&self) -> usize {
        self.nbuckets.saturating_mul(Self::SLOTS_PER_BUCKET)
    }

    /// Buckets in use: the largest power of two not above the slice length.
    pub fn buckets(&self) -> usize {
        self.nbuckets
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.buckets.fill(MappingBucket::EMPTY);
        self.len = 0;
    }

    fn hashed(&self, key: MappingKey) -> Hashed {
        let packed = key.packed();
        let h = fmix64(packed);
        let tag = match ((h >> 50) as u16) & TAG_MASK {
            0 => 1,
            t => t,
        };
        let primary = (h as usize) & self.mask;
        let dist = match ((h >> 32) as usize) & self.mask {
            0 => 1 & self.mask,
            d => d,
        };
        Hashed {
            key: packed,
            tag,
            primary,
            dist,
        }
    }

    fn bucket(&self, i: usize) -> Option<&MappingBucket> {
        if self.nbuckets == 0 {
            return None;
        }
        self.buckets.get(i)
    }

    /// (bucket, slot) of `key`.
    fn locate(&self, h: &Hashed) -> Option<(usize, usize)> {
        let b1 = h.primary;
        if let Some(s) = self.bucket(b1).and_then(|b| b.find(h.tag, h.key)) {
            return Some((b1, s));
        }
        let b2 = b1 ^ h.dist;
        if b2 != b1 {
            if let Some(s) = self.bucket(b2).and_then(|b| b.find(h.tag, h.key)) {
                return Some((b2, s));
            }
        }
        None
    }

    /// Adds a mapping; `Exists` if the key is there, `Full` if there is no room. A refused
    /// insert changes nothing.
    pub fn insert(&mut self, key: MappingKey, value: Mapping) -> Result<(), TableError> {
        if self.nbuckets == 0 {
            return Err(TableError::Full);
        }
        let h = self.hashed(key);
        if self.locate(&h).is_some() {
            return Err(TableError::Exists);
        }
        let b1 = h.primary;
        let b2 = b1 ^ h.dist;
        for b in [b1, b2] {
            if let Some(bucket) = self.buckets.get_mut(b) {
                if let Some(s) = bucket.free_slot() {
                    bucket.publish(s, h.tag, h.key, value);
                    self.len = self.len.saturating_add(1);
                    return Ok(());
                }
            }
        }
        self.cuckoo_insert(&h, value)
    }

    /// Both buckets are full: search a path breadth first, then move along it.
    fn cuckoo_insert(&mut self, h: &Hashed, value: Mapping) -> Result<(), TableError> {
        let empty = Node {
            bucket: 0,
            parent: NO_PARENT,
            slot: 0,
        };
        let mut queue = [empty; BFS_QUEUE];
        let b1 = h.primary;
        let b2 = b1 ^ h.dist;
        let mut tail = 0usize;
        for b in [b1, b2] {
            if let Some(n) = queue.get_mut(tail) {
                *n = Node {
                    bucket: b as u32,
                    parent: NO_PARENT,
                    slot: 0,
                };
                tail = tail.saturating_add(1);
            }
            if b1 == b2 {
                break;
            }
        }
        let mut head = 0usize;
        while head < tail {
            let node = *queue.get(head).ok_or(TableError::Full)?;
            let bucket = self
                .buckets
                .get(node.bucket as usize)
                .ok_or(TableError::Full)?;
            if let Some(free) = bucket.free_slot() {
                self.move_along(&queue, head, free, h, value);
                self.len = self.len.saturating_add(1);
                return Ok(());
            }
            for slot in 0..SLOTS {
                if tail >= BFS_QUEUE {
                    break;
                }
                let Some((k, _)) = bucket.entry(slot) else {
                    continue;
                };
                let alt = node.bucket as usize ^ self.hashed(k).dist;
                if on_path(&queue, head, alt) {
                    continue;
                }
                if let Some(n) = queue.get_mut(tail) {
                    *n = Node {
                        bucket: alt as u32,
                        parent: head as u16,
                        slot: slot as u8,
                    };
                    tail = tail.saturating_add(1);
                }
            }
            head = head.saturating_add(1);
        }
        Err(TableError::Full)
    }

    /// Moves entries along the path ending at `queue[end]` (whose bucket has slot `free`
    /// empty), from the end backwards, then writes the new entry at the path's root.
    fn move_along(&mut self, queue: &[Node], end: usize, free: usize, h: &Hashed, value: Mapping) {
        let mut cur = end;
        let mut dst_slot = free;
        while let Some(node) = queue.get(cur) {
            let dst = node.bucket as usize;
            if node.parent == NO_PARENT {
                if let Some(b) = self.buckets.get_mut(dst) {
                    b.publish(dst_slot, h.tag, h.key, value);
                }
                return;
            }
            let Some(parent) = queue.get(usize::from(node.parent)) else {
                return;
            };
            let src = parent.bucket as usize;
            let src_slot = usize::from(node.slot);
            let Some(moved) = self.buckets.get(src).and_then(|b| b.entry(src_slot)) else {
                return;
            };
            let tag = self.bucket(src).map_or(0, |b| b.tag(src_slot));
            // Copy first: the entry is in both buckets until its old slot is overwritten.
            if let Some(b) = self.buckets.get_mut(dst) {
                b.publish(dst_slot, tag, moved.0.packed(), moved.1);
            }
            #[cfg(test)]
            tests::observe_move(self);
            dst_slot = src_slot;
            cur = usize::from(node.parent);
        }
    }

    /// Sets the value of the existing `key` and returns the old one; `NotFound` (and nothing
    /// changed) when the key is absent. Never `Full`: see the module documentation.
    pub fn replace(&mut self, key: MappingKey, value: Mapping) -> Result<Mapping, TableError> {
        let h = self.hashed(key);
        let (b, s) = self.locate(&h).ok_or(TableError::NotFound)?;
        let old = self
            .bucket(b)
            .and_then(|bucket| bucket.entry(s))
            .map(|(_, v)| v)
            .ok_or(TableError::NotFound)?;
        let b1 = h.primary;
        let b2 = b1 ^ h.dist;
        // A free slot in the primary bucket first: lookups look there first.
        let free = [b1, b2]
            .into_iter()
            .find_map(|x| Some((x, self.buckets.get(x)?.free_slot()?)));
        match free {
            Some((fb, fs)) => {
                if let Some(bucket) = self.buckets.get_mut(fb) {
                    bucket.publish(fs, h.tag, h.key, value);
                }
                // Both copies are complete; the old one goes.
                compiler_fence(Ordering::Release);
                if let Some(bucket) = self.buckets.get_mut(b) {
                    bucket.retire(s);
                }
            }
            None => {
                if let Some(bucket) = self.buckets.get_mut(b) {
                    bucket.retire(s);
                    compiler_fence(Ordering::Release);
                    bucket.publish(s, h.tag, h.key, value);
                }
            }
        }
        Ok(old)
    }

    /// Removes a mapping and returns it.
    pub fn remove(&mut self, key: MappingKey) -> Result<Mapping, TableError> {
        let h = self.hashed(key);
        let (b, s) = self.locate(&h).ok_or(TableError::NotFound)?;
        let bucket = self.buckets.get_mut(b).ok_or(TableError::NotFound)?;
        let (_, v) = bucket.entry(s).ok_or(TableError::NotFound)?;
        bucket.retire(s);
        self.len = self.len.saturating_sub(1);
        Ok(v)
    }

    /// The mapping for `key`. Reads at most 2 buckets.
    pub fn get(&self, key: MappingKey) -> Option<Mapping> {
        let h = self.hashed(key);
        let (b, s) = self.locate(&h)?;
        self.bucket(b)?.entry(s).map(|(_, v)| v)
    }

    /// [`MappingTable::get`] for each key of `keys`, into `out` (the shorter of the two
    /// bounds the work). The same answers, faster on a table larger than the cache: the
    /// keys go in groups of 16 through three passes, as DPDK's `rte_hash_lookup_bulk`
    /// does: hash and read the tags of both candidate buckets; pick the slot whose tag
    /// matches and read its key and value; compare the key and answer. Within a pass the
    /// reads of different keys do not depend on each other, so their cache misses overlap.
    pub fn get_batch(&self, keys: &[MappingKey], out: &mut [Option<Mapping>]) {
        const GROUP: usize = 16;
        let none = Hashed {
            key: 0,
            tag: 0,
            primary: 0,
            dist: 0,
        };
        for (keys, out) in keys.chunks(GROUP).zip(out.chunks_mut(GROUP)) {
            let mut hs = [none; GROUP];
            let mut touched = 0u64;
            for (k, h) in keys.iter().zip(hs.iter_mut()) {
                *h = self.hashed(*k);
                for b in [h.primary, h.primary ^ h.dist] {
                    touched ^= self.bucket(b).map_or(0, |b| u64::from(b.meta[0]));
                }
            }
            // The first slot whose tag matches, in either bucket (usually the only one).
            let mut cand = [(0usize, SLOTS); GROUP];
            for (h, c) in hs.iter().zip(cand.iter_mut()) {
                for b in [h.primary, h.primary ^ h.dist] {
                    if let Some(s) = self.bucket(b).and_then(|bk| bk.tag_match(h.tag)) {
                        *c = (b, s);
                        break;
                    }
                }
                if let Some(bk) = self.bucket(c.0) {
                    touched ^= bk.keys.get(c.1).copied().unwrap_or(0);
                    touched ^= u64::from(bk.macs.get(c.1).map_or(0, |m| m[5]));
                }
            }
            // The loads above only bring lines into the cache: keep them.
            core::hint::black_box(touched);
            for ((h, c), o) in hs.iter().zip(cand.iter()).zip(out.iter_mut()) {
                let quick = self
                    .bucket(c.0)
                    .filter(|bk| bk.keys.get(c.1) == Some(&h.key))
                    .and_then(|bk| bk.entry(c.1));
                *o = match quick {
                    Some((_, v)) => Some(v),
                    // No tag matched, or the first match was another key's: the full search.
                    None if c.1 >= SLOTS => None,
                    None => self
                        .locate(h)
                        .and_then(|(b, s)| self.bucket(b)?.entry(s))
                        .map(|(_, v)| v),
                };
            }
        }
    }

    /// Starts bringing the buckets `key` lives in into the cache, for a lookup soon after
    /// (the staged pipeline batch). Changes nothing.
    #[inline(always)]
    pub fn prefetch(&self, key: MappingKey) {
        let h = self.hashed(key);
        for b in [h.primary, h.primary ^ h.dist] {
            if let Some(bucket) = self.bucket(b) {
                let p = (bucket as *const MappingBucket).cast::<u8>();
                // A bucket is 160 bytes: it spans three or four lines.
                for off in [0usize, 64, 128, 159] {
                    prefetch(p.wrapping_add(off));
                }
            }
        }
    }

    /// Every entry, in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (MappingKey, Mapping)> + '_ {
        self.buckets
            .get(..self.nbuckets)
            .unwrap_or_default()
            .iter()
            .flat_map(|b| (0..SLOTS).filter_map(move |s| b.entry(s)))
    }

    /// Storage positions: entries are found at `0 .. positions()` by [`Self::at`].
    pub fn positions(&self) -> usize {
        self.nbuckets.saturating_mul(SLOTS)
    }

    /// The entry at storage position `pos`, if that slot holds one (for table dumps).
    pub fn at(&self, pos: usize) -> Option<(MappingKey, Mapping)> {
        self.buckets.get(pos / SLOTS)?.entry(pos % SLOTS)
    }

    /// The two candidate buckets of `key` (equal only when the table has one bucket).
    pub fn candidate_buckets(&self, key: MappingKey) -> (usize, usize) {
        let h = self.hashed(key);
        (h.primary, h.primary ^ h.dist)
    }
}

/// Asks the CPU to bring the cache line holding `p` toward the core, ahead of a read. Only
/// a hint: it changes no result, and needs no valid address.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing into the program and never faults, whatever the
    // address (the CPU drops a prefetch it cannot serve); the callers pass addresses inside
    // live tables anyway.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// True when `bucket` is on the path from the root to `queue[node]`.
fn on_path(queue: &[Node], mut node: usize, bucket: usize) -> bool {
    while let Some(n) = queue.get(node) {
        if n.bucket as usize == bucket {
            return true;
        }
        if n.parent == NO_PARENT {
            return false;
        }
        node = usize::from(n.parent);
    }
    false
}

#[cfg(test)]
#[allow(clippy::map_entry)] // the reference model reads clearer with contains_key
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::RefCell;
    use std::collections::{HashMap, HashSet};

    /// The entries of a table at one instant.
    type Snapshot = Vec<(MappingKey, Mapping)>;

    std::thread_local! {
        /// When set, every intermediate state of a cuckoo move is recorded here.
        static MOVES: RefCell<Option<Vec<Snapshot>>> = const { RefCell::new(None) };
    }

    /// Called after each single entry move of a cuckoo insert.
    pub(super) fn observe_move(t: &MappingTable<'_>) {
        MOVES.with(|m| {
            if let Some(v) = m.borrow_mut().as_mut() {
                v.push(t.iter().collect());
            }
        });
    }

    fn val(n: u32) -> Mapping {
        let b = n.to_le_bytes();
        Mapping {
            mac: [2, b[0], b[1], b[2], b[3], 7],
            location: if n.is_multiple_of(3) {
                Location::LocalVf((n & 0xffff) as u16)
            } else if n.is_multiple_of(7) {
                Location::Gateway
            } else {
                Location::Remote {
                    underlay_ip: n.wrapping_mul(2_654_435_761),
                }
            },
        }
    }

    /// Every entry sits in one of its two buckets, no key is stored twice, len matches.
    fn check_invariants(t: &MappingTable<'_>) {
        let mut seen = HashSet::new();
        for (bi, b) in t.buckets[..t.nbuckets].iter().enumerate() {
            for s in 0..SLOTS {
                if let Some((k, _)) = b.entry(s) {
                    let (c1, c2) = t.candidate_buckets(k);
                    assert!(bi == c1 || bi == c2, "{k:?} in bucket {bi}, not {c1}/{c2}");
                    assert_eq!(b.tag(s), t.hashed(k).tag);
                    assert!(seen.insert(k), "{k:?} stored twice");
                } else {
                    assert_eq!(b.meta[s], 0);
                }
            }
        }
        assert_eq!(seen.len(), t.len());
        for b in &t.buckets[t.nbuckets..] {
            assert_eq!(*b, MappingBucket::EMPTY);
        }
    }

    /// `get_batch` answers as `get` does, key by key, whatever the group boundaries.
    fn check_batch_matches_get(t: &MappingTable<'_>, keys: impl Iterator<Item = MappingKey>) {
        let keys: Vec<MappingKey> = keys.collect();
        let mut out = vec![Some(val(12345)); keys.len()];
        t.get_batch(&keys, &mut out);
        for (k, got) in keys.iter().zip(&out) {
            assert_eq!(*got, t.get(*k), "{k:?}");
        }
        // A shorter output bounds the work.
        let mut short = vec![None; keys.len() / 2];
        t.get_batch(&keys, &mut short);
        for (k, got) in keys.iter().zip(&short) {
            assert_eq!(*got, t.get(*k), "{k:?}");
        }
    }

    fn random_keys(seed: u64) -> impl Iterator<Item = MappingKey> {
        let mut x = seed;
        core::iter::from_fn(move || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let r = fmix64(x ^ 0x1234_5678);
            Some(MappingKey {
                vni: (r >> 40) as u32 & 0xff,
                ip: r as u32,
            })
        })
    }

    #[test]
    fn replace_changes_the_value_in_place_and_never_loses_the_key() {
        // One bucket: both candidates are the same, so a full bucket takes the in-place path.
        for nbuckets in [1usize, 2, 64] {
            let mut storage = vec![MappingBucket::EMPTY; nbuckets];
            let mut t = MappingTable::new(&mut storage);
            let keys: Vec<MappingKey> = random_keys(7).take(8 * nbuckets).collect();
            let mut stored = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                if t.insert(*k, val(i as u32)).is_ok() {
                    stored.push((*k, val(i as u32)));
                }
            }
            for (n, (k, old)) in stored.clone().into_iter().enumerate() {
                let new = val(1_000_000 + n as u32);
                assert_eq!(t.replace(k, new), Ok(old));
                assert_eq!(t.get(k), Some(new));
                check_invariants(&t);
                assert_eq!(t.len(), stored.len());
            }
            for (n, (k, _)) in stored.iter().enumerate() {
                assert_eq!(t.get(*k), Some(val(1_000_000 + n as u32)), "{k:?}");
            }
            let absent = random_keys(99).find(|k| t.get(*k).is_none()).unwrap();
            let before: Vec<_> = t.iter().collect();
            assert_eq!(t.replace(absent, val(1)), Err(TableError::NotFound));
            assert_eq!(t.iter().collect::<Vec<_>>(), before);
        }
    }

    #[test]
    fn bucket_is_160_bytes_20_per_entry() {
        assert_eq!(core::mem::size_of::<MappingBucket>(), 160);
        assert_eq!(
            core::mem::size_of::<MappingBucket>() / MappingTable::SLOTS_PER_BUCKET,
            20
        );
    }

    #[test]
    fn power_of_two_prefix_of_storage() {
        let mut s = vec![MappingBucket::EMPTY; 100];
        let t = MappingTable::new(&mut s);
        assert_eq!(t.buckets(), 64);
        assert_eq!(t.capacity(), 512);
        let mut s = vec![MappingBucket::EMPTY; 1];
        let t = MappingTable::new(&mut s);
        assert_eq!(t.capacity(), 8);
    }

    #[test]
    fn empty_storage_is_always_full() {
        let mut s: Vec<MappingBucket> = vec![];
        let mut t = MappingTable::new(&mut s);
        let k = MappingKey { vni: 1, ip: 2 };
        assert_eq!(t.insert(k, val(1)), Err(TableError::Full));
        assert_eq!(t.get(k), None);
        assert_eq!(t.remove(k), Err(TableError::NotFound));
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn single_bucket_holds_eight() {
        let mut s = vec![MappingBucket::EMPTY; 1];
        let mut t = MappingTable::new(&mut s);
        let keys: Vec<_> = random_keys(5).take(9).collect();
        for (i, k) in keys[..8].iter().enumerate() {
            t.insert(*k, val(i as u32)).unwrap();
        }
        assert_eq!(t.insert(keys[8], val(8)), Err(TableError::Full));
        for (i, k) in keys[..8].iter().enumerate() {
            assert_eq!(t.get(*k), Some(val(i as u32)));
        }
        check_invariants(&t);
    }

    /// Fills random tables until `Full`; the failed insert changes nothing, every key is
    /// still found, and the load factor is at least 90 %.
    #[test]
    fn fill_to_full() {
        for (nbuckets, seed) in [(2usize, 1u64), (16, 2), (256, 3), (1024, 4), (4096, 5)] {
            let mut s = vec![MappingBucket::EMPTY; nbuckets];
            let mut t = MappingTable::new(&mut s);
            let mut inserted = Vec::new();
            let mut keys = random_keys(seed);
            let full_key = loop {
                let k = keys.next().unwrap();
                let v = val(inserted.len() as u32);
                match t.insert(k, v) {
                    Ok(()) => inserted.push((k, v)),
                    Err(TableError::Exists) => {}
                    Err(TableError::Full) => break k,
                    Err(e) => panic!("{e:?}"),
                }
            };
            let before: Vec<MappingBucket> = t.buckets.to_vec();
            let len = t.len();
            // Retry the refused key, then others: a refused one changes nothing.
            assert_eq!(t.insert(full_key, val(0)), Err(TableError::Full));
            assert_eq!(t.buckets.to_vec(), before);
            for k in keys.by_ref().take(50) {
                let before: Vec<MappingBucket> = t.buckets.to_vec();
                match t.insert(k, val(1)) {
                    Err(TableError::Full) => {
                        assert_eq!(t.buckets.to_vec(), before);
                    }
                    Err(TableError::Exists) => assert_eq!(t.buckets.to_vec(), before),
                    Ok(()) => {
                        t.remove(k).unwrap();
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert_eq!(t.len(), len);
            assert_eq!(len, inserted.len());
            for (k, v) in &inserted {
                assert_eq!(t.get(*k), Some(*v), "{k:?} lost");
            }
            check_batch_matches_get(
                &t,
                inserted
                    .iter()
                    .map(|(k, _)| *k)
                    .chain(keys.by_ref().take(100)),
            );
            check_invariants(&t);
            let load = len as f64 / t.capacity() as f64;
            eprintln!("{nbuckets} buckets: load at full {:.3}", load);
            if nbuckets >= 16 {
                assert!(load >= 0.90, "{nbuckets} buckets: load {load}");
            }
        }
    }

    /// Between the single moves of a cuckoo insert, every entry stays findable with its
    /// value: a lookup never misses an entry mid-insert.
    #[test]
    fn no_entry_missing_mid_insert() {
        let mut s = vec![MappingBucket::EMPTY; 64];
        let mut t = MappingTable::new(&mut s);
        let mut inserted: Vec<(MappingKey, Mapping)> = Vec::new();
        let mut longest = 0;
        for (i, k) in random_keys(11).enumerate() {
            MOVES.with(|m| *m.borrow_mut() = Some(Vec::new()));
            let r = t.insert(k, val(i as u32));
            let states = MOVES.with(|m| m.borrow_mut().take()).unwrap();
            longest = longest.max(states.len());
            for state in &states {
                let present: HashMap<_, _> = state.iter().copied().collect();
                for (k, v) in &inserted {
                    assert_eq!(present.get(k), Some(v), "{k:?} missing mid-insert");
                }
            }
            match r {
                Ok(()) => inserted.push((k, val(i as u32))),
                Err(TableError::Full) => {
                    assert!(states.is_empty(), "a refused insert moved entries");
                    break;
                }
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(
            longest >= 2,
            "no multi-step cuckoo path exercised ({longest})"
        );
        for (k, v) in &inserted {
            assert_eq!(t.get(*k), Some(*v));
        }
    }

    /// Two keys of one tag in one bucket: the batch's first tag match may be the other
    /// key's, and the answer must still be right.
    #[test]
    fn batch_with_tag_collision() {
        let mut s = vec![MappingBucket::EMPTY; 1];
        let mut t = MappingTable::new(&mut s);
        let mut by_tag = HashMap::new();
        let (a, b) = random_keys(21)
            .find_map(|k| {
                let tag = t.hashed(k).tag;
                match by_tag.insert(tag, k) {
                    Some(other) if other != k => Some((other, k)),
                    _ => None,
                }
            })
            .unwrap();
        t.insert(a, val(1)).unwrap();
        check_batch_matches_get(&t, [a, b].into_iter());
        let mut out = [None; 2];
        t.get_batch(&[b, a], &mut out);
        assert_eq!(out, [None, Some(val(1))]);
        t.insert(b, val(2)).unwrap();
        t.get_batch(&[b, a], &mut out);
        assert_eq!(out, [Some(val(2)), Some(val(1))]);
    }

    #[test]
    fn remove_then_reinsert() {
        let mut s = vec![MappingBucket::EMPTY; 64];
        let mut t = MappingTable::new(&mut s);
        let keys: Vec<_> = random_keys(9).take(400).collect();
        for (i, k) in keys.iter().enumerate() {
            t.insert(*k, val(i as u32)).unwrap();
        }
        for (i, k) in keys.iter().enumerate().step_by(3) {
            assert_eq!(t.remove(*k), Ok(val(i as u32)));
            assert_eq!(t.get(*k), None);
            assert_eq!(t.remove(*k), Err(TableError::NotFound));
        }
        check_invariants(&t);
        for (i, k) in keys.iter().enumerate().step_by(3) {
            t.insert(*k, val(i as u32 + 1)).unwrap();
            assert_eq!(t.insert(*k, val(0)), Err(TableError::Exists));
        }
        for (i, k) in keys.iter().enumerate() {
            let want = if i % 3 == 0 { i as u32 + 1 } else { i as u32 };
            assert_eq!(t.get(*k), Some(val(want)));
        }
        assert_eq!(t.len(), 400);
        check_invariants(&t);
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.iter().count(), 0);
        assert_eq!(t.get(keys[0]), None);
    }

    #[test]
    fn location_round_trips() {
        let mut s = vec![MappingBucket::EMPTY; 4];
        let mut t = MappingTable::new(&mut s);
        let a = MappingKey {
            vni: u32::MAX,
            ip: u32::MAX,
        };
        let b = MappingKey { vni: 0, ip: 0 };
        let va = Mapping {
            mac: [0xff; 6],
            location: Location::LocalVf(u16::MAX),
        };
        let vb = Mapping {
            mac: [0; 6],
            location: Location::Remote {
                underlay_ip: u32::MAX,
            },
        };
        let c = MappingKey {
            vni: 7,
            ip: 0x0a00_0001,
        };
        let vc = Mapping {
            mac: [2, 0, 0, 0, 0, 1],
            location: Location::Gateway,
        };
        t.insert(a, va).unwrap();
        t.insert(b, vb).unwrap();
        t.insert(c, vc).unwrap();
        assert_eq!(t.get(c), Some(vc));
        assert_eq!(t.remove(c), Ok(vc));
        assert_eq!(t.get(a), Some(va));
        assert_eq!(t.get(b), Some(vb));
        // Same IP in another VNI is another key.
        assert_eq!(
            t.get(MappingKey {
                vni: 0,
                ip: u32::MAX
            }),
            None
        );
        let mut all: Vec<_> = t.iter().collect();
        all.sort_by_key(|(k, _)| k.packed());
        assert_eq!(all, vec![(b, vb), (a, va)]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(MappingKey, u32),
        Remove(MappingKey),
        Get(MappingKey),
    }

    fn key_strategy() -> impl Strategy<Value = MappingKey> {
        // A small key space so Exists, NotFound and Full all happen.
        (0u32..3, 0u32..40).prop_map(|(vni, ip)| MappingKey {
            vni,
            ip: ip.wrapping_mul(0x0101_0101),
        })
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (key_strategy(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => key_strategy().prop_map(Op::Remove),
            1 => key_strategy().prop_map(Op::Get),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn matches_hashmap(nbuckets in 1usize..12, ops in prop::collection::vec(op_strategy(), 1..300)) {
            let mut s = vec![MappingBucket::EMPTY; nbuckets];
            let mut t = MappingTable::new(&mut s);
            let mut reference: HashMap<MappingKey, Mapping> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let before = t.buckets.to_vec();
                        let got = t.insert(k, val(v));
                        if reference.contains_key(&k) {
                            prop_assert_eq!(got, Err(TableError::Exists));
                            prop_assert_eq!(t.buckets.to_vec(), before);
                        } else if got == Err(TableError::Full) {
                            prop_assert_eq!(t.buckets.to_vec(), before);
                            // Both candidate buckets must be full for Full.
                            let (c1, c2) = t.candidate_buckets(k);
                            prop_assert!(t.buckets[c1].free_slot().is_none());
                            prop_assert!(t.buckets[c2].free_slot().is_none());
                        } else {
                            prop_assert_eq!(got, Ok(()));
                            reference.insert(k, val(v));
                        }
                    }
                    Op::Remove(k) => {
                        let before = t.buckets.to_vec();
                        let got = t.remove(k);
                        match reference.remove(&k) {
                            Some(v) => prop_assert_eq!(got, Ok(v)),
                            None => {
                                prop_assert_eq!(got, Err(TableError::NotFound));
                                prop_assert_eq!(t.buckets.to_vec(), before);
                            }
                        }
                    }
                    Op::Get(k) => prop_assert_eq!(t.get(k), reference.get(&k).copied()),
                }
                prop_assert_eq!(t.len(), reference.len());
            }
            check_invariants(&t);
            for (k, v) in &reference {
                prop_assert_eq!(t.get(*k), Some(*v));
            }
            // Every key of the small key space: present ones, absent ones, tag collisions.
            check_batch_matches_get(&t, (0u32..3).flat_map(|vni| {
                (0u32..40).map(move |ip| MappingKey { vni, ip: ip.wrapping_mul(0x0101_0101) })
            }));
            let mut got: Vec<_> = t.iter().collect();
            got.sort_by_key(|(k, _)| k.packed());
            let mut want: Vec<_> = reference.into_iter().collect();
            want.sort_by_key(|(k, _)| k.packed());
            prop_assert_eq!(got, want);
        }
    }
}
