//! The device thread and [`SimPlatform`], the chip as the firmware sees it.
//!
//! The thread calls [`Firmware::poll`] while it reports work. When it reports none, the
//! thread sleeps on [`Wake`] until a host BAR write, an uplink frame (queued, or readable on
//! a plugged wire) or shutdown, or for at most [`IDLE_WAIT`] so the firmware's heartbeat
//! keeps its once-a-millisecond promise. It does not spin or yield after work before it
//! sleeps: on the 2-core machines it runs on, the VMs' threads need that CPU more (iperf3
//! between hosts measured 10 % faster without the 50 us of yielding it once had, and on
//! one host the same).
use crate::nic::Shared;
use crate::port::{Led, SimI2c, SimPin};
use nic_firmware::memory::heap::OwnedMemory;
use nic_firmware::{DmaError, Firmware, Function, Peripherals, Platform};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;

/// Longest the device thread sleeps between polls of an idle firmware.
pub(crate) const IDLE_WAIT: Duration = Duration::from_millis(1);

/// A doorbell the host side rings and the device thread sleeps on, beside the uplink's
/// wire when one is plugged ([`crate::uplink::Wire`]). Ringing costs a system call only
/// while the device sleeps (as virtio's notification suppression): a host writing a tail
/// register a frame would otherwise pay one for each.
pub(crate) struct Wake {
    rung: AtomicBool,
    sleeping: AtomicBool,
    doorbell: EventFd,
}

impl Wake {
    pub(crate) fn new() -> std::io::Result<Wake> {
        Ok(Wake {
            rung: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            doorbell: EventFd::new(libc::EFD_NONBLOCK)?,
        })
    }

    /// Something happened the device should look at.
    pub(crate) fn ring(&self) {
        // SeqCst pairs this store and load with `wait`'s: either the sleeper sees `rung`,
        // or this sees `sleeping` and writes the eventfd its poll watches.
        self.rung.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            let _ = self.doorbell.write(1);
        }
    }

    /// Sleeps until rung, `wire` is readable or `timeout` passes; returns at once if rung
    /// since the last wait.
    pub(crate) fn wait(&self, timeout: Duration, wire: Option<BorrowedFd<'_>>) {
        self.sleeping.store(true, Ordering::SeqCst);
        if !self.rung.swap(false, Ordering::SeqCst) {
            let watch = |fd: i32| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // A negative fd is skipped by poll(2).
            let mut fds = [
                watch(self.doorbell.as_raw_fd()),
                watch(wire.map_or(-1, |w| w.as_raw_fd())),
            ];
            let ms = i32::try_from(timeout.as_millis().max(1)).unwrap_or(i32::MAX);
            // SAFETY: two valid pollfds, alive for the duration of the call; `wire` is
            // borrowed, so its descriptor stays open.
            unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
            // A ring while asleep wrote the doorbell: empty it for the next sleep.
            let _ = self.doorbell.read();
            self.rung.store(false, Ordering::SeqCst);
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
        self.shared.uplink.transmit(frame)
    }

    fn uplink_recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        self.shared.uplink.receive(buf)
    }

    fn now_us(&mut self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// The device thread's body: runs the firmware until shutdown.
pub(crate) fn run(shared: Arc<Shared>, mut ram: OwnedMemory) {
    let mut fw = Firmware::new(ram.memory());
    let mut platform = SimPlatform::new(Arc::clone(&shared));
    while !shared.shutdown.load(Ordering::Acquire) {
        let busy = match shared.faults.may_run() {
            Some(_running) => {
                let busy = fw.poll(&mut platform);
                shared.polls.done_one();
                busy
            }
            None => false,
        };
        if !busy {
            shared.uplink.sleep(&shared.wake, IDLE_WAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfd::SharedMemory;
    use crate::nic::{Nic, SimConfig};
    use shared_regs::{pf, vf};
    use std::os::fd::AsFd;
    use vmm_sys_util::eventfd::EFD_NONBLOCK;

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

    /// A wire over a datagram socket pair: the test holds the far end.
    struct SocketWire(std::os::unix::net::UnixDatagram);

    impl crate::uplink::Wire for SocketWire {
        fn transmit(&self, frame: &[u8]) -> bool {
            self.0.send(frame).is_ok()
        }
        fn receive(&self, buf: &mut [u8]) -> Option<usize> {
            self.0.recv(buf).ok()
        }
        fn readable(&self) -> BorrowedFd<'_> {
            use std::os::fd::AsFd;
            self.0.as_fd()
        }
    }

    fn socket_wire() -> (Arc<SocketWire>, std::os::unix::net::UnixDatagram) {
        let (near, far) = std::os::unix::net::UnixDatagram::pair().unwrap();
        near.set_nonblocking(true).unwrap();
        (Arc::new(SocketWire(near)), far)
    }

    #[test]
    fn a_plugged_wire_carries_the_uplink_both_ways_and_unplugged_the_queues_do() {
        let (nic, mut p) = platform();
        let (wire, far) = socket_wire();
        nic.uplink().plug(wire);
        far.send(b"from the wire").unwrap();
        nic.uplink().send(b"queued");
        let mut buf = [0u8; 64];
        // What the far end queued first, then what the wire holds, then nothing.
        assert_eq!(p.uplink_recv(&mut buf), Some(6));
        assert_eq!(p.uplink_recv(&mut buf), Some(13));
        assert_eq!(&buf[..13], b"from the wire");
        assert_eq!(p.uplink_recv(&mut buf), None);
        assert!(p.uplink_send(b"onto the wire"));
        assert_eq!(far.recv(&mut buf).unwrap(), 13);
        assert_eq!(nic.uplink().recv(Duration::ZERO), None, "not queued");
        nic.uplink().unplug();
        assert!(p.uplink_send(b"out"));
        assert_eq!(
            nic.uplink().recv(Duration::from_secs(1)).as_deref(),
            Some(&b"out"[..])
        );
    }

    #[test]
    fn a_frame_on_the_wire_wakes_the_sleeping_device() {
        let w = Wake::new().unwrap();
        let (wire, far) = socket_wire();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            far.send(b"x").unwrap();
            far
        });
        let t = Instant::now();
        w.wait(Duration::from_secs(5), Some(wire.0.as_fd()));
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        drop(sender.join().unwrap());
    }

    #[test]
    fn wake_returns_at_once_when_rung_before() {
        let w = Wake::new().unwrap();
        w.ring();
        let t = Instant::now();
        w.wait(Duration::from_secs(5), None);
        assert!(t.elapsed() < Duration::from_secs(1));
        let t = Instant::now();
        w.wait(Duration::from_millis(5), None);
        assert!(t.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn wake_loses_no_ring_from_another_thread() {
        let w = Arc::new(Wake::new().unwrap());
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
            w.wait(Duration::from_secs(5), None);
        }
        ringer.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    }
}
