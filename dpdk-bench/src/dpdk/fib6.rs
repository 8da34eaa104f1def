//! `rte_fib6` with the TRIE data plane: DPDK's newer IPv6 FIB (a RIB for changes, and a
//! 2^24-entry first level plus 256-entry groups for lookups), 4-byte next hops, keyed here
//! by VRF + IPv4 (`crate::encode`). Its bulk lookup has a scalar and an AVX-512 version.
use super::ffi::{self, RteFib6};
use super::{count, out_ptr, strerror, unique_name};
use std::ptr::NonNull;

/// One `rte_fib6`, freed on drop.
pub struct Fib6 {
    ptr: NonNull<RteFib6>,
}

/// Which bulk lookup the FIB runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fib6Lookup {
    Scalar,
    Avx512,
}

impl Fib6 {
    pub fn new(max_routes: u32, tbl8s: u32) -> Result<Self, String> {
        let name = unique_name("fib6");
        // SAFETY: `name` is a valid C string for the call (DPDK copies it).
        let p = unsafe { ffi::vb_fib6_create(name.as_ptr(), max_routes, tbl8s.max(1)) };
        NonNull::new(p)
            .map(|ptr| Fib6 { ptr })
            .ok_or_else(|| format!("rte_fib6_create: {}", super::last_error()))
    }

    /// Adds `ip/depth` with next hop `nh` (below 2^31 - 1).
    pub fn add(&mut self, ip: &[u8; 16], depth: u8, nh: u32) -> Result<(), String> {
        // SAFETY: the FIB is live and exclusively borrowed; `ip` points at 16 bytes, which
        // DPDK only reads.
        let rc = unsafe { ffi::rte_fib6_add(self.ptr.as_ptr(), ip.as_ptr(), depth, u64::from(nh)) };
        (rc == 0)
            .then_some(())
            .ok_or_else(|| format!("rte_fib6_add /{depth}: {}", strerror(rc)))
    }

    /// Switches the bulk lookup; an error when this CPU or EAL does not allow it.
    pub fn select(&mut self, how: Fib6Lookup) -> Result<(), String> {
        let vector = i32::from(how == Fib6Lookup::Avx512);
        // SAFETY: the FIB is live and exclusively borrowed.
        let rc = unsafe { ffi::vb_fib6_select(self.ptr.as_ptr(), vector) };
        (rc == 0)
            .then_some(())
            .ok_or_else(|| format!("rte_fib6_select_lookup {how:?}: {}", strerror(rc)))
    }

    /// `rte_fib6_lookup_bulk`, 64 keys per call, with the selected lookup.
    pub fn bulk(&self, ips: &[[u8; 16]], out: Option<&mut [u32]>) -> u64 {
        let o = out_ptr(out, ips.len());
        // SAFETY: the FIB is live (lookups only read it); `ips` holds ips.len() 16-byte
        // keys; `o` is null or holds as many answers.
        unsafe { ffi::vb_fib6_bulk(self.ptr.as_ptr(), ips.as_ptr(), count(ips.len()), o) }
    }
}

impl Drop for Fib6 {
    fn drop(&mut self) {
        // SAFETY: the FIB is live and owned by this handle; nothing uses it after.
        unsafe { ffi::rte_fib6_free(self.ptr.as_ptr()) }
    }
}
