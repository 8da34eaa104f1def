//! # vpcnic firmware
//!
//! Everything the NIC decides: the VF rings, the Amazon-VPC-style forwarding pipeline of
//! spec/vpc-forwarding.md, the fixed-capacity tables, the admin command handler and the
//! counters. `no_std`, no heap, no panics: the crate denies `unwrap`, `expect`, `panic`,
//! unchecked indexing and unchecked arithmetic.
//!
//! The firmware reaches the chip only through [`Platform`]; its table storage is handed in
//! as [`FirmwareMemory`], so the board (static arrays) and hw-sim (heap) choose capacity.
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

mod admin;
pub mod counters;
mod firmware;
pub mod frame;
#[cfg(any(test, feature = "testing"))]
pub mod fuzz;
pub mod memory;
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

pub use firmware::Firmware;
pub use memory::FirmwareMemory;
pub use platform::{DmaError, Function, Peripherals, Platform};
