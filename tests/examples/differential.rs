//! The big differential run: `cargo run --release -p tests --example differential --
//! [FRAMES] [SEED]` (default 1,000,000 frames). Prints the frames run, the differences
//! between firmware and model (must be 0) and the cross-VPC deliveries (must be 0), and
//! exits non-zero when either is not.
use std::time::Instant;
use tests::model::diff::run;

const FRAMES_PER_TOPOLOGY: u64 = 10_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let frames: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("FRAMES"));
    let seed: u64 = args.next().map_or(0xd1ff, |a| a.parse().expect("SEED"));
    let started = Instant::now();
    let r = run(
        seed,
        frames.div_ceil(FRAMES_PER_TOPOLOGY),
        FRAMES_PER_TOPOLOGY,
        false,
    );
    let secs = started.elapsed().as_secs_f64();
    for (seed, n, port, frame, why) in r.differences.iter().take(10) {
        println!(
            "DIFF topology seed {seed:#x}, frame {n} on {port:?}: {why}\n  frame: {frame:02x?}"
        );
    }
    let unmodelled: u64 = r.unmodelled.values().sum();
    println!("verdicts: {:?}", r.verdicts);
    println!("unmodelled (not compared): {:?}", r.unmodelled);
    println!(
        "frames {} on {} topologies, compared {}, differences {}, cross-VPC deliveries {}, \
         {secs:.1} s, {:.0} frames/s",
        r.frames,
        r.topologies,
        r.frames - unmodelled,
        r.differences.len(),
        r.cross_vpc,
        r.frames as f64 / secs
    );
    if !r.differences.is_empty() || r.cross_vpc != 0 {
        std::process::exit(1);
    }
}
