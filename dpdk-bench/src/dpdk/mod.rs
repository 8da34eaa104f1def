//! DPDK's tables behind safe handles: the EAL, heap accounting, `rte_lpm`, `rte_lpm6`,
//! `rte_fib6` and `rte_hash`. `unsafe` lives here and in `ffi` only.
mod eal;
mod ffi;
mod fib6;
mod hash;
mod heap;
mod lpm;
mod lpm6;

pub use eal::init;
pub use ffi::{VrfKey, MISS};
pub use fib6::{Fib6, Fib6Lookup};
pub use hash::{hash_key, Hash};
pub use heap::allocated;
pub use lpm::{Lpm, LpmSet, VrfKeys};
pub use lpm6::Lpm6;

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A name no other DPDK object of this process has (tables are named memory zones).
fn unique_name(kind: &str) -> CString {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    CString::new(format!("vb_{kind}_{n}")).unwrap_or_default()
}

/// DPDK's message for error number `e` (positive or negative).
fn strerror(e: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
    // string, valid until the next call on this thread; it is copied at once.
    let p = unsafe { ffi::rte_strerror(e.abs()) };
    if p.is_null() {
        return format!("error {e}");
    }
    // SAFETY: `p` is non-null and NUL-terminated (above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// `rte_errno` after a failed create, as text.
fn last_error() -> String {
    // SAFETY: vb_errno reads this thread's rte_errno; no arguments.
    strerror(unsafe { ffi::vb_errno() })
}

/// A key count as the C side's `uint32_t`.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("{n} keys: more than a u32 counts"))
}

/// The answer buffer's pointer, after checking that it holds `n` answers.
fn out_ptr(out: Option<&mut [u32]>, n: usize) -> *mut u32 {
    match out {
        Some(o) => {
            assert!(o.len() >= n, "answer buffer of {} for {n} keys", o.len());
            o.as_mut_ptr()
        }
        None => std::ptr::null_mut(),
    }
}
