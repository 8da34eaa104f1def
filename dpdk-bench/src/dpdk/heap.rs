//! Memory of DPDK's tables: every one of them allocates from the EAL's heaps, so a table's
//! size is what the heaps hold more after it was created and filled.
use super::ffi;

/// Bytes allocated on every DPDK heap now.
pub fn allocated() -> usize {
    // SAFETY: vb_heap_allocated only reads the heaps' statistics; no arguments.
    unsafe { ffi::vb_heap_allocated() }
}
