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
//!
//! Offloads (ABI 1.5): [`VfDriver::attach_with`] and [`AttachOptions::offloads`] give every
//! descriptor a buffer of 65,535 bytes, so a TCP super-frame fits both ways: the driver may
//! send with [`TxOffload::Tso`] and asks for super-frames whole (`CONTROL.RX_GSO`) when the
//! device's `OFFLOADS` register offers them. [`VfDriver::offloads`] says what this attach can
//! use, [`VfDriver::send_with`] asks for an offload, [`VfDriver::try_recv_into`] reports
//! what the device did for a received frame in [`RxMeta`].
use hw_sim::guest::GuestPort;
use hw_sim::memfd::SharedMemory;
use hw_sim::{Function, FunctionName, SimError};
use shared_regs::desc::{RxDesc, RxFlags, TxDesc, TxFlags, DESC_SIZE, MIN_TSO_MSS};
use shared_regs::vf;
use shared_regs::{Le16, Le64};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use zerocopy::{FromBytes, IntoBytes};

/// Bytes of each TX and RX buffer: a whole VF frame (9015 bytes) fits.
pub const BUF_SIZE: usize = 9216;
/// Bytes of each buffer with [`AttachOptions::offloads`]: a whole super-frame
/// (`shared_regs::MAX_SUPER_FRAME`) fits, the most a descriptor's 16-bit length can say.
pub const SUPER_BUF_SIZE: usize = shared_regs::MAX_SUPER_FRAME;
/// How far apart buffers of [`SUPER_BUF_SIZE`] sit: 64 KiB, so each starts on a page.
const SUPER_BUF_STRIDE: u64 = 1 << 16;
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
    /// The device did not do what the ring protocol says, in the time it has.
    #[error("{}: {what}", FunctionName(*.function))]
    NoAnswer { function: Function, what: String },
    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// How [`VfDriver::attach_with`] sets the VF up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// Buffers of [`SUPER_BUF_SIZE`] bytes instead of [`BUF_SIZE`], and `CONTROL.RX_GSO`
    /// when the device offers it: what TSO and whole super-frames need. It costs 64 KiB of
    /// guest memory a descriptor a ring.
    pub offloads: bool,
}

/// What the device is asked to do for a frame sent with [`VfDriver::send_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOffload {
    /// Nothing: the frame goes as it is.
    None,
    /// Complete the TCP or UDP checksum of an IPv4 frame that is not a fragment
    /// (`TxFlags::CSUM`).
    Csum,
    /// Cut a TCP/IPv4 super-frame into segments of `mss` payload bytes and complete every
    /// checksum (`TxFlags::TSO`).
    Tso { mss: u16 },
}

/// What the device said about a received frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// The device checked the frame's TCP or UDP checksum, or completed it itself: it is
    /// right (`RxFlags::CSUM_VALID`, and every super-frame).
    pub csum_valid: bool,
    /// A TCP/IPv4 super-frame delivered whole, with its sender's segment size
    /// (`RxFlags::GSO_TCP4`). A super-frame whose `mss` is 0, which no segment size can
    /// describe, reports `None`.
    pub gso_mss: Option<u16>,
}

impl RxMeta {
    fn of(desc: &RxDesc) -> RxMeta {
        let flags = RxFlags::from_bits_retain(desc.flags.get());
        let gso = flags.contains(RxFlags::GSO_TCP4);
        RxMeta {
            csum_valid: gso || flags.contains(RxFlags::CSUM_VALID),
            gso_mss: (gso && desc.mss.get() != 0).then(|| desc.mss.get()),
        }
    }
}

/// `INTR_MASK` while no sender waits for TX room: only RX wakes the driver.
const RX_ONLY: u32 = !vf::Intr::RX.bits();

/// Byte offsets of `flags`, where `DONE` is polled, in each descriptor.
const TX_DESC_FLAGS: u64 = std::mem::offset_of!(TxDesc, flags) as u64;
const RX_DESC_FLAGS: u64 = std::mem::offset_of!(RxDesc, flags) as u64;

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
    /// Distance between two buffers of a ring.
    buf_stride: u64,
    /// Bytes of each buffer.
    buf_len: usize,
    /// What the device offers, less what this attach cannot use.
    offloads: vf::Offloads,
    /// Next TX descriptor to fill (the value last written to `TX_TAIL`).
    tx_tail: u32,
    /// Oldest TX descriptor not yet seen `DONE`.
    tx_clean: u32,
    /// Next RX descriptor the device will complete.
    rx_next: u32,
    /// Buffers handed back by [`VfDriver::try_recv_into`] since `RX_TAIL` was last written.
    rx_unposted: u32,
    /// Frames [`VfDriver::try_recv_into`] dropped for a too short `out`.
    rx_too_long: u64,
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
        VfDriver::attach_with(vf, ring_size, AttachOptions::default())
    }

    /// [`VfDriver::attach`] with options: with [`AttachOptions::offloads`], buffers of
    /// [`SUPER_BUF_SIZE`] bytes, and `CONTROL.RX_GSO` beside `ENABLE` when the device's
    /// `OFFLOADS` register offers it.
    pub fn attach_with(
        vf: impl GuestPort + 'static,
        ring_size: u16,
        opts: AttachOptions,
    ) -> Result<VfDriver, VfDriverError> {
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
        let (buf_stride, buf_len) = if opts.offloads {
            (SUPER_BUF_STRIDE, SUPER_BUF_SIZE)
        } else {
            (BUF_SIZE as u64, BUF_SIZE)
        };
        let ring_bytes = page_up(u64::from(size) * DESC_SIZE as u64);
        let buf_bytes = page_up(u64::from(size) * buf_stride);
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
            buf_stride,
            buf_len,
            offloads: vf::Offloads::empty(),
            tx_tail: 0,
            tx_clean: 0,
            rx_next: 0,
            rx_unposted: 0,
            rx_too_long: 0,
            eventfd,
            mapped: false,
        };
        // Rings a driver before this one left running (a VM that crashed) are let go of
        // before this driver's memory takes their place: the device writes none of it.
        stop_rings(guest.port.as_ref(), function)?;
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
        p.bar_write32(u64::from(vf::TX_BASE_LO), tx_ring as u32)?;
        p.bar_write32(u64::from(vf::TX_BASE_HI), (tx_ring >> 32) as u32)?;
        p.bar_write32(u64::from(vf::TX_SIZE), size)?;
        p.bar_write32(u64::from(vf::TX_TAIL), 0)?;
        p.bar_write32(u64::from(vf::RX_BASE_LO), rx_ring as u32)?;
        p.bar_write32(u64::from(vf::RX_BASE_HI), (rx_ring >> 32) as u32)?;
        p.bar_write32(u64::from(vf::RX_SIZE), size)?;
        p.bar_write32(u64::from(vf::RX_TAIL), size - 1)?;
        p.bar_write32(u64::from(vf::INTR_CAUSE), u32::MAX)?;
        // TX_DONE only while a sender waits for room (see `wait_tx_room`): otherwise every
        // completed send would wake the driver for nothing, as NAPI drivers avoid.
        p.bar_write32(u64::from(vf::INTR_MASK), RX_ONLY)?;
        // Unknown bits are a newer device's offloads this driver cannot ask for.
        let offered = vf::Offloads::from_bits_truncate(p.bar_read32(u64::from(vf::OFFLOADS))?);
        guest.offloads = if opts.offloads {
            offered
        } else {
            // Neither a super-frame to send nor one to receive fits a BUF_SIZE buffer.
            offered - (vf::Offloads::TSO4 | vf::Offloads::RX_GSO)
        };
        let mut control = vf::Control::ENABLE;
        if guest.offloads.contains(vf::Offloads::RX_GSO) {
            control |= vf::Control::RX_GSO;
        }
        guest
            .port
            .bar_write32(u64::from(vf::CONTROL), control.bits())?;
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

    /// The offloads the device offers this VF (its `OFFLOADS` register, read at attach),
    /// less those this attach cannot use: without [`AttachOptions::offloads`] the buffers
    /// are too small for `TSO4` and `RX_GSO`.
    pub fn offloads(&self) -> vf::Offloads {
        self.offloads
    }

    /// Frames [`VfDriver::try_recv_into`] dropped because they did not fit its `out`.
    pub fn rx_too_long(&self) -> u64 {
        self.rx_too_long
    }

    /// Queues one frame for transmission. If the ring is full, reclaims the descriptors the
    /// device completed; if it stays full for [`TX_FULL_TIMEOUT`], fails.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), VfDriverError> {
        self.send_with(frame, TxOffload::None)
    }

    /// [`VfDriver::send`], asking the device for `offload`. Refused: an offload
    /// [`VfDriver::offloads`] lacks, an `mss` below [`MIN_TSO_MSS`], a frame longer than a
    /// buffer (a super-frame) or than [`BUF_SIZE`] (any other frame, as [`VfDriver::send`]
    /// always did).
    pub fn send_with(&mut self, frame: &[u8], offload: TxOffload) -> Result<(), VfDriverError> {
        let (flags, mss) = self.tx_flags(offload, frame.len())?;
        let (i, buf) = self.tx_slot()?;
        self.guest_write(buf, frame)?;
        self.post_tx(i, buf, frame.len(), flags, mss)
    }

    /// Queues one frame that `fill` writes straight into the next TX buffer, sparing the
    /// copy [`VfDriver::send_with`] makes (a VMM reading its TAP into guest memory). `fill`
    /// gets the whole buffer ([`VfDriver::buf_len`] bytes) and returns the frame's length
    /// and offload, or `None` to send nothing. Waits for room first, as `send` does; the
    /// same refusals as [`VfDriver::send_with`], and a refused frame is not posted.
    pub fn send_in_place(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Option<(usize, TxOffload)>,
    ) -> Result<bool, VfDriverError> {
        let (i, buf) = self.tx_slot()?;
        let Some(bytes) = self.buf_mut(buf) else {
            return Err(self.err(format!("TX buffer {i} at {buf:#x} is not guest memory")));
        };
        let Some((len, offload)) = fill(bytes) else {
            return Ok(false);
        };
        let (flags, mss) = self.tx_flags(offload, len)?;
        self.post_tx(i, buf, len, flags, mss).map(|()| true)
    }

    /// The next TX descriptor and its buffer's address, once the ring has room for it.
    fn tx_slot(&mut self) -> Result<(u32, u64), VfDriverError> {
        if self.next(self.tx_tail) == self.tx_clean {
            self.wait_tx_room()?;
        }
        let i = self.tx_tail;
        Ok((i, self.tx_bufs + u64::from(i) * self.buf_stride))
    }

    /// The address of RX descriptor `i`'s buffer.
    fn rx_buf(&self, i: u32) -> u64 {
        self.rx_bufs + u64::from(i) * self.buf_stride
    }

    /// The descriptor flags and mss for a `len`-byte frame sent with `offload`, or why it
    /// cannot be.
    fn tx_flags(&self, offload: TxOffload, len: usize) -> Result<(TxFlags, u16), VfDriverError> {
        let (flags, mss, limit) = match offload {
            TxOffload::None => (TxFlags::EOP, 0, BUF_SIZE),
            TxOffload::Csum => {
                self.need(vf::Offloads::TX_CSUM, "checksum offload")?;
                (TxFlags::EOP | TxFlags::CSUM, 0, BUF_SIZE)
            }
            TxOffload::Tso { mss } => {
                self.need(vf::Offloads::TSO4, "TCP segmentation offload")?;
                if mss < MIN_TSO_MSS {
                    return Err(self.err(format!(
                        "TSO with an mss of {mss}: the device cuts segments of {MIN_TSO_MSS} \
                         payload bytes or more"
                    )));
                }
                (TxFlags::EOP | TxFlags::TSO, mss, self.buf_len)
            }
        };
        if len > limit {
            return Err(self.err(format!(
                "a {len}-byte frame does not fit a {limit}-byte TX buffer"
            )));
        }
        Ok((flags, mss))
    }

    /// Hands TX descriptor `i`, for the `len` bytes at `buf`, to the device.
    fn post_tx(
        &mut self,
        i: u32,
        buf: u64,
        len: usize,
        flags: TxFlags,
        mss: u16,
    ) -> Result<(), VfDriverError> {
        let desc = TxDesc {
            addr: Le64::new(buf),
            len: Le16::new(len as u16),
            flags: Le16::new(flags.bits()),
            status: Le16::new(0),
            mss: Le16::new(mss),
        };
        self.guest_write(self.tx_desc_addr(i), desc.as_bytes())?;
        fence(Ordering::Release);
        self.tx_tail = self.next(i);
        Ok(self
            .port
            .bar_write32(u64::from(vf::TX_TAIL), self.tx_tail)?)
    }

    /// The buffer of [`VfDriver::buf_len`] bytes at guest address `addr`, as bytes the
    /// driver may read and write.
    fn buf_mut(&mut self, addr: u64) -> Option<&mut [u8]> {
        let mem = self.shm.mem();
        let at = GuestAddress(addr);
        if !mem.check_range(at, self.buf_len) {
            return None;
        }
        let ptr = mem.get_host_address(at).ok()?;
        // SAFETY: the range is mapped, and in one region (the guest memory is one memfd
        // mapping), so `buf_len` bytes from `ptr` are valid. Only buffers the device does
        // not own are lent (a TX buffer before its descriptor is posted, an RX buffer
        // between DONE and its hand-back), and `&mut self` keeps the driver from lending
        // another or touching this one meanwhile, so nothing else reads or writes them.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr, self.buf_len) })
    }

    fn need(&self, offload: vf::Offloads, what: &str) -> Result<(), VfDriverError> {
        if self.offloads.contains(offload) {
            return Ok(());
        }
        let why = if offload == vf::Offloads::TSO4 && self.buf_len < SUPER_BUF_SIZE {
            "this attach's buffers are too small for super-frames (AttachOptions::offloads)"
        } else {
            "the device does not offer it (OFFLOADS register)"
        };
        Err(self.err(format!("{what} refused: {why}")))
    }

    /// Waits until the device completed a descriptor of the full TX ring, for up to
    /// [`TX_FULL_TIMEOUT`].
    fn wait_tx_room(&mut self) -> Result<(), VfDriverError> {
        self.reclaim_tx()?;
        if self.next(self.tx_tail) != self.tx_clean {
            return Ok(());
        }
        let mask = u64::from(vf::INTR_MASK);
        self.port
            .bar_write32(mask, !(vf::Intr::TX_DONE | vf::Intr::RX).bits())?;
        let waited = self.wait_tx_done();
        self.port.bar_write32(mask, RX_ONLY)?;
        waited
    }

    /// [`VfDriver::wait_tx_room`] with `TX_DONE` unmasked.
    fn wait_tx_done(&mut self) -> Result<(), VfDriverError> {
        let deadline = Instant::now() + TX_FULL_TIMEOUT;
        loop {
            self.reclaim_tx()?;
            if self.next(self.tx_tail) != self.tx_clean {
                return Ok(());
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
        let (i, desc) = self.take_rx()?;
        let len = usize::from(desc.len.get()).min(self.buf_len);
        let mut frame = vec![0u8; len];
        let ok = self.read_rx_buf(i, &mut frame);
        self.hand_back_rx(i, true);
        ok.then_some(frame)
    }

    /// The next received frame copied into `out`: its length and what the device said of
    /// it. A frame longer than `out` is dropped and counted ([`VfDriver::rx_too_long`]),
    /// never cut short (a truncated frame would pass for a whole one), and the next one is
    /// looked at; a buffer of [`VfDriver::buf_len`] bytes always suffices.
    ///
    /// Buffers are handed back to the device every eighth of the ring, and whenever this
    /// finds no frame, rather than one `RX_TAIL` write a frame (a register write is a
    /// message to a device behind vfio-user): a caller that takes frames until `None`, as
    /// [`VfDriver::recv`] and a poll loop do, leaves every buffer posted.
    pub fn try_recv_into(&mut self, out: &mut [u8]) -> Option<(usize, RxMeta)> {
        loop {
            let Some((i, desc)) = self.take_rx() else {
                self.post_rx();
                return None;
            };
            let len = usize::from(desc.len.get()).min(self.buf_len);
            let fits = len <= out.len();
            let ok = fits && self.read_rx_buf(i, &mut out[..len]);
            self.hand_back_rx(i, false);
            if ok {
                return Some((len, RxMeta::of(&desc)));
            }
            if !fits {
                self.rx_too_long += 1;
            }
        }
    }

    /// The next received frame, lent in place in its RX buffer: `f` may read and change it
    /// (sparing the copy [`VfDriver::try_recv_into`] makes) and gets what the device said.
    /// The buffer goes back to the device after `f`; buffers are posted as
    /// [`VfDriver::try_recv_into`] posts them.
    pub fn recv_in_place<R>(&mut self, f: impl FnOnce(&mut [u8], RxMeta) -> R) -> Option<R> {
        let Some((i, desc)) = self.take_rx() else {
            self.post_rx();
            return None;
        };
        let len = usize::from(desc.len.get()).min(self.buf_len);
        let r = self
            .buf_mut(self.rx_buf(i))
            .map(|bytes| f(&mut bytes[..len], RxMeta::of(&desc)));
        self.hand_back_rx(i, false);
        r
    }

    /// Bytes of each RX buffer: the longest frame the device can deliver.
    pub fn buf_len(&self) -> usize {
        self.buf_len
    }

    /// The descriptor the device completed at `rx_next`, if it has.
    fn take_rx(&self) -> Option<(u32, RxDesc)> {
        let i = self.rx_next;
        let at = GuestAddress(self.rx_desc_addr(i) + RX_DESC_FLAGS);
        // Acquire: the rest of the descriptor and the frame are the device's stores before
        // it set DONE.
        let flags = u16::from_le(self.shm.mem().load::<u16>(at, Ordering::Acquire).ok()?);
        if !RxFlags::from_bits_retain(flags).contains(RxFlags::DONE) {
            return None;
        }
        Some((i, self.read_rx_desc(i)?))
    }

    fn read_rx_buf(&self, i: u32, out: &mut [u8]) -> bool {
        self.shm
            .mem()
            .read_slice(out, GuestAddress(self.rx_buf(i)))
            .is_ok()
    }

    /// Gives descriptor `i` back to the device, writing `RX_TAIL` now if `post`, else once
    /// enough buffers wait for it.
    fn hand_back_rx(&mut self, i: u32, post: bool) {
        // Whatever happened to the frame, or the ring would stall.
        let _ = self.write_rx_desc(i, &self.fresh_rx_desc(i));
        fence(Ordering::Release);
        self.rx_next = self.next(i);
        self.rx_unposted += 1;
        if post || self.rx_unposted >= (self.size / 8).max(1) {
            self.post_rx();
        }
    }

    /// Writes `RX_TAIL` past every buffer handed back.
    fn post_rx(&mut self) {
        if self.rx_unposted == 0 {
            return;
        }
        self.rx_unposted = 0;
        // The tail is the last descriptor handed back: `rx_next - 1`.
        let tail = self.rx_next.wrapping_sub(1) & (self.size - 1);
        let _ = self.port.bar_write32(u64::from(vf::RX_TAIL), tail);
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
            addr: Le64::new(self.rx_buf(i)),
            buf_len: Le16::new(self.buf_len as u16),
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
            let addr = self.tx_desc_addr(self.tx_clean) + TX_DESC_FLAGS;
            let flags = self
                .shm
                .mem()
                .load::<u16>(GuestAddress(addr), Ordering::Acquire)
                .map_err(|e| self.err(format!("guest memory read at {addr:#x}: {e}")))?;
            if !TxFlags::from_bits_retain(u16::from_le(flags)).contains(TxFlags::DONE) {
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

/// How long a driver waits for the device to let go of a VF's rings after clearing
/// `CONTROL.ENABLE`: a running firmware does within one poll.
pub const RINGS_DOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Clears `CONTROL` and waits until `STATUS.RINGS_UP` reads 0 (the handshake of
/// `shared_regs::vf`): from then on the device touches neither the old rings nor their
/// buffers, and starts new ones at head 0.
fn stop_rings(port: &dyn GuestPort, function: Function) -> Result<(), VfDriverError> {
    port.bar_write32(u64::from(vf::CONTROL), 0)?;
    let start = Instant::now();
    loop {
        let status = vf::Status::from_bits_retain(port.bar_read32(u64::from(vf::STATUS))?);
        if !status.contains(vf::Status::RINGS_UP) {
            return Ok(());
        }
        if start.elapsed() >= RINGS_DOWN_TIMEOUT {
            return Err(VfDriverError::NoAnswer {
                function,
                what: format!(
                    "the device still serves the VF's rings {} ms after CONTROL.ENABLE was \
                     cleared (STATUS.RINGS_UP): is its firmware running?",
                    RINGS_DOWN_TIMEOUT.as_millis()
                ),
            });
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

impl Drop for VfDriver {
    /// Detaches as a VM's driver unloading would: stops the rings, masks and unwires the
    /// interrupt, and unmaps the guest memory from the VF.
    fn drop(&mut self) {
        // The rings' memory goes back only once the device has let go of it; a device that
        // does not answer within the time loses it anyway (its next access faults).
        if self.mapped {
            let _ = stop_rings(self.port.as_ref(), Function::Vf(self.vf));
        } else {
            let _ = self.port.bar_write32(u64::from(vf::CONTROL), 0);
        }
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
            self.deliver_with(i, frame, RxFlags::empty(), 0);
        }
        /// [`Bench::deliver`] with offload flags and an mss.
        fn deliver_with(&mut self, i: u32, frame: &[u8], flags: RxFlags, mss: u16) {
            let base = self.base(vf::RX_BASE_LO, vf::RX_BASE_HI);
            let at = base + u64::from(i) * DESC_SIZE as u64;
            let mut raw = [0u8; DESC_SIZE];
            self.dev.dma_read(F, at, &mut raw).unwrap();
            let mut d = RxDesc::read_from_bytes(&raw).unwrap();
            assert!(usize::from(d.buf_len.get()) >= frame.len());
            self.dev.dma_write(F, d.addr.get(), frame).unwrap();
            d.len = Le16::new(frame.len() as u16);
            d.flags = Le16::new((RxFlags::DONE | flags).bits());
            d.mss = Le16::new(mss);
            self.dev.dma_write(F, at, d.as_bytes()).unwrap();
            let size = self.reg(vf::RX_SIZE);
            self.dev.write_reg(F, vf::RX_HEAD, (i + 1) % size);
            self.dev.raise_irq(F, vf::Intr::RX.bits());
        }
        fn offer(&mut self, offloads: vf::Offloads) {
            self.dev.write_reg(F, vf::OFFLOADS, offloads.bits());
        }
        fn rx_desc(&mut self, i: u32) -> RxDesc {
            let base = self.base(vf::RX_BASE_LO, vf::RX_BASE_HI);
            let mut raw = [0u8; DESC_SIZE];
            self.dev
                .dma_read(F, base + u64::from(i) * DESC_SIZE as u64, &mut raw)
                .unwrap();
            RxDesc::read_from_bytes(&raw).unwrap()
        }
    }

    const OFFLOADS: AttachOptions = AttachOptions { offloads: true };

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
        assert_eq!(mask & vf::Intr::RX.bits(), 0, "RX wakes the driver");
        assert_ne!(
            mask & vf::Intr::TX_DONE.bits(),
            0,
            "TX_DONE waits for a full ring"
        );
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
    fn offloads_attach_posts_super_frame_buffers_and_asks_for_rx_gso() {
        let mut b = bench();
        b.offer(vf::Offloads::all());
        let g = VfDriver::attach_with(b.nic.vf(1).unwrap(), 4, OFFLOADS).unwrap();
        assert_eq!(
            b.reg(vf::CONTROL),
            (vf::Control::ENABLE | vf::Control::RX_GSO).bits()
        );
        assert_eq!(g.offloads(), vf::Offloads::all());
        assert_eq!(g.buf_len(), shared_regs::MAX_SUPER_FRAME);
        let mut addrs = Vec::new();
        for i in 0..4 {
            let d = b.rx_desc(i);
            assert_eq!(usize::from(d.buf_len.get()), 65535);
            let mut probe = vec![0u8; 65535];
            b.dev.dma_read(F, d.addr.get(), &mut probe).unwrap();
            addrs.push(d.addr.get());
        }
        assert!(
            addrs.windows(2).all(|w| w[1] - w[0] == 1 << 16),
            "{addrs:x?}"
        );
    }

    #[test]
    fn rx_gso_is_asked_only_of_a_device_that_offers_it() {
        let mut b = bench();
        let no_gso = vf::Offloads::TX_CSUM | vf::Offloads::TSO4 | vf::Offloads::RX_CSUM;
        b.offer(no_gso);
        let g = VfDriver::attach_with(b.nic.vf(1).unwrap(), 4, OFFLOADS).unwrap();
        assert_eq!(b.reg(vf::CONTROL), vf::Control::ENABLE.bits());
        assert_eq!(g.offloads(), no_gso);
        drop(g);

        // A device older than ABI 1.5 reads 0.
        b.offer(vf::Offloads::empty());
        let g = VfDriver::attach_with(b.nic.vf(1).unwrap(), 4, OFFLOADS).unwrap();
        assert_eq!(b.reg(vf::CONTROL), vf::Control::ENABLE.bits());
        assert_eq!(g.offloads(), vf::Offloads::empty());
        drop(g);

        // Small buffers hold no super-frame: TSO4 and RX_GSO are not this attach's.
        b.offer(vf::Offloads::all());
        let g = VfDriver::attach(b.nic.vf(1).unwrap(), 4).unwrap();
        assert_eq!(b.reg(vf::CONTROL), vf::Control::ENABLE.bits());
        assert_eq!(g.offloads(), vf::Offloads::TX_CSUM | vf::Offloads::RX_CSUM);
        assert_eq!(usize::from(b.rx_desc(0).buf_len.get()), BUF_SIZE);
    }

    #[test]
    fn send_with_puts_the_offload_flags_and_mss_in_the_descriptor() {
        let mut b = bench();
        b.offer(vf::Offloads::all());
        let mut g = VfDriver::attach_with(b.nic.vf(1).unwrap(), 8, OFFLOADS).unwrap();
        g.send(b"plain").unwrap();
        g.send_with(b"checksum me", TxOffload::Csum).unwrap();
        let sixty_k: Vec<u8> = (0..60_000u32).map(|i| i as u8).collect();
        g.send_with(&sixty_k, TxOffload::Tso { mss: 8949 }).unwrap();
        let longest = vec![0xEE; shared_regs::MAX_SUPER_FRAME];
        g.send_with(&longest, TxOffload::Tso { mss: 1448 }).unwrap();
        assert_eq!(b.reg(vf::TX_TAIL), 4);

        let d = b.tx_desc(0);
        assert_eq!(TxFlags::from_bits_retain(d.flags.get()), TxFlags::EOP);
        assert_eq!(d.mss.get(), 0);
        let d = b.tx_desc(1);
        assert_eq!(
            TxFlags::from_bits_retain(d.flags.get()),
            TxFlags::EOP | TxFlags::CSUM
        );
        assert_eq!(d.mss.get(), 0);
        let d = b.tx_desc(2);
        assert_eq!(
            TxFlags::from_bits_retain(d.flags.get()),
            TxFlags::EOP | TxFlags::TSO
        );
        assert_eq!((d.len.get(), d.mss.get()), (60_000, 8949));
        let mut back = vec![0u8; 60_000];
        b.dev.dma_read(F, d.addr.get(), &mut back).unwrap();
        assert_eq!(back, sixty_k);
        let d = b.tx_desc(3);
        assert_eq!((usize::from(d.len.get()), d.mss.get()), (65535, 1448));
        let mut back = vec![0u8; 65535];
        b.dev.dma_read(F, d.addr.get(), &mut back).unwrap();
        assert_eq!(back, longest, "the last buffer does not run into the next");
    }

    #[test]
    fn send_with_refuses_what_the_device_or_the_buffers_cannot_do() {
        let mut b = bench();
        let refused = |g: &mut VfDriver, frame: &[u8], off: TxOffload, why: &str| {
            let e = g.send_with(frame, off).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("VF 1"), "{off:?}: {e}");
        };
        b.offer(vf::Offloads::RX_CSUM | vf::Offloads::RX_GSO);
        let mut g = VfDriver::attach_with(b.nic.vf(1).unwrap(), 4, OFFLOADS).unwrap();
        refused(&mut g, b"x", TxOffload::Csum, "does not offer");
        refused(&mut g, b"x", TxOffload::Tso { mss: 1448 }, "does not offer");
        drop(g);

        b.offer(vf::Offloads::all());
        let mut g = VfDriver::attach(b.nic.vf(1).unwrap(), 4).unwrap();
        refused(&mut g, b"x", TxOffload::Tso { mss: 1448 }, "too small");
        drop(g);

        let mut g = VfDriver::attach_with(b.nic.vf(1).unwrap(), 4, OFFLOADS).unwrap();
        refused(&mut g, b"x", TxOffload::Tso { mss: 0 }, "mss of 0");
        refused(
            &mut g,
            b"x",
            TxOffload::Tso { mss: 47 },
            "mss of 47: the device cuts",
        );
        let big = vec![0u8; shared_regs::MAX_SUPER_FRAME + 1];
        refused(&mut g, &big, TxOffload::Tso { mss: 1448 }, "does not fit");
        // Only a super-frame may be longer than a VF frame's buffer.
        refused(
            &mut g,
            &big[..BUF_SIZE + 1],
            TxOffload::Csum,
            "does not fit",
        );
        refused(
            &mut g,
            &big[..BUF_SIZE + 1],
            TxOffload::None,
            "does not fit",
        );
        assert_eq!(b.reg(vf::TX_TAIL), 0, "nothing refused was posted");
        g.send_with(&big[..BUF_SIZE], TxOffload::Csum).unwrap();
    }

    #[test]
    fn try_recv_into_reports_the_offload_flags_and_mss() {
        let mut b = bench();
        b.offer(vf::Offloads::all());
        let mut g = VfDriver::attach_with(b.nic.vf(1).unwrap(), 8, OFFLOADS).unwrap();
        let sixty_k: Vec<u8> = (0..60_000u32).map(|i| (i * 7) as u8).collect();
        b.deliver(0, b"plain");
        b.deliver_with(1, b"checked", RxFlags::CSUM_VALID, 0);
        b.deliver_with(2, &sixty_k, RxFlags::GSO_TCP4, 1448);
        b.deliver_with(3, b"no segment size", RxFlags::GSO_TCP4, 0);
        let mut out = vec![0u8; g.buf_len()];
        let (n, meta) = g.try_recv_into(&mut out).unwrap();
        assert_eq!((&out[..n], meta), (&b"plain"[..], RxMeta::default()));
        let (n, meta) = g.try_recv_into(&mut out).unwrap();
        assert_eq!(&out[..n], b"checked");
        assert_eq!(
            meta,
            RxMeta {
                csum_valid: true,
                gso_mss: None
            }
        );
        let (n, meta) = g.try_recv_into(&mut out).unwrap();
        assert_eq!(&out[..n], &sixty_k[..]);
        assert_eq!(
            meta,
            RxMeta {
                csum_valid: true,
                gso_mss: Some(1448)
            }
        );
        let (_, meta) = g.try_recv_into(&mut out).unwrap();
        assert_eq!(meta.gso_mss, None);
        assert_eq!(g.try_recv_into(&mut out), None);
        assert_eq!(b.reg(vf::RX_TAIL), 3, "every buffer is posted again");
    }

    #[test]
    fn try_recv_into_drops_a_frame_longer_than_out_and_goes_on() {
        let mut b = bench();
        let mut g = VfDriver::attach(b.nic.vf(1).unwrap(), 4).unwrap();
        b.deliver(0, b"too long for four");
        b.deliver(1, b"fits");
        let mut out = [0u8; 4];
        assert_eq!(g.try_recv_into(&mut out), Some((4, RxMeta::default())));
        assert_eq!(&out, b"fits");
        assert_eq!(g.rx_too_long(), 1);
        assert_eq!(g.try_recv_into(&mut out), None);
        assert_eq!(
            b.reg(vf::RX_TAIL),
            1,
            "the dropped frame's buffer is posted too"
        );
        for d in 0..2 {
            let d = b.rx_desc(d);
            assert_eq!((d.flags.get(), usize::from(d.buf_len.get())), (0, BUF_SIZE));
        }
    }

    #[test]
    fn try_recv_into_posts_buffers_in_batches_and_when_the_ring_is_drained() {
        let mut b = bench();
        let mut g = VfDriver::attach(b.nic.vf(1).unwrap(), 16).unwrap();
        for i in 0..5u8 {
            b.deliver(u32::from(i), &[i]);
        }
        let mut out = [0u8; 16];
        assert!(g.try_recv_into(&mut out).is_some());
        assert_eq!(b.reg(vf::RX_TAIL), 15, "one buffer waits for the next");
        assert!(g.try_recv_into(&mut out).is_some());
        assert_eq!(
            b.reg(vf::RX_TAIL),
            1,
            "an eighth of the ring is posted at once"
        );
        assert!(g.try_recv_into(&mut out).is_some());
        assert_eq!(b.reg(vf::RX_TAIL), 1);
        // try_recv posts at once, for the buffers before it too.
        assert_eq!(g.try_recv().as_deref(), Some(&[3u8][..]));
        assert_eq!(b.reg(vf::RX_TAIL), 3);
        assert!(g.try_recv_into(&mut out).is_some());
        assert_eq!(b.reg(vf::RX_TAIL), 3);
        assert_eq!(g.try_recv_into(&mut out), None);
        assert_eq!(b.reg(vf::RX_TAIL), 4);
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

    #[test]
    fn attach_waits_until_the_device_lets_go_of_the_rings_before_it() {
        let mut b = bench();
        // Rings a crashed VM's driver left running, which the (stalled) firmware still
        // serves: a new driver must not program new ones, nor put its memory where the old
        // buffers were, before the device has let go of them.
        b.dev.write_reg(F, vf::CONTROL, vf::Control::ENABLE.bits());
        b.dev.write_reg(F, vf::STATUS, vf::Status::RINGS_UP.bits());
        let port = b.nic.vf(1).unwrap();
        let start = Instant::now();
        let attach = std::thread::spawn(move || VfDriver::attach(port, 4));
        while b.reg(vf::CONTROL) != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "CONTROL never cleared"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            b.reg(vf::TX_SIZE),
            0,
            "new rings programmed before the old went down"
        );
        let mut raw = [0u8; DESC_SIZE];
        assert!(
            b.dev.dma_read(F, GUEST_IOVA, &mut raw).is_err(),
            "the new driver's memory mapped before the old rings went down"
        );
        // The firmware's poll lets go of them.
        b.dev.write_reg(F, vf::STATUS, 0);
        let g = attach.join().unwrap().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(b.reg(vf::TX_SIZE), 4);
        assert_eq!(b.reg(vf::CONTROL), vf::Control::ENABLE.bits());
        drop(g);
    }

    #[test]
    fn attach_to_a_device_that_never_lets_go_of_the_rings_fails_naming_the_vf() {
        let mut b = bench();
        b.dev.write_reg(F, vf::STATUS, vf::Status::RINGS_UP.bits());
        let start = Instant::now();
        let e = VfDriver::attach(b.nic.vf(1).unwrap(), 4)
            .err()
            .expect("attached to rings the device still serves")
            .to_string();
        assert!(start.elapsed() >= RINGS_DOWN_TIMEOUT);
        assert!(
            e.contains("VF 1") && e.contains("STATUS.RINGS_UP") && e.contains("firmware"),
            "{e}"
        );
        assert_eq!(b.reg(vf::TX_SIZE), 0);
    }
}
