//! # vpcnic VF driver
//!
//! [`VfDriver`]: the VM's side of a VF, the driver a guest kernel would run, here in user
//! space for the simulator: `nicctl up` bridges each VM's TAP device through one, and the
//! conformance tests drive VFs with it. It reaches its VF only through
//! [`hw_sim::guest::GuestPort`] (BAR0, DMA mappings, interrupts), so the same driver runs on
//! an in-process simulated VF or on one served by `nic-sim` over vfio-user.
//!
//! It owns its "VM memory" (a memfd), maps all of it into the VF's DMA space at
//! [`GUEST_IOVA`] (IOVA = guest physical address, as with a VMM that maps guest RAM 1:1),
//! and speaks the ring protocol of `shared_regs::desc`:
//!
//! - Ring indices in `TX_TAIL`/`RX_TAIL` run modulo the ring size, and `head == tail` means
//!   empty, so at most `size - 1` descriptors are ever posted to the device.
//! - TX: descriptor `i` always points at TX buffer `i`. The guest fills `[tail, ...)`, sets
//!   `EOP` and rings `TX_TAIL`; a descriptor is reclaimed once the device sets `DONE`.
//! - RX: descriptor `i` always points at RX buffer `i`. The guest posts `size - 1` buffers at
//!   attach; after taking a frame from descriptor `i` it clears that descriptor and moves
//!   `RX_TAIL` to `i`, handing back one buffer.
//! - The device is expected to start both heads at 0 when `CONTROL.ENABLE` goes 0 -> 1.
use hw_sim::guest::GuestPort;
use hw_sim::memfd::SharedMemory;
use hw_sim::{Function, FunctionName, SimError};
use shared_regs::desc::{RxDesc, RxFlags, TxDesc, TxFlags, DESC_SIZE};
use shared_regs::vf;
use shared_regs::{Le16, Le64};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use zerocopy::{FromBytes, IntoBytes};

/// Bytes of each TX and RX buffer: a whole VF frame (9015 bytes) fits.
pub const BUF_SIZE: usize = 9216;
/// Where the guest's memory sits in the VF's DMA space: above 4 GiB, so the `*_BASE_HI`
/// registers matter.
pub const GUEST_IOVA: u64 = 0x1_0000_0000;
/// How long `send` waits for the device to free a descriptor of a full ring.
pub const TX_FULL_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest single sleep while waiting for an interrupt, so a lost one costs at most this.
const IRQ_POLL: Duration = Duration::from_millis(10);

/// The DMA mapping granule.
const PAGE: u64 = 4096;

fn page_up(n: u64) -> u64 {
    n.div_ceil(PAGE) * PAGE
}

/// What can go wrong on the VM's side of a VF.
#[derive(Debug, Error)]
pub enum VfDriverError {
    /// The VF itself refused an access (BAR, DMA mapping, interrupt wiring).
    #[error(transparent)]
    Port(#[from] SimError),
    /// The driver refuses: not a VF, a bad ring size, a frame too big, a ring that stays full.
    #[error("{}: {reason}", FunctionName(*.function))]
    Refused { function: Function, reason: String },
    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// A VM's driver for one VF.
pub struct VfDriver {
    port: Box<dyn GuestPort>,
    vf: u16,
    shm: SharedMemory,
    /// Ring size in descriptors (a power of two).
    size: u32,
    tx_ring: u64,
    rx_ring: u64,
    tx_bufs: u64,
    rx_bufs: u64,
    /// Next TX descriptor to fill (the value last written to `TX_TAIL`).
    tx_tail: u32,
    /// Oldest TX descriptor not yet seen `DONE`.
    tx_clean: u32,
    /// Next RX descriptor the device will complete.
    rx_next: u32,
    eventfd: EventFd,
    mapped: bool,
}

impl VfDriver {
    /// Brings the VF up from the VM's side: allocates guest memory for a TX ring, an RX ring
    /// and one [`BUF_SIZE`] buffer per descriptor of each, maps it into the VF's DMA space,
    /// programs the ring registers, posts `ring_size - 1` RX buffers, wires vector 0 to an
    /// eventfd with `TX_DONE | RX` unmasked, and sets `CONTROL.ENABLE`.
    ///
    /// `ring_size` must be a power of two from 2 to `vf::MAX_RING_SIZE`.
    pub fn attach(vf: impl GuestPort + 'static, ring_size: u16) -> Result<VfDriver, VfDriverError> {
        let function = vf.function();
        let Function::Vf(index) = function else {
            return Err(VfDriverError::Refused {
                function,
                reason: "VfDriver drives a VF, not the PF".into(),
            });
        };
        let size = u32::from(ring_size);
        if !size.is_power_of_two() || !(2..=vf::MAX_RING_SIZE).contains(&size) {
            return Err(VfDriverError::Refused {
                function,
                reason: format!(
                    "ring size {ring_size} is not a power of two from 2 to {}",
                    vf::MAX_RING_SIZE
                ),
            });
        }
        let ring_bytes = page_up(u64::from(size) * DESC_SIZE as u64);
        let buf_bytes = page_up(u64::from(size) * BUF_SIZE as u64);
        let tx_ring = GUEST_IOVA;
        let rx_ring = tx_ring + ring_bytes;
        let tx_bufs = rx_ring + ring_bytes;
        let rx_bufs = tx_bufs + buf_bytes;
        let total = 2 * ring_bytes + 2 * buf_bytes;
        let shm = SharedMemory::new(&format!("vf{index}-guest"), GUEST_IOVA, total as usize)?;
        let eventfd = EventFd::new(EFD_NONBLOCK).map_err(|e| VfDriverError::Io {
            what: format!("VF {index}: creating the interrupt eventfd"),
            source: e,
        })?;
        let mut guest = VfDriver {
            port: Box::new(vf),
            vf: index,
            shm,
            size,
            tx_ring,
            rx_ring,
            tx_bufs,
            rx_bufs,
            tx_tail: 0,
            tx_clean: 0,
            rx_next: 0,
            eventfd,
            mapped: false,
        };
        // From here on, Drop undoes whatever was done.
        guest.port.dma_map(GUEST_IOVA, total, guest.shm.file(), 0)?;
        guest.mapped = true;
        for i in 0..size {
            guest.write_rx_desc(i, &guest.fresh_rx_desc(i))?;
        }
        let efd = guest.eventfd.try_clone().map_err(|e| VfDriverError::Io {
            what: format!("VF {index}: duplicating the interrupt eventfd"),
            source: e,
        })?;
        guest.port.set_irq(vf::IRQ_VECTOR, Some(efd))?;
        let p = &guest.port;
        p.bar_write32(u64::from(vf::CONTROL), 0)?;
        p.bar_write32(u64::from(vf::TX_BASE_LO), tx_ring as u32)?;
        p.bar_write32(u64::from(vf::TX_BASE_HI), (tx_ring >> 32) as u32)?;
        p.bar_write32(u64::from(vf::TX_SIZE), size)?;
        p.bar_write32(u64::from(vf::TX_TAIL), 0)?;
        p.bar_write32(u64::from(vf::RX_BASE_LO), rx_ring as u32)?;
        p.bar_write32(u64::from(vf::RX_BASE_HI), (rx_ring >> 32) as u32)?;
        p.bar_write32(u64::from(vf::RX_SIZE), size)?;
        p.bar_write32(u64::from(vf::RX_TAIL), size - 1)?;
        p.bar_write32(u64::from(vf::INTR_CAUSE), u32::MAX)?;
        p.bar_write32(
            u64::from(vf::INTR_MASK),
            !(vf::Intr::TX_DONE | vf::Intr::RX).bits(),
        )?;
        p.bar_write32(u64::from(vf::CONTROL), vf::Control::ENABLE.bits())?;
        Ok(guest)
    }

    fn err(&self, reason: impl Into<String>) -> VfDriverError {
        VfDriverError::Refused {
            function: Function::Vf(self.vf),
            reason: reason.into(),
        }
    }

    /// The MAC the PF assigned (`MAC_LO`/`MAC_HI`); all zero before assignment.
    pub fn mac(&self) -> [u8; 6] {
        let lo = self.port.bar_read32(u64::from(vf::MAC_LO)).unwrap_or(0);
        let hi = self.port.bar_read32(u64::from(vf::MAC_HI)).unwrap_or(0);
        vf::mac_from_regs(lo, hi)
    }

    /// True once the PF has assigned the VF to a subnet.
    pub fn link_up(&self) -> bool {
        self.port
            .bar_read32(u64::from(vf::LINK))
            .is_ok_and(|l| vf::Link::from_bits_retain(l).contains(vf::Link::UP))
    }

    /// Queues one frame for transmission. Reclaims completed descriptors first; if the ring
    /// stays full for [`TX_FULL_TIMEOUT`], fails.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), VfDriverError> {
        if frame.len() > BUF_SIZE {
            return Err(self.err(format!(
                "a {}-byte frame does not fit a {BUF_SIZE}-byte TX buffer",
                frame.len()
            )));
        }
        let deadline = Instant::now() + TX_FULL_TIMEOUT;
        loop {
            self.reclaim_tx()?;
            if self.next(self.tx_tail) != self.tx_clean {
                break;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(self.err(format!(
                    "TX ring full for {TX_FULL_TIMEOUT:?}: the device completed no descriptor \
                     (TX_HEAD {}, TX_TAIL {})",
                    self.port.bar_read32(u64::from(vf::TX_HEAD)).unwrap_or(0),
                    self.tx_tail
                )));
            };
            self.wait_irq(left);
        }
        let i = self.tx_tail;
        let buf = self.tx_bufs + u64::from(i) * BUF_SIZE as u64;
        self.guest_write(buf, frame)?;
        let desc = TxDesc {
            addr: Le64::new(buf),
            len: Le16::new(frame.len() as u16),
            flags: Le16::new(TxFlags::EOP.bits()),
            status: Le16::new(0),
            mss: Le16::new(0),
        };
        self.guest_write(self.tx_desc_addr(i), desc.as_bytes())?;
        fence(Ordering::Release);
        self.tx_tail = self.next(i);
        Ok(self
            .port
            .bar_write32(u64::from(vf::TX_TAIL), self.tx_tail)?)
    }

    /// Waits up to `timeout` for a received frame (sleeping on the interrupt eventfd).
    pub fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.try_recv() {
                return Some(frame);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            self.wait_irq(left);
        }
    }

    /// The next received frame, if the device has completed one; its buffer is posted again.
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        let i = self.rx_next;
        let desc = self.read_rx_desc(i)?;
        if !RxFlags::from_bits_retain(desc.flags.get()).contains(RxFlags::DONE) {
            return None;
        }
        fence(Ordering::Acquire);
        // Read again after the fence: `len` is valid once `DONE` is seen.
        let desc = self.read_rx_desc(i)?;
        let len = usize::from(desc.len.get()).min(BUF_SIZE);
        let mut frame = vec![0u8; len];
        let buf = self.rx_bufs + u64::from(i) * BUF_SIZE as u64;
        let ok = self
            .shm
            .mem()
            .read_slice(&mut frame, GuestAddress(buf))
            .is_ok();
        // Hand the descriptor back whatever happened, or the ring would stall.
        let _ = self.write_rx_desc(i, &self.fresh_rx_desc(i));
        fence(Ordering::Release);
        self.rx_next = self.next(i);
        let _ = self.port.bar_write32(u64::from(vf::RX_TAIL), i);
        ok.then_some(frame)
    }

    /// The interrupt eventfd (vector 0), for a caller that polls it itself. Reading it is
    /// allowed: `recv` never relies on it for correctness.
    pub fn event_fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    fn next(&self, i: u32) -> u32 {
        (i + 1) & (self.size - 1)
    }

    fn tx_desc_addr(&self, i: u32) -> u64 {
        self.tx_ring + u64::from(i) * DESC_SIZE as u64
    }

    fn rx_desc_addr(&self, i: u32) -> u64 {
        self.rx_ring + u64::from(i) * DESC_SIZE as u64
    }

    fn fresh_rx_desc(&self, i: u32) -> RxDesc {
        RxDesc {
            addr: Le64::new(self.rx_bufs + u64::from(i) * BUF_SIZE as u64),
            buf_len: Le16::new(BUF_SIZE as u16),
            len: Le16::new(0),
            flags: Le16::new(0),
            mss: Le16::new(0),
        }
    }

    fn read_rx_desc(&self, i: u32) -> Option<RxDesc> {
        let mut raw = [0u8; DESC_SIZE];
        self.shm
            .mem()
            .read_slice(&mut raw, GuestAddress(self.rx_desc_addr(i)))
            .ok()?;
        RxDesc::read_from_bytes(&raw).ok()
    }

    fn write_rx_desc(&self, i: u32, d: &RxDesc) -> Result<(), VfDriverError> {
        self.guest_write(self.rx_desc_addr(i), d.as_bytes())
    }

    fn guest_write(&self, addr: u64, data: &[u8]) -> Result<(), VfDriverError> {
        self.shm
            .mem()
            .write_slice(data, GuestAddress(addr))
            .map_err(|e| self.err(format!("guest memory write at {addr:#x}: {e}")))
    }

    /// Moves `tx_clean` past every descriptor the device has completed.
    fn reclaim_tx(&mut self) -> Result<(), VfDriverError> {
        while self.tx_clean != self.tx_tail {
            let mut raw = [0u8; DESC_SIZE];
            let addr = self.tx_desc_addr(self.tx_clean);
            self.shm
                .mem()
                .read_slice(&mut raw, GuestAddress(addr))
                .map_err(|e| self.err(format!("guest memory read at {addr:#x}: {e}")))?;
            let d = TxDesc::read_from_bytes(&raw)
                .map_err(|_| self.err("TX descriptor size mismatch"))?;
            if !TxFlags::from_bits_retain(d.flags.get()).contains(TxFlags::DONE) {
                break;
            }
            self.tx_clean = self.next(self.tx_clean);
        }
        Ok(())
    }

    /// Sleeps until the eventfd fires or `timeout` (capped at [`IRQ_POLL`]), then drains it
    /// and acknowledges `TX_DONE | RX` so the next cause signals again.
    fn wait_irq(&self, timeout: Duration) {
        let ms = timeout.min(IRQ_POLL).as_millis().max(1) as libc::c_int;
        let mut pfd = libc::pollfd {
            fd: self.eventfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid pollfd for the duration of the call and nfds is 1.
        let _ = unsafe { libc::poll(&mut pfd, 1, ms) };
        let _ = self.eventfd.read();
        let _ = self.port.bar_write32(
            u64::from(vf::INTR_CAUSE),
            (vf::Intr::TX_DONE | vf::Intr::RX).bits(),
        );
    }
}

impl Drop for VfDriver {
    /// Detaches as a VM's driver unloading would: stops the rings, masks and unwires the
    /// interrupt, and unmaps the guest memory from the VF.
    fn drop(&mut self) {
        let _ = self.port.bar_write32(u64::from(vf::CONTROL), 0);
        let _ = self.port.bar_write32(u64::from(vf::INTR_MASK), u32::MAX);
        let _ = self.port.set_irq(vf::IRQ_VECTOR, None);
        if self.mapped {
            let _ = self.port.dma_unmap(GUEST_IOVA, self.shm.size() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    //! These tests stall the firmware and play the device themselves through hw-sim's
    //! [`DeviceSide`], so each ring step of the driver is checked on its own.
    use super::*;
    use hw_sim::{DeviceSide, Nic, SimConfig};

    struct Bench {
        nic: Nic,
        dev: DeviceSide,
    }

    const F: Function = Function::Vf(1);

    fn bench() -> Bench {
        let nic = Nic::start(SimConfig {
            num_vfs: 2,
            ..SimConfig::default()
        })
        .unwrap();
        nic.faults().stall_firmware(true);
        let dev = DeviceSide::of(&nic);
        Bench { nic, dev }
    }

    impl Bench {
        fn reg(&mut self, off: u32) -> u32 {
            self.dev.read_reg(F, off)
        }
        fn base(&mut self, lo: u32, hi: u32) -> u64 {
            u64::from(self.reg(lo)) | u64::from(self.reg(hi)) << 32
        }
        fn tx_desc(&mut self, i: u32) -> TxDesc {
            let base = self.base(vf::TX_BASE_LO, vf::TX_BASE_HI);
            let mut raw = [0u8; DESC_SIZE];
            self.dev
                .dma_read(F, base + u64::from(i) * DESC_SIZE as u64, &mut raw)
                .unwrap();
            TxDesc::read_from_bytes(&raw).unwrap()
        }
        fn complete_tx(&mut self, i: u32) {
            let base = self.base(vf::TX_BASE_LO, vf::TX_BASE_HI);
            let mut d = self.tx_desc(i);
            d.flags = Le16::new(d.flags.get() | TxFlags::DONE.bits());
            self.dev
                .dma_write(F, base + u64::from(i) * DESC_SIZE as u64, d.as_bytes())
                .unwrap();
            self.dev.raise_irq(F, vf::Intr::TX_DONE.bits());
        }
        /// Delivers a frame into RX descriptor `i` as the firmware would.
        fn deliver(&mut self, i: u32, frame: &[u8]) {
            let base = self.base(vf::RX_BASE_LO, vf::RX_BASE_HI);
            let at = base + u64::from(i) * DESC_SIZE as u64;
            let mut raw = [0u8; DESC_SIZE];
            self.dev.dma_read(F, at, &mut raw).unwrap();
            let mut d = RxDesc::read_from_bytes(&raw).unwrap();
            assert!(usize::from(d.buf_len.get()) >= frame.len());
            self.dev.dma_write(F, d.addr.get(), frame).unwrap();
            d.len = Le16::new(frame.len() as u16);
            d.flags = Le16::new(RxFlags::DONE.bits());
            self.dev.dma_write(F, at, d.as_bytes()).unwrap();
            let size = self.reg(vf::RX_SIZE);
            self.dev.write_reg(F, vf::RX_HEAD, (i + 1) % size);
            self.dev.raise_irq(F, vf::Intr::RX.bits());
        }
    }

    #[test]
    fn attach_programs_the_rings_by_the_contract() {
        let mut b = bench();
        let _g = VfDriver::attach(b.nic.vf(1).unwrap(), 8).unwrap();
        assert_eq!(b.reg(vf::TX_SIZE), 8);
        assert_eq!(b.reg(vf::RX_SIZE), 8);
        assert_eq!(b.reg(vf::TX_TAIL), 0);
        assert_eq!(b.reg(vf::RX_TAIL), 7);
        assert_eq!(b.reg(vf::CONTROL), vf::Control::ENABLE.bits());
        let mask = b.reg(vf::INTR_MASK);
        assert_eq!(mask & (vf::Intr::TX_DONE | vf::Intr::RX).bits(), 0);
        let tx = b.base(vf::TX_BASE_LO, vf::TX_BASE_HI);
        let rx = b.base(vf::RX_BASE_LO, vf::RX_BASE_HI);
        assert!(tx >= 1 << 32 && tx.is_multiple_of(16) && rx.is_multiple_of(16) && tx != rx);
        // Every RX descriptor names a distinct, mapped buffer of BUF_SIZE bytes.
        let mut addrs = Vec::new();
        for i in 0..8u64 {
            let mut raw = [0u8; DESC_SIZE];
            b.dev.dma_read(F, rx + i * 16, &mut raw).unwrap();
            let d = RxDesc::read_from_bytes(&raw).unwrap();
            assert_eq!(usize::from(d.buf_len.get()), BUF_SIZE);
            let mut probe = vec![0u8; BUF_SIZE];
            b.dev.dma_read(F, d.addr.get(), &mut probe).unwrap();
            addrs.push(d.addr.get());
        }
        addrs.dedup();
        assert_eq!(addrs.len(), 8);
        // The other VF's domain does not see this guest's memory.
        let mut raw = [0u8; DESC_SIZE];
        assert!(b.dev.dma_read(Function::Vf(0), rx, &mut raw).is_err());
    }

    #[test]
    fn bad_ring_sizes_and_the_pf_are_refused() {
        let b = bench();
        for size in [0, 1, 3, 8192] {
            let e = VfDriver::attach(b.nic.vf(0).unwrap(), size).err().unwrap();
            assert!(e.to_string().contains("ring size"), "{e}");
        }
        assert!(VfDriver::attach(b.nic.pf(), 8).is_err());
    }

    #[test]
    fn send_posts_descriptors_and_reclaims_done_ones() {
        let mut b = bench();
        let mut g = VfDriver::attach(b.nic.vf(1).unwrap(), 4).unwrap();
        g.send(b"frame zero").unwrap();
        assert_eq!(b.reg(vf::TX_TAIL), 1);
        let d = b.tx_desc(0);
        assert_eq!(d.len.get(), 10);
        assert!(TxFlags::from_bits_retain(d.flags.get()).contains(TxFlags::EOP));
        let mut frame = [0u8; 10];
        b.dev.dma_read(F, d.addr.get(), &mut frame).unwrap();
        assert_eq!(&frame, b"frame zero");
        g.send(b"one").unwrap();
        g.send(b"two").unwrap();
        assert_eq!(b.reg(vf::TX_TAIL), 3);
        // size - 1 descriptors in flight: the next send waits and fails.
        let t = Instant::now();
        let e = g.send(b"three").unwrap_err();
        assert!(t.elapsed() >= TX_FULL_TIMEOUT);
        assert!(
            e.to_string().contains("TX ring full") && e.to_string().contains("VF 1"),
            "{e}"
        );
        b.complete_tx(0);
        g.send(b"three").unwrap();
        assert_eq!(b.reg(vf::TX_TAIL), 0, "the tail wraps modulo the ring size");
        let d = b.tx_desc(3);
        let mut frame = [0u8; 5];
        b.dev.dma_read(F, d.addr.get(), &mut frame).unwrap();
        assert_eq!(&frame, b"three");
        assert!(g.send(&vec![0u8; BUF_SIZE + 1]).is_err());
    }

    #[test]
    fn recv_takes_completed_buffers_and_reposts_them() {
        let mut b = bench();
        let mut g = VfDriver::attach(b.nic.vf(1).unwrap(), 4).unwrap();
        assert_eq!(g.try_recv(), None);
        let t = Instant::now();
        assert_eq!(g.recv(Duration::from_millis(30)), None);
        assert!(t.elapsed() >= Duration::from_millis(30));

        for round in 0..3u8 {
            for i in 0..3u32 {
                // The device may fill only [RX_HEAD, RX_TAIL).
                let slot = (u32::from(round) * 3 + i) % 4;
                assert_ne!(slot, b.reg(vf::RX_TAIL), "guest left no buffer posted");
                b.deliver(slot, &[round, i as u8, 0xAB]);
            }
            for i in 0..3u8 {
                let f = g.recv(Duration::from_secs(1)).unwrap();
                assert_eq!(f, vec![round, i, 0xAB]);
            }
        }
        assert_eq!(g.try_recv(), None);
    }

    #[test]
    fn recv_is_woken_by_the_interrupt() {
        let mut b = bench();
        let mut g = VfDriver::attach(b.nic.vf(1).unwrap(), 8).unwrap();
        let mut pfd = libc::pollfd {
            fd: g.event_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        b.deliver(0, b"hello");
        // SAFETY: valid pollfd, nfds 1.
        assert_eq!(
            unsafe { libc::poll(&mut pfd, 1, 1000) },
            1,
            "RX must signal the eventfd"
        );
        assert_eq!(
            g.recv(Duration::from_secs(1)).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(b.reg(vf::RX_TAIL), 0, "the buffer was reposted");
    }

    #[test]
    fn mac_and_link_come_from_the_registers() {
        let mut b = bench();
        let g = VfDriver::attach(b.nic.vf(1).unwrap(), 2).unwrap();
        assert_eq!(g.mac(), [0; 6]);
        assert!(!g.link_up());
        let (lo, hi) = vf::mac_to_regs([0x02, 0, 0, 0, 0, 0x11]);
        b.dev.write_reg(F, vf::MAC_LO, lo);
        b.dev.write_reg(F, vf::MAC_HI, hi);
        b.dev.write_reg(F, vf::LINK, vf::Link::UP.bits());
        assert_eq!(g.mac(), [0x02, 0, 0, 0, 0, 0x11]);
        assert!(g.link_up());
    }

    #[test]
    fn drop_detaches_and_a_new_guest_can_attach() {
        let mut b = bench();
        let g = VfDriver::attach(b.nic.vf(1).unwrap(), 4).unwrap();
        let rx = b.base(vf::RX_BASE_LO, vf::RX_BASE_HI);
        drop(g);
        assert_eq!(b.reg(vf::CONTROL), 0);
        let mut raw = [0u8; DESC_SIZE];
        assert!(
            b.dev.dma_read(F, rx, &mut raw).is_err(),
            "memory still mapped"
        );
        let _g = VfDriver::attach(b.nic.vf(1).unwrap(), 4).unwrap();
    }
}
