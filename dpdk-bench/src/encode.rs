//! How a (VRF, IPv4) route and key become one IPv6-sized key for `rte_lpm6` and `rte_fib6`,
//! which have no VRFs: the VRF in the top 16 bits, then the IPv4 address, then zeros; a
//! route of length `len` becomes a prefix of length `16 + len`.
//!
//! Why the top 16 bits: both tables resolve the first 24 bits in one 2^24-entry array
//! (tbl24), then one 256-entry group per further byte. With the VRF in 16 bits, tbl24
//! holds (VRF, first octet): routes of /8 and shorter (the default route, 0.0.0.0/0 ->
//! depth 16) never need a group, a VPC's /16 needs one level, and no lookup walks more than
//! three groups (depth <= 48). A 12-bit VRF (enough for 4,096) would put a partial byte in
//! every group level and make every route /13 to /20 longer than a whole byte boundary.

/// The 16-byte key of address `ip` in VRF `vrf`.
pub fn vrf_key(vrf: u16, ip: u32) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..2].copy_from_slice(&vrf.to_be_bytes());
    k[2..6].copy_from_slice(&ip.to_be_bytes());
    k
}

/// The prefix length of a VRF's route of length `len` (0..=32).
pub fn vrf_depth(len: u8) -> u8 {
    16 + len.min(32)
}

/// The key as one number, most significant byte first.
pub fn as_u128(k: &[u8; 16]) -> u128 {
    u128::from_be_bytes(*k)
}

/// An IPv4 prefix as a 128-bit number (the address in the top 32 bits), for the counts of
/// `rte_lpm`'s groups.
pub fn ipv4_as_u128(ip: u32) -> u128 {
    u128::from(ip) << 96
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrf_then_address_then_zeros() {
        let k = vrf_key(0x0102, 0x0a0b_0c0d);
        assert_eq!(k, [1, 2, 10, 11, 12, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(as_u128(&k) >> 80, 0x0102_0a0b_0c0d);
        assert_eq!(vrf_depth(0), 16);
        assert_eq!(vrf_depth(32), 48);
        assert_eq!(ipv4_as_u128(0x0a00_0001) >> 96, 0x0a00_0001);
    }
}
