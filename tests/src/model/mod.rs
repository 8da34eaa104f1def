//! A reference model of spec/vpc-forwarding.md, and the differential harness that holds the
//! firmware to it.
//!
//! The model ([`topology`], [`rules`]) is plain std Rust written from the spec alone: it
//! never calls firmware code, and it is deliberately naive (linear scans over the
//! configuration, one frame at a time, no tables, no batching), so that a bug it shares
//! with the firmware would have to be written twice. [`generate`] makes random topologies
//! and frames, [`nic`] programs the same topology into a whole firmware through its admin
//! queue and runs frames through its VF rings and uplink, and [`diff`] compares the two
//! fates frame by frame: verdict, output bytes and the one drop counter (F17).
pub mod diff;
pub mod generate;
pub mod nic;
pub mod rules;
pub mod topology;
