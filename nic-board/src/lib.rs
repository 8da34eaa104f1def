//! # vpcnic board support
//!
//! The bare-metal side of nic-firmware on a RISC-V SmartNIC board (riscv32imac): the
//! board's MMIO block as a datasheet ([`regs`]) and as a [`nic_firmware::Platform`]
//! ([`platform`]), its I2C controller and GPIOs as embedded-hal peripherals for the SFP and
//! LED drivers of `nic_firmware::port`, the firmware's tables in static memory
//! ([`memory`]), and the self-test that the QEMU image runs ([`selftest`], [`qemu`]).
//!
//! The images are the binaries `board` and `qemu-selftest`, built for
//! `riscv32imac-unknown-none-elf`; on the host they are stubs, and this library is
//! tested like any other crate.
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

pub mod gpio;
pub mod i2c;
pub mod memory;
pub mod mmio;
pub mod platform;
pub mod qemu;
pub mod regs;
pub mod selftest;
