//! The board image: nic-firmware over the board's MMIO block (see `nic_board::regs`),
//! with its tables in static memory; the firmware reads the SFP module at reset (and on
//! `PORT_GET`) and drives the link LEDs through the platform. Logs through defmt over RTT
//! with feature `defmt`.
//!
//! Build: `cargo build -p nic-board --profile board --target riscv32imac-unknown-none-elf --bin board`.
//! On the host this is a stub.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod image {
    use core::ptr::NonNull;
    use nic_board::gpio::BoardPin;
    use nic_board::i2c::BoardI2c;
    use nic_board::memory::StaticMemory;
    use nic_board::mmio::Mmio;
    use nic_board::platform::BoardPlatform;
    use nic_board::regs::{self, gpio};
    use nic_firmware::port::Module;
    use nic_firmware::Firmware;

    #[cfg(feature = "defmt")]
    use defmt_rtt as _;

    /// A log line: defmt over RTT with feature `defmt`, nothing otherwise.
    macro_rules! log {
        ($($t:tt)*) => {{
            #[cfg(feature = "defmt")]
            defmt::info!($($t)*);
        }};
    }

    static MEMORY: StaticMemory = StaticMemory::new();

    fn mmio() -> Mmio {
        // SAFETY: the board's MMIO block; each driver made here touches only its own
        // registers (platform: windows, DMA, IRQ, timer, uplink; I2C; one GPIO pin each).
        unsafe {
            Mmio::new(
                NonNull::new_unchecked(regs::MMIO_BASE as *mut u32),
                regs::MMIO_SIZE,
            )
        }
    }

    #[riscv_rt::entry]
    fn main() -> ! {
        log!("vpcnic board firmware {=str}", env!("CARGO_PKG_VERSION"));
        let mut p = BoardPlatform::new(
            mmio(),
            BoardI2c::new(mmio()),
            BoardPin::new(mmio(), gpio::PIN_LINK_LED),
            BoardPin::new(mmio(), gpio::PIN_ACTIVITY_LED),
        );
        let Some(mem) = MEMORY.take() else { halt() };
        let mut fw = Firmware::new(mem.memory());
        // The first poll is the power-on reset: it reads the SFP module and puts the LEDs
        // out; from then on every poll drives them.
        fw.poll(&mut p);
        match fw.port().module {
            Module::Present(_m) => log!(
                "SFP {=str} ({=u8:#x}) vendor {=str} part {=str} serial {=str} checksum {=bool}",
                _m.identifier.name(),
                _m.identifier.0,
                _m.vendor_name.as_str(),
                _m.part_number.as_str(),
                _m.serial.as_str(),
                _m.checksum_ok
            ),
            Module::Absent => log!("SFP cage empty"),
            Module::BusError => log!("SFP read failed: I2C bus error"),
        }
        log!("firmware up");
        loop {
            fw.poll(&mut p);
        }
    }

    fn halt() -> ! {
        loop {
            riscv::asm::wfi();
        }
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
        // The firmware never panics (its lints forbid every panicking construct); if it
        // ever did, say where and stop the core rather than run on with broken state.
        #[cfg(feature = "defmt")]
        defmt::error!("panic: {}", defmt::Display2Format(_info));
        halt()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("board is a bare-metal image: build it with --target riscv32imac-unknown-none-elf");
}
