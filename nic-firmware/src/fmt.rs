//! Log lines, in the manner of embassy's `fmt.rs`: `trace!`, `debug!`, `info!`, `warn!` and
//! `error!` go to defmt with feature `defmt` (the board, over RTT), to the `log` crate with
//! feature `log` (the simulator), and nowhere otherwise.
//!
//! A format string must mean the same to both loggers: `{}`, `{:?}` and hints such as
//! `{:#x}`, never defmt's `{=u8}`; arguments are integers, `bool` and `&str`, which both
//! format. Without a logger a line costs nothing, yet its arguments are still checked
//! against its format string, in a branch never taken, so a line that would not build with
//! a logger does not build without one either.
//!
//! The firmware logs events, never packets: bring-up, a command or a ring refused. A
//! frame's fate is a counter (F17) and, on request, a trace.
//!
//! defmt keeps only the lines at or above `DEFMT_LOG` when the image is built (`error` by
//! default): build the board with `DEFMT_LOG=debug` to read the others.
#![macro_use]
// Every level is defined whether or not a line uses it yet.
#![allow(unused_macros)]

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("nic-firmware: features `defmt` and `log` pick one logger each; enable one");

/// One log line at `$level` (a macro name of both defmt and log).
macro_rules! log_line {
    ($level:ident, $s:literal $(, $x:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::$level!($s $(, $x)*);
        #[cfg(feature = "log")]
        ::log::$level!($s $(, $x)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        if false {
            let _ = ::core::format_args!($s $(, $x)*);
        }
    }};
}

macro_rules! trace {
    ($($t:tt)*) => { log_line!(trace, $($t)*) };
}

macro_rules! debug {
    ($($t:tt)*) => { log_line!(debug, $($t)*) };
}

macro_rules! info {
    ($($t:tt)*) => { log_line!(info, $($t)*) };
}

macro_rules! warn {
    ($($t:tt)*) => { log_line!(warn, $($t)*) };
}

macro_rules! error {
    ($($t:tt)*) => { log_line!(error, $($t)*) };
}
