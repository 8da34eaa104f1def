//! The exact-match mapping table: (VNI, IPv4) -> (MAC, local VF or remote host).
//!
//! # Design
//!
//! A hardware-style bucketed cuckoo hash in which a bucket is one 64-byte cache line, with
//! a 16-bit tag per slot in a separate, eight times smaller array (on a NIC, the part that
//! sits in SRAM), so that a hit reads one line of table memory and a miss none beyond the
//! tags (DPDK's `rte_hash` reads three on a hit: two bucket lines and the key store's):
//!
//! - The 64-bit key `vni << 32 | ip` is mixed by a multiply-xorshift round (the first of
//!   murmur3's `fmix64`: the second changed neither the load reached nor the share of
//!   entries in their primary bucket, and cost a batched lookup 2 ns). Its low bits pick
//!   the primary bucket, bits 32.. an XOR distance `d` to the alternate bucket (`b2 = b1 ^ d`, `d != 0`, so the two buckets differ whenever there are
//!   two or more), so an entry's other bucket follows from its key and the bucket it is in.
//! - A bucket holds [`MappingTable::SLOTS_PER_BUCKET`] = 4 slots of two words. The key word
//!   is the key itself (a VNI has 24 bits) with the location kind in its top byte, 0 for an
//!   empty slot; the value word is the MAC (48 bits) and a 16-bit location field: the VF,
//!   the VPC, or for a remote instance the index of its host's address in the underlay
//!   table. Insert tries the primary bucket first (at 95 % load about 71 % of the entries
//!   are there).
//! - [`MappingTags`] holds, per slot, 16 bits of a second hash of the key it holds (0 for
//!   a free slot): 8 bytes a bucket, 2.1 MB for 1M entries, small enough to stay in cache
//!   where the buckets (16.8 MB) cannot. A lookup tests the tag words of both buckets
//!   (four lanes at once) and reads a bucket line only where a lane matches, the primary
//!   first: a hit reads one bucket line (a second only when a tag matched by chance: at
//!   95 % load, about one lookup in 8,000), a miss none.
//! - The underlay table interns the underlay IPv4 addresses of remote instances (hosts are
//!   few: thousands, against a million instances): open addressing by address hash with
//!   linear probing, a reference count per address, and an index that stays put while any
//!   mapping refers to it (a slot whose count drops to 0 is free again). It is small enough
//!   to stay in cache, so reading a remote instance's address costs no further miss.
//! - Insert puts the key in a free slot of either bucket. When both are full it searches a
//!   cuckoo path breadth first (at most [`BFS_QUEUE`] buckets, usually a few dozen bucket
//!   reads, and a path of a handful of moves), without changing anything. Only when a
//!   path ending in a free slot is found does it move entries, from the path's end backwards:
//!   each entry is first copied into its alternate bucket and only then overwritten, so every
//!   entry is findable at every instant (at worst twice, with equal values). When no path is
//!   found the result is [`TableError::Full`], and when a new underlay address finds the
//!   underlay table full [`TableError::UnderlayFull`]; both tables are then exactly as they
//!   were.
//! - [`MappingTable::get_batch`] looks up many keys in three passes (hash and prefetch the
//!   tag lines; pick the bucket the tags point to and prefetch it; answer from it), so
//!   that the cache misses of 32 keys overlap. Nothing in the second pass branches on
//!   which bucket a key is in, which is random. At 1M entries, in one run against DPDK's
//!   `rte_hash_lookup_bulk_data` on the same keys (`cargo run --release -p dpdk-bench
//!   --features dpdk -- --only mapping`): hits 1.9-2.0x, misses 1.3x, where without tags
//!   hits were 1.5-1.9x and misses 0.3-0.7x (they read both bucket lines from memory,
//!   `rte_hash` only its 8 MB signature buckets). Groups of 16 were 1.1-1.2x slower on
//!   hits; prefetching the primary bucket with the tags made misses 10 % slower and hits
//!   no faster.
//! - Writes publish a slot by writing its value word first, its key word next and its tag
//!   last (with a compiler fence between), and retire it by clearing its tag and then the
//!   key word's kind, so a lookup never sees a half-written entry (a tag left over for a
//!   moment only leads to a key word that does not match). The key word goes in two steps,
//!   first without its kind and then with it, so that each store changes only one 32-bit
//!   half that matters: a 32-bit core (the board's RISC-V) writes a 64-bit word as two
//!   stores.
//! - [`MappingTable::replace`] changes a value make-before-break: it interns the new
//!   underlay address, publishes the new value in a free slot of one of the key's two
//!   buckets, then retires the old slot and only then releases the old address, so a
//!   lookup finds the old value or the new one at every instant, never a mix and never
//!   none. Only when both buckets are full is the slot rewritten in place (retired, written,
//!   published again): a lookup racing that on hardware would miss the key for that moment
//!   (never see a mix); the firmware runs commands between pipeline batches, so it never
//!   does here.
//!
//! # Capacity and memory
//!
//! The table uses the largest power-of-two prefix of the bucket slice it is given (a slice
//! of 1,000 buckets uses 512 of them; give a power of two). Capacity is buckets x 4 entries.
//! Measured load at the first `Full` is about 95 to 98 % for random keys (96.7 % at 262,144
//! buckets; the tests assert >= 90 %). A key whose VNI is wider than 24 bits is never stored (`Full`) nor found.
//!
//! A bucket is 64 bytes and its tags 8, so an entry costs **18 bytes** of device memory per
//! slot, about 18.9 bytes per stored entry at 95 % load, plus 8 bytes per underlay slot
//! (the underlay slice, at most 65,536 slots: the location field's reach). The hash is fixed
//! (hardware tables use a fixed CRC as well); keys are chosen by the operator, not by remote
//! parties.
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

/// Slots per bucket: 4 of 16 bytes fill one cache line.
const SLOTS: usize = 4;
/// The key bits of a key word: `vni << 32 | ip` with a 24-bit VNI.
const KEY_MASK: u64 = (1 << 56) - 1;
/// Where the location kind sits in a key word (its top byte; 0 is an empty slot).
const KIND_SHIFT: u32 = 56;
const KIND_LOCAL: u8 = 1;
const KIND_REMOTE: u8 = 2;
const KIND_GATEWAY: u8 = 3;
const KIND_BROADCAST: u8 = 4;
const KIND_VPC: u8 = 5;
/// Buckets the cuckoo path search queues at most (2 roots, 8 at depth 1, 32 at depth 2,
/// 128 at depth 3, 512 at depth 4, the rest at depth 5), 8 bytes each, on the stack of an
/// insert that needs it. 256 reached 94.7 % load at 262,144 buckets, less than the 95.4 %
/// of 1M mappings in 2^20 slots; 1,024 reaches 96.7 %.
pub const BFS_QUEUE: usize = 1024;
/// Underlay slots a table uses at most: a mapping's location field holds 16 bits.
const MAX_UNDERLAYS: usize = 1 << 16;

/// One slot of a bucket: an entry, or nothing when the key word's kind is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Slot {
    /// `kind << 56 | vni << 32 | ip`.
    key: u64,
    /// The MAC in bits 0..48 (its bytes in order from the lowest), the location field in
    /// bits 48..64.
    value: u64,
}

impl Slot {
    const EMPTY: Slot = Slot { key: 0, value: 0 };

    fn kind(self) -> u8 {
        (self.key >> KIND_SHIFT) as u8
    }

    fn is_free(self) -> bool {
        self.kind() == 0
    }

    /// True when the slot holds `key` (a key word without kind; a wider VNI never matches).
    #[inline(always)]
    fn holds(self, key: u64) -> bool {
        self.key & KEY_MASK == key && self.key > KEY_MASK
    }

    fn mapping_key(self) -> MappingKey {
        MappingKey::unpacked(self.key & KEY_MASK)
    }

    #[inline(always)]
    fn mac(self) -> [u8; 6] {
        let mut mac = [0; 6];
        let bytes = self.value.to_le_bytes();
        if let Some(b) = bytes.get(..6) {
            mac.copy_from_slice(b);
        }
        mac
    }

    fn field(self) -> u16 {
        (self.value >> 48) as u16
    }

    fn value_word(mac: [u8; 6], field: u16) -> u64 {
        let [m0, m1, m2, m3, m4, m5] = mac;
        let [f0, f1] = field.to_le_bytes();
        u64::from_le_bytes([m0, m1, m2, m3, m4, m5, f0, f1])
    }

    /// Writes an entry over this slot, free or not: retires what it holds, writes the
    /// value, then the key without its kind (still free), then the key with it.
    fn publish(&mut self, key: u64, value: u64) {
        if !self.is_free() {
            self.retire();
        }
        self.key = key & KEY_MASK;
        compiler_fence(Ordering::Release);
        self.value = value;
        compiler_fence(Ordering::Release);
        self.key = key;
    }

    /// Clears the kind first (the slot reads as free from then on), then the rest.
    fn retire(&mut self) {
        self.key &= KEY_MASK;
        compiler_fence(Ordering::Release);
        *self = Slot::EMPTY;
    }
}

/// One bucket of table storage: 4 slots, one 64-byte cache line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct MappingBucket {
    slots: [Slot; SLOTS],
}

const _: () = assert!(core::mem::size_of::<MappingBucket>() == 64);
const _: () = assert!(core::mem::align_of::<MappingBucket>() == 64);

impl MappingBucket {
    /// An empty bucket, to fill storage with.
    pub const EMPTY: MappingBucket = MappingBucket {
        slots: [Slot::EMPTY; SLOTS],
    };

    fn slot(&self, slot: usize) -> Option<Slot> {
        self.slots.get(slot).copied()
    }

    fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(|s| s.is_free())
    }

    /// One bit per slot holding `key` (a key word without kind, at most 56 bits): all
    /// four compared without a branch per slot, as where a key sits in its bucket is
    /// random. A slot holds it when its key word differs from it in the kind byte only,
    /// and the kind is not 0: rotated left by a byte, the difference is then 1..=255.
    #[inline(always)]
    fn hits(&self, key: u64) -> u32 {
        let mut hits = 0u32;
        for (i, s) in self.slots.iter().enumerate() {
            let diff = (s.key ^ key).rotate_left(8);
            hits |= u32::from(diff.wrapping_sub(1) < 0xff) << i;
        }
        hits
    }

    /// The first slot of `hits` (slot 0 when there is none).
    #[inline(always)]
    fn first(&self, hits: u32) -> Slot {
        let i = (hits.trailing_zeros() as usize) % SLOTS;
        self.slots.get(i).copied().unwrap_or(Slot::EMPTY)
    }

    fn position(&self, key: u64) -> Option<usize> {
        self.slots.iter().position(|s| s.holds(key))
    }
}

/// The tags of [`MappingTags::BUCKETS`] buckets, one 64-byte cache line: per bucket a word
/// of four 16-bit lanes, lane `i` a digest of the key slot `i` holds ([`tag`]), 0 for a
/// free slot. A lookup reads the tags of its key's two buckets first and a bucket line only
/// where a tag matches, so a miss reads no bucket at all (see the module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct MappingTags {
    tags: [u64; MappingTags::BUCKETS],
}

const _: () = assert!(core::mem::size_of::<MappingTags>() == 64);

impl MappingTags {
    /// Buckets whose tags one line holds.
    pub const BUCKETS: usize = 8;

    /// Tags of free slots only, to fill storage with.
    pub const EMPTY: MappingTags = MappingTags {
        tags: [0; MappingTags::BUCKETS],
    };

    /// Lines of tags a table of `buckets` buckets needs.
    pub const fn lines_for(buckets: usize) -> usize {
        buckets.div_ceil(MappingTags::BUCKETS)
    }
}

/// The tag of a key word without kind: 16 bits of a Fibonacci hash, independent of the
/// bits that place the key, never 0 (a free slot's).
#[inline(always)]
fn tag(key: u64) -> u16 {
    let t = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as u16;
    t | u16::from(t == 0)
}

/// The four 16-bit lanes, each holding 1.
const LANE_ONES: u64 = 0x0001_0001_0001_0001;

/// True when a lane of a bucket's tag word is `tag`: a lane of `tags ^ tag x 4` is then
/// zero, which the usual test for a zero lane finds without a branch or loop.
#[inline(always)]
fn tag_matches(tags: u64, tag: u16) -> bool {
    let x = tags ^ u64::from(tag).wrapping_mul(LANE_ONES);
    x.wrapping_sub(LANE_ONES) & !x & (LANE_ONES << 15) != 0
}

/// One interned underlay address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct UnderlaySlot {
    /// The address, host byte order.
    ip: u32,
    /// Mappings whose location is this address; 0: the slot is free.
    refs: u32,
}

impl UnderlaySlot {
    /// A free slot, to fill storage with.
    pub const EMPTY: UnderlaySlot = UnderlaySlot { ip: 0, refs: 0 };
}

/// The underlay table: each address of a remote instance's host once, with a count of the
/// mappings that use it.
struct Underlays<'m> {
    slots: &'m mut [UnderlaySlot],
    /// The longest probe an address in use took, so a search stops after it. Removals
    /// leave free slots inside probe sequences (an index in use must not move), so an
    /// empty slot does not end a search; `reach` does.
    reach: usize,
    /// Addresses in use.
    len: usize,
}

impl<'m> Underlays<'m> {
    fn new(slots: &'m mut [UnderlaySlot]) -> Self {
        let usable = slots.len().min(MAX_UNDERLAYS);
        let mut u = Underlays {
            slots: slots.get_mut(..usable).unwrap_or_default(),
            reach: 0,
            len: 0,
        };
        u.clear();
        u
    }

    fn clear(&mut self) {
        self.slots.fill(UnderlaySlot::EMPTY);
        self.reach = 0;
        self.len = 0;
    }

    /// The first slot of `ip`'s probe sequence: multiply-shift range reduction of a hash,
    /// so any slice length works without a division.
    fn home(&self, ip: u32) -> usize {
        let h = fmix64_round(u64::from(ip)) >> 32;
        (h.wrapping_mul(self.slots.len() as u64) >> 32) as usize
    }

    /// The address at `index` (0 for a free slot, which no entry refers to).
    #[inline(always)]
    fn ip(&self, index: u16) -> u32 {
        self.slots.get(usize::from(index)).map_or(0, |s| s.ip)
    }

    /// The index of `ip`, which now has one more reference: its slot if it is in use,
    /// else the first free slot of its probe sequence. `UnderlayFull` (nothing changed) when
    /// no slot is free.
    fn intern(&mut self, ip: u32) -> Result<u16, TableError> {
        let n = self.slots.len();
        let home = self.home(ip);
        let mut free = None;
        for step in 0..n {
            let i = wrap(home.wrapping_add(step), n);
            let s = self.slots.get_mut(i).ok_or(TableError::UnderlayFull)?;
            if s.refs != 0 && s.ip == ip {
                s.refs = s.refs.checked_add(1).ok_or(TableError::UnderlayFull)?;
                return u16::try_from(i).map_err(|_| TableError::UnderlayFull);
            }
            if s.refs == 0 && free.is_none() {
                free = Some((i, step));
            }
            // No address in use lies further along than `reach`.
            if step >= self.reach && free.is_some() {
                break;
            }
        }
        let (i, step) = free.ok_or(TableError::UnderlayFull)?;
        let index = u16::try_from(i).map_err(|_| TableError::UnderlayFull)?;
        let s = self.slots.get_mut(i).ok_or(TableError::UnderlayFull)?;
        *s = UnderlaySlot { ip, refs: 1 };
        self.reach = self.reach.max(step);
        self.len = self.len.saturating_add(1);
        Ok(index)
    }

    /// Drops one reference to `index`; the last frees the slot.
    fn release(&mut self, index: u16) {
        let Some(s) = self.slots.get_mut(usize::from(index)) else {
            return;
        };
        match s.refs {
            0 => {}
            1 => {
                *s = UnderlaySlot::EMPTY;
                self.len = self.len.saturating_sub(1);
                if self.len == 0 {
                    self.reach = 0;
                }
            }
            r => s.refs = r.saturating_sub(1),
        }
    }
}

/// `i` for `i < n`, else `i - n` (for `i < 2n`).
fn wrap(i: usize, n: usize) -> usize {
    i.checked_sub(n).unwrap_or(i)
}

/// A key's hash-derived placement.
#[derive(Clone, Copy)]
struct Hashed {
    /// `vni << 32 | ip`; wider than [`KEY_MASK`] for a VNI no slot can hold.
    key: u64,
    primary: usize,
    /// XOR distance between the two buckets (non-zero when there are >= 2 buckets).
    dist: usize,
}

impl Hashed {
    fn alternate(&self) -> usize {
        self.primary ^ self.dist
    }
}

/// What a batched lookup keeps of a key between its passes.
#[derive(Clone, Copy)]
struct Probe {
    key: u64,
    tag: u16,
    primary: u32,
    alternate: u32,
}

impl Probe {
    const NONE: Probe = Probe {
        key: 0,
        tag: 0,
        primary: 0,
        alternate: 0,
    };
}

/// The first round of murmur3's `fmix64` finaliser: one multiply, enough that every input
/// bit moves every output bit for a port hash, a direct-mapped index (F14's source port,
/// the flow cache) or the mapping table's two buckets.
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
    /// The tags of `buckets`, [`MappingTags::BUCKETS`] buckets a line.
    tags: &'m mut [MappingTags],
    /// Buckets in use minus one (the count is a power of two); unused when `nbuckets == 0`.
    mask: usize,
    nbuckets: usize,
    len: usize,
    underlays: Underlays<'m>,
}

impl<'m> MappingTable<'m> {
    /// Entries one bucket holds.
    pub const SLOTS_PER_BUCKET: usize = SLOTS;

    /// A table over `buckets`, their `tags` and the underlay table `underlays`, all
    /// emptied. Uses the largest power-of-two prefix of `buckets` that `tags` has lines for
    /// ([`MappingTags::lines_for`]) and at most 65,536 underlay slots.
    pub fn new(
        buckets: &'m mut [MappingBucket],
        tags: &'m mut [MappingTags],
        underlays: &'m mut [UnderlaySlot],
    ) -> Self {
        // Bucket indexes travel as u32 in the path search.
        let tagged = tags.len().saturating_mul(MappingTags::BUCKETS);
        let usable = buckets.len().min(tagged).min(1 << 31);
        let nbuckets = if usable == 0 {
            0
        } else {
            1usize << usable.ilog2()
        };
        let mut t = MappingTable {
            buckets,
            tags,
            mask: nbuckets.saturating_sub(1),
            nbuckets,
            len: 0,
            underlays: Underlays::new(underlays),
        };
        t.clear();
        t
    }

    /// Nominal capacity in entries (buckets in use x 4). Random keys fill about 97 % of it.
    pub fn capacity(&self) -> usize {
        self.nbuckets.saturating_mul(Self::SLOTS_PER_BUCKET)
    }

    /// Buckets in use: the largest power of two not above the slice length (nor above the
    /// buckets the tag lines cover).
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

    /// Distinct underlay addresses the remote entries use, and room for them.
    pub fn underlays(&self) -> (usize, usize) {
        (self.underlays.len, self.underlays.slots.len())
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.buckets.fill(MappingBucket::EMPTY);
        self.tags.fill(MappingTags::EMPTY);
        self.underlays.clear();
        self.len = 0;
    }

    #[inline(always)]
    fn hashed(&self, key: MappingKey) -> Hashed {
        let packed = key.packed();
        let h = fmix64_round(packed);
        let primary = (h as usize) & self.mask;
        let dist = match ((h >> 32) as usize) & self.mask {
            0 => 1 & self.mask,
            d => d,
        };
        Hashed {
            key: packed,
            primary,
            dist,
        }
    }

    /// What a lookup of `key` reads and compares. A key no slot can hold (a VNI wider
    /// than 24 bits) gets buckets out of range and key 0, which no slot matches there.
    #[inline(always)]
    fn probe(&self, key: MappingKey) -> Probe {
        let h = self.hashed(key);
        if h.key > KEY_MASK || self.nbuckets == 0 {
            return Probe {
                key: 0,
                tag: 0,
                primary: u32::MAX,
                alternate: u32::MAX,
            };
        }
        Probe {
            key: h.key,
            tag: tag(h.key),
            primary: h.primary as u32,
            alternate: h.alternate() as u32,
        }
    }

    #[inline(always)]
    fn bucket(&self, i: usize) -> Option<&MappingBucket> {
        if self.nbuckets == 0 {
            return None;
        }
        self.buckets.get(i)
    }

    fn slot_mut(&mut self, bucket: usize, slot: usize) -> Option<&mut Slot> {
        self.buckets.get_mut(bucket)?.slots.get_mut(slot)
    }

    /// Sets the tag of slot `slot` of bucket `bucket` (0: free).
    fn set_tag(&mut self, bucket: usize, slot: usize, tag: u16) {
        let Some(word) = self
            .tags
            .get_mut(bucket / MappingTags::BUCKETS)
            .and_then(|l| l.tags.get_mut(bucket % MappingTags::BUCKETS))
        else {
            return;
        };
        let shift = (slot % SLOTS).wrapping_mul(16);
        *word = (*word & !(0xffff << shift)) | (u64::from(tag) << shift);
    }

    /// Writes `new` over slot `slot` of bucket `bucket`, then its tag: lookups find it
    /// from the tag's write on, and the slot's old entry, if any, is gone from its first
    /// write on (its tag then leads to a key that no longer matches).
    fn publish(&mut self, bucket: usize, slot: usize, new: Slot) {
        if let Some(s) = self.slot_mut(bucket, slot) {
            s.publish(new.key, new.value);
        }
        compiler_fence(Ordering::Release);
        self.set_tag(bucket, slot, tag(new.key & KEY_MASK));
    }

    /// Frees slot `slot` of bucket `bucket`: its tag first, so lookups stop reading it.
    fn retire(&mut self, bucket: usize, slot: usize) {
        self.set_tag(bucket, slot, 0);
        compiler_fence(Ordering::Release);
        if let Some(s) = self.slot_mut(bucket, slot) {
            s.retire();
        }
    }

    /// The tag word of bucket `i` (all free for an index out of range).
    #[inline(always)]
    fn tags_of(&self, i: u32) -> u64 {
        let i = i as usize;
        self.tags
            .get(i / MappingTags::BUCKETS)
            .and_then(|l| l.tags.get(i % MappingTags::BUCKETS))
            .copied()
            .unwrap_or(0)
    }

    /// Prefetches the tag line of bucket `i` (see [`Self::prefetch_bucket`]).
    #[inline(always)]
    fn prefetch_tags(&self, i: u32) {
        prefetch(
            self.tags
                .as_ptr()
                .wrapping_add(i as usize / MappingTags::BUCKETS)
                .cast::<u8>(),
        );
    }

    /// The entry a slot holds, its underlay address looked up.
    fn entry(&self, s: Slot) -> Option<(MappingKey, Mapping)> {
        Some((s.mapping_key(), self.value(s)?))
    }

    #[inline(always)]
    fn value(&self, s: Slot) -> Option<Mapping> {
        let field = s.field();
        let location = match s.kind() {
            KIND_LOCAL => Location::LocalVf(field),
            KIND_REMOTE => Location::Remote {
                underlay_ip: self.underlays.ip(field),
            },
            KIND_GATEWAY => Location::Gateway,
            KIND_BROADCAST => Location::Broadcast,
            KIND_VPC => Location::Vpc(field),
            _ => return None,
        };
        Some(Mapping {
            mac: s.mac(),
            location,
        })
    }

    /// The key word (kind included) and value word of a new entry, interning its underlay
    /// address; `UnderlayFull` (nothing changed) when the underlay table has no room for it.
    fn encode(&mut self, key: u64, value: Mapping) -> Result<Slot, TableError> {
        let (kind, field) = match value.location {
            Location::LocalVf(vf) => (KIND_LOCAL, vf),
            Location::Remote { underlay_ip } => (KIND_REMOTE, self.underlays.intern(underlay_ip)?),
            Location::Gateway => (KIND_GATEWAY, 0),
            Location::Broadcast => (KIND_BROADCAST, 0),
            Location::Vpc(id) => (KIND_VPC, id),
        };
        Ok(Slot {
            key: (u64::from(kind) << KIND_SHIFT) | (key & KEY_MASK),
            value: Slot::value_word(value.mac, field),
        })
    }

    /// Drops the underlay reference of an entry that is gone.
    fn release(&mut self, s: Slot) {
        if s.kind() == KIND_REMOTE {
            self.underlays.release(s.field());
        }
    }

    /// (bucket, slot) of `key`.
    fn locate(&self, h: &Hashed) -> Option<(usize, usize)> {
        let b1 = h.primary;
        if let Some(s) = self.bucket(b1).and_then(|b| b.position(h.key)) {
            return Some((b1, s));
        }
        let b2 = h.alternate();
        if b2 != b1 {
            if let Some(s) = self.bucket(b2).and_then(|b| b.position(h.key)) {
                return Some((b2, s));
            }
        }
        None
    }

    /// Adds a mapping; `Exists` if the key is there, `Full` if there is no room for the
    /// entry, `UnderlayFull` if there is none for a new underlay address. A refused insert
    /// changes nothing.
    pub fn insert(&mut self, key: MappingKey, value: Mapping) -> Result<(), TableError> {
        if self.nbuckets == 0 {
            return Err(TableError::Full);
        }
        let h = self.hashed(key);
        if self.locate(&h).is_some() {
            return Err(TableError::Exists);
        }
        if h.key > KEY_MASK {
            return Err(TableError::Full);
        }
        // The underlay address is interned only once the entry is sure of a slot, so that
        // a refusal changes nothing.
        let free = [h.primary, h.alternate()]
            .into_iter()
            .find_map(|b| Some((b, self.bucket(b)?.free_slot()?)));
        if let Some((bucket, slot)) = free {
            let new = self.encode(h.key, value)?;
            self.publish(bucket, slot, new);
        } else {
            let mut queue = [NODE_ZERO; BFS_QUEUE];
            let (end, free) = self.cuckoo_path(&h, &mut queue).ok_or(TableError::Full)?;
            let new = self.encode(h.key, value)?;
            self.move_along(&queue, end, free, new);
        }
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    /// A cuckoo path for `h`, whose two buckets are full, found breadth first (in
    /// `queue`): the node whose bucket has a free slot, and that slot. Changes nothing.
    fn cuckoo_path(&self, h: &Hashed, queue: &mut [Node; BFS_QUEUE]) -> Option<(usize, usize)> {
        let b1 = h.primary;
        let b2 = h.alternate();
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
        // The roots are full (the caller looked). Each node's children are checked for a free
        // slot as they are queued, a level before their turn to be expanded: the children
        // of one node are read together, so their cache misses overlap.
        let mut head = 0usize;
        while head < tail {
            let node = *queue.get(head)?;
            let bucket = self.bucket(node.bucket as usize)?;
            let first_child = tail;
            for (slot, s) in bucket.slots.iter().enumerate() {
                if tail >= BFS_QUEUE {
                    break;
                }
                let alt = node.bucket as usize ^ self.hashed(s.mapping_key()).dist;
                if on_path(queue, head, alt) {
                    continue;
                }
                self.prefetch_bucket(alt as u32);
                if let Some(n) = queue.get_mut(tail) {
                    *n = Node {
                        bucket: alt as u32,
                        parent: head as u16,
                        slot: slot as u8,
                    };
                    tail = tail.saturating_add(1);
                }
            }
            for child in first_child..tail {
                let b = queue.get(child)?.bucket as usize;
                if let Some(free) = self.bucket(b)?.free_slot() {
                    return Some((child, free));
                }
            }
            head = head.saturating_add(1);
        }
        None
    }

    /// Moves entries along the path ending at `queue[end]` (whose bucket has slot `free`
    /// empty), from the end backwards, then writes the new entry at the path's root.
    fn move_along(&mut self, queue: &[Node], end: usize, free: usize, new: Slot) {
        let mut cur = end;
        let mut dst_slot = free;
        while let Some(node) = queue.get(cur) {
            let dst = node.bucket as usize;
            if node.parent == NO_PARENT {
                self.publish(dst, dst_slot, new);
                return;
            }
            let Some(parent) = queue.get(usize::from(node.parent)) else {
                return;
            };
            let src_slot = usize::from(node.slot);
            let Some(moved) = self
                .bucket(parent.bucket as usize)
                .and_then(|b| b.slot(src_slot))
            else {
                return;
            };
            // Copy first: the entry is in both buckets until its old slot is overwritten.
            self.publish(dst, dst_slot, moved);
            #[cfg(test)]
            tests::observe(self);
            dst_slot = src_slot;
            cur = usize::from(node.parent);
        }
    }

    /// Sets the value of the existing `key` and returns the old one; `NotFound` (and nothing
    /// changed) when the key is absent, `UnderlayFull` (nothing changed) when a new underlay
    /// address finds no room. See the module documentation for what a lookup meanwhile sees.
    pub fn replace(&mut self, key: MappingKey, value: Mapping) -> Result<Mapping, TableError> {
        let h = self.hashed(key);
        let (b, s) = self.locate(&h).ok_or(TableError::NotFound)?;
        let old_slot = self
            .bucket(b)
            .and_then(|bucket| bucket.slot(s))
            .ok_or(TableError::NotFound)?;
        let old = self.value(old_slot).ok_or(TableError::NotFound)?;
        // The new address is held before the old is let go: an index both use stays put.
        let new = self.encode(h.key, value)?;
        let b1 = h.primary;
        let b2 = h.alternate();
        // A free slot in the primary bucket first: lookups look there first.
        let free = [b1, b2]
            .into_iter()
            .find_map(|x| Some((x, self.bucket(x)?.free_slot()?)));
        match free {
            Some((fb, fs)) => {
                self.publish(fb, fs, new);
                #[cfg(test)]
                tests::observe(self);
                // Both copies are complete; the old one goes.
                compiler_fence(Ordering::Release);
                self.retire(b, s);
            }
            None => {
                self.retire(b, s);
                compiler_fence(Ordering::Release);
                self.publish(b, s, new);
            }
        }
        #[cfg(test)]
        tests::observe(self);
        self.release(old_slot);
        Ok(old)
    }

    /// Removes a mapping and returns it.
    pub fn remove(&mut self, key: MappingKey) -> Result<Mapping, TableError> {
        let h = self.hashed(key);
        let (b, s) = self.locate(&h).ok_or(TableError::NotFound)?;
        let old_slot = self
            .bucket(b)
            .and_then(|bucket| bucket.slot(s))
            .ok_or(TableError::NotFound)?;
        let old = self.value(old_slot).ok_or(TableError::NotFound)?;
        self.retire(b, s);
        self.release(old_slot);
        self.len = self.len.saturating_sub(1);
        Ok(old)
    }

    /// The mapping for `key`. Reads the tags of its two buckets, then each bucket with a
    /// matching tag, the primary first.
    pub fn get(&self, key: MappingKey) -> Option<Mapping> {
        let p = self.probe(key);
        if let Some(m) = self.find_tagged(p.primary, &p) {
            return Some(m);
        }
        self.find_tagged(p.alternate, &p)
    }

    /// [`MappingTable::get`] for each key of `keys`, into `out` (the shorter of the two
    /// bounds the work). The same answers, faster on a table larger than the cache: the
    /// keys go in groups of 32 through three passes: hash each key and prefetch the tag
    /// lines of its two buckets; pick the bucket whose tags match (none for a miss, which
    /// ends there) and prefetch it; answer from it. Within a pass the reads of different
    /// keys do not depend on each other, so their cache misses overlap.
    pub fn get_batch(&self, keys: &[MappingKey], out: &mut [Option<Mapping>]) {
        // 32 keys: 1.1-1.2x 16's speed on hits, the same on misses (at most 64: one bit
        // each in `tagged`).
        const G: usize = 32;
        let n = keys.len().min(out.len());
        let (Some(keys), Some(out)) = (keys.get(..n), out.get_mut(..n)) else {
            return;
        };
        let mut probes = [Probe::NONE; G];
        // The bucket a key's tags point to first.
        let mut picked = [0u32; G];
        for (keys, out) in keys.chunks(G).zip(out.chunks_mut(G)) {
            for (k, p) in keys.iter().zip(probes.iter_mut()) {
                *p = self.probe(*k);
                self.prefetch_tags(p.primary);
                self.prefetch_tags(p.alternate);
            }
            // Keys with a matching tag in either bucket, one bit each.
            let mut tagged = 0u64;
            for (i, ((p, b), o)) in probes
                .iter()
                .zip(picked.iter_mut())
                .zip(out.iter_mut())
                .enumerate()
            {
                let in_primary = tag_matches(self.tags_of(p.primary), p.tag);
                let in_alternate = tag_matches(self.tags_of(p.alternate), p.tag);
                // The primary if its tags match, else the alternate: chosen by a mask, as
                // a compiler may make a branch of an `if` (where a key is is random).
                let pick = u32::from(in_primary).wrapping_neg();
                *b = p.alternate ^ ((p.alternate ^ p.primary) & pick);
                let hit = in_primary || in_alternate;
                tagged |= u64::from(hit) << i;
                if hit {
                    self.prefetch_bucket(*b);
                }
                *o = None;
            }
            while tagged != 0 {
                let i = tagged.trailing_zeros() as usize;
                tagged &= tagged.wrapping_sub(1);
                if let (Some(p), Some(b), Some(o)) = (probes.get(i), picked.get(i), out.get_mut(i))
                {
                    // A tag that matched by chance (1 in 2^16 a slot) sends a key to the
                    // wrong bucket; the other one is then read too. (Written out rather
                    // than through `find_tagged`, which costs 3 instructions a packet.)
                    *o = self.find(*b, p.key).or_else(|| {
                        let other = *b ^ p.primary ^ p.alternate;
                        (other != *b && tag_matches(self.tags_of(other), p.tag))
                            .then(|| self.find(other, p.key))
                            .flatten()
                    });
                }
            }
        }
    }

    /// [`Self::find`], reading bucket `bucket` only when its tags say the key may be there.
    #[inline(always)]
    fn find_tagged(&self, bucket: u32, p: &Probe) -> Option<Mapping> {
        if tag_matches(self.tags_of(bucket), p.tag) {
            self.find(bucket, p.key)
        } else {
            None
        }
    }

    /// The mapping of a probed key in bucket `bucket`, if it is there.
    #[inline(always)]
    fn find(&self, bucket: u32, key: u64) -> Option<Mapping> {
        let b = self.bucket_or_empty(bucket);
        let hits = b.hits(key);
        if hits == 0 {
            return None;
        }
        self.value(b.first(hits))
    }

    /// Bucket `i`, or an empty one for an index out of range (an empty table's, or the
    /// [`Probe`] of a key no slot can hold).
    #[inline(always)]
    fn bucket_or_empty(&self, i: u32) -> &MappingBucket {
        self.bucket(i as usize).unwrap_or(&MappingBucket::EMPTY)
    }

    /// Prefetches bucket `i`. No bounds check: a prefetch of any address is harmless,
    /// and a branch here would cost more than the rare useless prefetch.
    #[inline(always)]
    fn prefetch_bucket(&self, i: u32) {
        prefetch(self.buckets.as_ptr().wrapping_add(i as usize).cast::<u8>());
    }

    /// Starts bringing the tags of the buckets `key` lives in into the cache, for a lookup
    /// soon after (the staged pipeline batch). Changes nothing. Not the buckets: the lookup
    /// reads the one its tags point to, and prefetches it itself (prefetching both here too
    /// cost 9 instructions a packet and 2-5 % of the uncached pipeline's time).
    #[inline(always)]
    pub fn prefetch(&self, key: MappingKey) {
        let p = self.probe(key);
        self.prefetch_tags(p.primary);
        self.prefetch_tags(p.alternate);
    }

    /// Every entry, in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (MappingKey, Mapping)> + '_ {
        self.buckets
            .get(..self.nbuckets)
            .unwrap_or_default()
            .iter()
            .flat_map(|b| b.slots.iter().filter_map(|s| self.entry(*s)))
    }

    /// Storage positions: entries are found at `0 .. positions()` by [`Self::at`].
    pub fn positions(&self) -> usize {
        self.nbuckets.saturating_mul(SLOTS)
    }

    /// The entry at storage position `pos`, if that slot holds one (for table dumps).
    pub fn at(&self, pos: usize) -> Option<(MappingKey, Mapping)> {
        let s = self.bucket(pos / SLOTS)?.slot(pos % SLOTS)?;
        self.entry(s)
    }

    /// The two candidate buckets of `key` (equal only when the table has one bucket).
    pub fn candidate_buckets(&self, key: MappingKey) -> (usize, usize) {
        let h = self.hashed(key);
        (h.primary, h.alternate())
    }
}

/// An unused queue entry (all zero, so a queue is quick to make).
const NODE_ZERO: Node = Node {
    bucket: 0,
    parent: 0,
    slot: 0,
};

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

    /// What lookups of the watched keys answered at one instant.
    type Snapshot = Vec<Option<Mapping>>;

    std::thread_local! {
        /// When set, the keys whose lookups are recorded at every intermediate state of a
        /// cuckoo move or a replace, and the records.
        static WATCH: RefCell<Option<(Vec<MappingKey>, Vec<Snapshot>)>> =
            const { RefCell::new(None) };
    }

    /// Called between the single writes of a cuckoo insert or a replace.
    pub(super) fn observe(t: &MappingTable<'_>) {
        WATCH.with(|w| {
            if let Some((keys, states)) = w.borrow_mut().as_mut() {
                states.push(keys.iter().map(|k| t.get(*k)).collect());
            }
        });
    }

    /// Runs `f` with lookups of `keys` recorded at every intermediate state.
    fn watching<R>(keys: Vec<MappingKey>, f: impl FnOnce() -> R) -> (R, Vec<Snapshot>) {
        WATCH.with(|w| *w.borrow_mut() = Some((keys, Vec::new())));
        let r = f();
        let states = WATCH.with(|w| w.borrow_mut().take()).unwrap().1;
        (r, states)
    }

    /// murmur3 `fmix64`, for random test keys.
    fn fmix64(x: u64) -> u64 {
        let mut x = fmix64_round(x);
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        x
    }

    /// Underlay hosts the test values spread over: few, so that entries share them.
    const HOSTS: u32 = 10;

    fn host(n: u32) -> u32 {
        0xC000_0200 | (n % HOSTS)
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
                    underlay_ip: host(n),
                }
            },
        }
    }

    fn remote(mac: u8, underlay_ip: u32) -> Mapping {
        Mapping {
            mac: [2, 0, 0, 0, 0, mac],
            location: Location::Remote { underlay_ip },
        }
    }

    /// Storage for a table of `nbuckets` buckets (and their tags) and `nunderlays`
    /// underlay slots.
    fn storage(
        nbuckets: usize,
        nunderlays: usize,
    ) -> (Vec<MappingBucket>, Vec<MappingTags>, Vec<UnderlaySlot>) {
        (
            vec![MappingBucket::EMPTY; nbuckets],
            vec![MappingTags::EMPTY; MappingTags::lines_for(nbuckets)],
            vec![UnderlaySlot::EMPTY; nunderlays],
        )
    }

    /// Both tables' storage, for "nothing changed" checks.
    fn bytes(t: &MappingTable<'_>) -> (Vec<MappingBucket>, Vec<MappingTags>, Vec<UnderlaySlot>) {
        (
            t.buckets.to_vec(),
            t.tags.to_vec(),
            t.underlays.slots.to_vec(),
        )
    }

    /// Every entry sits in one of its two buckets, no key is stored twice, len matches;
    /// every underlay slot in use is referenced by exactly its count of remote entries,
    /// holds an address no other slot holds, and is found by a search.
    fn check_invariants(t: &MappingTable<'_>) {
        let mut seen = HashSet::new();
        let mut refs: HashMap<u16, u32> = HashMap::new();
        for (bi, b) in t.buckets[..t.nbuckets].iter().enumerate() {
            for (si, s) in b.slots.into_iter().enumerate() {
                let stored_tag = (t.tags_of(bi as u32) >> (16 * si)) as u16;
                if s.is_free() {
                    assert_eq!(s, Slot::EMPTY);
                    assert_eq!(stored_tag, 0, "free slot {si} of bucket {bi} tagged");
                    continue;
                }
                assert_eq!(
                    stored_tag,
                    tag(s.key & KEY_MASK),
                    "slot {si} of bucket {bi}"
                );
                let k = s.mapping_key();
                let (c1, c2) = t.candidate_buckets(k);
                assert!(bi == c1 || bi == c2, "{k:?} in bucket {bi}, not {c1}/{c2}");
                assert!(seen.insert(k), "{k:?} stored twice");
                assert!(t.value(s).is_some(), "{k:?}: kind {}", s.kind());
                if s.kind() == KIND_REMOTE {
                    *refs.entry(s.field()).or_default() += 1;
                }
            }
        }
        assert_eq!(seen.len(), t.len());
        for b in &t.buckets[t.nbuckets..] {
            assert_eq!(*b, MappingBucket::EMPTY);
        }
        for l in &t.tags[MappingTags::lines_for(t.nbuckets)..] {
            assert_eq!(*l, MappingTags::EMPTY);
        }
        let u = &t.underlays;
        let mut ips = HashSet::new();
        for (i, s) in u.slots.iter().enumerate() {
            assert_eq!(
                s.refs,
                refs.get(&(i as u16)).copied().unwrap_or(0),
                "slot {i}"
            );
            if s.refs == 0 {
                assert_eq!(*s, UnderlaySlot::EMPTY);
                continue;
            }
            assert!(ips.insert(s.ip), "{:#x} interned twice", s.ip);
            let n = u.slots.len();
            let step = (i + n - u.home(s.ip)) % n;
            assert!(step <= u.reach, "slot {i} beyond reach {}", u.reach);
        }
        assert_eq!(ips.len(), u.len);
    }

    /// `get_batch` answers as `get` does, key by key, whatever the group boundaries.
    fn check_batch_matches_get(t: &MappingTable<'_>, keys: impl Iterator<Item = MappingKey>) {
        let keys: Vec<MappingKey> = keys.collect();
        let mut out = vec![Some(val(12345)); keys.len()];
        t.get_batch(&keys, &mut out);
        for (k, got) in keys.iter().zip(&out) {
            assert_eq!(*got, t.get(*k), "{k:?}");
        }
        // A shorter output bounds the work; so do shorter keys, the rest left as it was.
        let mut short = vec![None; keys.len() / 2];
        t.get_batch(&keys, &mut short);
        for (k, got) in keys.iter().zip(&short) {
            assert_eq!(*got, t.get(*k), "{k:?}");
        }
        let mut long = vec![Some(val(777)); keys.len() + 21];
        t.get_batch(&keys, &mut long);
        for (k, got) in keys.iter().zip(&long) {
            assert_eq!(*got, t.get(*k), "{k:?}");
        }
        assert!(long[keys.len()..].iter().all(|o| *o == Some(val(777))));
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
            let (mut b, mut g, mut u) = storage(nbuckets, 64);
            let mut t = MappingTable::new(&mut b, &mut g, &mut u);
            let keys: Vec<MappingKey> = random_keys(7).take(SLOTS * nbuckets).collect();
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
            let before = bytes(&t);
            assert_eq!(t.replace(absent, val(1)), Err(TableError::NotFound));
            assert_eq!(bytes(&t), before);
        }
    }

    /// With a free slot in either bucket, a lookup of the key answers the old value or the
    /// new one at every step of a replace, and the other entries never change.
    #[test]
    fn replace_is_make_before_break() {
        let (mut b, mut g, mut u) = storage(16, 16);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let keys: Vec<MappingKey> = random_keys(3).take(40).collect();
        for (i, k) in keys.iter().enumerate() {
            t.insert(*k, val(i as u32)).unwrap();
        }
        let mut in_place = 0;
        for (i, k) in keys.iter().enumerate() {
            let (c1, c2) = t.candidate_buckets(*k);
            let room = t.buckets[c1].free_slot().is_some() || t.buckets[c2].free_slot().is_some();
            let old = val(i as u32);
            let new = remote(i as u8, 0x0a00_0000 | (i as u32 % 3));
            let (r, states) = watching(keys.clone(), || t.replace(*k, new));
            assert_eq!(r, Ok(old));
            assert!(!states.is_empty());
            for state in &states {
                for (j, (other, got)) in keys.iter().zip(state).enumerate() {
                    if other == k {
                        if room {
                            assert!(*got == Some(old) || *got == Some(new), "{got:?}");
                        }
                    } else if j < i {
                        assert_eq!(*got, Some(remote(j as u8, 0x0a00_0000 | (j as u32 % 3))));
                    } else {
                        assert_eq!(*got, Some(val(j as u32)));
                    }
                }
            }
            in_place += usize::from(!room);
            assert_eq!(t.get(*k), Some(new));
            check_invariants(&t);
        }
        assert!(in_place < keys.len(), "no replace had a free slot");
    }

    #[test]
    fn bucket_is_one_line_16_bytes_per_entry() {
        assert_eq!(core::mem::size_of::<MappingBucket>(), 64);
        assert_eq!(core::mem::align_of::<MappingBucket>(), 64);
        assert_eq!(
            core::mem::size_of::<MappingBucket>() / MappingTable::SLOTS_PER_BUCKET,
            16
        );
        // And 2 bytes of tag a slot.
        assert_eq!(
            core::mem::size_of::<MappingTags>()
                / (MappingTags::BUCKETS * MappingTable::SLOTS_PER_BUCKET),
            2
        );
        assert_eq!(core::mem::size_of::<UnderlaySlot>(), 8);
    }

    #[test]
    fn power_of_two_prefix_of_storage() {
        let (mut b, mut g, mut u) = storage(100, 0);
        let t = MappingTable::new(&mut b, &mut g, &mut u);
        assert_eq!(t.buckets(), 64);
        assert_eq!(t.capacity(), 256);
        let (mut b, mut g, mut u) = storage(1, 0);
        let t = MappingTable::new(&mut b, &mut g, &mut u);
        assert_eq!(t.capacity(), 4);
        let mut b = vec![MappingBucket::EMPTY; 1];
        let mut u = vec![UnderlaySlot::EMPTY; MAX_UNDERLAYS + 5];
        let t = MappingTable::new(&mut b, &mut g, &mut u);
        assert_eq!(t.underlays(), (0, MAX_UNDERLAYS));
        // Buckets without tags are not used: two lines of tags cover 16 of 64 buckets.
        let (mut b, _, mut u) = storage(64, 0);
        let mut g = vec![MappingTags::EMPTY; 2];
        let t = MappingTable::new(&mut b, &mut g, &mut u);
        assert_eq!(t.buckets(), 16);
        let mut none: [MappingTags; 0] = [];
        let t = MappingTable::new(&mut b, &mut none, &mut u);
        assert_eq!(t.capacity(), 0);
    }

    #[test]
    fn empty_storage_is_always_full() {
        let (mut b, mut g, mut u) = storage(0, 4);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let k = MappingKey { vni: 1, ip: 2 };
        assert_eq!(t.insert(k, val(1)), Err(TableError::Full));
        assert_eq!(t.get(k), None);
        let mut out = [Some(val(1))];
        t.get_batch(&[k], &mut out);
        assert_eq!(out, [None]);
        assert_eq!(t.remove(k), Err(TableError::NotFound));
        assert_eq!(t.iter().count(), 0);
        assert_eq!(t.underlays(), (0, 4));
    }

    #[test]
    fn a_tag_word_matches_exactly_when_a_lane_holds_the_tag() {
        let lanes = |w: u64| (0..4).map(move |i| (w >> (16 * i)) as u16);
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            x = fmix64(x.wrapping_add(1));
            // Lanes near the tag (borrows), equal to it, zero, or random.
            let t = (x >> 48) as u16 | 1;
            let mut w = 0u64;
            for i in 0..4 {
                let lane = match (x >> (8 * i)) & 3 {
                    0 => t,
                    1 => t.wrapping_add(1),
                    2 => 0,
                    _ => (x >> (16 * i)) as u16,
                };
                w |= u64::from(lane) << (16 * i);
            }
            assert_eq!(tag_matches(w, t), lanes(w).any(|l| l == t), "{w:#x} {t:#x}");
        }
    }

    #[test]
    fn a_tag_matching_by_chance_does_not_hide_a_key_in_its_other_bucket() {
        // Two buckets: every key's pair is {0, 1}. `k` is pushed to its alternate bucket
        // by a full primary that holds `twin`, a different key with the same tag, so the
        // tags point a lookup of `k` to the wrong bucket first.
        let (mut b, mut g, mut u) = storage(2, 8);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let mut keys = random_keys(11);
        let k = keys.next().unwrap();
        let primary = t.hashed(k).primary;
        let same_primary = |t: &MappingTable<'_>, x: &MappingKey| t.hashed(*x).primary == primary;
        let twin = keys
            .by_ref()
            .find(|x| same_primary(&t, x) && tag(x.packed()) == tag(k.packed()))
            .unwrap();
        t.insert(twin, val(0)).unwrap();
        let fill: Vec<_> = keys.filter(|x| same_primary(&t, x)).take(3).collect();
        for (i, x) in fill.iter().enumerate() {
            t.insert(*x, val(i as u32 + 1)).unwrap();
        }
        t.insert(k, val(9)).unwrap();
        let (bucket, _) = t.locate(&t.hashed(k)).unwrap();
        assert_ne!(bucket, primary, "k must sit in its alternate bucket");
        assert_eq!(t.get(k), Some(val(9)));
        assert_eq!(t.get(twin), Some(val(0)));
        check_batch_matches_get(&t, [k, twin].into_iter());
        let mut out = [None; 2];
        t.get_batch(&[k, twin], &mut out);
        assert_eq!(out, [Some(val(9)), Some(val(0))]);
        check_invariants(&t);
    }

    #[test]
    fn single_bucket_holds_four() {
        let (mut b, mut g, mut u) = storage(1, 8);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let keys: Vec<_> = random_keys(5).take(5).collect();
        for (i, k) in keys[..4].iter().enumerate() {
            t.insert(*k, val(i as u32)).unwrap();
        }
        assert_eq!(t.insert(keys[4], val(4)), Err(TableError::Full));
        for (i, k) in keys[..4].iter().enumerate() {
            assert_eq!(t.get(*k), Some(val(i as u32)));
        }
        check_invariants(&t);
    }

    /// Fills random tables until `Full`; the failed insert changes nothing, every key is
    /// still found, and the load factor is at least 90 %.
    #[test]
    fn fill_to_full() {
        for (nbuckets, seed) in [(4usize, 1u64), (32, 2), (512, 3), (2048, 4), (8192, 5)] {
            let (mut b, mut g, mut u) = storage(nbuckets, 16);
            let mut t = MappingTable::new(&mut b, &mut g, &mut u);
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
            let before = bytes(&t);
            let len = t.len();
            // Retry the refused key, then others: a refused one changes nothing.
            assert_eq!(t.insert(full_key, val(1)), Err(TableError::Full));
            assert_eq!(bytes(&t), before);
            for k in keys.by_ref().take(50) {
                let before = bytes(&t);
                match t.insert(k, val(1)) {
                    Err(TableError::Full) | Err(TableError::Exists) => {
                        assert_eq!(bytes(&t), before)
                    }
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
            let primary = inserted
                .iter()
                .filter(|(k, _)| {
                    t.buckets[t.hashed(*k).primary]
                        .position(k.packed())
                        .is_some()
                })
                .count();
            eprintln!(
                "{nbuckets} buckets: load at full {load:.3}, {:.3} in their primary bucket",
                primary as f64 / len as f64
            );
            if nbuckets >= 32 {
                assert!(load >= 0.90, "{nbuckets} buckets: load {load}");
            }
        }
    }

    /// Between the single moves of a cuckoo insert, every entry stays findable with its
    /// value: a lookup never misses an entry mid-insert.
    #[test]
    fn no_entry_missing_mid_insert() {
        let (mut b, mut g, mut u) = storage(128, 16);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let mut inserted: Vec<(MappingKey, Mapping)> = Vec::new();
        let mut longest = 0;
        for (i, k) in random_keys(11).enumerate() {
            let watched = inserted.iter().map(|(k, _)| *k).collect();
            let (r, states) = watching(watched, || t.insert(k, val(i as u32)));
            longest = longest.max(states.len());
            for state in &states {
                for ((k, v), got) in inserted.iter().zip(state) {
                    assert_eq!(*got, Some(*v), "{k:?} missing mid-insert");
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
        check_invariants(&t);
    }

    #[test]
    fn remove_then_reinsert() {
        let (mut b, mut g, mut u) = storage(128, 16);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
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
        assert_eq!(t.underlays(), (0, 16));
    }

    #[test]
    fn location_round_trips() {
        let (mut b, mut g, mut u) = storage(4, 4);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let a = MappingKey {
            vni: 0xff_ffff,
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
        let d = MappingKey { vni: 7, ip: 0 };
        let vd = Mapping {
            mac: [2, 0, 0, 0, 0, 2],
            location: Location::Vpc(u16::MAX),
        };
        let e = MappingKey {
            vni: 7,
            ip: 0x0a00_00ff,
        };
        let ve = Mapping {
            mac: [0xff, 0, 0, 0, 0, 0xfe],
            location: Location::Broadcast,
        };
        for (k, v) in [(a, va), (b, vb), (c, vc), (d, vd), (e, ve)] {
            t.insert(k, v).unwrap();
            assert_eq!(t.get(k), Some(v));
        }
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
        assert_eq!(all, vec![(b, vb), (d, vd), (e, ve), (a, va)]);
        check_invariants(&t);
    }

    /// A VNI wider than 24 bits has no room in a key word: never stored, never found, even
    /// where its low 56 bits are a stored key's.
    #[test]
    fn wide_vni_is_refused_and_never_found() {
        let (mut b, mut g, mut u) = storage(4, 4);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let narrow = MappingKey { vni: 5, ip: 9 };
        t.insert(narrow, val(3)).unwrap();
        let before = bytes(&t);
        for vni in [1 << 24, (2 << 24) | 5, u32::MAX] {
            let wide = MappingKey { vni, ip: 9 };
            assert_eq!(t.insert(wide, val(3)), Err(TableError::Full));
            assert_eq!(t.get(wide), None);
            let mut out = [Some(val(1))];
            t.get_batch(&[wide], &mut out);
            assert_eq!(out, [None]);
            assert_eq!(t.replace(wide, val(4)), Err(TableError::NotFound));
            assert_eq!(t.remove(wide), Err(TableError::NotFound));
        }
        assert_eq!(bytes(&t), before);
    }

    /// Entries of one host share an underlay slot; its count follows them; the last one
    /// out frees the slot for another host; a full underlay table refuses a new host and
    /// changes nothing, while known hosts still come in.
    #[test]
    fn underlays_are_interned_counted_and_reused() {
        let (mut b, mut g, mut u) = storage(16, 4);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let mut keys = random_keys(17);
        let a: Vec<MappingKey> = keys.by_ref().take(3).collect();
        for (i, k) in a.iter().enumerate() {
            t.insert(*k, remote(i as u8, 0xA)).unwrap();
        }
        assert_eq!(t.underlays(), (1, 4));
        let slot_a = t.underlays.slots.iter().position(|s| s.ip == 0xA).unwrap();
        assert_eq!(t.underlays.slots[slot_a].refs, 3);
        let others: Vec<MappingKey> = keys.by_ref().take(3).collect();
        for (k, ip) in others.iter().zip([0xB, 0xC, 0xD]) {
            t.insert(*k, remote(9, ip)).unwrap();
        }
        assert_eq!(t.underlays(), (4, 4));
        check_invariants(&t);

        let e = keys.next().unwrap();
        let before = bytes(&t);
        assert_eq!(t.insert(e, remote(1, 0xE)), Err(TableError::UnderlayFull));
        assert_eq!(bytes(&t), before);
        assert_eq!(
            t.replace(a[0], remote(1, 0xE)),
            Err(TableError::UnderlayFull)
        );
        assert_eq!(bytes(&t), before);
        assert_eq!(t.get(a[0]), Some(remote(0, 0xA)));
        // A known host needs no new slot.
        t.insert(e, remote(1, 0xB)).unwrap();
        assert_eq!(t.remove(e), Ok(remote(1, 0xB)));
        assert_eq!(bytes(&t), before);

        for (n, k) in a.iter().enumerate() {
            assert_eq!(t.underlays.slots[slot_a].refs, 3 - n as u32);
            assert_eq!(t.remove(*k), Ok(remote(n as u8, 0xA)));
            check_invariants(&t);
        }
        assert_eq!(t.underlays.slots[slot_a], UnderlaySlot::EMPTY);
        assert_eq!(t.underlays(), (3, 4));
        t.insert(e, remote(1, 0xE)).unwrap();
        assert_eq!(
            t.underlays.slots[slot_a].ip, 0xE,
            "the freed slot is reused"
        );
        assert_eq!(t.get(e), Some(remote(1, 0xE)));
        for (k, ip) in others.iter().zip([0xB, 0xC, 0xD]) {
            assert_eq!(t.get(*k), Some(remote(9, ip)));
        }
        check_invariants(&t);
        for k in others.iter().chain([&e]) {
            t.remove(*k).unwrap();
        }
        assert_eq!(t.underlays(), (0, 4));
        assert_eq!(t.underlays.reach, 0);
        assert!(t.underlays.slots.iter().all(|s| *s == UnderlaySlot::EMPTY));
    }

    /// A remote entry keeps its host's address whatever happens to others of that host:
    /// replaced to another host, to the same host, to a local VF, removed.
    #[test]
    fn remote_underlay_survives_replace_and_remove_of_others() {
        let (mut b, mut g, mut u) = storage(8, 3);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let k: Vec<MappingKey> = random_keys(23).take(3).collect();
        for (i, key) in k.iter().enumerate() {
            t.insert(*key, remote(i as u8, 0xA)).unwrap();
        }
        let slot_a = t.underlays.slots.iter().position(|s| s.ip == 0xA).unwrap();
        let keeps = |t: &MappingTable<'_>| {
            assert_eq!(t.get(k[0]), Some(remote(0, 0xA)));
            let mut out = [None];
            t.get_batch(&k[..1], &mut out);
            assert_eq!(out, [Some(remote(0, 0xA))]);
            assert_eq!(t.underlays.slots[slot_a].ip, 0xA);
            check_invariants(t);
        };
        assert_eq!(t.replace(k[1], remote(1, 0xB)), Ok(remote(1, 0xA)));
        keeps(&t);
        assert_eq!(t.replace(k[2], remote(7, 0xA)), Ok(remote(2, 0xA)));
        keeps(&t);
        assert_eq!(t.underlays.slots[slot_a].refs, 2);
        let local = Mapping {
            mac: [2, 0, 0, 0, 0, 2],
            location: Location::LocalVf(1),
        };
        assert_eq!(t.replace(k[2], local), Ok(remote(7, 0xA)));
        keeps(&t);
        assert_eq!(t.underlays.slots[slot_a].refs, 1);
        assert_eq!(t.remove(k[1]), Ok(remote(1, 0xB)));
        assert_eq!(t.remove(k[2]), Ok(local));
        keeps(&t);
        assert_eq!(t.underlays(), (1, 3));
        // Three slots: A (k[0]), then B and C in turn for k[1]. A move to a fourth host
        // is refused while the old one is still held, and changes nothing.
        t.insert(k[1], remote(1, 0xB)).unwrap();
        let mut held = remote(1, 0xB);
        for round in 0..6u8 {
            let to = if round % 2 == 0 { 0xC } else { 0xB };
            assert_eq!(t.replace(k[1], remote(round, to)), Ok(held));
            held = remote(round, to);
            keeps(&t);
            assert_eq!(t.underlays(), (2, 3));
            t.insert(k[2], remote(9, 0xD)).unwrap();
            assert_eq!(t.underlays(), (3, 3));
            let before = bytes(&t);
            assert_eq!(
                t.replace(k[1], remote(9, 0xE)),
                Err(TableError::UnderlayFull)
            );
            assert_eq!(bytes(&t), before);
            assert_eq!(t.remove(k[2]), Ok(remote(9, 0xD)));
            keeps(&t);
        }
        assert_eq!(t.get(k[1]), Some(held));
    }

    /// Many hosts, removed and added again in turn: the underlay table's free slots inside
    /// probe sequences neither lose an address in use nor let one be interned twice.
    #[test]
    fn underlay_churn_keeps_one_slot_per_host() {
        let (mut b, mut g, mut u) = storage(256, 64);
        let mut t = MappingTable::new(&mut b, &mut g, &mut u);
        let keys: Vec<MappingKey> = random_keys(31).take(600).collect();
        let mut rng = 7u64;
        let mut model: HashMap<MappingKey, Mapping> = HashMap::new();
        for round in 0..20_000u32 {
            rng = fmix64(rng.wrapping_add(round as u64));
            let k = keys[(rng % keys.len() as u64) as usize];
            let v = remote((rng >> 20) as u8, 0x6400_0000 | ((rng >> 32) as u32 % 80));
            let hosts: HashSet<u32> = model
                .values()
                .filter_map(|m| match m.location {
                    Location::Remote { underlay_ip } => Some(underlay_ip),
                    _ => None,
                })
                .collect();
            let new_host = match v.location {
                Location::Remote { underlay_ip } => !hosts.contains(&underlay_ip),
                _ => false,
            };
            let before = bytes(&t);
            match model.get(&k).copied() {
                Some(old) if rng & (1 << 60) != 0 => {
                    assert_eq!(t.remove(k), Ok(old));
                    model.remove(&k);
                }
                Some(old) => match t.replace(k, v) {
                    Ok(got) => {
                        assert_eq!(got, old);
                        model.insert(k, v);
                    }
                    Err(e) => {
                        assert_eq!(e, TableError::UnderlayFull);
                        assert!(new_host && hosts.len() == 64);
                        assert_eq!(bytes(&t), before);
                    }
                },
                None => match t.insert(k, v) {
                    Ok(()) => {
                        model.insert(k, v);
                    }
                    Err(e) => {
                        assert_eq!(e, TableError::UnderlayFull);
                        assert!(new_host && hosts.len() == 64);
                        assert_eq!(bytes(&t), before);
                    }
                },
            }
            if round % 1000 == 0 {
                check_invariants(&t);
            }
        }
        check_invariants(&t);
        for (k, v) in &model {
            assert_eq!(t.get(*k), Some(*v));
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(MappingKey, u32),
        Replace(MappingKey, u32),
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
            1 => (key_strategy(), any::<u32>()).prop_map(|(k, v)| Op::Replace(k, v)),
            2 => key_strategy().prop_map(Op::Remove),
            1 => key_strategy().prop_map(Op::Get),
        ]
    }

    /// The underlay addresses the entries of `m` use.
    fn hosts(m: &HashMap<MappingKey, Mapping>) -> HashSet<u32> {
        m.values()
            .filter_map(|v| match v.location {
                Location::Remote { underlay_ip } => Some(underlay_ip),
                _ => None,
            })
            .collect()
    }

    /// True when `v` needs an underlay slot that `m` does not use yet.
    fn new_host(m: &HashMap<MappingKey, Mapping>, v: Mapping) -> bool {
        matches!(v.location, Location::Remote { underlay_ip } if !hosts(m).contains(&underlay_ip))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn matches_hashmap(
            nbuckets in 1usize..24,
            nunderlays in 0usize..12,
            ops in prop::collection::vec(op_strategy(), 1..300),
        ) {
            let (mut b, mut g, mut u) = storage(nbuckets, nunderlays);
            let mut t = MappingTable::new(&mut b, &mut g, &mut u);
            let mut reference: HashMap<MappingKey, Mapping> = HashMap::new();
            for op in ops {
                let before = bytes(&t);
                match op {
                    Op::Insert(k, v) => {
                        let got = t.insert(k, val(v));
                        if reference.contains_key(&k) {
                            prop_assert_eq!(got, Err(TableError::Exists));
                            prop_assert_eq!(bytes(&t), before);
                        } else if got == Err(TableError::Full) {
                            prop_assert_eq!(bytes(&t), before);
                            // Full: both candidate buckets are full.
                            let (c1, c2) = t.candidate_buckets(k);
                            prop_assert!(
                                t.buckets[c1].free_slot().is_none()
                                    && t.buckets[c2].free_slot().is_none()
                            );
                        } else if got == Err(TableError::UnderlayFull) {
                            prop_assert_eq!(bytes(&t), before);
                            // The host is new and the underlay table has no room.
                            prop_assert!(
                                new_host(&reference, val(v))
                                    && hosts(&reference).len() == nunderlays
                            );
                        } else {
                            prop_assert_eq!(got, Ok(()));
                            prop_assert!(
                                !new_host(&reference, val(v))
                                    || hosts(&reference).len() < nunderlays
                            );
                            reference.insert(k, val(v));
                        }
                    }
                    Op::Replace(k, v) => {
                        let got = t.replace(k, val(v));
                        match reference.get(&k).copied() {
                            None => {
                                prop_assert_eq!(got, Err(TableError::NotFound));
                                prop_assert_eq!(bytes(&t), before);
                            }
                            // The old host is still held while the new one is interned.
                            Some(_) if new_host(&reference, val(v))
                                && hosts(&reference).len() == nunderlays => {
                                prop_assert_eq!(got, Err(TableError::UnderlayFull));
                                prop_assert_eq!(bytes(&t), before);
                            }
                            Some(old) => {
                                prop_assert_eq!(got, Ok(old));
                                reference.insert(k, val(v));
                            }
                        }
                    }
                    Op::Remove(k) => {
                        let got = t.remove(k);
                        match reference.remove(&k) {
                            Some(v) => prop_assert_eq!(got, Ok(v)),
                            None => {
                                prop_assert_eq!(got, Err(TableError::NotFound));
                                prop_assert_eq!(bytes(&t), before);
                            }
                        }
                    }
                    Op::Get(k) => prop_assert_eq!(t.get(k), reference.get(&k).copied()),
                }
                prop_assert_eq!(t.len(), reference.len());
                prop_assert_eq!(t.underlays().0, hosts(&reference).len());
            }
            check_invariants(&t);
            for (k, v) in &reference {
                prop_assert_eq!(t.get(*k), Some(*v));
            }
            // Every key of the small key space: present ones and absent ones.
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
