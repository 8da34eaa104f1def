//! The rebuild of a table: routes into (prefix, length) order, then the intervals, leaves,
//! inner levels and header, in one pass over the routes.
use super::layout::{
    info_len, order_mut, AreasMut, Layout, H_BOUNDS, H_COUNT, H_LENS, H_SEPS, LEAF_FAN, LEAF_KEYS,
    LEAF_WORDS, NODE_FAN, STALE,
};
use super::prefix_mask;

/// Longest chain of nested prefixes: /0 .. /32.
const MAX_DEPTH: usize = 33;

impl Layout {
    /// Rebuilds table blocks `ib` (index) and `db` (data) from its routes: O(n). Puts the
    /// routes in rank order (so `order` becomes the identity and storage is canonical), then
    /// writes the search structure and a fresh header. Everything the previous structure
    /// used and this one does not is zeroed.
    pub fn rebuild(&self, ib: &mut [u32], db: &mut [u32]) {
        let Some(&count) = ib.get(H_COUNT) else {
            return;
        };
        let n = self.count(count);
        let stale = count & STALE != 0;
        let Some(AreasMut {
            leaves,
            recs,
            prefixes,
        }) = self.areas_mut(db)
        else {
            return;
        };
        if stale {
            permute(order_mut(leaves), recs, prefixes, n);
        }
        if let Some(c) = ib.get_mut(H_COUNT) {
            *c = n as u32;
        }
        if !self.fast {
            return;
        }
        // A stale table kept its order in the leaves' room: clear it all.
        let old_leaves = if stale {
            self.leaves
        } else {
            ib.get(H_BOUNDS)
                .map_or(0, |&b| (b as usize).wrapping_div(LEAF_FAN).wrapping_add(1))
        };
        let mut lens = 0u64;
        for i in 0..n {
            let len = recs.get(i.wrapping_mul(2)).map_or(0, |&r| info_len(r));
            lens |= 1u64.checked_shl(u32::from(len)).unwrap_or(0);
        }
        // Separators and inner levels are rewritten whole.
        if let Some(s) = ib.get_mut(H_SEPS..) {
            s.fill(0);
        }
        let mut w = Writer::new(self, leaves, ib);
        intervals(recs, prefixes, n, &mut w);
        let used = w.finish();
        let bounds = w.count.saturating_sub(1);
        let unused = used.wrapping_mul(LEAF_WORDS)..old_leaves.wrapping_mul(LEAF_WORDS);
        if let Some(s) = w.leaves.get_mut(unused) {
            s.fill(0);
        }
        if let Some([b, lo, hi]) = w.ib.get_mut(H_BOUNDS..H_SEPS) {
            *b = bounds as u32;
            *lo = lens as u32;
            *hi = (lens >> 32) as u32;
        }
    }
}

const _: () = assert!(H_LENS == H_BOUNDS + 1 && H_SEPS == H_LENS + 2);

/// Puts the `n` routes (records and prefixes) into rank order by following the cycles of
/// `order`, in place: each route moves once.
fn permute(order: &mut [u16], recs: &mut [u32], prefixes: &mut [u32], n: usize) {
    if recs.len() < n.saturating_mul(2) || prefixes.len() < n || order.len() < n {
        return;
    }
    let get = |recs: &[u32], prefixes: &[u32], i: usize| {
        let at = i.wrapping_mul(2);
        (
            recs.get(at).copied().unwrap_or(0),
            recs.get(at.wrapping_add(1)).copied().unwrap_or(0),
            prefixes.get(i).copied().unwrap_or(0),
        )
    };
    let set =
        |recs: &mut [u32], prefixes: &mut [u32], i: usize, (info, arg, p): (u32, u32, u32)| {
            if let Some([x, y]) = recs
                .get_mut(i.wrapping_mul(2)..)
                .and_then(|s| s.first_chunk_mut::<2>())
            {
                *x = info;
                *y = arg;
            }
            if let Some(x) = prefixes.get_mut(i) {
                *x = p;
            }
        };
    for r in 0..n {
        if order.get(r).is_none_or(|&o| usize::from(o) == r) {
            continue;
        }
        let saved = get(recs, prefixes, r);
        let mut j = r;
        // A cycle is at most n long; the bound only guards against a broken order.
        for _ in 0..n {
            let k = order.get(j).map_or(r, |&o| usize::from(o));
            if let Some(o) = order.get_mut(j) {
                *o = j as u16;
            }
            if k == r || k >= n {
                set(recs, prefixes, j, saved);
                break;
            }
            let moved = get(recs, prefixes, k);
            set(recs, prefixes, j, moved);
            j = k;
        }
    }
}

/// Writes intervals `(start, answer)` into leaves, and each leaf's separator into the level
/// above. Merges an interval into the one before when both have the same answer; a later
/// interval at the same start replaces the earlier (a longer route starting there). A leaf
/// is assembled in `line` and stored whole, so every word of it is written once.
struct Writer<'a, 'l> {
    lay: &'a Layout,
    leaves: &'l mut [u32],
    ib: &'l mut [u32],
    /// Intervals written.
    count: usize,
    /// The leaf being assembled, its index and the intervals in it.
    line: [u32; LEAF_WORDS],
    leaf: usize,
    fill: usize,
    /// The answer of the last interval written.
    last: u32,
    /// The interval not written yet: a route starting at the same address may replace it.
    pending: Option<(u32, u32)>,
}

impl<'a, 'l> Writer<'a, 'l> {
    fn new(lay: &'a Layout, leaves: &'l mut [u32], ib: &'l mut [u32]) -> Self {
        Writer {
            lay,
            leaves,
            ib,
            count: 0,
            line: [0; LEAF_WORDS],
            leaf: 0,
            fill: 0,
            last: 0,
            pending: None,
        }
    }

    #[inline(always)]
    fn emit(&mut self, start: u32, answer: u32) {
        match &mut self.pending {
            Some((s, a)) if *s == start => *a = answer,
            _ => {
                self.flush();
                self.pending = Some((start, answer));
            }
        }
    }

    #[inline(always)]
    fn flush(&mut self) {
        let Some((start, answer)) = self.pending.take() else {
            return;
        };
        if self.count > 0 && answer == self.last {
            return;
        }
        self.count = self.count.wrapping_add(1);
        self.last = answer;
        if self.fill == LEAF_FAN {
            self.store();
            self.leaf = self.leaf.wrapping_add(1);
            self.fill = 0;
            self.separator(self.leaf, !start.wrapping_sub(1));
        }
        let p = self.fill;
        // Key p - 1 is `!(start - 1)`, so unused keys (0) never count; the leaf's first
        // interval starts at its separator.
        if let Some(k) = p.checked_sub(1).and_then(|k| self.line.get_mut(k)) {
            *k = !start.wrapping_sub(1);
        }
        if let Some(w) = self.line.get_mut(LEAF_KEYS.wrapping_add(p >> 1)) {
            *w |= (answer & 0xffff) << ((p & 1) << 4);
        }
        self.fill = p.wrapping_add(1);
    }

    /// Writes the leaf being assembled and starts the next one empty.
    #[inline(always)]
    fn store(&mut self) {
        let at = self.leaf.wrapping_mul(LEAF_WORDS);
        if let Some(l) = self
            .leaves
            .get_mut(at..)
            .and_then(|s| s.first_chunk_mut::<LEAF_WORDS>())
        {
            *l = self.line;
        }
        self.line = [0; LEAF_WORDS];
    }

    /// The last leaf; returns the leaves used.
    fn finish(&mut self) -> usize {
        self.flush();
        self.store();
        self.leaf.wrapping_add(1)
    }

    /// Leaf `leaf`'s separator goes to the lowest level where the leaf's ancestor is not
    /// its parent's first child (a first child's separator is its parent's), at worst to
    /// the header.
    fn separator(&mut self, leaf: usize, key: u32) {
        let mut child = leaf;
        for level in 1..=self.lay.depth {
            let slot = child.wrapping_rem(NODE_FAN);
            let node = child.wrapping_div(NODE_FAN);
            if slot != 0 {
                let at = self
                    .lay
                    .node_off(level, node)
                    .wrapping_add(slot)
                    .wrapping_sub(1);
                if let Some(k) = self.ib.get_mut(at) {
                    *k = key;
                }
                return;
            }
            child = node;
        }
        // child >= 1: leaf >= 1, and a first child at every level divides down to the
        // top level's node index.
        if let Some(k) = self.ib.get_mut(H_SEPS.wrapping_add(child).wrapping_sub(1)) {
            *k = key;
        }
    }
}

/// The intervals of `n` routes in rank order (pre-order of the prefix trie): each route
/// starts an interval at its prefix, and when it ends the route containing it (the one
/// below it on the stack) takes over again.
fn intervals(recs: &[u32], prefixes: &[u32], n: usize, w: &mut Writer<'_, '_>) {
    // Open routes: (last address, answer); lengths strictly grow up the stack.
    let mut stack = [(0u32, 0u32); MAX_DEPTH];
    let mut depth = 0usize;
    w.emit(0, 0);
    let routes = prefixes
        .iter()
        .zip(recs.chunks_exact(2))
        .take(n)
        .enumerate();
    for (i, (&start, rec)) in routes {
        let info = rec.first().copied().unwrap_or(0);
        // Close the open routes that end before this one starts.
        while let Some(top) = depth.checked_sub(1) {
            let end = stack.get(top).map_or(u32::MAX, |e| e.0);
            if end >= start {
                break;
            }
            let below = top
                .checked_sub(1)
                .and_then(|d| stack.get(d))
                .map_or(0, |e| e.1);
            // end < start <= u32::MAX: no overflow.
            w.emit(end.wrapping_add(1), below);
            depth = top;
        }
        let answer = (i as u32).wrapping_add(1);
        w.emit(start, answer);
        if let Some(e) = stack.get_mut(depth) {
            *e = (start | !prefix_mask(info_len(info)), answer);
            depth = depth.wrapping_add(1);
        }
    }
    while let Some(top) = depth.checked_sub(1) {
        let end = stack.get(top).map_or(u32::MAX, |e| e.0);
        let below = top
            .checked_sub(1)
            .and_then(|d| stack.get(d))
            .map_or(0, |e| e.1);
        if end != u32::MAX {
            w.emit(end.wrapping_add(1), below);
        }
        depth = top;
    }
}
