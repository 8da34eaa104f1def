//! The QEMU self-test image: the firmware's pipeline over built-in frames on QEMU's
//! riscv32 `virt` machine, verdicts on the UART, exit through the test device.
//!
//! `bash nic-board/selftest.sh` builds and runs it. On the host this is a stub.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod image {
    use core::ptr::NonNull;
    use nic_board::memory::{StaticMemory, TakeOnce};
    use nic_board::qemu::{self, Uart};
    use nic_board::selftest::{self, Loopback};

    static MEMORY: StaticMemory = StaticMemory::new();
    static PLATFORM: TakeOnce<Loopback> = TakeOnce::new(Loopback::NEW);

    #[riscv_rt::entry]
    fn main() -> ! {
        // SAFETY: the virt machine's first UART, driven only here.
        let mut uart = unsafe { Uart::new(NonNull::new_unchecked(qemu::UART_BASE as *mut u8)) };
        let pass = match (MEMORY.take(), PLATFORM.take()) {
            (Some(mem), Some(p)) => selftest::run(mem.memory(), p, &mut uart).failed == 0,
            _ => false,
        };
        // SAFETY: this image runs only on the virt machine.
        unsafe { qemu::exit(pass) };
        loop {
            riscv::asm::wfi();
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        // The firmware never panics; if it did, fail the run rather than hang it.
        // SAFETY: this image runs only on the virt machine.
        unsafe { qemu::exit(false) };
        loop {
            riscv::asm::wfi();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("qemu-selftest is a bare-metal image: run nic-board/selftest.sh");
}
