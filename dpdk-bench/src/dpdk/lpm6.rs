//! `rte_lpm6`: DPDK's IPv6 longest-prefix match (a 2^24-entry first level, then a 256-entry
//! group per further byte), keyed here by VRF + IPv4 (`crate::encode`).
use super::ffi::{self, RteLpm6};
use super::{count, out_ptr, strerror, unique_name};
use std::ptr::NonNull;

/// One `rte_lpm6` table, freed on drop.
pub struct Lpm6 {
    ptr: NonNull<RteLpm6>,
}

impl Lpm6 {
    pub fn new(max_rules: u32, tbl8s: u32) -> Result<Self, String> {
        let name = unique_name("lpm6");
        // SAFETY: `name` is a valid C string for the call (DPDK copies it).
        let p = unsafe { ffi::vb_lpm6_create(name.as_ptr(), max_rules, tbl8s.max(1)) };
        NonNull::new(p)
            .map(|ptr| Lpm6 { ptr })
            .ok_or_else(|| format!("rte_lpm6_create: {}", super::last_error()))
    }

    /// Adds `ip/depth` with next hop `nh` (21 bits).
    pub fn add(&mut self, ip: &[u8; 16], depth: u8, nh: u32) -> Result<(), String> {
        // SAFETY: the table is live and exclusively borrowed; `ip` points at 16 bytes,
        // which DPDK only reads.
        let rc = unsafe { ffi::rte_lpm6_add(self.ptr.as_ptr(), ip.as_ptr(), depth, nh) };
        (rc == 0)
            .then_some(())
            .ok_or_else(|| format!("rte_lpm6_add /{depth}: {}", strerror(rc)))
    }

    /// `rte_lpm6_lookup` for each key.
    pub fn single(&self, ips: &[[u8; 16]], out: Option<&mut [u32]>) -> u64 {
        let o = out_ptr(out, ips.len());
        // SAFETY: the table is live; `ips` holds ips.len() 16-byte keys; `o` is null or
        // holds as many answers.
        unsafe { ffi::vb_lpm6_single(self.ptr.as_ptr(), ips.as_ptr(), count(ips.len()), o) }
    }

    /// `rte_lpm6_lookup_bulk_func`, 64 keys per call.
    pub fn bulk(&self, ips: &[[u8; 16]], out: Option<&mut [u32]>) -> u64 {
        let o = out_ptr(out, ips.len());
        // SAFETY: as in `single`.
        unsafe { ffi::vb_lpm6_bulk(self.ptr.as_ptr(), ips.as_ptr(), count(ips.len()), o) }
    }
}

impl Drop for Lpm6 {
    fn drop(&mut self) {
        // SAFETY: the table is live and owned by this handle; nothing uses it after.
        unsafe { ffi::rte_lpm6_free(self.ptr.as_ptr()) }
    }
}
