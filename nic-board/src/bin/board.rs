//! The board image: nic-firmware over the board's MMIO block (see `nic_board::regs`),
//! with its tables in static memory, the SFP module read at boot and the link LEDs driven
//! from the main loop. Logs through defmt over RTT with feature `defmt`.
//!
//! Build: `cargo build -p nic-board --release --target riscv32imac-unknown-none-elf --bin board`.
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
    use nic_firmware::port::{read_module, LinkLeds, SfpError};
    use nic_firmware::{Firmware, Platform};

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
        let mut i2c = BoardI2c::new(mmio());
        match read_module(&mut i2c) {
            Ok(_m) => log!(
                "SFP {=str} ({=u8:#x}) vendor {=str} part {=str} serial {=str} checksum {=bool}",
                _m.identifier.name(),
                _m.identifier.0,
                _m.vendor_name.as_str(),
                _m.part_number.as_str(),
                _m.serial.as_str(),
                _m.checksum_ok
            ),
            Err(SfpError::Absent) => log!("SFP cage empty"),
            Err(SfpError::Bus(_e)) => log!("SFP read failed: {}", defmt::Debug2Format(&_e)),
        }
        let mut leds = LinkLeds::new(
            BoardPin::new(mmio(), gpio::PIN_LINK_LED),
            BoardPin::new(mmio(), gpio::PIN_ACTIVITY_LED),
        );
        let mut p = BoardPlatform::new(mmio());
        let Some(mem) = MEMORY.take() else { halt() };
        let mut fw = Firmware::new(mem.memory());
        log!("firmware up");
        loop {
            let busy = fw.poll(&mut p);
            let now = p.now_us();
            if let Ok(leds) = leds.as_mut() {
                // GPIO writes cannot fail (Infallible).
                let _ = leds.update(p.uplink_link_up(), busy, now);
            }
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
