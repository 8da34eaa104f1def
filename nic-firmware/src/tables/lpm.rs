//! Per-VRF longest-prefix-match route tables.
//!
//! # Design
//!
//! Each route table (VRF) owns `routes_per_table` consecutive [`RouteSlot`]s of 16 bytes,
//! used as an array of 32-bit words. With `cap = min(routes_per_table, 65535)`:
//!
//! ```text
//! header      n (route count), then the top separators (at most 15)    one cache line
//! levels      static B+-tree (S-tree) levels over the starts, top first  ~cap / 15 words
//! starts[cap] !prefix of each route, sorted by (prefix, length)      <- source of truth
//! recs[cap]   per route, 8 bytes: info (length 0..8 | target kind 8..16 | parent 16..32),
//!             target argument (gateway, peer VPC, instance address)
//! ```
//!
//! Starts are stored inverted (`!prefix`), so an unused key is 0 and stands for "above every
//! address": an empty table is all zero bytes, like fresh storage, and the search needs no
//! bounds beyond the route count. Sorting by (prefix, length) puts the prefixes in pre-order
//! of the prefix trie. For an address, the deepest route containing it is an
//! ancestor-or-self of route `i`, the last route whose prefix is `<= ip` (every route
//! containing `ip` starts at or before it, and two prefixes are nested or disjoint). Each
//! route stores its parent (the longest route containing it), so a lookup is:
//!
//! 1. `i` = (number of starts `<= ip`) - 1, found in the S-tree: level `l + 1` holds the
//!    first key of every block of 16 keys of level `l` but the first, until at most 15 such
//!    separators are left; those sit in the header line beside `n`. The search counts the
//!    keys `<= ip` in one 16-key block (64 bytes, branch-free SIMD) per level. For 1,000
//!    routes that is the header line, one level-1 block and one block of starts. There is no
//!    per-VRF direct index, so the structure stays small for 4,096 VRFs (DPDK `rte_lpm`
//!    spends 64 MiB per table).
//! 2. With `L` = the number of leading bits `ip` shares with route `i`'s prefix, the answer
//!    is the first of `i`, its parent, its grandparent ... whose length is `<= L` (an
//!    ancestor's prefix is `i`'s prefix cut to its length, so no ancestor prefix is read).
//!    Each step reads one 8-byte record; lengths strictly shrink, so at most 33 steps, and
//!    with a default route, a VPC CIDR and subnet or instance routes it is 0 to 2 steps into
//!    records every lookup of the table shares (and so finds in cache).
//!
//! When the region has room (`routes_per_table` of about 24 and more), every block starts
//! on a 64-byte boundary of memory (each table's origin is moved by up to 15 words from the
//! start of its region), so a block is one cache line: a lookup in a table of 1,000 routes
//! touches 4 lines and its ancestors' records. Smaller regions are packed without padding.
//! [`RouteTables::lookup_batch`] runs the steps of 16 lookups side by side, so their cache
//! misses overlap.
//!
//! A change rebuilds the VRF's arrays (insertion into the sorted arrays, then parents and
//! search levels in one O(n) pass); route changes are rare. A change is validated before
//! anything is written, so `Exists`, `NotFound` and `Full` leave the table exactly as it
//! was. Every change runs under `&mut self` and the firmware is single threaded, so the
//! pipeline only ever sees a table before or after a change, never during one.
//!
//! # Memory
//!
//! **16 bytes per route** of capacity (`size_of::<RouteSlot>()`), everything included:
//! 4,096 VRFs x 1,000 routes = 65.5 MB. Of a 1,000-route region's 4,000 words, 3,103 at most
//! are used (the rest is room for alignment and growth). The storage of a given route set
//! in a given place is canonical (unused words are zero), so equal tables have equal bytes,
//! and a table emptied by removals is all zero again.
//!
//! Routes are canonicalised on the way in: a length above 32 counts as 32 and host bits
//! of the prefix are cleared (the admin handler should refuse such routes beforehand).
use super::TableError;
use shared_regs::entry::RouteTarget;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// What a route points at (F8). Addresses in host byte order.
///
/// Layer: the firmware's route tables. The pipeline keys every lookup by host-order `u32`
/// addresses, so the table's form holds the instance address as one; the contract's
/// [`RouteTarget`] is what crosses the admin queue and the trace, converted at that edge by
/// the `From` impls below. The packed record form is [`Target::encode`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The VPC CIDR: mapping lookup in the VPC's own VNI.
    Local,
    /// Drop silently.
    Blackhole,
    /// VXLAN to gateway `id`.
    Gateway(u16),
    /// Mapping lookup in the VNI of peer VPC `id`.
    Peering(u16),
    /// Deliver to the instance with this primary address.
    Instance(u32),
}

const KIND_LOCAL: u32 = 1;
const KIND_BLACKHOLE: u32 = 2;
const KIND_GATEWAY: u32 = 3;
const KIND_PEERING: u32 = 4;
const KIND_INSTANCE: u32 = 5;

impl Target {
    /// (kind, argument).
    fn encode(self) -> (u32, u32) {
        match self {
            Target::Local => (KIND_LOCAL, 0),
            Target::Blackhole => (KIND_BLACKHOLE, 0),
            Target::Gateway(id) => (KIND_GATEWAY, u32::from(id)),
            Target::Peering(id) => (KIND_PEERING, u32::from(id)),
            Target::Instance(ip) => (KIND_INSTANCE, ip),
        }
    }

    fn decode(kind: u32, arg: u32) -> Option<Target> {
        Some(match kind {
            KIND_LOCAL => Target::Local,
            KIND_BLACKHOLE => Target::Blackhole,
            KIND_GATEWAY => Target::Gateway((arg & 0xffff) as u16),
            KIND_PEERING => Target::Peering((arg & 0xffff) as u16),
            KIND_INSTANCE => Target::Instance(arg),
            _ => return None,
        })
    }
}

impl From<RouteTarget> for Target {
    fn from(t: RouteTarget) -> Target {
        match t {
            RouteTarget::Local => Target::Local,
            RouteTarget::Blackhole => Target::Blackhole,
            RouteTarget::Gateway(id) => Target::Gateway(id),
            RouteTarget::Peering(id) => Target::Peering(id),
            RouteTarget::Instance(ip) => Target::Instance(ip.into()),
        }
    }
}

impl From<Target> for RouteTarget {
    fn from(t: Target) -> RouteTarget {
        match t {
            Target::Local => RouteTarget::Local,
            Target::Blackhole => RouteTarget::Blackhole,
            Target::Gateway(id) => RouteTarget::Gateway(id),
            Target::Peering(id) => RouteTarget::Peering(id),
            Target::Instance(ip) => RouteTarget::Instance(ip.into()),
        }
    }
}

/// A route: prefix (host byte order, host bits zero), length, target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub prefix: u32,
    pub len: u8,
    pub target: Target,
}

/// 16 bytes of route table storage: a VRF's slots form one word array (see the module
/// documentation), so one slot is one route of capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RouteSlot {
    words: [u32; 4],
}

const _: () = assert!(core::mem::size_of::<RouteSlot>() == 16);

impl RouteSlot {
    /// An empty slot, to fill storage with.
    pub const EMPTY: RouteSlot = RouteSlot { words: [0; 4] };
}

/// The mask of a prefix length (0 ..= 32).
pub fn prefix_mask(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32u32.saturating_sub(u32::from(len)))
        .unwrap_or(0)
}

/// Keys per S-tree block: 16 x 4 bytes, one cache line.
const BLOCK: usize = 16;
/// Search levels, the starts included: 65,535 routes need 3.
const MAX_LEVELS: usize = 4;
/// Most routes one table can hold (parent links are 16 bits).
const MAX_ROUTES: usize = 0xffff;
/// The parent value of a route no other route contains.
const NO_PARENT: u32 = 0xffff;
/// Longest chain of nested prefixes: /0 .. /32.
const MAX_DEPTH: usize = 33;
/// Words of a table's layout origin may sit after the start of its region (alignment).
const MAX_PAD: usize = 15;
/// Lookups [`RouteTables::lookup_batch`] runs side by side.
const BATCH: usize = 16;

fn info_len(info: u32) -> u8 {
    (info & 0xff) as u8
}

fn info_kind(info: u32) -> u32 {
    (info >> 8) & 0xff
}

fn info_parent(info: u32) -> u32 {
    info >> 16
}

/// Number of keys `k >= nip` in one block (at most [`BLOCK`] keys). With `k = !start` and
/// `nip = !ip` that is the number of starts `<= ip`.
#[inline(always)]
fn count_ge(block: &[u32], nip: u32) -> usize {
    if let Ok(full) = <&[u32; BLOCK]>::try_from(block) {
        full.iter().map(|&k| usize::from(k >= nip)).sum()
    } else {
        block.iter().filter(|&&k| k >= nip).count()
    }
}

/// [`count_ge`] of a whole block. Keys are sorted in descending order (starts ascending,
/// inverted; unused keys 0 at the end), so the keys `>= nip` are a prefix of the block and
/// a branch-free binary search finds its length: 5 loads from one cache line and a few
/// instructions, where a SIMD compare and a population count cost about 40 on the baseline
/// x86-64 instruction set.
#[inline(always)]
fn count16(b: &[u32; BLOCK], nip: u32) -> usize {
    let mut p = 0usize;
    for step in [8usize, 4, 2, 1] {
        // p + step - 1 <= 14.
        let probe = b
            .get(p.wrapping_add(step).wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        p = p.wrapping_add(step & usize::from(probe >= nip).wrapping_neg());
    }
    // p <= 15: the first p keys are >= nip; key p decides the last one.
    p.wrapping_add(usize::from(b.get(p).is_some_and(|&k| k >= nip)))
}

/// [`count16`] of the 15 separators of a header line (word 0 is the route count).
#[inline(always)]
fn count_header(h: &[u32; BLOCK], nip: u32) -> usize {
    let mut p = 0usize;
    for step in [8usize, 4, 2, 1] {
        // Separator p + step - 1 <= 14 is word p + step <= 15.
        let probe = h.get(p.wrapping_add(step)).copied().unwrap_or(0);
        p = p.wrapping_add(step & usize::from(probe >= nip).wrapping_neg());
    }
    // p <= 15; separator p (word p + 1) exists when p < 15.
    p.wrapping_add(usize::from(
        h.get(p.wrapping_add(1)).is_some_and(|&k| k >= nip),
    ))
}

/// The 16-word block at `off`.
#[inline(always)]
fn block(r: &[u32], off: usize) -> Option<&[u32; BLOCK]> {
    <&[u32; BLOCK]>::try_from(r.get(off..off.wrapping_add(BLOCK))?).ok()
}

/// One S-tree level: `keys` words at `off` (level 0 is the starts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Level {
    off: usize,
    keys: usize,
    blocks: usize,
}

/// Where each array of a table sits, in words from the table's origin. The same for every
/// table of a [`RouteTables`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    cap: usize,
    /// Level 0 is the starts; level `l + 1` separates the blocks of level `l`.
    levels: [Level; MAX_LEVELS],
    depth: usize,
    /// Separators in the header: one per block of the top level but the first.
    top_seps: usize,
    recs: usize,
    /// Words used from the origin.
    words: usize,
    /// Blocks are whole cache lines: levels padded to 16 keys, origins 64-byte aligned.
    aligned: bool,
}

impl Layout {
    fn new(cap: usize, aligned: bool) -> Layout {
        let round = |k: usize| {
            if aligned {
                k.div_ceil(BLOCK).saturating_mul(BLOCK)
            } else {
                k
            }
        };
        let mut levels = [Level::default(); MAX_LEVELS];
        let mut keys = round(cap.max(1));
        let mut depth = 0usize;
        while let Some(lv) = levels.get_mut(depth) {
            let blocks = keys.div_ceil(BLOCK);
            *lv = Level {
                off: 0,
                keys,
                blocks,
            };
            depth = depth.saturating_add(1);
            if blocks <= BLOCK {
                break;
            }
            keys = round(blocks.saturating_sub(1));
        }
        let top_blocks = depth
            .checked_sub(1)
            .and_then(|d| levels.get(d))
            .map_or(1, |l| l.blocks);
        let top_seps = top_blocks.saturating_sub(1).min(BLOCK - 1);
        // Header, then the levels from the top down, then the records.
        let mut off = if aligned {
            BLOCK
        } else {
            top_seps.saturating_add(1)
        };
        for lv in levels.iter_mut().take(depth).rev() {
            lv.off = off;
            off = off.saturating_add(lv.keys);
        }
        let recs = off;
        Layout {
            cap,
            levels,
            depth,
            top_seps,
            recs,
            words: recs.saturating_add(cap.saturating_mul(2)),
            aligned,
        }
    }

    fn starts(&self) -> usize {
        self.levels.first().map_or(0, |l| l.off)
    }

    /// Number of starts `<= ip` (or more, up to the padded key count, for `ip = u32::MAX`;
    /// the caller clamps to the route count).
    #[inline(always)]
    fn search(&self, r: &[u32], ip: u32) -> usize {
        let nip = !ip;
        let mut pos = self.top(r, nip);
        for lv in self.levels.iter().take(self.depth).rev() {
            pos = self.step(r, lv, pos, nip);
        }
        pos
    }

    /// The count of top separators `<= ip` (`nip = !ip`): the block of the top level to
    /// search. When aligned, the header line is counted whole (its unused separators are 0,
    /// above every address) and word 0, the route count, is taken back out.
    #[inline(always)]
    fn top(&self, r: &[u32], nip: u32) -> usize {
        if self.aligned {
            block(r, 0).map_or(0, |h| count_header(h, nip))
        } else {
            r.get(1..self.top_seps.saturating_add(1))
                .map_or(0, |s| count_ge(s, nip))
        }
    }

    /// One level of the search: from the block `pos` of level `lv` (clamped to its last
    /// block), the number of its keys `<= ip`: the block of the level below to search, or
    /// at level 0 the number of starts `<= ip`. A missing block counts 0.
    #[inline(always)]
    fn step(&self, r: &[u32], lv: &Level, pos: usize, nip: u32) -> usize {
        let b = pos.min(lv.blocks.saturating_sub(1));
        let base = b.wrapping_mul(BLOCK);
        let lo = lv.off.wrapping_add(base);
        let count = if self.aligned {
            block(r, lo).map_or(0, |k| count16(k, nip))
        } else {
            let hi = lo.saturating_add(BLOCK).min(lv.off.saturating_add(lv.keys));
            r.get(lo..hi).map_or(0, |k| count_ge(k, nip))
        };
        base.wrapping_add(count)
    }

    /// The deepest ancestor-or-self of route `i` containing `ip` (`i` is the last route
    /// starting at or before `ip`).
    #[inline(always)]
    fn resolve(&self, r: &[u32], i: usize, ip: u32) -> Option<Route> {
        let (j, start, common) = self.first_step(r, i, ip)?;
        self.finish(r, j, start, common)
    }

    /// Record index of route `j`.
    #[inline(always)]
    fn rec(&self, j: usize) -> usize {
        self.recs.saturating_add(j.saturating_mul(2))
    }

    /// Route `i` or its parent, chosen without a branch (whether route `i` contains `ip` is
    /// a coin toss the branch predictor loses), with route `i`'s prefix and the number of
    /// leading bits `ip` shares with it. A parent of `NO_PARENT` lies past the records, so
    /// [`Layout::finish`] answers `None` for it.
    #[inline(always)]
    fn first_step(&self, r: &[u32], i: usize, ip: u32) -> Option<(usize, u32, u32)> {
        let start = !*r.get(self.starts().saturating_add(i))?;
        let common = (ip ^ start).leading_zeros();
        let info = *r.get(self.rec(i))?;
        let j = if u32::from(info_len(info)) <= common {
            i
        } else {
            info_parent(info) as usize
        };
        Some((j, start, common))
    }

    /// The first of route `j` and its ancestors no longer than `common`: at once unless the
    /// answer is two or more steps above the route the search found.
    #[inline(always)]
    fn finish(&self, r: &[u32], mut j: usize, start: u32, common: u32) -> Option<Route> {
        for _ in 0..MAX_DEPTH {
            let k = self.rec(j);
            let info = *r.get(k)?;
            let len = info_len(info);
            if u32::from(len) <= common {
                return Some(Route {
                    prefix: start & prefix_mask(len),
                    len,
                    target: Target::decode(info_kind(info), *r.get(k.saturating_add(1))?)?,
                });
            }
            let parent = info_parent(info);
            if parent == NO_PARENT {
                return None;
            }
            j = parent as usize;
        }
        None
    }

    /// Route count of table words `r`.
    fn count(&self, r: &[u32]) -> usize {
        r.first().map_or(0, |&n| (n as usize).min(self.cap))
    }

    #[inline(always)]
    fn lookup(&self, r: &[u32], ip: u32) -> Option<Route> {
        let n = self.count(r);
        let i = self.search(r, ip).min(n).checked_sub(1)?;
        self.resolve(r, i, ip)
    }

    fn route(&self, r: &[u32], i: usize) -> Option<Route> {
        let k = self.recs.saturating_add(i.saturating_mul(2));
        let info = *r.get(k)?;
        Some(Route {
            prefix: !*r.get(self.starts().saturating_add(i))?,
            len: info_len(info),
            target: Target::decode(info_kind(info), *r.get(k.saturating_add(1))?)?,
        })
    }

    /// Index of the route with this exact prefix and length, or where it would go.
    fn position(&self, r: &[u32], prefix: u32, len: u8) -> Option<Result<usize, usize>> {
        let n = self.count(r);
        let s0 = self.starts();
        let starts = r.get(s0..s0.checked_add(n)?)?;
        let mut i = starts.partition_point(|&k| !k < prefix);
        while let Some(&k) = starts.get(i) {
            let l = info_len(*r.get(self.recs.checked_add(i.checked_mul(2)?)?)?);
            if !k != prefix || l > len {
                break;
            }
            if l == len {
                return Some(Ok(i));
            }
            i = i.checked_add(1)?;
        }
        Some(Err(i))
    }

    /// Recomputes the parent links of the `n` sorted routes, the S-tree levels above the
    /// starts and the header separators. Unused keys are 0.
    fn rebuild(&self, r: &mut [u32], n: usize) {
        let s0 = self.starts();
        // Parents: a stack of the open chain of nested prefixes (lengths strictly grow).
        let mut stack = [(0u32, 0u8, 0usize); MAX_DEPTH];
        let mut depth = 0usize;
        for i in 0..n {
            let k = self.recs.saturating_add(i.saturating_mul(2));
            let (Some(&key), Some(&info)) = (r.get(s0.saturating_add(i)), r.get(k)) else {
                break;
            };
            let start = !key;
            while let Some(d) = depth.checked_sub(1) {
                let contains = stack
                    .get(d)
                    .is_some_and(|&(ts, tl, _)| (start ^ ts) & prefix_mask(tl) == 0);
                if contains {
                    break;
                }
                depth = d;
            }
            let parent = depth
                .checked_sub(1)
                .and_then(|d| stack.get(d))
                .map_or(NO_PARENT, |&(_, _, t)| t as u32);
            if let Some(x) = r.get_mut(k) {
                *x = (info & 0xffff) | (parent << 16);
            }
            if let Some(s) = stack.get_mut(depth) {
                *s = (start, info_len(info), i);
                depth = depth.saturating_add(1);
            }
        }
        // Level l + 1 holds the first key of each block of level l but the first.
        let sep = |r: &[u32], lower: &Level, j: usize| -> u32 {
            if j.saturating_add(1) < lower.blocks {
                let at = lower
                    .off
                    .saturating_add(j.saturating_add(1).saturating_mul(BLOCK));
                r.get(at).copied().unwrap_or(0)
            } else {
                0
            }
        };
        for l in 1..self.depth {
            let (Some(lower), Some(upper)) =
                (self.levels.get(l.saturating_sub(1)), self.levels.get(l))
            else {
                break;
            };
            for j in 0..upper.keys {
                let key = sep(r, lower, j);
                if let Some(x) = r.get_mut(upper.off.saturating_add(j)) {
                    *x = key;
                }
            }
        }
        if let Some(top) = self.depth.checked_sub(1).and_then(|d| self.levels.get(d)) {
            for j in 0..self.top_seps {
                let key = sep(r, top, j);
                if let Some(x) = r.get_mut(j.saturating_add(1)) {
                    *x = key;
                }
            }
        }
    }
}

/// All route tables (VRFs) over storage the platform provides: `routes_per_table`
/// consecutive slots per table.
pub struct RouteTables<'m> {
    slots: &'m mut [RouteSlot],
    routes_per_table: usize,
    tables: usize,
    layout: Layout,
    /// Address of the storage, for the alignment of each table's origin.
    base: usize,
}

impl<'m> RouteTables<'m> {
    /// Route tables over `slots`, emptied.
    pub fn new(slots: &'m mut [RouteSlot], routes_per_table: usize) -> Self {
        slots.fill(RouteSlot::EMPTY);
        let routes_per_table = routes_per_table.max(1);
        let cap = routes_per_table.min(MAX_ROUTES);
        let room = routes_per_table.saturating_mul(4);
        let aligned = Layout::new(cap, true);
        let layout = if aligned.words.saturating_add(MAX_PAD) <= room {
            aligned
        } else {
            Layout::new(cap, false)
        };
        RouteTables {
            tables: slots.len().checked_div(routes_per_table).unwrap_or(0),
            base: slots.as_ptr() as usize,
            slots,
            routes_per_table,
            layout,
        }
    }

    /// Number of route tables.
    pub fn tables(&self) -> usize {
        self.tables
    }

    /// Routes one table holds.
    pub fn routes_per_table(&self) -> usize {
        self.routes_per_table
    }

    /// Routes one table can hold: `routes_per_table`, at most 65,535.
    pub fn capacity(&self) -> usize {
        self.layout.cap
    }

    /// Storage bytes per route of capacity.
    pub const BYTES_PER_ROUTE: usize = core::mem::size_of::<RouteSlot>();

    /// Word index, in the whole storage, of table `table`'s origin.
    #[inline(always)]
    fn origin(&self, table: u16) -> Option<usize> {
        let t = usize::from(table);
        if t >= self.tables {
            return None;
        }
        // t < tables, so the region lies inside the storage: no overflow.
        let start = t.wrapping_mul(self.routes_per_table).wrapping_mul(4);
        let pad = if self.layout.aligned {
            let addr = self.base.wrapping_add(start.wrapping_mul(4));
            (0usize.wrapping_sub(addr) & 63) >> 2
        } else {
            0
        };
        Some(start.wrapping_add(pad))
    }

    fn words(&self) -> &[u32] {
        <[u32]>::ref_from_bytes(self.slots.as_bytes()).unwrap_or(&[])
    }

    /// Table `table`'s words from its origin.
    #[inline(always)]
    fn table_words<'a>(&self, words: &'a [u32], table: u16) -> Option<&'a [u32]> {
        let o = self.origin(table)?;
        words.get(o..o.checked_add(self.layout.words)?)
    }

    fn table(&self, table: u16) -> Option<&[u32]> {
        self.table_words(self.words(), table)
    }

    fn table_mut(&mut self, table: u16) -> Option<&mut [u32]> {
        let o = self.origin(table)?;
        let end = o.checked_add(self.layout.words)?;
        <[u32]>::mut_from_bytes(self.slots.as_mut_bytes())
            .ok()?
            .get_mut(o..end)
    }

    fn region_mut(&mut self, table: u16) -> Option<&mut [RouteSlot]> {
        if usize::from(table) >= self.tables {
            return None;
        }
        let start = usize::from(table).checked_mul(self.routes_per_table)?;
        let end = start.checked_add(self.routes_per_table)?;
        self.slots.get_mut(start..end)
    }

    /// Number of routes in `table` (0 for a table past the storage).
    pub fn len(&self, table: u16) -> usize {
        self.table(table).map_or(0, |r| self.layout.count(r))
    }

    /// Empties one table.
    pub fn clear_table(&mut self, table: u16) {
        if let Some(t) = self.region_mut(table) {
            t.fill(RouteSlot::EMPTY);
        }
    }

    /// Adds a route; `Exists` for the same prefix and length, `Full` when the table is full,
    /// `NotFound` for a table index past the storage.
    pub fn insert(&mut self, table: u16, route: Route) -> Result<(), TableError> {
        let len = route.len.min(32);
        let prefix = route.prefix & prefix_mask(len);
        let (kind, arg) = route.target.encode();
        let lay = self.layout;
        let r = self.table(table).ok_or(TableError::NotFound)?;
        let n = lay.count(r);
        let p = match lay.position(r, prefix, len).ok_or(TableError::NotFound)? {
            Ok(_) => return Err(TableError::Exists),
            Err(p) => p,
        };
        if n >= lay.cap {
            return Err(TableError::Full);
        }
        let r = self.table_mut(table).ok_or(TableError::NotFound)?;
        let s0 = lay.starts();
        // p <= n < cap: the ranges are in bounds and not empty.
        if let Some(s) = r.get_mut(s0.saturating_add(p)..=s0.saturating_add(n)) {
            s.rotate_right(1);
            if let Some(first) = s.first_mut() {
                *first = !prefix;
            }
        }
        let rec = |i: usize| lay.recs.saturating_add(i.saturating_mul(2));
        if let Some(s) = r.get_mut(rec(p)..rec(n.saturating_add(1))) {
            s.rotate_right(2);
            if let [info, a, ..] = s {
                *info = u32::from(len) | (kind << 8);
                *a = arg;
            }
        }
        let n = n.saturating_add(1);
        lay.rebuild(r, n);
        if let Some(hdr) = r.first_mut() {
            *hdr = n as u32;
        }
        Ok(())
    }

    /// Sets the target of the route with this prefix and length and returns the route as it
    /// was; `NotFound` (nothing changed) when there is none. Prefixes, lengths, parents and
    /// search levels stay as they are: only the route's 8-byte record is written, in one
    /// write (hardware does it with one 64-bit store), so a lookup finds the old target or
    /// the new one, and every other route is untouched.
    pub fn replace_target(
        &mut self,
        table: u16,
        prefix: u32,
        len: u8,
        target: Target,
    ) -> Result<Route, TableError> {
        let len = len.min(32);
        let prefix = prefix & prefix_mask(len);
        let lay = self.layout;
        let r = self.table(table).ok_or(TableError::NotFound)?;
        let p = match lay.position(r, prefix, len).ok_or(TableError::NotFound)? {
            Ok(p) => p,
            Err(_) => return Err(TableError::NotFound),
        };
        let old = lay.route(r, p).ok_or(TableError::NotFound)?;
        let k = lay.rec(p);
        let info = *r.get(k).ok_or(TableError::NotFound)?;
        let (kind, arg) = target.encode();
        // Length and parent kept, kind replaced.
        let record = [(info & !0xff00) | ((kind & 0xff) << 8), arg];
        let r = self.table_mut(table).ok_or(TableError::NotFound)?;
        let rec = r
            .get_mut(k..k.saturating_add(2))
            .ok_or(TableError::NotFound)?;
        rec.copy_from_slice(&record);
        Ok(old)
    }

    /// Removes the route with this prefix and length.
    pub fn remove(&mut self, table: u16, prefix: u32, len: u8) -> Result<Route, TableError> {
        let len = len.min(32);
        let prefix = prefix & prefix_mask(len);
        let lay = self.layout;
        let r = self.table(table).ok_or(TableError::NotFound)?;
        let n = lay.count(r);
        let p = match lay.position(r, prefix, len).ok_or(TableError::NotFound)? {
            Ok(p) => p,
            Err(_) => return Err(TableError::NotFound),
        };
        let removed = lay.route(r, p).ok_or(TableError::NotFound)?;
        let last = n.checked_sub(1).ok_or(TableError::NotFound)?;
        let r = self.table_mut(table).ok_or(TableError::NotFound)?;
        let s0 = lay.starts();
        // p <= last < n <= cap.
        if let Some(s) = r.get_mut(s0.saturating_add(p)..=s0.saturating_add(last)) {
            s.rotate_left(1);
            if let Some(end) = s.last_mut() {
                *end = 0;
            }
        }
        let rec = |i: usize| lay.recs.saturating_add(i.saturating_mul(2));
        if let Some(s) = r.get_mut(rec(p)..rec(n)) {
            s.rotate_left(2);
            if let [.., info, a] = s {
                *info = 0;
                *a = 0;
            }
        }
        lay.rebuild(r, last);
        if let Some(hdr) = r.first_mut() {
            *hdr = last as u32;
        }
        Ok(removed)
    }

    /// The longest-prefix match for `ip` in `table`.
    #[inline]
    pub fn lookup(&self, table: u16, ip: u32) -> Option<Route> {
        self.layout.lookup(self.table(table)?, ip)
    }

    /// [`RouteTables::lookup`] for each `(table, ip)` of `keys`, into `out` (the shorter of
    /// the two bounds the work). The same answers, faster: the lookups go step by step in
    /// groups of 16, so the cache misses of a group's lookups overlap instead of queueing.
    pub fn lookup_batch(&self, keys: &[(u16, u32)], out: &mut [Option<Route>]) {
        let words = self.words();
        let lay = &self.layout;
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let mut tw: [&[u32]; BATCH] = [&[]; BATCH];
            let mut pos = [0usize; BATCH];
            // The header line: route count and top separators.
            for ((&(t, ip), w), p) in keys.iter().zip(tw.iter_mut()).zip(pos.iter_mut()) {
                *w = self.table_words(words, t).unwrap_or(&[]);
                *p = lay.top(w, !ip);
            }
            // One block per level, for every lookup of the group.
            for lv in lay.levels.iter().take(lay.depth).rev() {
                for ((&(_, ip), w), p) in keys.iter().zip(tw.iter()).zip(pos.iter_mut()) {
                    *p = lay.step(w, lv, *p, !ip);
                }
            }
            // Route i's record, then the answer's.
            let mut found = [None; BATCH];
            for (((&(_, ip), w), p), f) in keys
                .iter()
                .zip(tw.iter())
                .zip(pos.iter())
                .zip(found.iter_mut())
            {
                *f = (*p)
                    .min(lay.count(w))
                    .checked_sub(1)
                    .and_then(|i| lay.first_step(w, i, ip));
            }
            for ((w, f), o) in tw.iter().zip(found.iter()).zip(out) {
                *o = f.and_then(|(j, start, common)| lay.finish(w, j, start, common));
            }
        }
    }

    /// Starts bringing `table`'s header line (route count and top separators), where every
    /// lookup in it starts, into the cache. Changes nothing.
    #[inline(always)]
    pub fn prefetch(&self, table: u16) {
        if let Some(w) = self.table(table).and_then(|r| r.first()) {
            super::mapping::prefetch((w as *const u32).cast::<u8>());
        }
    }

    /// Every route of `table`, by prefix then length.
    pub fn routes(&self, table: u16) -> impl Iterator<Item = Route> + '_ {
        let r = self.table(table);
        let n = r.map_or(0, |r| self.layout.count(r));
        (0..n).filter_map(move |i| self.layout.route(r?, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn route(prefix: u32, len: u8, target: Target) -> Route {
        Route {
            prefix: prefix & prefix_mask(len),
            len,
            target,
        }
    }

    fn reference(routes: &[Route], ip: u32) -> Option<Route> {
        routes
            .iter()
            .filter(|r| ip & prefix_mask(r.len) == r.prefix)
            .max_by_key(|r| r.len)
            .copied()
    }

    fn sorted(mut v: Vec<Route>) -> Vec<Route> {
        v.sort_by_key(|r| (r.prefix, r.len));
        v
    }

    /// Addresses where the answer changes, and their neighbours.
    fn probes(routes: &[Route]) -> Vec<u32> {
        let mut v = vec![0, 1, u32::MAX, u32::MAX - 1, 0x8000_0000];
        for r in routes {
            let end = r.prefix | !prefix_mask(r.len);
            v.extend([r.prefix, r.prefix.wrapping_sub(1), end, end.wrapping_add(1)]);
            v.push(r.prefix | (!prefix_mask(r.len) & 0x5a5a_5a5a));
        }
        v
    }

    fn check_table(t: &RouteTables<'_>, table: u16, want: &[Route], extra: &[u32]) {
        assert_eq!(t.routes(table).collect::<Vec<_>>(), sorted(want.to_vec()));
        assert_eq!(t.len(table), want.len());
        let ips: Vec<u32> = probes(want)
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        for &ip in &ips {
            assert_eq!(t.lookup(table, ip), reference(want, ip), "ip {ip:#010x}");
        }
        // The batch gives the same answers, whatever the group boundaries; a key of a
        // table past the storage answers None.
        let keys: Vec<(u16, u32)> = ips
            .iter()
            .enumerate()
            .map(|(i, &ip)| (if i % 7 == 3 { u16::MAX } else { table }, ip))
            .collect();
        let mut out = vec![Some(route(0, 0, Target::Local)); keys.len()];
        t.lookup_batch(&keys, &mut out);
        for (&(tb, ip), got) in keys.iter().zip(&out) {
            let want = if tb == table {
                reference(want, ip)
            } else {
                None
            };
            assert_eq!(*got, want, "batch, ip {ip:#010x}");
        }
    }

    /// A region with room gets whole-cache-line blocks at 64-byte aligned addresses, even
    /// when the storage itself is not 64-byte aligned; a small region is packed.
    #[test]
    fn layout_aligns_blocks_when_there_is_room() {
        let mut s = vec![RouteSlot::EMPTY; 3 * 1000 + 3];
        // Start the storage 16 bytes past a cache line, like a heap allocation can.
        let skip = (0..4)
            .find(|&k| (s[k..].as_ptr() as usize) % 64 == 16)
            .unwrap();
        let t = RouteTables::new(&mut s[skip..skip + 3000], 1000);
        assert!(t.layout.aligned);
        assert_eq!(t.layout.depth, 2);
        assert_eq!(t.layout.top_seps, 3);
        assert!(t.layout.words + MAX_PAD <= 4000);
        let base = t.slots.as_ptr() as usize;
        for table in 0..3u16 {
            let o = t.origin(table).unwrap();
            assert_eq!((base + 4 * o) % 64, 0);
            assert!(o - usize::from(table) * 4000 <= MAX_PAD);
            for lv in &t.layout.levels[..t.layout.depth] {
                assert_eq!((base + 4 * (o + lv.off)) % 64, 0);
            }
        }
        let mut s = vec![RouteSlot::EMPTY; 8];
        let t = RouteTables::new(&mut s, 8);
        assert!(!t.layout.aligned);
        assert!(t.layout.words <= 32);
    }

    /// The top address is above every unused key's meaning only by one: a /32 at
    /// 255.255.255.255 and the routes around it.
    #[test]
    fn top_address() {
        for per_table in [4usize, 64] {
            let mut s = vec![RouteSlot::EMPTY; per_table];
            let mut t = RouteTables::new(&mut s, per_table);
            let default = route(0, 0, Target::Gateway(1));
            t.insert(0, default).unwrap();
            assert_eq!(t.lookup(0, u32::MAX), Some(default));
            let top = route(u32::MAX, 32, Target::Blackhole);
            t.insert(0, top).unwrap();
            let high = route(0xff00_0000, 8, Target::Local);
            t.insert(0, high).unwrap();
            check_table(&t, 0, &[default, top, high], &[u32::MAX - 2]);
        }
    }

    #[test]
    fn sixteen_bytes_per_route() {
        assert_eq!(core::mem::size_of::<RouteSlot>(), 16);
        assert_eq!(RouteTables::BYTES_PER_ROUTE, 16);
    }

    #[test]
    fn vpc_example() {
        let mut s = vec![RouteSlot::EMPTY; 3 * 8];
        let mut t = RouteTables::new(&mut s, 8);
        assert_eq!(t.tables(), 3);
        let rs = [
            route(0, 0, Target::Gateway(3)),
            route(0x0a00_0000, 16, Target::Local),
            route(0x0a00_0100, 24, Target::Instance(0x0a00_0005)),
            route(0x0a00_0107, 32, Target::Blackhole),
            route(0xac10_0000, 12, Target::Peering(9)),
        ];
        for r in rs {
            t.insert(1, r).unwrap();
        }
        assert_eq!(t.lookup(1, 0x0a00_0107), Some(rs[3]));
        assert_eq!(t.lookup(1, 0x0a00_0108), Some(rs[2]));
        assert_eq!(t.lookup(1, 0x0a00_0200), Some(rs[1]));
        assert_eq!(t.lookup(1, 0x0a01_0000), Some(rs[0]));
        assert_eq!(t.lookup(1, 0xac1f_ffff), Some(rs[4]));
        assert_eq!(t.lookup(0, 0x0a00_0107), None);
        assert_eq!(t.lookup(2, 0x0a00_0107), None);
        check_table(&t, 1, &rs, &[]);
        assert_eq!(t.remove(1, 0, 0), Ok(rs[0]));
        assert_eq!(t.lookup(1, 0x0a01_0000), None);
        t.clear_table(1);
        assert_eq!(t.routes(1).count(), 0);
        assert!(s.iter().all(|x| *x == RouteSlot::EMPTY));
    }

    #[test]
    fn replace_target_writes_what_a_fresh_table_holds_and_nothing_else() {
        let routes = [
            route(0, 0, Target::Gateway(1)),
            route(0x0a00_0000, 16, Target::Local),
            route(0x0a00_0900, 24, Target::Instance(0x0a00_0214)),
            route(0x0a00_0980, 25, Target::Blackhole),
            route(0xc0a8_0000, 16, Target::Peering(3)),
        ];
        for (i, new) in [
            Target::Blackhole,
            Target::Gateway(7),
            Target::Peering(2),
            Target::Instance(0x0a00_0101),
        ]
        .into_iter()
        .enumerate()
        {
            for per_table in [8usize, 40] {
                let at = (i + 2) % routes.len();
                let mut s = vec![RouteSlot::EMPTY; 2 * per_table];
                let mut t = RouteTables::new(&mut s, per_table);
                for r in routes {
                    t.insert(1, r).unwrap();
                }
                let old = t
                    .replace_target(1, routes[at].prefix, routes[at].len, new)
                    .unwrap();
                assert_eq!(old, routes[at]);
                let mut want = routes;
                want[at].target = new;
                check_table(&t, 1, &want, &[]);
                // Canonical storage: the same bytes as the new set inserted afresh.
                let mut s2 = vec![RouteSlot::EMPTY; 2 * per_table];
                let mut t2 = RouteTables::new(&mut s2, per_table);
                for r in want {
                    t2.insert(1, r).unwrap();
                }
                assert_eq!(t.table(1), t2.table(1));
                assert_eq!(t.len(0), 0, "the other table is untouched");
                // A route that is not there: NotFound, nothing changed.
                let before = t.table(1).map(<[u32]>::to_vec);
                assert_eq!(
                    t.replace_target(1, 0x0a00_0900, 23, Target::Blackhole),
                    Err(TableError::NotFound)
                );
                assert_eq!(
                    t.replace_target(9, 0, 0, Target::Blackhole),
                    Err(TableError::NotFound)
                );
                assert_eq!(t.table(1).map(<[u32]>::to_vec), before);
            }
        }
    }

    #[test]
    fn table_past_storage() {
        let mut s = vec![RouteSlot::EMPTY; 10];
        let mut t = RouteTables::new(&mut s, 4);
        assert_eq!(t.tables(), 2);
        let r = route(0, 0, Target::Local);
        assert_eq!(t.insert(2, r), Err(TableError::NotFound));
        assert_eq!(t.remove(2, 0, 0), Err(TableError::NotFound));
        assert_eq!(t.lookup(2, 0), None);
        assert_eq!(t.routes(2).count(), 0);
        t.clear_table(2);
        assert!(s.iter().all(|x| *x == RouteSlot::EMPTY));
    }

    #[test]
    fn canonicalises_routes() {
        let mut s = vec![RouteSlot::EMPTY; 4];
        let mut t = RouteTables::new(&mut s, 4);
        let messy = Route {
            prefix: 0x0a00_01ff,
            len: 24,
            target: Target::Local,
        };
        t.insert(0, messy).unwrap();
        assert_eq!(t.routes(0).next().unwrap().prefix, 0x0a00_0100);
        assert_eq!(t.insert(0, messy), Err(TableError::Exists));
        let long = Route {
            prefix: 7,
            len: 40,
            target: Target::Local,
        };
        t.insert(0, long).unwrap();
        assert_eq!(t.lookup(0, 7).unwrap().len, 32);
        assert_eq!(t.remove(0, 0x0a00_01ff, 24).unwrap().prefix, 0x0a00_0100);
        assert_eq!(t.remove(0, 7, 33).unwrap().len, 32);
        assert!(s.iter().all(|x| *x == RouteSlot::EMPTY));
    }

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// Big tables exercise 2 and 3 S-tree levels; removals rebuild them smaller.
    #[test]
    fn large_tables_match_linear_scan() {
        for (per_table, seed) in [(1000usize, 1u64), (5000, 2), (300, 3)] {
            let mut s = vec![RouteSlot::EMPTY; 2 * per_table];
            let mut t = RouteTables::new(&mut s, per_table);
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut want = Vec::new();
            while want.len() < per_table {
                let r = xorshift(&mut x);
                let len = [
                    0u8,
                    8,
                    12,
                    16,
                    20,
                    24,
                    24,
                    28,
                    30,
                    32,
                    32,
                    (r >> 40) as u8 % 33,
                ][(r >> 56) as usize % 12];
                // Cluster half the routes inside 10.0.0.0/8, like a real VPC.
                let base = if r & 1 == 0 {
                    0x0a00_0000 | ((r >> 8) as u32 & 0xff_ffff)
                } else {
                    (r >> 8) as u32
                };
                let rt = route(base, len, Target::Instance(r as u32));
                match t.insert(1, rt) {
                    Ok(()) => want.push(rt),
                    Err(TableError::Exists) => assert!(want
                        .iter()
                        .any(|w| (w.prefix, w.len) == (rt.prefix, rt.len))),
                    Err(e) => panic!("{e:?}"),
                }
            }
            let extra: Vec<u32> = (0..2000).map(|_| xorshift(&mut x) as u32).collect();
            check_table(&t, 1, &want, &extra);
            let fresh = (0u32..)
                .map(|i| route(i << 8, 24, Target::Local))
                .find(|r| !want.iter().any(|w| (w.prefix, w.len) == (r.prefix, r.len)))
                .unwrap();
            let before = t.slots.to_vec();
            assert_eq!(t.insert(1, fresh), Err(TableError::Full));
            assert_eq!(t.slots.to_vec(), before);
            assert_eq!(t.routes(0).count(), 0);
            // Remove every other route.
            let mut kept = Vec::new();
            for (i, r) in want.iter().enumerate() {
                if i % 2 == 0 {
                    assert_eq!(t.remove(1, r.prefix, r.len), Ok(*r));
                } else {
                    kept.push(*r);
                }
            }
            check_table(&t, 1, &kept, &extra);
            for r in &kept {
                t.remove(1, r.prefix, r.len).unwrap();
            }
            assert!(s.iter().all(|x| *x == RouteSlot::EMPTY));
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u16, Route),
        Remove(u16, u32, u8),
        Lookup(u16, u32),
    }

    fn prefix_strategy() -> impl Strategy<Value = (u32, u8)> {
        let base = prop_oneof![
            Just(0u32),
            Just(0x0a00_0000u32),
            Just(0x0a00_8000u32),
            Just(0x0a01_0000u32),
            Just(0xc0a8_0100u32),
            Just(u32::MAX),
            any::<u32>(),
        ];
        let len = prop_oneof![Just(0u8), Just(32u8), 0u8..=32];
        (base, len).prop_map(|(b, l)| (b & prefix_mask(l), l))
    }

    fn target_strategy() -> impl Strategy<Value = Target> {
        prop_oneof![
            Just(Target::Local),
            Just(Target::Blackhole),
            any::<u16>().prop_map(Target::Gateway),
            any::<u16>().prop_map(Target::Peering),
            any::<u32>().prop_map(Target::Instance),
        ]
    }

    fn addr_strategy() -> impl Strategy<Value = u32> {
        prop_oneof![
            any::<u32>(),
            (prefix_strategy(), any::<u32>()).prop_map(|((p, l), r)| p | (r & !prefix_mask(l))),
        ]
    }

    fn op_strategy(tables: u16) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..tables + 1, prefix_strategy(), target_strategy())
                .prop_map(|(t, (prefix, len), target)| Op::Insert(t, Route { prefix, len, target })),
            2 => (0..tables + 1, prefix_strategy()).prop_map(|(t, (p, l))| Op::Remove(t, p, l)),
            2 => (0..tables, addr_strategy()).prop_map(|(t, a)| Op::Lookup(t, a)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn matches_linear_scan(
            per_table in 1usize..40,
            ops in prop::collection::vec(op_strategy(3), 1..200),
            addrs in prop::collection::vec(any::<u32>(), 16),
        ) {
            let tables = 3u16;
            let mut s = vec![RouteSlot::EMPTY; usize::from(tables) * per_table];
            let mut t = RouteTables::new(&mut s, per_table);
            let mut model: Vec<Vec<Route>> = vec![Vec::new(); usize::from(tables)];
            for op in ops {
                let before = t.slots.to_vec();
                let region = |tb: u16| usize::from(tb) * per_table..(usize::from(tb) + 1) * per_table;
                match op {
                    Op::Insert(tb, r) => {
                        let got = t.insert(tb, r);
                        match model.get_mut(usize::from(tb)) {
                            None => prop_assert_eq!(got, Err(TableError::NotFound)),
                            Some(m) if m.iter().any(|x| (x.prefix, x.len) == (r.prefix, r.len)) => {
                                prop_assert_eq!(got, Err(TableError::Exists));
                            }
                            Some(m) if m.len() == per_table => prop_assert_eq!(got, Err(TableError::Full)),
                            Some(m) => {
                                prop_assert_eq!(got, Ok(()));
                                m.push(r);
                            }
                        }
                        if got.is_err() {
                            prop_assert_eq!(&t.slots.to_vec(), &before);
                        }
                        // Isolation: other tables' storage is untouched.
                        for other in (0..tables).filter(|&o| o != tb) {
                            prop_assert_eq!(&t.slots[region(other)], &before[region(other)]);
                        }
                    }
                    Op::Remove(tb, p, l) => {
                        let got = t.remove(tb, p, l);
                        let pos = model
                            .get(usize::from(tb))
                            .and_then(|m| m.iter().position(|x| (x.prefix, x.len) == (p, l)));
                        match pos {
                            Some(i) => {
                                let r = model[usize::from(tb)].remove(i);
                                prop_assert_eq!(got, Ok(r));
                            }
                            None => {
                                prop_assert_eq!(got, Err(TableError::NotFound));
                                prop_assert_eq!(&t.slots.to_vec(), &before);
                            }
                        }
                        for other in (0..tables).filter(|&o| o != tb) {
                            prop_assert_eq!(&t.slots[region(other)], &before[region(other)]);
                        }
                    }
                    Op::Lookup(tb, a) => {
                        prop_assert_eq!(t.lookup(tb, a), reference(&model[usize::from(tb)], a));
                    }
                }
            }
            for (tb, m) in model.iter().enumerate() {
                check_table(&t, tb as u16, m, &addrs);
            }
            // Emptying through remove leaves canonical (all-zero) storage.
            for (tb, m) in model.iter().enumerate() {
                for r in m {
                    prop_assert_eq!(t.remove(tb as u16, r.prefix, r.len), Ok(*r));
                }
            }
            prop_assert!(t.slots.iter().all(|x| *x == RouteSlot::EMPTY));
        }
    }
}
