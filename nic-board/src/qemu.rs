//! QEMU `virt` machine devices for the self-test image: the NS16550 UART at `0x1000_0000`
//! and the SiFive test device at `0x10_0000` that ends the emulation.
use crate::mmio::Mmio;
use core::ptr::NonNull;
use volatile::VolatilePtr;

/// The first UART's base address.
pub const UART_BASE: usize = 0x1000_0000;
/// The SiFive test (power) device.
pub const TEST_BASE: usize = 0x10_0000;
/// Written to the test device: power off with success.
pub const EXIT_PASS: u32 = 0x5555;
/// Written to the test device, with the code in bits 31:16: power off with failure.
pub const EXIT_FAIL: u32 = 0x3333;

/// The NS16550's transmit side, byte-wide registers.
pub struct Uart {
    base: NonNull<u8>,
}

impl Uart {
    /// The UART at `base`.
    ///
    /// # Safety
    /// `base` must be an NS16550 that nothing else drives.
    pub const unsafe fn new(base: NonNull<u8>) -> Uart {
        Uart { base }
    }

    fn reg(&self, offset: usize) -> VolatilePtr<'_, u8> {
        // SAFETY: THR (0) and LSR (5) are inside the UART's register block.
        unsafe {
            VolatilePtr::new(NonNull::new_unchecked(
                self.base.as_ptr().wrapping_add(offset),
            ))
        }
    }

    /// Sends one byte, waiting (boundedly) for room in the transmitter.
    pub fn put(&mut self, byte: u8) {
        const LSR: usize = 5;
        const THR_EMPTY: u8 = 1 << 5;
        for _ in 0..100_000 {
            if self.reg(LSR).read() & THR_EMPTY != 0 {
                break;
            }
        }
        self.reg(0).write(byte);
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}

/// Ends the emulation: exit status 0 when `pass`, 1 otherwise.
///
/// # Safety
/// Only on QEMU's `virt` machine, whose test device is at [`TEST_BASE`].
pub unsafe fn exit(pass: bool) {
    // SAFETY: the caller promises the test device is there.
    let mut dev = unsafe { Mmio::new(NonNull::new_unchecked(TEST_BASE as *mut u32), 4) };
    dev.write(
        0,
        if pass {
            EXIT_PASS
        } else {
            (1 << 16) | EXIT_FAIL
        },
    );
}
