//! Declarations of the C functions used: DPDK's exported ones (signatures from DPDK 22.11's
//! headers in /usr/include/dpdk) and the shim's (`csrc/shim.c`). Configuration structs are
//! filled in the shim, from the headers, so none is re-declared here.
use std::ffi::{c_char, c_int};

/// Opaque DPDK objects.
#[repr(C)]
pub struct RteLpm {
    _private: [u8; 0],
}
#[repr(C)]
pub struct RteLpm6 {
    _private: [u8; 0],
}
#[repr(C)]
pub struct RteFib6 {
    _private: [u8; 0],
}
#[repr(C)]
pub struct RteHash {
    _private: [u8; 0],
}

/// A (VRF, IPv4) key as the shim's `struct vb_vrf_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VrfKey {
    pub ip: u32,
    pub vrf: u32,
}

/// The shim's answer for "no route" / "no entry".
pub const MISS: u32 = u32::MAX;

extern "C" {
    // rte_eal.h
    pub fn rte_eal_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
    // rte_errno.h
    pub fn rte_strerror(errnum: c_int) -> *const c_char;

    // rte_lpm.h
    pub fn rte_lpm_add(lpm: *mut RteLpm, ip: u32, depth: u8, next_hop: u32) -> c_int;
    pub fn rte_lpm_free(lpm: *mut RteLpm);
    // rte_lpm6.h
    pub fn rte_lpm6_add(lpm: *mut RteLpm6, ip: *const u8, depth: u8, next_hop: u32) -> c_int;
    pub fn rte_lpm6_free(lpm: *mut RteLpm6);
    // rte_fib6.h
    pub fn rte_fib6_add(fib: *mut RteFib6, ip: *const u8, depth: u8, next_hop: u64) -> c_int;
    pub fn rte_fib6_free(fib: *mut RteFib6);
    // rte_hash.h
    pub fn rte_hash_free(h: *mut RteHash);
    pub fn rte_hash_count(h: *const RteHash) -> i32;

    // csrc/shim.c
    pub fn vb_errno() -> c_int;
    pub fn vb_heap_allocated() -> usize;

    pub fn vb_lpm_create(name: *const c_char, max_rules: u32, tbl8s: u32) -> *mut RteLpm;
    pub fn vb_lpm_single(lpm: *const RteLpm, ips: *const u32, n: u32, out: *mut u32) -> u64;
    pub fn vb_lpm_bulk(lpm: *const RteLpm, ips: *const u32, n: u32, out: *mut u32) -> u64;
    pub fn vb_lpm_x4(lpm: *const RteLpm, ips: *const u32, n: u32, out: *mut u32) -> u64;
    pub fn vb_lpm_vrf_single(
        lpms: *const *mut RteLpm,
        keys: *const VrfKey,
        n: u32,
        out: *mut u32,
    ) -> u64;

    pub fn vb_lpm6_create(name: *const c_char, max_rules: u32, tbl8s: u32) -> *mut RteLpm6;
    pub fn vb_lpm6_single(lpm: *const RteLpm6, ips: *const [u8; 16], n: u32, out: *mut u32) -> u64;
    pub fn vb_lpm6_bulk(lpm: *const RteLpm6, ips: *const [u8; 16], n: u32, out: *mut u32) -> u64;

    pub fn vb_fib6_create(name: *const c_char, max_routes: u32, tbl8s: u32) -> *mut RteFib6;
    pub fn vb_fib6_select(fib: *mut RteFib6, vector: c_int) -> c_int;
    pub fn vb_fib6_bulk(fib: *mut RteFib6, ips: *const [u8; 16], n: u32, out: *mut u32) -> u64;

    pub fn vb_hash_create(name: *const c_char, entries: u32) -> *mut RteHash;
    pub fn vb_hash_add(h: *const RteHash, key: u64, index: u32) -> c_int;
    pub fn vb_hash_single(h: *const RteHash, keys: *const u64, n: u32, out: *mut u32) -> u64;
    pub fn vb_hash_bulk(h: *const RteHash, keys: *const u64, n: u32, out: *mut u32) -> u64;
}
