//! The device thread and [`SimPlatform`], the chip as the firmware sees it.
//!
//! The thread calls [`Firmware::poll`] while it reports work. When it reports none, the
//! thread sleeps on [`Wake`] until a host BAR write, an uplink frame or shutdown, or for at
//! most [`IDLE_WAIT`] so the firmware's heartbeat keeps its once-a-millisecond promise.
//! Right after work it yields rather than sleeps for [`BUSY_SPIN`], as a poll-mode driver
//! does, since the next frame of a stream usually follows within microseconds and a
//! sleep's wake-up would cost more; it never spins a core on an idle device.
use crate::nic::Shared;
use crate::port::{Led, SimI2c, SimPin};
use nic_firmware::memory::heap::OwnedMemory;
use nic_firmware::{DmaError, Firmware, Function, Peripherals, Platform};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest the device thread sleeps between polls of an idle firmware.
pub(crate) const IDLE_WAIT: Duration = Duration::from_millis(1);
/// How long after its last work the device thread yields instead of sleeping.
pub(crate) const BUSY_SPIN: Duration = Duration::from_micros(50);

/// A doorbell the host side rings and the device thread sleeps on. Ringing costs a lock
/// and a wake-up only while the device sleeps (as virtio's notification suppression):
/// a host writing a tail register a frame would otherwise pay a system call for each.
#[derive(Default)]
pub(crate) struct Wake {
    rung: AtomicBool,
    sleeping: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Wake {
    /// Something happened the device should look at.
    pub(crate) fn ring(&self) {
        // SeqCst pairs this store and load with `wait`'s: either the sleeper sees `rung`,
        // or this sees `sleeping` and wakes it (under the lock, so not before it waits).
        self.rung.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.cv.notify_one();
        }
    }

    /// Sleeps until rung or `timeout`; returns at once if rung since the last wait.
    pub(crate) fn wait(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.sleeping.store(true, Ordering::SeqCst);
        while !self.rung.swap(false, Ordering::SeqCst) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            if left.is_zero() {
                break;
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

/// The chip around the firmware: register files, DMA, interrupts, the uplink, a clock.
pub(crate) struct SimPlatform {
    shared: Arc<Shared>,
    epoch: Instant,
    i2c: SimI2c,
    link_led: SimPin,
    activity_led: SimPin,
}

impl SimPlatform {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        SimPlatform {
            i2c: SimI2c {
                shared: Arc::clone(&shared),
            },
            link_led: SimPin {
                shared: Arc::clone(&shared),
                led: Led::Link,
            },
            activity_led: SimPin {
                shared: Arc::clone(&shared),
                led: Led::Activity,
            },
            shared,
            epoch: Instant::now(),
        }
    }

    /// DMA through `func`'s address space, unless a fault is injected.
    fn dma<T>(
        &self,
        func: Function,
        op: impl FnOnce(&crate::dma::DmaSpace) -> Result<T, DmaError>,
    ) -> Result<T, DmaError> {
        let i = self.shared.index(func).ok_or(DmaError)?;
        if self.shared.faults.take_dma_failure(i) {
            return Err(DmaError);
        }
        op(&self.shared.functions[i].dma)
    }
}

impl Platform for SimPlatform {
    type I2c = SimI2c;
    type Led = SimPin;

    fn peripherals(&mut self) -> Peripherals<'_, SimI2c, SimPin> {
        Peripherals {
            i2c: &mut self.i2c,
            link_led: &mut self.link_led,
            activity_led: &mut self.activity_led,
        }
    }

    fn read_reg(&mut self, func: Function, offset: u32) -> u32 {
        self.shared.get(func).map_or(0, |f| f.regs.dev_read(offset))
    }

    fn write_reg(&mut self, func: Function, offset: u32, value: u32) {
        if let Some(f) = self.shared.get(func) {
            f.regs.dev_write(offset, value);
        }
    }

    fn dma_read(&mut self, func: Function, iova: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        self.dma(func, |d| d.read(iova, buf))
    }

    fn dma_write(&mut self, func: Function, iova: u64, data: &[u8]) -> Result<(), DmaError> {
        self.dma(func, |d| d.write(iova, data))
    }

    fn raise_irq(&mut self, func: Function, cause: u32) {
        if let Some(f) = self.shared.get(func) {
            f.irq.raise(&f.regs, cause);
        }
    }

    fn uplink_send(&mut self, frame: &[u8]) -> bool {
        self.shared.uplink.push_from_device(frame)
    }

    fn uplink_recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.shared.uplink.pop_to_device(buf)
    }

    fn now_us(&mut self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// The device thread's body: runs the firmware until shutdown.
pub(crate) fn run(shared: Arc<Shared>, mut ram: OwnedMemory) {
    let mut fw = Firmware::new(ram.memory());
    let mut platform = SimPlatform::new(Arc::clone(&shared));
    let mut last_busy = Instant::now();
    while !shared.shutdown.load(Ordering::Acquire) {
        let busy = match shared.faults.may_run() {
            Some(_running) => {
                let busy = fw.poll(&mut platform);
                shared.polls.done_one();
                busy
            }
            None => false,
        };
        if busy {
            last_busy = Instant::now();
        } else if last_busy.elapsed() > BUSY_SPIN {
            shared.wake.wait(IDLE_WAIT);
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfd::SharedMemory;
    use crate::nic::{Nic, SimConfig};
    use shared_regs::{pf, vf};
    use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

    fn platform() -> (Nic, SimPlatform) {
        let nic = Nic::start(SimConfig {
            num_vfs: 2,
            ..SimConfig::default()
        })
        .unwrap();
        nic.faults().stall_firmware(true);
        let p = SimPlatform::new(Arc::clone(&nic.shared));
        (nic, p)
    }

    #[test]
    fn device_register_access_ignores_host_rules() {
        let (nic, mut p) = platform();
        p.write_reg(Function::Pf, pf::STATUS, pf::Status::READY.bits());
        assert_eq!(
            nic.pf().bar_read32(u64::from(pf::STATUS)).unwrap(),
            pf::Status::READY.bits()
        );
        p.write_reg(Function::Vf(1), vf::MAC_LO, 0x0403_0201);
        assert_eq!(
            nic.vf(1)
                .unwrap()
                .bar_read32(u64::from(vf::MAC_LO))
                .unwrap(),
            0x0403_0201
        );
        assert_eq!(p.read_reg(Function::Vf(9), vf::VF_INDEX), 0);
        p.write_reg(Function::Vf(9), vf::MAC_LO, 1); // no such VF: ignored
        assert_eq!(p.read_reg(Function::Pf, 0x5000), 0);
    }

    #[test]
    fn dma_is_isolated_per_function_and_honours_injected_faults() {
        let (nic, mut p) = platform();
        let shm = SharedMemory::new("pf-mem", 0, 4096).unwrap();
        nic.pf().dma_map(0x2000, 4096, shm.file(), 0).unwrap();
        p.dma_write(Function::Pf, 0x2000, b"pf").unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(p.dma_read(Function::Vf(0), 0x2000, &mut buf), Err(DmaError));
        assert_eq!(p.dma_write(Function::Vf(1), 0x2000, b"vf"), Err(DmaError));
        assert_eq!(p.dma_read(Function::Vf(7), 0x2000, &mut buf), Err(DmaError));
        p.dma_read(Function::Pf, 0x2000, &mut buf).unwrap();
        assert_eq!(&buf, b"pf");

        nic.faults().fail_dma(Function::Pf, 2);
        assert_eq!(p.dma_read(Function::Pf, 0x2000, &mut buf), Err(DmaError));
        assert_eq!(p.dma_write(Function::Pf, 0x2000, b"xx"), Err(DmaError));
        p.dma_read(Function::Pf, 0x2000, &mut buf).unwrap();
        assert_eq!(&buf, b"pf", "the failed write must not have landed");
    }

    #[test]
    fn raise_irq_respects_the_mask() {
        let (nic, mut p) = platform();
        let vf = nic.vf(0).unwrap();
        let efd = EventFd::new(EFD_NONBLOCK).unwrap();
        vf.set_irq(vf::IRQ_VECTOR, Some(efd.try_clone().unwrap()))
            .unwrap();
        p.raise_irq(Function::Vf(0), vf::Intr::RX.bits());
        assert!(efd.read().is_err(), "masked: no interrupt");
        vf.bar_write32(u64::from(vf::INTR_CAUSE), u32::MAX).unwrap();
        vf.bar_write32(u64::from(vf::INTR_MASK), !vf::Intr::RX.bits())
            .unwrap();
        assert!(efd.read().is_err(), "nothing pending when unmasked");
        p.raise_irq(Function::Vf(0), vf::Intr::RX.bits());
        assert_eq!(efd.read().unwrap(), 1);
        assert_eq!(
            vf.bar_read32(u64::from(vf::INTR_CAUSE)).unwrap(),
            vf::Intr::RX.bits()
        );
        p.raise_irq(Function::Vf(1), vf::Intr::RX.bits());
        assert!(efd.read().is_err(), "another VF's interrupt");
    }

    #[test]
    fn uplink_and_clock() {
        let (nic, mut p) = platform();
        nic.uplink().send(b"in");
        let mut buf = [0u8; 64];
        assert_eq!(p.uplink_recv(&mut buf), Some(2));
        assert!(p.uplink_send(b"out"));
        assert_eq!(
            nic.uplink().recv(Duration::from_secs(1)).as_deref(),
            Some(&b"out"[..])
        );
        let t0 = p.now_us();
        std::thread::sleep(Duration::from_millis(2));
        assert!(p.now_us() >= t0 + 2000);
    }

    #[test]
    fn wake_returns_at_once_when_rung_before() {
        let w = Wake::default();
        w.ring();
        let t = Instant::now();
        w.wait(Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(1));
        let t = Instant::now();
        w.wait(Duration::from_millis(5));
        assert!(t.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn wake_loses_no_ring_from_another_thread() {
        let w = Arc::new(Wake::default());
        let done = Arc::new(AtomicBool::new(false));
        let ringer = {
            let (w, done) = (Arc::clone(&w), Arc::clone(&done));
            std::thread::spawn(move || {
                for i in 0..2000u32 {
                    if i % 64 == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    w.ring();
                }
                // The last ring comes after `done`: a waiter that missed `done` gets it.
                done.store(true, Ordering::SeqCst);
                w.ring();
            })
        };
        // A lost ring would leave a wait to its 5 s timeout.
        let t = Instant::now();
        while !done.load(Ordering::SeqCst) {
            w.wait(Duration::from_secs(5));
        }
        ringer.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    }
}
