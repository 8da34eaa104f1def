//! `rte_lpm`: DPDK's IPv4 longest-prefix match (DIR-24-8: a 2^24-entry first level, 64
//! MiB, then 256-entry groups for routes longer than /24). One table per VRF.
use super::ffi::{self, RteLpm, VrfKey};
use super::{count, out_ptr, strerror, unique_name};
use std::ptr::NonNull;

/// One `rte_lpm` table, freed on drop.
pub struct Lpm {
    ptr: NonNull<RteLpm>,
}

impl Lpm {
    /// A table for `max_rules` routes and `tbl8s` second-level groups.
    pub fn new(max_rules: u32, tbl8s: u32) -> Result<Self, String> {
        let name = unique_name("lpm");
        // SAFETY: `name` is a valid C string for the call (DPDK copies it); no other
        // pointer is passed.
        let p = unsafe { ffi::vb_lpm_create(name.as_ptr(), max_rules, tbl8s.max(1)) };
        NonNull::new(p)
            .map(|ptr| Lpm { ptr })
            .ok_or_else(|| format!("rte_lpm_create: {}", super::last_error()))
    }

    /// Adds `ip/depth` with next hop `nh` (24 bits).
    pub fn add(&mut self, ip: u32, depth: u8, nh: u32) -> Result<(), String> {
        // SAFETY: `ptr` is a live table this handle owns exclusively (&mut self).
        let rc = unsafe { ffi::rte_lpm_add(self.ptr.as_ptr(), ip, depth, nh) };
        (rc == 0)
            .then_some(())
            .ok_or_else(|| format!("rte_lpm_add {ip:#x}/{depth}: {}", strerror(rc)))
    }

    /// `rte_lpm_lookup` for each of `ips`; answers (next hop or [`ffi::MISS`]) into `out`
    /// if given; returns their checksum.
    pub fn single(&self, ips: &[u32], out: Option<&mut [u32]>) -> u64 {
        let o = out_ptr(out, ips.len());
        // SAFETY: the table is live; `ips` holds ips.len() keys; `o` is null or holds as
        // many answers (out_ptr checked).
        unsafe { ffi::vb_lpm_single(self.ptr.as_ptr(), ips.as_ptr(), count(ips.len()), o) }
    }

    /// `rte_lpm_lookup_bulk`, 64 keys per call.
    pub fn bulk(&self, ips: &[u32], out: Option<&mut [u32]>) -> u64 {
        let o = out_ptr(out, ips.len());
        // SAFETY: as in `single`.
        unsafe { ffi::vb_lpm_bulk(self.ptr.as_ptr(), ips.as_ptr(), count(ips.len()), o) }
    }

    /// `rte_lpm_lookupx4` (SSE), 4 keys per call.
    pub fn x4(&self, ips: &[u32], out: Option<&mut [u32]>) -> u64 {
        let o = out_ptr(out, ips.len());
        // SAFETY: as in `single`.
        unsafe { ffi::vb_lpm_x4(self.ptr.as_ptr(), ips.as_ptr(), count(ips.len()), o) }
    }
}

impl Drop for Lpm {
    fn drop(&mut self) {
        // SAFETY: the table is live and owned by this handle; nothing uses it after.
        unsafe { ffi::rte_lpm_free(self.ptr.as_ptr()) }
    }
}

/// One `rte_lpm` per VRF, VRF `i` being table `i`.
pub struct LpmSet {
    tables: Vec<Lpm>,
    ptrs: Vec<*mut RteLpm>,
}

impl LpmSet {
    pub fn new(tables: Vec<Lpm>) -> Self {
        let ptrs = tables.iter().map(|t| t.ptr.as_ptr()).collect();
        LpmSet { tables, ptrs }
    }

    pub fn len(&self) -> usize {
        self.tables.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// `rte_lpm_lookup` of each key in its VRF's table (a bulk call takes one table).
    pub fn single(&self, keys: &VrfKeys, out: Option<&mut [u32]>) -> u64 {
        assert!(keys.vrfs <= self.len(), "keys of {} VRFs", keys.vrfs);
        let o = out_ptr(out, keys.keys.len());
        let n = count(keys.keys.len());
        // SAFETY: every key's VRF is below keys.vrfs <= the number of live tables whose
        // pointers `ptrs` holds (checked above and by VrfKeys::new); `o` as in Lpm::single.
        unsafe { ffi::vb_lpm_vrf_single(self.ptrs.as_ptr(), keys.keys.as_ptr(), n, o) }
    }
}

/// (VRF, IPv4) keys whose VRFs are all below `vrfs`, checked once.
pub struct VrfKeys {
    keys: Vec<VrfKey>,
    vrfs: usize,
}

impl VrfKeys {
    pub fn new(keys: &[(u16, u32)]) -> Self {
        let vrfs = keys
            .iter()
            .map(|&(t, _)| usize::from(t) + 1)
            .max()
            .unwrap_or(0);
        let keys = keys
            .iter()
            .map(|&(t, ip)| VrfKey {
                ip,
                vrf: u32::from(t),
            })
            .collect();
        VrfKeys { keys, vrfs }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
