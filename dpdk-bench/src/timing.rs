//! Timing on one core: the best of several passes, in the thread's CPU time, so that time
//! the thread spends preempted by other work on a shared machine does not count (as the
//! benches do, `nic-firmware/benches/common`).
use std::hint::black_box;
use std::time::Instant;

/// Nanoseconds this thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`), if the OS says.
pub fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the valid, exclusive `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    let sec = u64::try_from(ts.tv_sec).ok()?;
    let nsec = u64::try_from(ts.tv_nsec).ok()?;
    (rc == 0).then(|| sec * 1_000_000_000 + nsec)
}

/// Seconds of `f`, in thread CPU time where the OS reports it, else wall-clock time.
pub fn seconds<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let out = f();
    let wall = start.elapsed().as_secs_f64();
    let s = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if b >= a => (b - a) as f64 / 1e9,
        _ => wall,
    };
    (out, s)
}

/// Times contenders side by side: each pass runs each of them once, in turn, so that a
/// change in the machine's load during the run touches all of them alike. Returns each
/// one's best ns per operation, in order.
pub fn race(passes: usize, ops: usize, contenders: &mut [&mut dyn FnMut() -> u64]) -> Vec<f64> {
    let mut best = vec![f64::INFINITY; contenders.len()];
    for _ in 0..passes.max(1) {
        for (f, b) in contenders.iter_mut().zip(best.iter_mut()) {
            let (sum, s) = seconds(&mut **f);
            black_box(sum);
            *b = b.min(s * 1e9 / ops.max(1) as f64);
        }
    }
    best
}
