//! `rte_hash`: DPDK's cuckoo hash (buckets of 8 signatures, two candidate buckets per key),
//! here with 8-byte keys `vni << 32 | ip`, the CRC32 hash, and the entry's index as data.
use super::ffi::{self, RteHash};
use super::{count, out_ptr, strerror, unique_name};
use nic_firmware::tables::mapping::MappingKey;
use std::ptr::NonNull;

/// The 8-byte key of a mapping.
pub fn hash_key(k: MappingKey) -> u64 {
    (u64::from(k.vni) << 32) | u64::from(k.ip)
}

/// One `rte_hash`, freed on drop.
pub struct Hash {
    ptr: NonNull<RteHash>,
}

impl Hash {
    /// A table of `entries` slots (DPDK sizes its buckets as entries / 8).
    pub fn new(entries: u32) -> Result<Self, String> {
        let name = unique_name("hash");
        // SAFETY: `name` is a valid C string for the call (DPDK copies it).
        let p = unsafe { ffi::vb_hash_create(name.as_ptr(), entries) };
        NonNull::new(p)
            .map(|ptr| Hash { ptr })
            .ok_or_else(|| format!("rte_hash_create: {}", super::last_error()))
    }

    /// Adds `key` with data `index`.
    pub fn add(&mut self, key: u64, index: u32) -> Result<(), String> {
        // SAFETY: the table is live and exclusively borrowed; the shim passes a pointer to
        // its own copy of the key, which DPDK copies.
        let rc = unsafe { ffi::vb_hash_add(self.ptr.as_ptr(), key, index) };
        (rc == 0)
            .then_some(())
            .ok_or_else(|| format!("rte_hash_add_key_data: {}", strerror(rc)))
    }

    /// Entries held.
    pub fn count(&self) -> usize {
        // SAFETY: the table is live.
        let n = unsafe { ffi::rte_hash_count(self.ptr.as_ptr()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// `rte_hash_lookup_data` for each key; answers (entry index or MISS) into `out`.
    pub fn single(&self, keys: &[u64], out: Option<&mut [u32]>) -> u64 {
        let o = out_ptr(out, keys.len());
        // SAFETY: the table is live (lookups only read it); `keys` holds keys.len() keys;
        // `o` is null or holds as many answers.
        unsafe { ffi::vb_hash_single(self.ptr.as_ptr(), keys.as_ptr(), count(keys.len()), o) }
    }

    /// `rte_hash_lookup_bulk_data`, 64 keys per call.
    pub fn bulk(&self, keys: &[u64], out: Option<&mut [u32]>) -> u64 {
        let o = out_ptr(out, keys.len());
        // SAFETY: as in `single`.
        unsafe { ffi::vb_hash_bulk(self.ptr.as_ptr(), keys.as_ptr(), count(keys.len()), o) }
    }
}

impl Drop for Hash {
    fn drop(&mut self) {
        // SAFETY: the table is live and owned by this handle; nothing uses it after.
        unsafe { ffi::rte_hash_free(self.ptr.as_ptr()) }
    }
}
