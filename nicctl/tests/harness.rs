//! The test harness itself, where its own behaviour is what a test relies on.
mod common;
use common::Bg;
use std::time::Duration;

/// A process that prints much right before it exits (as `iperf3 -J` prints its report):
/// once [`Bg::wait`] says it has ended, everything it printed is in [`Bg::stdout`]. CI once
/// saw an iperf3 report empty after a successful run: `wait` returned on the exit, before
/// the reader of its stdout had read to the end.
#[test]
fn wait_returns_with_everything_the_process_printed() {
    for _ in 0..20 {
        let mut p = Bg::spawn(
            None,
            &[
                "sh",
                "-c",
                "head -c 300000 /dev/zero | tr '\\0' x; echo; exit 0",
            ],
        );
        let status = p.wait(Duration::from_secs(20));
        assert!(status.is_some_and(|s| s.success()), "{status:?}");
        assert_eq!(p.stdout().trim_end().len(), 300_000);
    }
}
