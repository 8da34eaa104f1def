//! Where each part of a table sits, and the searches over it (see the module docs).
use super::{prefix_mask, Route, Target};
use zerocopy::{FromBytes, IntoBytes};

/// Words of a leaf: one cache line.
pub(super) const LEAF_WORDS: usize = 16;
/// Interval boundaries a leaf stores (words 0..10); its first interval starts at the
/// leaf's separator, kept in the level above.
pub(super) const LEAF_KEYS: usize = 10;
/// Intervals a leaf holds; their answers are 16-bit, in words 10..16.
pub(super) const LEAF_FAN: usize = LEAF_KEYS + 1;
/// Keys of an inner node: one cache line.
pub(super) const NODE_KEYS: usize = 16;
/// Children of an inner node.
pub(super) const NODE_FAN: usize = NODE_KEYS + 1;
/// Words of a header: one cache line in the fast layout.
pub(super) const HDR_WORDS: usize = 16;
/// Header word: route count (bits 0..16) and [`STALE`].
pub(super) const H_COUNT: usize = 0;
/// Header word: interval boundaries of the built structure (intervals - 1), which says how
/// many leaves the next rebuild must clear.
pub(super) const H_BOUNDS: usize = 1;
/// Header words 2 and 3: the route lengths present (bit `l` of the 33).
pub(super) const H_LENS: usize = 2;
/// Header words 4..16: separators of the top level's nodes (or of the leaves).
pub(super) const H_SEPS: usize = 4;
pub(super) const HDR_SEPS: usize = HDR_WORDS - H_SEPS;
/// Set in the count word while the search structure lags the routes.
pub(super) const STALE: u32 = 1 << 31;
const COUNT_MASK: u32 = 0xffff;
/// Inner levels above the leaves: 65,535 routes need 3.
pub(super) const MAX_LEVELS: usize = 4;
/// Most routes one table can hold: answers are route index + 1 in 16 bits.
pub(super) const MAX_ROUTES: usize = 0xffff;
/// Most words the planes start after the storage, to sit on a 64-byte boundary.
const MAX_PAD: usize = 15;
/// Up to this many routes, the slow path scans them all rather than searching by length.
const LINEAR_MAX: usize = 64;

/// The number of keys above `nip`. Keys are inverted (`!k`), so with `nip = !ip` this counts
/// boundaries `<= ip`; unused keys are 0 and never count. A branch-free compare of the
/// whole line costs less than a binary search's chain of dependent loads.
#[inline(always)]
pub(super) fn count_gt<const N: usize>(keys: &[u32; N], nip: u32) -> usize {
    #[cfg(target_arch = "x86_64")]
    if N == 12 || N == 16 {
        return sse2::count_gt(keys, nip);
    }
    keys.iter()
        .fold(0u32, |a, &k| a.wrapping_add(u32::from(k > nip))) as usize
}

/// The inner levels' compares on x86-64. What the compiler makes of the portable loop
/// (compares, then a population count emulated in a dozen instructions, as the baseline
/// instruction set has none) costs a quarter of a lookup in cache; the keys of a line are
/// sorted, so the keys above `nip` are a prefix of it and one bit scan of the compare mask
/// counts them. Measured on the leaves (10 keys), the portable loop does as well.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use core::arch::x86_64::{
        __m128i, _mm_cmpgt_epi32, _mm_loadu_si128, _mm_movemask_epi8, _mm_packs_epi16,
        _mm_packs_epi32, _mm_set1_epi32, _mm_setzero_si128, _mm_xor_si128,
    };

    #[inline(always)]
    pub fn count_gt<const N: usize>(keys: &[u32; N], nip: u32) -> usize {
        let p = keys.as_ptr().cast::<__m128i>();
        #[allow(unsafe_code)]
        // SAFETY: SSE2 is part of x86-64. The caller passes N = 12 or 16: the loads (16
        // bytes at keys + 0, 16, 32, and 48 when N = 16) read inside `keys`; loadu takes
        // any alignment.
        let mask = unsafe {
            // Unsigned compare as signed, both sides shifted by 2^31.
            let bias = _mm_set1_epi32(i32::MIN);
            let x = _mm_xor_si128(_mm_set1_epi32(nip as i32), bias);
            let gt = |i: usize| _mm_cmpgt_epi32(_mm_xor_si128(_mm_loadu_si128(p.add(i)), bias), x);
            let lo = _mm_packs_epi32(gt(0), gt(1));
            let hi = _mm_packs_epi32(gt(2), if N > 12 { gt(3) } else { _mm_setzero_si128() });
            _mm_movemask_epi8(_mm_packs_epi16(lo, hi)) as u32
        };
        mask.trailing_ones() as usize
    }
}

/// The `N` words at `off`.
#[inline(always)]
pub(super) fn line<const N: usize>(w: &[u32], off: usize) -> Option<&[u32; N]> {
    w.get(off..)?.first_chunk::<N>()
}

/// Answer `c` (0 ..= 10) of the leaf `leaf`: route index + 1, or 0 for no route.
#[inline(always)]
pub(super) fn leaf_answer(leaf: &[u32; LEAF_WORDS], c: usize) -> u32 {
    let word = leaf
        .get(LEAF_KEYS.wrapping_add(c >> 1))
        .copied()
        .unwrap_or(0);
    (word >> ((c & 1) << 4)) & 0xffff
}

/// Route info word: length (bits 0..8), target kind (8..16).
pub(super) fn info_len(info: u32) -> u8 {
    (info & 0xff) as u8
}

pub(super) fn info_kind(info: u32) -> u32 {
    (info >> 8) & 0xff
}

/// The routes of a table's data block.
pub(super) struct Areas<'a> {
    /// Two words per route: info, target argument.
    pub recs: &'a [u32],
    pub prefixes: &'a [u32],
    /// While the table is stale, `order[rank]` = index of the route of that rank in
    /// (prefix, length) order (kept in the leaves' room); else route `i` has rank `i`.
    pub order: Option<&'a [u16]>,
}

pub(super) struct AreasMut<'a> {
    /// The leaves (empty in the scan layout); the order while the table is stale.
    pub leaves: &'a mut [u32],
    pub recs: &'a mut [u32],
    pub prefixes: &'a mut [u32],
}

/// The order of a stale table, in the leaves' room.
pub(super) fn order_mut(leaves: &mut [u32]) -> &mut [u16] {
    <[u16]>::mut_from_bytes(leaves.as_mut_bytes()).unwrap_or_default()
}

impl Areas<'_> {
    /// Index of the route of rank `r`.
    #[inline]
    pub fn at(&self, r: usize) -> usize {
        match self.order {
            None => r,
            Some(o) => o.get(r).map_or(usize::MAX, |&i| usize::from(i)),
        }
    }

    /// (prefix, length) of route `i`.
    #[inline]
    pub fn key(&self, i: usize) -> (u32, u8) {
        let p = self.prefixes.get(i).copied().unwrap_or(0);
        let info = self.recs.get(i.wrapping_mul(2)).copied().unwrap_or(0);
        (p, info_len(info))
    }

    /// Route `i` as stored.
    pub fn route(&self, i: usize) -> Option<Route> {
        let rec = self.recs.get(i.wrapping_mul(2)..)?.first_chunk::<2>()?;
        Some(Route {
            prefix: *self.prefixes.get(i)?,
            len: info_len(rec[0]),
            target: Target::decode(info_kind(rec[0]), rec[1])?,
        })
    }

    /// Rank of the route with this prefix and length among the `n`, or the rank it would
    /// take.
    pub fn find(&self, n: usize, prefix: u32, len: u8) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = lo.wrapping_add(hi.wrapping_sub(lo) >> 1);
            match self.key(self.at(mid)).cmp(&(prefix, len)) {
                core::cmp::Ordering::Less => lo = mid.wrapping_add(1),
                core::cmp::Ordering::Greater => hi = mid,
                core::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The longest of the `n` routes containing `ip`, from the routes alone: what a table
    /// whose search structure lags (or the scan layout) answers.
    pub fn slow_lookup(&self, n: usize, lens: u64, ip: u32) -> Option<Route> {
        if n <= LINEAR_MAX {
            let mut best: Option<(u8, usize)> = None;
            for i in 0..n {
                let (p, l) = self.key(i);
                let better = best.is_none_or(|(bl, _)| l > bl);
                if better && (ip ^ p) & prefix_mask(l) == 0 {
                    best = Some((l, i));
                }
            }
            return self.route(best?.1);
        }
        // At most 33 binary searches, longest length first.
        for len in (0..=32u8).rev() {
            if lens & (1u64 << len) == 0 {
                continue;
            }
            if let Ok(rank) = self.find(n, ip & prefix_mask(len), len) {
                return self.route(self.at(rank));
            }
        }
        None
    }
}

/// Where everything sits, the same for every table of a [`super::RouteTables`]. The
/// storage holds two planes: first every table's index block (header line and inner
/// levels: small, and shared by every lookup of the table, so it stays in cache), then
/// every table's data block (leaves, route records, prefixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    /// Routes a table holds.
    pub cap: usize,
    /// Header, inner levels and leaves; else the scan layout: routes only, searched
    /// one by one (room too small for the structure).
    pub fast: bool,
    pub tables: usize,
    /// Word offsets in the storage of the index plane and the data plane.
    pub idx_base: usize,
    pub data_base: usize,
    /// Words per table in each plane.
    pub idx_words: usize,
    pub data_words: usize,
    /// Inner levels; level `l` (1 = just above the leaves) sits at `level_off[l - 1]` of
    /// the index block and has `level_nodes[l - 1]` nodes.
    pub depth: usize,
    pub level_off: [usize; MAX_LEVELS],
    pub level_nodes: [usize; MAX_LEVELS],
    /// Leaves room is made for: enough for `2 * cap + 1` intervals.
    pub leaves: usize,
    /// Offsets of the areas in the data block (the leaves come first).
    pub recs: usize,
    pub prefixes: usize,
    pub end: usize,
}

impl Layout {
    /// The fast layout for `tables` tables of `cap` routes in `words` words of storage
    /// starting at byte address `base`, if it fits; else the scan layout.
    pub fn new(cap: usize, tables: usize, words: usize, base: usize) -> Layout {
        Layout::fast(cap, tables, words, base).unwrap_or_else(|| Layout::scan(cap, tables, base))
    }

    fn fast(cap: usize, tables: usize, words: usize, base: usize) -> Option<Layout> {
        let leaves = cap
            .checked_mul(2)?
            .checked_add(1)?
            .div_ceil(LEAF_FAN)
            .max(1);
        let mut level_nodes = [0usize; MAX_LEVELS];
        let mut depth = 0usize;
        let mut below = leaves;
        // The header's separators route to at most HDR_SEPS + 1 nodes of the top level.
        while below > HDR_SEPS.checked_add(1)? {
            below = below.div_ceil(NODE_FAN);
            *level_nodes.get_mut(depth)? = below;
            depth = depth.checked_add(1)?;
        }
        let mut level_off = [0usize; MAX_LEVELS];
        let mut off = HDR_WORDS;
        // Top level first: a lookup walks the index block forward.
        for l in (0..depth).rev() {
            *level_off.get_mut(l)? = off;
            off = off.checked_add(level_nodes.get(l)?.checked_mul(NODE_KEYS)?)?;
        }
        let idx_words = off;
        let recs = leaves.checked_mul(LEAF_WORDS)?;
        let prefixes = recs.checked_add(cap.checked_mul(2)?)?;
        let end = prefixes.checked_add(cap)?;
        let data_words = end.div_ceil(LEAF_WORDS).checked_mul(LEAF_WORDS)?;
        // Lines start on 64-byte boundaries: the planes start at the first one. The fit
        // is judged on the worst padding, so the choice of layout never depends on where
        // the storage happens to sit.
        let pad = (0usize.wrapping_sub(base) & 63) >> 2;
        let data_base = tables.checked_mul(idx_words)?.checked_add(pad)?;
        let need = tables
            .checked_mul(idx_words.checked_add(data_words)?)?
            .checked_add(MAX_PAD)?;
        (need <= words).then_some(Layout {
            cap,
            fast: true,
            tables,
            idx_base: pad,
            data_base,
            idx_words,
            data_words,
            depth,
            level_off,
            level_nodes,
            leaves,
            recs,
            prefixes,
            end,
        })
    }

    /// Per table, a count word, then its routes only. Fits any room of at least 4 words
    /// a route (28-byte slots give 7). Records sit on 8-byte boundaries, for their
    /// one-write replacement.
    fn scan(cap: usize, tables: usize, base: usize) -> Layout {
        let pad = (0usize.wrapping_sub(base) & 7) >> 2;
        let prefixes = cap.saturating_mul(2);
        let end = prefixes.saturating_add(cap);
        let data_words = end.saturating_add(1) & !1;
        Layout {
            cap,
            fast: false,
            tables,
            idx_base: pad,
            data_base: pad.saturating_add(tables).saturating_add(1) & !1,
            idx_words: 1,
            data_words,
            depth: 0,
            level_off: [0; MAX_LEVELS],
            level_nodes: [0; MAX_LEVELS],
            leaves: 0,
            recs: 0,
            prefixes,
            end,
        }
    }

    /// Word offsets of table `t`'s index block and data block in the storage.
    #[inline(always)]
    pub fn blocks(&self, t: usize) -> Option<(usize, usize)> {
        if t >= self.tables {
            return None;
        }
        // t < tables and the planes fit the storage: no overflow.
        Some((
            self.idx_base.wrapping_add(t.wrapping_mul(self.idx_words)),
            self.data_base.wrapping_add(t.wrapping_mul(self.data_words)),
        ))
    }

    /// Route count in a header's count word.
    #[inline(always)]
    pub fn count(&self, count_word: u32) -> usize {
        ((count_word & COUNT_MASK) as usize).min(self.cap)
    }

    /// The routes of table blocks `ib`, `db`.
    pub fn areas<'a>(&self, ib: &[u32], db: &'a [u32]) -> Option<Areas<'a>> {
        let (leaves, rest) = db.split_at_checked(self.recs)?;
        let (recs, rest) = rest.split_at_checked(self.prefixes.checked_sub(self.recs)?)?;
        let prefixes = rest.get(..self.end.checked_sub(self.prefixes)?)?;
        let stale = ib.get(H_COUNT).is_some_and(|&c| c & STALE != 0);
        let order = if stale {
            Some(<[u16]>::ref_from_bytes(leaves.as_bytes()).ok()?)
        } else {
            None
        };
        Some(Areas {
            recs,
            prefixes,
            order,
        })
    }

    pub fn areas_mut<'a>(&self, db: &'a mut [u32]) -> Option<AreasMut<'a>> {
        let (leaves, rest) = db.split_at_mut_checked(self.recs)?;
        let (recs, rest) = rest.split_at_mut_checked(self.prefixes.checked_sub(self.recs)?)?;
        let prefixes = rest.get_mut(..self.end.checked_sub(self.prefixes)?)?;
        Some(AreasMut {
            leaves,
            recs,
            prefixes,
        })
    }

    /// The node (level >= 1) or leaf (level 0) index that the header routes `nip` to.
    #[inline(always)]
    pub fn top(hdr: &[u32; HDR_WORDS], nip: u32) -> usize {
        hdr.get(H_SEPS..)
            .and_then(|s| s.first_chunk::<HDR_SEPS>())
            .map_or(0, |s| count_gt(s, nip))
    }

    /// Offset in the index block of node `node` of level `level` (1-based).
    #[inline(always)]
    pub fn node_off(&self, level: usize, node: usize) -> usize {
        let off = self
            .level_off
            .get(level.wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        off.wrapping_add(node.wrapping_mul(NODE_KEYS))
    }

    /// One inner level: the child of node `pos` that `nip` falls in.
    #[inline(always)]
    pub fn step(node: &[u32; NODE_KEYS], pos: usize, nip: u32) -> usize {
        pos.wrapping_mul(NODE_FAN).wrapping_add(count_gt(node, nip))
    }

    /// The leaf's answer for `nip`: route index + 1, or 0.
    #[inline(always)]
    pub fn in_leaf(leaf: &[u32; LEAF_WORDS], nip: u32) -> u32 {
        let keys = leaf
            .first_chunk::<LEAF_KEYS>()
            .map_or(0, |k| count_gt(k, nip));
        leaf_answer(leaf, keys)
    }

    /// The route record `rec` (info, argument) as the answer for `ip`: the route's prefix
    /// is `ip` cut to its length, so the prefix array is not read.
    #[inline(always)]
    pub fn answer(rec: &[u32; 2], ip: u32) -> Option<Route> {
        let len = info_len(rec[0]);
        Some(Route {
            prefix: ip & prefix_mask(len),
            len,
            target: Target::decode(info_kind(rec[0]), rec[1])?,
        })
    }

    /// The longest match of `ip` through the search structure, or `None` to take the
    /// slow path (`Some(None)`: no route).
    #[inline(always)]
    pub fn fast_lookup(&self, ib: &[u32], db: &[u32], ip: u32) -> Option<Option<Route>> {
        let hdr = line::<HDR_WORDS>(ib, 0)?;
        if hdr[H_COUNT] & STALE != 0 {
            return None;
        }
        let nip = !ip;
        let mut pos = Layout::top(hdr, nip);
        for level in (1..=self.depth).rev() {
            let node = line::<NODE_KEYS>(ib, self.node_off(level, pos))?;
            pos = Layout::step(node, pos, nip);
        }
        let leaf = line::<LEAF_WORDS>(db, pos.wrapping_mul(LEAF_WORDS))?;
        let Some(i) = Layout::in_leaf(leaf, nip).checked_sub(1) else {
            return Some(None);
        };
        let rec = line::<2>(db, self.recs.wrapping_add((i as usize).wrapping_mul(2)))?;
        Some(Layout::answer(rec, ip))
    }

    /// Route lengths present, from a fast header (every length in the scan layout).
    pub fn lens(&self, ib: &[u32]) -> u64 {
        if !self.fast {
            return u64::MAX;
        }
        let lo = ib.get(H_LENS).copied().unwrap_or(u32::MAX);
        let hi = ib.get(H_LENS.wrapping_add(1)).copied().unwrap_or(u32::MAX);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// The longest match of `ip` in a table given its blocks.
    #[inline(always)]
    pub fn lookup(&self, ib: &[u32], db: &[u32], ip: u32) -> Option<Route> {
        if self.fast {
            if let Some(found) = self.fast_lookup(ib, db, ip) {
                return found;
            }
        }
        self.slow(ib, db, ip)
    }

    #[cold]
    pub fn slow(&self, ib: &[u32], db: &[u32], ip: u32) -> Option<Route> {
        let n = self.count(*ib.get(H_COUNT)?);
        self.areas(ib, db)?.slow_lookup(n, self.lens(ib), ip)
    }
}
