//! Per-VRF longest-prefix-match route tables.
//!
//! # Design
//!
//! Each route table (VRF) owns `routes_per_table` consecutive [`RouteSlot`]s of 16 bytes.
//! The VRF's region is used as an array of 32-bit words laid out as structure-of-arrays:
//!
//! ```text
//! word 0                 route count n
//! starts[cap]            route prefixes, sorted by (prefix, length)       <- source of truth
//! info[cap]              length (bits 0..8) | target kind (8..16) | parent (16..32)
//! args[cap]              target argument (gateway, peer VPC, instance address)
//! levels                 search levels over `starts` (about n / 15 words)
//! ```
//!
//! where `cap = min(routes_per_table, 65535)`. Sorting by (prefix, length) puts the prefixes
//! in pre-order of the prefix trie. For an address, the deepest route containing it is an
//! ancestor-or-self of route `i`, the last route whose prefix is `<= ip` (every route
//! containing `ip` starts at or before it, and two prefixes are nested or disjoint). Each
//! route stores its parent (the longest route containing it), so a lookup is:
//!
//! 1. `i` = (number of starts `<= ip`) - 1, found in a static B+-tree (S-tree) over the
//!    sorted starts: level `l + 1` holds every 16th key of level `l` (`A[l+1][j] =
//!    A[l][16 (j + 1)]`) until a level has at most 16 keys. The search counts the keys
//!    `<= ip` in one 16-key block (64 bytes, one cache line, branch-free) per level: for
//!    1,000 routes that is 3 blocks. There is no per-VRF direct index, so the structure
//!    stays small for 4,096 VRFs (DPDK `rte_lpm` spends 64 MiB per table).
//! 2. While route `i` does not contain `ip`, `i` = parent of `i` (prefix lengths strictly
//!    shrink along the chain, so at most 33 steps; with a default route, a VPC CIDR and
//!    subnet or instance routes it is 1 or 2).
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
//! 4,096 VRFs x 1,000 routes = 65.5 MB. The storage of a given route set is canonical
//! (unused words are zero), so equal tables have equal bytes.
//!
//! Routes are canonicalised on the way in: a length above 32 counts as 32 and host bits
//! of the prefix are cleared (the admin handler should refuse such routes beforehand).
use super::TableError;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// What a route points at (F8). Addresses in host byte order.
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
/// The most S-tree levels above the starts: 65,535 routes need 3.
const MAX_LEVELS: usize = 4;
/// Most routes one table can hold (parent links are 16 bits).
const MAX_ROUTES: usize = 0xffff;
/// The parent value of a route no other route contains.
const NO_PARENT: u32 = 0xffff;
/// Longest chain of nested prefixes: /0 .. /32.
const MAX_DEPTH: usize = 33;

fn info_len(info: u32) -> u8 {
    (info & 0xff) as u8
}

fn info_kind(info: u32) -> u32 {
    (info >> 8) & 0xff
}

fn info_parent(info: u32) -> u32 {
    info >> 16
}

/// Number of keys of the S-tree level above a level of `len` keys.
fn level_above(len: usize) -> usize {
    len.saturating_sub(1) / BLOCK
}

/// Counts the keys `<= ip` of one block (at most [`BLOCK`] keys).
#[inline(always)]
fn count_le(block: &[u32], ip: u32) -> usize {
    if let Ok(full) = <&[u32; BLOCK]>::try_from(block) {
        full.iter().map(|&k| usize::from(k <= ip)).sum()
    } else {
        block.iter().filter(|&&k| k <= ip).count()
    }
}

/// One VRF's words, split into its arrays.
struct View<'a> {
    n: usize,
    starts: &'a [u32],
    info: &'a [u32],
    args: &'a [u32],
    /// Upper S-tree levels, lowest first, back to back.
    levels: &'a [u32],
}

impl<'a> View<'a> {
    /// Splits a VRF's words into header, starts, info, args and levels.
    fn split(words: &'a [u32], cap: usize) -> Option<View<'a>> {
        let (hdr, rest) = words.split_first()?;
        let (starts, rest) = rest.split_at_checked(cap)?;
        let (info, rest) = rest.split_at_checked(cap)?;
        let (args, levels) = rest.split_at_checked(cap)?;
        Some(View {
            n: (*hdr as usize).min(cap),
            starts,
            info,
            args,
            levels,
        })
    }
}

impl View<'_> {
    /// Number of starts `<= ip`.
    #[inline]
    fn upper_bound(&self, ip: u32) -> Option<usize> {
        // Level lengths, starts first.
        let mut lens = [self.n, 0, 0, 0, 0];
        let mut top = 0usize;
        let mut len = self.n;
        while len > BLOCK && top < MAX_LEVELS {
            len = level_above(len);
            top = top.saturating_add(1);
            *lens.get_mut(top)? = len;
        }
        // Offsets of the upper levels in `levels`.
        let mut offs = [0usize; MAX_LEVELS + 1];
        let mut off = 0usize;
        for l in 1..=top {
            *offs.get_mut(l)? = off;
            off = off.checked_add(*lens.get(l)?)?;
        }
        let level = |l: usize| -> Option<&[u32]> {
            if l == 0 {
                self.starts.get(..self.n)
            } else {
                let o = *offs.get(l)?;
                self.levels.get(o..o.checked_add(*lens.get(l)?)?)
            }
        };
        let mut pos = count_le(level(top)?, ip);
        let mut l = top;
        while l > 0 {
            l = l.saturating_sub(1);
            let keys = level(l)?;
            let lo = pos.checked_mul(BLOCK)?;
            let hi = lo.saturating_add(BLOCK).min(keys.len());
            pos = lo.checked_add(count_le(keys.get(lo..hi)?, ip))?;
        }
        Some(pos)
    }

    fn route(&self, i: usize) -> Option<Route> {
        let info = *self.info.get(i)?;
        Some(Route {
            prefix: *self.starts.get(i)?,
            len: info_len(info),
            target: Target::decode(info_kind(info), *self.args.get(i)?)?,
        })
    }

    /// Index of the route with this exact prefix and length, or where it would go.
    fn position(&self, prefix: u32, len: u8) -> Option<Result<usize, usize>> {
        let starts = self.starts.get(..self.n)?;
        let mut i = starts.partition_point(|&s| s < prefix);
        while let (Some(&s), Some(&info)) = (starts.get(i), self.info.get(i)) {
            if s != prefix || info_len(info) > len {
                break;
            }
            if info_len(info) == len {
                return Some(Ok(i));
            }
            i = i.checked_add(1)?;
        }
        Some(Err(i))
    }

    fn lookup(&self, ip: u32) -> Option<Route> {
        let mut i = self.upper_bound(ip)?.checked_sub(1)?;
        for _ in 0..MAX_DEPTH {
            let info = *self.info.get(i)?;
            if (ip ^ *self.starts.get(i)?) & prefix_mask(info_len(info)) == 0 {
                return self.route(i);
            }
            let parent = info_parent(info);
            if parent == NO_PARENT {
                return None;
            }
            i = parent as usize;
        }
        None
    }
}

/// All route tables (VRFs) over storage the platform provides: `routes_per_table`
/// consecutive slots per table.
pub struct RouteTables<'m> {
    slots: &'m mut [RouteSlot],
    routes_per_table: usize,
}

impl<'m> RouteTables<'m> {
    /// Route tables over `slots`, emptied.
    pub fn new(slots: &'m mut [RouteSlot], routes_per_table: usize) -> Self {
        slots.fill(RouteSlot::EMPTY);
        RouteTables {
            slots,
            routes_per_table: routes_per_table.max(1),
        }
    }

    /// Number of route tables.
    pub fn tables(&self) -> usize {
        self.slots
            .len()
            .checked_div(self.routes_per_table)
            .unwrap_or(0)
    }

    /// Routes one table holds.
    pub fn routes_per_table(&self) -> usize {
        self.routes_per_table
    }

    /// Routes one table can hold: `routes_per_table`, at most 65,535.
    pub fn capacity(&self) -> usize {
        self.routes_per_table.min(MAX_ROUTES)
    }

    /// Storage bytes per route of capacity.
    pub const BYTES_PER_ROUTE: usize = core::mem::size_of::<RouteSlot>();

    fn region(&self, table: u16) -> Option<&[RouteSlot]> {
        let start = usize::from(table).checked_mul(self.routes_per_table)?;
        self.slots
            .get(start..start.checked_add(self.routes_per_table)?)
    }

    fn region_mut(&mut self, table: u16) -> Option<&mut [RouteSlot]> {
        let start = usize::from(table).checked_mul(self.routes_per_table)?;
        let end = start.checked_add(self.routes_per_table)?;
        self.slots.get_mut(start..end)
    }

    fn view(&self, table: u16) -> Option<View<'_>> {
        let cap = self.capacity();
        let words = <[u32]>::ref_from_bytes(self.region(table)?.as_bytes()).ok()?;
        View::split(words, cap)
    }

    /// Number of routes in `table` (0 for a table past the storage).
    pub fn len(&self, table: u16) -> usize {
        self.view(table).map_or(0, |v| v.n)
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
        let cap = self.capacity();
        let view = self.view(table).ok_or(TableError::NotFound)?;
        let n = view.n;
        let p = match view.position(prefix, len).ok_or(TableError::NotFound)? {
            Ok(_) => return Err(TableError::Exists),
            Err(p) => p,
        };
        if n >= cap {
            return Err(TableError::Full);
        }
        let region = self.region_mut(table).ok_or(TableError::NotFound)?;
        let words = <[u32]>::mut_from_bytes(region.as_mut_bytes()).map_err(|_| TableError::Full)?;
        let (hdr, rest) = words.split_first_mut().ok_or(TableError::Full)?;
        let (starts, rest) = rest.split_at_mut_checked(cap).ok_or(TableError::Full)?;
        let (info, rest) = rest.split_at_mut_checked(cap).ok_or(TableError::Full)?;
        let (args, levels) = rest.split_at_mut_checked(cap).ok_or(TableError::Full)?;
        for (a, v) in [
            (&mut *starts, prefix),
            (&mut *info, u32::from(len) | (kind << 8)),
            (&mut *args, arg),
        ] {
            // p <= n < cap: the range is in bounds and not empty.
            if let Some(s) = a.get_mut(p..=n) {
                s.rotate_right(1);
                if let Some(first) = s.first_mut() {
                    *first = v;
                }
            }
        }
        let n = n.saturating_add(1);
        rebuild(n, starts, info, levels);
        *hdr = n as u32;
        Ok(())
    }

    /// Removes the route with this prefix and length.
    pub fn remove(&mut self, table: u16, prefix: u32, len: u8) -> Result<Route, TableError> {
        let len = len.min(32);
        let prefix = prefix & prefix_mask(len);
        let cap = self.capacity();
        let view = self.view(table).ok_or(TableError::NotFound)?;
        let n = view.n;
        let p = match view.position(prefix, len).ok_or(TableError::NotFound)? {
            Ok(p) => p,
            Err(_) => return Err(TableError::NotFound),
        };
        let removed = view.route(p).ok_or(TableError::NotFound)?;
        let last = n.checked_sub(1).ok_or(TableError::NotFound)?;
        let region = self.region_mut(table).ok_or(TableError::NotFound)?;
        let words =
            <[u32]>::mut_from_bytes(region.as_mut_bytes()).map_err(|_| TableError::NotFound)?;
        let (hdr, rest) = words.split_first_mut().ok_or(TableError::NotFound)?;
        let (starts, rest) = rest.split_at_mut_checked(cap).ok_or(TableError::NotFound)?;
        let (info, rest) = rest.split_at_mut_checked(cap).ok_or(TableError::NotFound)?;
        let (args, levels) = rest.split_at_mut_checked(cap).ok_or(TableError::NotFound)?;
        for a in [&mut *starts, &mut *info, &mut *args] {
            // p <= last < n <= cap.
            if let Some(s) = a.get_mut(p..=last) {
                s.rotate_left(1);
                if let Some(end) = s.last_mut() {
                    *end = 0;
                }
            }
        }
        rebuild(last, starts, info, levels);
        *hdr = last as u32;
        Ok(removed)
    }

    /// The longest-prefix match for `ip` in `table`.
    pub fn lookup(&self, table: u16, ip: u32) -> Option<Route> {
        self.view(table)?.lookup(ip)
    }

    /// Every route of `table`, by prefix then length.
    pub fn routes(&self, table: u16) -> impl Iterator<Item = Route> + '_ {
        let view = self.view(table);
        let n = view.as_ref().map_or(0, |v| v.n);
        (0..n).filter_map(move |i| view.as_ref()?.route(i))
    }
}

/// Recomputes the parent links of the `n` sorted routes and the S-tree levels above their
/// starts; zeroes the level words past the used ones.
fn rebuild(n: usize, starts: &[u32], info: &mut [u32], levels: &mut [u32]) {
    // Parents: a stack of the open chain of nested prefixes (lengths strictly grow).
    let mut stack = [0usize; MAX_DEPTH];
    let mut depth = 0usize;
    for i in 0..n {
        let (Some(&start), Some(&inf)) = (starts.get(i), info.get(i)) else {
            break;
        };
        while let Some(d) = depth.checked_sub(1) {
            let top = stack.get(d).copied().unwrap_or(0);
            let contains = match (starts.get(top), info.get(top)) {
                (Some(&ts), Some(&ti)) => (start ^ ts) & prefix_mask(info_len(ti)) == 0,
                _ => false,
            };
            if contains {
                break;
            }
            depth = d;
        }
        let parent = depth
            .checked_sub(1)
            .and_then(|d| stack.get(d))
            .map_or(NO_PARENT, |&t| t as u32);
        if let Some(x) = info.get_mut(i) {
            *x = (inf & 0xffff) | (parent << 16);
        }
        if let Some(s) = stack.get_mut(depth) {
            *s = i;
            depth = depth.saturating_add(1);
        }
    }
    // S-tree levels: level l + 1 holds key 16 (j + 1) of level l.
    levels.fill(0);
    let mut src: Option<usize> = None; // None: the starts; Some(o): levels[o..]
    let mut src_len = n;
    let mut off = 0usize;
    while src_len > BLOCK {
        let len = level_above(src_len);
        for j in 0..len {
            let k = j.saturating_add(1).saturating_mul(BLOCK);
            let key = match src {
                None => starts.get(k).copied(),
                Some(o) => levels.get(o.saturating_add(k)).copied(),
            };
            if let (Some(key), Some(dst)) = (key, levels.get_mut(off.saturating_add(j))) {
                *dst = key;
            }
        }
        src = Some(off);
        src_len = len;
        off = off.saturating_add(len);
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
        for ip in probes(want).into_iter().chain(extra.iter().copied()) {
            assert_eq!(t.lookup(table, ip), reference(want, ip), "ip {ip:#010x}");
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
