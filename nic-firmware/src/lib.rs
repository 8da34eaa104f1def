//! # vpcnic firmware
//!
//! Everything the NIC decides: the VF rings, the Amazon-VPC-style forwarding pipeline of
//! spec/vpc-forwarding.md, the fixed-capacity tables, the admin command handler and the
//! counters. `no_std`, no heap, no panics: the crate denies `unwrap`, `expect`, `panic`,
//! unchecked indexing and unchecked arithmetic.
//!
//! The firmware reaches the chip only through [`Platform`]; its table storage is handed in
//! as [`FirmwareMemory`], so the board (static arrays) and hw-sim (heap) choose capacity.
//! It logs a few events (bring-up, refused commands and rings) to defmt with feature
//! `defmt`, to the `log` crate with feature `log`, and nowhere without either.
//!
//! # Where each rule lives
//!
//! The rules F1 to F17 of spec/vpc-forwarding.md, by the module that decides them. A trace
//! step and a drop counter name the same rule.
//!
//! | rule | where |
//! | --- | --- |
//! | F1 ethertypes | [`pipeline`] (`from_vf`, before F2) |
//! | F2 L2 source | [`pipeline`] (`from_vf`) |
//! | F3 ARP proxy | [`pipeline::arp`]; the underlay's own ARP: [`pipeline::uplink`] |
//! | F4 IPv4 validity | [`pipeline::ipv4`] |
//! | F5 source/destination check | sender side: [`pipeline::ipv4`]; receiver side: [`pipeline::deliver`] |
//! | F6 broadcast and multicast | [`pipeline::ipv4`]; another subnet's broadcast reached by a route: [`pipeline::route`] |
//! | F7 destination MAC | [`pipeline::ipv4`] (the gateway MAC is routed), [`pipeline::route`] (an instance's MAC) |
//! | F8 route tables | [`pipeline::route`], over [`tables::lpm`] and [`tables::mapping`] |
//! | F9 DHCP | [`pipeline::dhcp`] |
//! | F10 the gateway is a limited router | [`pipeline::subnet_gateway`] |
//! | F11 TTL | by construction; [`pipeline::ipv4`] (`Ipv4Info`) says where and why |
//! | F12 L2 rewrite on delivery | [`pipeline::deliver`] |
//! | F13 MTU | [`pipeline::mtu`]; a VF frame too long for its ring: [`rings`] |
//! | F14 encapsulation | [`pipeline::vxlan`], over the header view [`wire::vxlan`] |
//! | F15 decapsulation | [`pipeline::uplink`], then [`pipeline::deliver`] |
//! | F16 isolation | by construction; [`tables::mapping::MappingKey`] says where and why |
//! | F17 counters | [`counters`]; one drop counter per dropped frame: [`pipeline::Verdict`]; which rule decided: [`pipeline::trace`] |
#![cfg_attr(not(test), no_std)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

// First, so that every module after it sees its log macros.
mod fmt;

mod admin;
mod coalesce;
pub mod counters;
mod firmware;
pub mod frame;
#[cfg(any(test, feature = "testing"))]
pub mod fuzz;
pub mod memory;
pub mod offload;
pub mod pipeline;
pub mod platform;
pub mod port;
pub mod rings;
mod table_read;
pub mod tables;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod trace;
pub mod wire;
#[cfg(any(test, feature = "testing"))]
pub mod workload;

pub use firmware::Firmware;
pub use memory::FirmwareMemory;
pub use platform::{DmaError, Function, Peripherals, Platform};
