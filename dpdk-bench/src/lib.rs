//! vpcnic's route and mapping tables side by side with DPDK's: the workloads of the
//! `nic-firmware` benches (the 4,096-VRF route mix, 1M mappings) and a BGP-like table,
//! each built in both, checked to answer alike and as an oracle does, and timed on one core.
//! See README.md.
//!
//! Everything but DPDK itself builds without the `dpdk` feature (generators, oracle, our
//! loops, the report), so the tests exercise it on any machine.
pub mod encode;
pub mod oracle;
pub mod ours;
pub mod report;
pub mod scale;
pub mod tbl8;
pub mod timing;
pub mod workload;

#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "dpdk")]
pub mod run;
