//! Per-VRF longest-prefix-match route tables.
//!
//! # Design
//!
//! The `n` routes of a table cut the address space into at most `2n + 1` intervals, each
//! with one answer: its longest match. A lookup finds the interval holding the address in
//! a static B+-tree and reads the answer's record; no ancestor walk, no branch on the data.
//! Each table has two blocks, in two planes of the storage:
//!
//! ```text
//! index plane, every table's index block side by side (768 B for 1,000 routes):
//!   header     route count and flags, interval count, lengths present,   one cache line
//!              12 separators routing to the top level
//!   levels     inner nodes of 16 separators (17 children), top first      one line each
//! data plane, every table's data block side by side:
//!   leaves     11 intervals a line: 10 boundaries, 11 answers (16 bits:   one line each
//!              route index + 1, 0 = no route)
//!   recs[cap]  per route 8 bytes: info (length 0..8 | target kind 8..16), target argument
//!   prefixes   per route                                                <- source of truth
//! ```
//!
//! Routes are kept in (prefix, length) order, the pre-order of the prefix trie, so route
//! `i` has rank `i`. Keys are stored as `!(boundary - 1)`: unused ones are 0 and never
//! count, so an all-zero table is a valid empty one and a search needs no bounds. Every
//! line is searched whole with one branch-free compare (SSE2 on x86-64): the count of keys
//! `> !ip` is the child to take, then the interval in the leaf. For a table of up to about
//! 1,200 routes (182 leaves) a lookup reads 4 lines: header and one inner node, from the
//! index plane (3 MB for 4,096 such tables, which stays in cache), a leaf and a record. A
//! table of 65,535 routes has 3 inner levels. [`RouteTables::lookup_batch`] runs groups of
//! 64 lookups level by level, each level prefetching the next line of every lookup of the
//! group, so their cache misses overlap (a core keeps 10 to 16 in flight).
//!
//! A change rebuilds the table in one O(n) pass over its routes: a stack of the open
//! nested routes gives the intervals in address order, merged where the answer repeats,
//! written leaf by leaf with each leaf's separator sent up to the level that keeps it
//! (about 8 µs for 1,000 routes, insertion into the sorted routes included). Tables of
//! more than 4,096 routes defer it: their changes mark them stale (new routes appended,
//! their ranks kept in a permutation in the leaves' room, which the search then does not
//! use) and [`RouteTables::commit`] rebuilds them (the permutation applied in place, then
//! the pass above): 65,535 routes in random order take about 0.1 s. A stale table answers
//! right but slowly, by a binary search per route length present. Every change runs under
//! `&mut self` and the firmware is single threaded, so the pipeline sees a table before or
//! after a change (or a commit), never during one; tables are rebuilt in place, with no
//! spare copy. A change is validated before anything is written, so `Exists`, `NotFound`
//! and `Full` leave the table exactly as it was; [`RouteTables::replace_target`] writes one
//! 8-byte record and nothing else.
//!
//! A capacity too small for the header and leaves (under about 40 routes a table) gets
//! the scan layout: the count and the routes only, searched one by one.
//!
//! # Memory
//!
//! **28 bytes per route** of capacity (`size_of::<RouteSlot>()`), everything included:
//! 4,096 VRFs x 1,000 routes = 114.7 MB. Per route: its record (8 B) and prefix (4 B), and
//! room for two intervals in leaves (11.6 B); per table a header line, the inner nodes
//! (0.7 B a route) and alignment: a 1,000-route table uses 26,432 of its 28,000 bytes.
//! Storage is canonical once a table is rebuilt (unused words are zero): equal route sets
//! give equal bytes, and a table emptied by removals is all zero again.
//!
//! Routes are canonicalised on the way in: a length above 32 counts as 32 and host bits
//! of the prefix are cleared (the admin handler should refuse such routes beforehand).
mod build;
mod layout;
#[cfg(test)]
mod tests;

use super::TableError;
use layout::{
    line, order_mut, Layout, HDR_WORDS, H_COUNT, H_LENS, LEAF_WORDS, MAX_ROUTES, NODE_KEYS, STALE,
};
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

    /// Written as a chain of selects over values all built up front, not a `match`: the
    /// kinds of successive lookups are random, and a jump on them is mispredicted about
    /// every other time (a quarter of a batched lookup's time in cache).
    #[inline(always)]
    fn decode(kind: u32, arg: u32) -> Option<Target> {
        let gateway = Target::Gateway((arg & 0xffff) as u16);
        let peering = Target::Peering((arg & 0xffff) as u16);
        let instance = Target::Instance(arg);
        let t = if kind == KIND_INSTANCE {
            instance
        } else if kind == KIND_PEERING {
            peering
        } else if kind == KIND_GATEWAY {
            gateway
        } else if kind == KIND_BLACKHOLE {
            Target::Blackhole
        } else {
            Target::Local
        };
        (KIND_LOCAL..=KIND_INSTANCE).contains(&kind).then_some(t)
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

/// 28 bytes of route table storage, one route of capacity: the tables lay their index and
/// data planes over the slots as one word array (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RouteSlot {
    words: [u32; 7],
}

const _: () = assert!(core::mem::size_of::<RouteSlot>() == 28);

impl RouteSlot {
    /// An empty slot, to fill storage with.
    pub const EMPTY: RouteSlot = RouteSlot { words: [0; 7] };
}

/// The mask of a prefix length (0 ..= 32).
pub fn prefix_mask(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32u32.saturating_sub(u32::from(len)))
        .unwrap_or(0)
}

/// Tables of up to this many routes are rebuilt at each change (about 30 µs at this size);
/// bigger ones wait for [`RouteTables::commit`].
const EAGER_REBUILD: usize = 4096;
/// Lookups [`RouteTables::lookup_batch`] runs side by side. Out of cache, 64 took 22 ns a
/// lookup where 32 took 24 and 16 took 27: the later lookups of a group give the earlier
/// ones' prefetches time to land. The state is 3 words a lookup on the stack.
const GROUP: usize = 64;
/// Marks a batch lookup that takes the slow path, or has no table.
const SLOW: usize = usize::MAX;
const NO_TABLE: usize = usize::MAX - 1;

/// All route tables (VRFs) over storage the platform provides: `routes_per_table` slots
/// per table.
pub struct RouteTables<'m> {
    slots: &'m mut [RouteSlot],
    routes_per_table: usize,
    layout: Layout,
    /// Tables bigger than this defer their rebuild to [`RouteTables::commit`].
    eager: usize,
    /// Some table may be stale.
    stale: bool,
}

impl<'m> RouteTables<'m> {
    /// Route tables over `slots`, emptied.
    pub fn new(slots: &'m mut [RouteSlot], routes_per_table: usize) -> Self {
        slots.fill(RouteSlot::EMPTY);
        let routes_per_table = routes_per_table.max(1);
        let cap = routes_per_table.min(MAX_ROUTES);
        let tables = slots.len().checked_div(routes_per_table).unwrap_or(0);
        let words = slots.len().saturating_mul(7);
        let layout = Layout::new(cap, tables, words, slots.as_ptr() as usize);
        RouteTables {
            slots,
            routes_per_table,
            layout,
            eager: EAGER_REBUILD,
            stale: false,
        }
    }

    /// Number of route tables.
    pub fn tables(&self) -> usize {
        self.layout.tables
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

    fn words(&self) -> &[u32] {
        <[u32]>::ref_from_bytes(self.slots.as_bytes()).unwrap_or(&[])
    }

    /// Table `table`'s index block and data block.
    #[inline(always)]
    fn blocks(&self, table: u16) -> Option<(&[u32], &[u32])> {
        let lay = &self.layout;
        let (i, d) = lay.blocks(usize::from(table))?;
        let w = self.words();
        Some((
            w.get(i..i.checked_add(lay.idx_words)?)?,
            w.get(d..d.checked_add(lay.data_words)?)?,
        ))
    }

    fn blocks_mut(&mut self, table: u16) -> Option<(&mut [u32], &mut [u32])> {
        let lay = self.layout;
        let (i, d) = lay.blocks(usize::from(table))?;
        let w = <[u32]>::mut_from_bytes(self.slots.as_mut_bytes()).ok()?;
        // The index plane lies wholly before the data plane.
        let (iplane, dplane) = w.split_at_mut_checked(lay.data_base)?;
        let d = d.checked_sub(lay.data_base)?;
        Some((
            iplane.get_mut(i..i.checked_add(lay.idx_words)?)?,
            dplane.get_mut(d..d.checked_add(lay.data_words)?)?,
        ))
    }

    /// Number of routes in `table` (0 for a table past the storage).
    pub fn len(&self, table: u16) -> usize {
        self.blocks(table)
            .and_then(|(i, _)| i.get(H_COUNT))
            .map_or(0, |&c| self.layout.count(c))
    }

    /// Empties one table.
    pub fn clear_table(&mut self, table: u16) {
        if let Some((i, d)) = self.blocks_mut(table) {
            i.fill(0);
            d.fill(0);
        }
    }

    /// Adds a route; `Exists` for the same prefix and length, `Full` when the table is full,
    /// `NotFound` for a table index past the storage. A table of more than 4,096 routes is
    /// only rebuilt by [`RouteTables::commit`] (as after [`RouteTables::remove`]): call it
    /// once a batch of changes is made, or its lookups stay on the slow path.
    pub fn insert(&mut self, table: u16, route: Route) -> Result<(), TableError> {
        let len = route.len.min(32);
        let prefix = route.prefix & prefix_mask(len);
        let (kind, arg) = route.target.encode();
        let record = [u32::from(len) | (kind << 8), arg];
        let lay = self.layout;
        let (ib, db) = self.blocks(table).ok_or(TableError::NotFound)?;
        let count = *ib.get(H_COUNT).ok_or(TableError::NotFound)?;
        let n = lay.count(count);
        let a = lay.areas(ib, db).ok_or(TableError::NotFound)?;
        let rank = match a.find(n, prefix, len) {
            Ok(_) => return Err(TableError::Exists),
            Err(r) => r,
        };
        if n >= lay.cap {
            return Err(TableError::Full);
        }
        let stale = count & STALE != 0 || (lay.fast && n >= self.eager);
        let (ib, db) = self.blocks_mut(table).ok_or(TableError::NotFound)?;
        let a = lay.areas_mut(db).ok_or(TableError::NotFound)?;
        let n1 = n.wrapping_add(1);
        if a.recs.len() < n1.saturating_mul(2) || a.prefixes.len() < n1 {
            return Err(TableError::NotFound);
        }
        // In bounds below: rank <= n < n1 <= the routes' room.
        let at = if stale {
            // Appended as route n; its rank goes in the order.
            let order = order_mut(a.leaves);
            if count & STALE == 0 {
                for (r, o) in order.iter_mut().take(n).enumerate() {
                    *o = r as u16;
                }
            }
            if let Some(o) = order.get_mut(rank..=n) {
                o.rotate_right(1);
                if let Some(first) = o.first_mut() {
                    *first = n as u16;
                }
            }
            n
        } else {
            // Routes stay in rank order: those after it move up one.
            let r2 = rank.wrapping_mul(2);
            a.recs
                .copy_within(r2..n.wrapping_mul(2), r2.wrapping_add(2));
            a.prefixes.copy_within(rank..n, rank.wrapping_add(1));
            rank
        };
        if let Some(rec) = a
            .recs
            .get_mut(at.wrapping_mul(2)..)
            .and_then(|s| s.first_chunk_mut::<2>())
        {
            *rec = record;
        }
        if let Some(p) = a.prefixes.get_mut(at) {
            *p = prefix;
        }
        if let Some(c) = ib.get_mut(H_COUNT) {
            *c = n1 as u32 | if stale { STALE } else { 0 };
        }
        if lay.fast {
            if let Some(l) = ib.get_mut(H_LENS..).and_then(|s| s.first_chunk_mut::<2>()) {
                let bit = 1u64 << len;
                l[0] |= bit as u32;
                l[1] |= (bit >> 32) as u32;
            }
        }
        self.changed(table);
        Ok(())
    }

    /// After a change to `table`: rebuild it now, unless it is stale and bigger than
    /// `eager`, then it waits for [`RouteTables::commit`].
    fn changed(&mut self, table: u16) {
        let lay = self.layout;
        let eager = self.eager;
        let Some((ib, db)) = self.blocks_mut(table) else {
            return;
        };
        let count = ib.get(H_COUNT).copied().unwrap_or(0);
        if count & STALE == 0 || lay.count(count) <= eager {
            lay.rebuild(ib, db);
        } else {
            self.stale = true;
        }
    }

    /// Rebuilds the search structure of every table whose rebuild was deferred (tables of
    /// more than 4,096 routes): until then their lookups are right but slow (a binary
    /// search per route length present). The admin handler calls it once its commands are
    /// applied, so a batch of changes costs one rebuild per table; O(n) per stale table,
    /// nothing when none is.
    pub fn commit(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        let lay = self.layout;
        for t in 0..lay.tables {
            let Ok(t) = u16::try_from(t) else {
                break;
            };
            if let Some((ib, db)) = self.blocks_mut(t) {
                if ib.get(H_COUNT).is_some_and(|&c| c & STALE != 0) {
                    lay.rebuild(ib, db);
                }
            }
        }
    }

    /// Sets the target of the route with this prefix and length and returns the route as it
    /// was; `NotFound` (nothing changed) when there is none. Nothing else moves: only the
    /// route's 8-byte record is written, in one write (hardware does it with one 64-bit
    /// store), so a lookup finds the old target or the new one, and every other route and
    /// the search structure are untouched.
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
        let (ib, db) = self.blocks(table).ok_or(TableError::NotFound)?;
        let n = lay.count(*ib.get(H_COUNT).ok_or(TableError::NotFound)?);
        let a = lay.areas(ib, db).ok_or(TableError::NotFound)?;
        let rank = a.find(n, prefix, len).map_err(|_| TableError::NotFound)?;
        let i = a.at(rank);
        let old = a.route(i).ok_or(TableError::NotFound)?;
        let (kind, arg) = target.encode();
        let (_, db) = self.blocks_mut(table).ok_or(TableError::NotFound)?;
        let rec = db
            .get_mut(lay.recs.wrapping_add(i.wrapping_mul(2))..)
            .and_then(|s| s.first_chunk_mut::<2>())
            .ok_or(TableError::NotFound)?;
        *rec = [u32::from(len) | (kind << 8), arg];
        Ok(old)
    }

    /// Removes the route with this prefix and length.
    pub fn remove(&mut self, table: u16, prefix: u32, len: u8) -> Result<Route, TableError> {
        let len = len.min(32);
        let prefix = prefix & prefix_mask(len);
        let lay = self.layout;
        let (ib, db) = self.blocks(table).ok_or(TableError::NotFound)?;
        let count = *ib.get(H_COUNT).ok_or(TableError::NotFound)?;
        let n = lay.count(count);
        let a = lay.areas(ib, db).ok_or(TableError::NotFound)?;
        let rank = a.find(n, prefix, len).map_err(|_| TableError::NotFound)?;
        let i = a.at(rank);
        let removed = a.route(i).ok_or(TableError::NotFound)?;
        let last = n.checked_sub(1).ok_or(TableError::NotFound)?;
        let was_stale = count & STALE != 0;
        let stale = was_stale || (lay.fast && last > self.eager);
        // Stale, route `last` moves into the hole, so routes 0..n-1 stay the ones in use.
        let last_rank = if was_stale {
            let (p, l) = a.key(last);
            a.find(n, p, l).map_err(|_| TableError::NotFound)?
        } else {
            last
        };
        let (ib, db) = self.blocks_mut(table).ok_or(TableError::NotFound)?;
        let a = lay.areas_mut(db).ok_or(TableError::NotFound)?;
        if a.prefixes.len() < n || a.recs.len() < n.saturating_mul(2) || i >= n {
            return Err(TableError::NotFound);
        }
        // In bounds below: rank, i, last < n <= the routes' room.
        let (l2, i2) = (last.wrapping_mul(2), i.wrapping_mul(2));
        if stale {
            let order = order_mut(a.leaves);
            if !was_stale {
                for (r, o) in order.iter_mut().take(n).enumerate() {
                    *o = r as u16;
                }
            }
            if let Some(o) = order.get_mut(last_rank) {
                *o = i as u16;
            }
            if let Some(o) = order.get_mut(rank..n) {
                o.rotate_left(1);
            }
            if let Some(o) = order.get_mut(last) {
                *o = 0;
            }
            a.recs.copy_within(l2..l2.wrapping_add(2), i2);
            a.prefixes.copy_within(last..n, i);
        } else {
            a.recs
                .copy_within(i2.wrapping_add(2)..n.wrapping_mul(2), i2);
            a.prefixes.copy_within(i.wrapping_add(1)..n, i);
        }
        for x in a.recs.get_mut(l2..l2.wrapping_add(2)).into_iter().flatten() {
            *x = 0;
        }
        if let Some(x) = a.prefixes.get_mut(last) {
            *x = 0;
        }
        if let Some(c) = ib.get_mut(H_COUNT) {
            *c = last as u32 | if stale { STALE } else { 0 };
        }
        self.changed(table);
        Ok(removed)
    }

    /// The longest-prefix match for `ip` in `table`.
    #[inline]
    pub fn lookup(&self, table: u16, ip: u32) -> Option<Route> {
        let (ib, db) = self.blocks(table)?;
        self.layout.lookup(ib, db, ip)
    }

    /// [`RouteTables::lookup`] for each `(table, ip)` of `keys`, into `out` (the shorter of
    /// the two bounds the work). The same answers, faster: the lookups go level by level in
    /// groups of 64, and each level prefetches the next level's line of every lookup of the
    /// group before reading any, so the group's cache misses overlap instead of queueing.
    pub fn lookup_batch(&self, keys: &[(u16, u32)], out: &mut [Option<Route>]) {
        let lay = &self.layout;
        let w = self.words();
        let planes = w.split_at_checked(lay.data_base);
        let (Some((iplane, dplane)), true) = (planes, lay.fast) else {
            for (&(t, ip), o) in keys.iter().zip(out.iter_mut()) {
                *o = self.lookup(t, ip);
            }
            return;
        };
        let fetch = |plane: &[u32], off: usize| {
            super::mapping::prefetch(plane.as_ptr().wrapping_add(off).cast::<u8>());
        };
        for (keys, out) in keys.chunks(GROUP).zip(out.chunks_mut(GROUP)) {
            // Per lookup: index block, data block (both from the plane starts), position.
            let mut ib = [0usize; GROUP];
            let mut db = [0usize; GROUP];
            let mut pos = [0usize; GROUP];
            for (((&(t, _), i), d), p) in keys
                .iter()
                .zip(ib.iter_mut())
                .zip(db.iter_mut())
                .zip(pos.iter_mut())
            {
                match lay.blocks(usize::from(t)) {
                    Some((ix, dx)) => {
                        *i = ix;
                        *d = dx.wrapping_sub(lay.data_base);
                        fetch(iplane, ix);
                    }
                    None => *p = NO_TABLE,
                }
            }
            // The header: the top level's node, or the leaf.
            for (((&(_, ip), &i), &d), p) in keys.iter().zip(&ib).zip(&db).zip(pos.iter_mut()) {
                if *p == NO_TABLE {
                    continue;
                }
                let hdr = line::<HDR_WORDS>(iplane, i);
                match hdr {
                    Some(h) if h[H_COUNT] & STALE == 0 => {
                        *p = Layout::top(h, !ip);
                        if lay.depth > 0 {
                            fetch(iplane, i.wrapping_add(lay.node_off(lay.depth, *p)));
                        } else {
                            fetch(dplane, d.wrapping_add(p.wrapping_mul(LEAF_WORDS)));
                        }
                    }
                    _ => *p = SLOW,
                }
            }
            for level in (1..=lay.depth).rev() {
                for (((&(_, ip), &i), &d), p) in keys.iter().zip(&ib).zip(&db).zip(pos.iter_mut()) {
                    if *p >= NO_TABLE {
                        continue;
                    }
                    match line::<NODE_KEYS>(iplane, i.wrapping_add(lay.node_off(level, *p))) {
                        Some(node) => {
                            *p = Layout::step(node, *p, !ip);
                            if level > 1 {
                                fetch(
                                    iplane,
                                    i.wrapping_add(lay.node_off(level.wrapping_sub(1), *p)),
                                );
                            } else {
                                fetch(dplane, d.wrapping_add(p.wrapping_mul(LEAF_WORDS)));
                            }
                        }
                        None => *p = SLOW,
                    }
                }
            }
            // The leaf: the route's index (+ 1, 0 for none), then its record.
            for (((&(_, ip), &d), p), o) in
                keys.iter().zip(&db).zip(pos.iter_mut()).zip(out.iter_mut())
            {
                if *p >= NO_TABLE {
                    continue;
                }
                match line::<LEAF_WORDS>(dplane, d.wrapping_add(p.wrapping_mul(LEAF_WORDS))) {
                    Some(leaf) => {
                        let a = Layout::in_leaf(leaf, !ip) as usize;
                        *p = a;
                        *o = None;
                        if a != 0 {
                            let rec = lay.recs.wrapping_add(a.wrapping_sub(1).wrapping_mul(2));
                            fetch(dplane, d.wrapping_add(rec));
                        }
                    }
                    None => *p = SLOW,
                }
            }
            for (((&(t, ip), &d), &p), o) in keys.iter().zip(&db).zip(&pos).zip(out.iter_mut()) {
                *o = match p {
                    NO_TABLE => None,
                    SLOW => self.lookup(t, ip),
                    0 => None,
                    a => {
                        let rec = lay.recs.wrapping_add(a.wrapping_sub(1).wrapping_mul(2));
                        line::<2>(dplane, d.wrapping_add(rec)).and_then(|r| Layout::answer(r, ip))
                    }
                };
            }
        }
    }

    /// Starts bringing `table`'s header line (route count and top separators), where every
    /// lookup in it starts, into the cache. Changes nothing.
    #[inline(always)]
    pub fn prefetch(&self, table: u16) {
        if let Some(w) = self.blocks(table).and_then(|(i, _)| i.first()) {
            super::mapping::prefetch((w as *const u32).cast::<u8>());
        }
    }

    /// Every route of `table`, by prefix then length.
    pub fn routes(&self, table: u16) -> impl Iterator<Item = Route> + '_ {
        let b = self.blocks(table);
        let n = b.map_or(0, |(i, _)| {
            i.get(H_COUNT).map_or(0, |&c| self.layout.count(c))
        });
        let a = b.and_then(|(i, d)| self.layout.areas(i, d));
        (0..n).filter_map(move |r| {
            let a = a.as_ref()?;
            a.route(a.at(r))
        })
    }
}
