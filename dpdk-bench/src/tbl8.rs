//! How many 256-entry groups (tbl8s) DPDK's tries need for a route set, so that each table
//! is created with what it needs and its memory is what a user would configure, not a
//! guess. Prefixes are 128-bit numbers (most significant bit first) with a length; the
//! first level resolves the top 24 bits, each group one more byte.
use std::collections::HashSet;

/// The prefix `p` cut to its first `len` bits.
fn cut(p: u128, len: u32) -> u128 {
    if len == 0 {
        0
    } else {
        p & (u128::MAX << (128 - len.min(128)))
    }
}

/// Byte boundaries a prefix of `len` bits crosses below the first level: 24, 32, ... < len.
fn levels(len: u8) -> impl Iterator<Item = u32> {
    (24..u32::from(len)).step_by(8)
}

/// Groups `rte_lpm6` (and, with IPv4 addresses in the top bits, `rte_lpm`) allocates: one
/// per distinct (boundary, leading bits) that some route crosses, whatever the insertion
/// order (a group lives as long as a route below it does).
pub fn trie_groups(prefixes: impl IntoIterator<Item = (u128, u8)>) -> usize {
    let mut groups = HashSet::new();
    for (p, len) in prefixes {
        for b in levels(len) {
            groups.insert((b, cut(p, b)));
        }
    }
    groups.len()
}

/// Groups `rte_fib6`'s TRIE must be created with (`num_tbl8`) for the routes added in this
/// order. It refuses a route unless enough groups are left for its worst case, and counts
/// that worst case as reserved: a route deeper than 24 bits that has no longer route below
/// its last whole byte reserves one group per byte boundary between its covering route's
/// (at least 24) and its own, rounded up. (DPDK 22.11 `lib/fib/trie.c`, `trie_modify`;
/// every route has its own next hop here, so each reservation is kept.)
pub fn fib6_reserved(prefixes: impl IntoIterator<Item = (u128, u8)>) -> usize {
    let mut routes: HashSet<(u128, u8)> = HashSet::new();
    // (boundary, leading bits) with some route longer than the boundary below it.
    let mut deeper: HashSet<(u32, u128)> = HashSet::new();
    let mut reserved = 0usize;
    for (p, len) in prefixes {
        let p = cut(p, u32::from(len));
        if len > 24 && routes.insert((p, len)) {
            let floor = u32::from(len) / 8 * 8;
            if !deeper.contains(&(floor, cut(p, floor))) {
                let parent = (25..len)
                    .rev()
                    .find(|&l| routes.contains(&(cut(p, u32::from(l)), l)));
                let parent = u32::from(parent.unwrap_or(24));
                reserved += (u32::from(len).div_ceil(8) - parent.div_ceil(8)) as usize;
            }
        } else {
            routes.insert((p, len));
        }
        for b in levels(len) {
            deeper.insert((b, cut(p, b)));
        }
    }
    reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u32, len: u8) -> (u128, u8) {
        (u128::from(a) << 96, len)
    }

    #[test]
    fn trie_groups_one_per_byte_boundary_and_leading_bits() {
        assert_eq!(trie_groups([v4(0x0a00_0000, 8), v4(0, 0)]), 0);
        assert_eq!(trie_groups([v4(0x0a01_0200, 25)]), 1);
        // Two hosts of one /24 share its group; another /24 has its own.
        assert_eq!(trie_groups([v4(0x0a01_0201, 32), v4(0x0a01_0202, 32)]), 1);
        assert_eq!(trie_groups([v4(0x0a01_0201, 32), v4(0x0a01_0301, 32)]), 2);
        // A 48-bit prefix crosses the boundaries at 24, 32 and 40.
        assert_eq!(trie_groups([(1u128 << 100, 48)]), 3);
    }

    #[test]
    fn fib6_reserves_worst_case_below_the_covering_route() {
        // Alone, a /40 may need the groups at 24 and 32 (and the one at 40 is its own).
        assert_eq!(fib6_reserved([(1u128 << 100, 40)]), 2);
        // Below a /32 that covers it, only one more.
        assert_eq!(
            fib6_reserved([(1u128 << 100, 32), (1u128 << 100, 40)]),
            1 + 1
        );
        // A /26 under a /25 of the same /24: the /24's group is already there.
        assert_eq!(fib6_reserved([v4(0x0a01_0200, 25), v4(0x0a01_0240, 26)]), 1);
        // Routes of /24 and shorter reserve nothing; a repeated route nothing more.
        assert_eq!(
            fib6_reserved([
                v4(0x0a01_0200, 24),
                v4(0x0a01_0200, 25),
                v4(0x0a01_0200, 25)
            ]),
            1
        );
    }
}
