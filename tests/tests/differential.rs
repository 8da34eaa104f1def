//! The firmware against the reference model (tests::model): random topologies and frames,
//! every frame's verdict, output bytes and drop counter compared. `cargo test` runs a
//! fixed-seed slice; `cargo run --release -p tests --example differential` runs a million
//! frames or more.
use tests::model::diff::run;

/// Seed of the slice `cargo test` runs.
const SEED: u64 = 0x5eed_0001;

#[test]
fn firmware_decides_as_the_reference_model() {
    let r = run(SEED, 40, 2500, true);
    for (seed, n, port, frame, why) in r.differences.iter().take(20) {
        eprintln!("topology seed {seed:#x}, frame {n} on {port:?}: {why}\n  frame: {frame:02x?}");
    }
    eprintln!(
        "{} frames on {} topologies; verdicts {:?}; unmodelled {:?}",
        r.frames, r.topologies, r.verdicts, r.unmodelled
    );
    assert_eq!(r.differences.len(), 0, "differences");
    assert_eq!(r.cross_vpc, 0, "cross-VPC deliveries");
}
