//! Test support (feature `testing`, never in a firmware image): frame builders made with
//! smoltcp's `wire` emitters, heap-backed firmware memory, and a fake platform with
//! registers and DMA memory in plain vectors. Unit tests, the whole-system tests and later
//! the fuzzers share these.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
extern crate std;

use crate::platform::{DmaError, Function, Platform};
use core::hash::BuildHasherDefault;
use core::net::Ipv4Addr;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, Icmpv4Packet, Icmpv4Repr, IpProtocol,
    Ipv4Packet, Ipv4Repr,
};
use std::collections::{HashMap, VecDeque};
use std::vec;
use std::vec::Vec;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// An Ethernet frame.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An Ethernet/IPv4 ARP packet (28 bytes).
pub fn arp(op: ArpOperation, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: EthernetAddress(sha),
        source_protocol_addr: spa,
        target_hardware_addr: EthernetAddress(tha),
        target_protocol_addr: tpa,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    buf
}

/// A broadcast ARP request frame, padded to 60 bytes as a NIC sends it.
pub fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = ethernet(
        BROADCAST,
        sha,
        ETHERTYPE_ARP,
        &arp(ArpOperation::Request, sha, spa, [0; 6], tpa),
    );
    f.resize(60, 0);
    f
}

/// An IPv4 packet with a valid header checksum, TTL `ttl` and the given payload.
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: protocol,
        payload_len: payload.len(),
        hop_limit: ttl,
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut pkt = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut pkt, &ChecksumCapabilities::default());
    pkt.payload_mut().copy_from_slice(payload);
    buf
}

/// An ICMP echo request (with a valid checksum).
pub fn icmp_echo_request(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    let repr = Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut buf[..]),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// A UDP datagram with checksum 0 (allowed over IPv4).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

/// An Ethernet frame carrying an IPv4 packet.
pub fn ipv4_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    ethernet(
        dst_mac,
        src_mac,
        ETHERTYPE_IPV4,
        &ipv4(src, dst, protocol, ttl, payload),
    )
}

pub use crate::memory::heap::{OwnedMemory, Sizes};

/// SplitMix64: small, fast, reproducible test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next_u64() % u64::from(hi - lo + 1)) as u32
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// True with probability `pct` %.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// Size of each function's DMA space in [`FakePlatform`]: IOVAs `0 .. DMA_SPACE`.
pub const DMA_SPACE: usize = 1 << 22;

/// A platform made of maps and vectors, with no access rules and no threads.
#[derive(Default)]
pub struct FakePlatform {
    pub regs: HashMap<(Function, u32), u32, BuildHasherDefault<RegHasher>>,
    /// Each function's DMA space, grown to the highest byte written: beyond it reads zeros.
    /// (Allocating all of `DMA_SPACE` up front cost the admin fuzzer a tenth of its time.)
    pub dma: HashMap<Function, Vec<u8>, BuildHasherDefault<RegHasher>>,
    pub irqs: Vec<(Function, u32)>,
    pub uplink_in: VecDeque<Vec<u8>>,
    pub uplink_out: Vec<Vec<u8>>,
    pub now_us: u64,
    /// The SFP cage's bus (empty by default).
    pub i2c: FakeI2c,
    pub link_led: FakePin,
    pub activity_led: FakePin,
    /// A tenant writing its own memory while the device reads it (another vCPU).
    pub tamper: Option<Tamper>,
}

/// Writes `bytes` at `iova` in `func`'s DMA space right after the `after`-th DMA read that
/// covers that IOVA: what the device read before and after differ, as when a guest's other
/// vCPU rewrites a buffer the device is fetching.
pub struct Tamper {
    pub func: Function,
    pub iova: u64,
    pub bytes: Vec<u8>,
    pub after: u32,
}

/// An I2C bus with one SFP EEPROM at 0x50 (or none), keeping the address pointer the way
/// a real EEPROM does.
#[derive(Default)]
pub struct FakeI2c {
    /// Page A0h of the module, or `None` for an empty cage (every address NACKs).
    pub eeprom: Option<[u8; 256]>,
    /// Fails every transaction with this error instead.
    pub fail: Option<embedded_hal::i2c::ErrorKind>,
    pub pointer: u8,
    /// Transactions addressed to the bus.
    pub transactions: u32,
}

impl embedded_hal::i2c::ErrorType for FakeI2c {
    type Error = embedded_hal::i2c::ErrorKind;
}

impl embedded_hal::i2c::I2c for FakeI2c {
    fn transaction(
        &mut self,
        addr: u8,
        ops: &mut [embedded_hal::i2c::Operation<'_>],
    ) -> Result<(), Self::Error> {
        use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource, Operation};
        self.transactions += 1;
        if let Some(e) = self.fail {
            return Err(e);
        }
        let Some(mem) = self
            .eeprom
            .as_ref()
            .filter(|_| addr == crate::port::sfp::EEPROM_ADDR)
        else {
            return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        };
        for op in ops {
            match op {
                Operation::Write(w) => {
                    if let Some(&p) = w.first() {
                        self.pointer = p;
                    }
                }
                Operation::Read(r) => {
                    for b in r.iter_mut() {
                        *b = mem[usize::from(self.pointer)];
                        self.pointer = self.pointer.wrapping_add(1);
                    }
                }
            }
        }
        Ok(())
    }
}

/// An output pin that remembers its level and counts writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakePin {
    pub high: bool,
    pub writes: u32,
}

impl embedded_hal::digital::ErrorType for FakePin {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for FakePin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.high = false;
        self.writes += 1;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.high = true;
        self.writes += 1;
        Ok(())
    }
}

/// A multiply-xor hasher for the small keys of [`FakePlatform`]'s maps: SipHash on every
/// register access was the largest cost of the admin fuzzer. No key here is chosen by an
/// adversary that could profit from collisions.
#[derive(Default)]
pub struct RegHasher(u64);

impl core::hash::Hasher for RegHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

impl FakePlatform {
    /// The function's space, at least `end` bytes long.
    fn space(&mut self, f: Function, end: usize) -> &mut Vec<u8> {
        let space = self.dma.entry(f).or_default();
        if space.len() < end {
            space.resize(end, 0);
        }
        space
    }

    fn range(iova: u64, len: usize) -> Result<core::ops::Range<usize>, DmaError> {
        let start = usize::try_from(iova).map_err(|_| DmaError)?;
        let end = start.checked_add(len).ok_or(DmaError)?;
        if end > DMA_SPACE {
            return Err(DmaError);
        }
        Ok(start..end)
    }
}

impl Platform for FakePlatform {
    type I2c = FakeI2c;
    type Led = FakePin;

    fn peripherals(&mut self) -> crate::platform::Peripherals<'_, FakeI2c, FakePin> {
        crate::platform::Peripherals {
            i2c: &mut self.i2c,
            link_led: &mut self.link_led,
            activity_led: &mut self.activity_led,
        }
    }

    fn read_reg(&mut self, func: Function, offset: u32) -> u32 {
        self.regs.get(&(func, offset)).copied().unwrap_or(0)
    }

    fn write_reg(&mut self, func: Function, offset: u32, value: u32) {
        self.regs.insert((func, offset), value);
    }

    fn dma_read(&mut self, func: Function, iova: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let r = Self::range(iova, buf.len())?;
        match self.dma.get(&func) {
            Some(space) if space.len() >= r.end => buf.copy_from_slice(&space[r]),
            Some(space) if space.len() > r.start => {
                let have = space.len() - r.start;
                buf[..have].copy_from_slice(&space[r.start..]);
                buf[have..].fill(0);
            }
            _ => buf.fill(0),
        }
        let (start, end) = (iova, iova.saturating_add(buf.len() as u64));
        let covers = |t: &Tamper| t.func == func && start <= t.iova && t.iova < end;
        if let Some(t) = self.tamper.as_mut().filter(|t| covers(t)) {
            t.after = t.after.saturating_sub(1);
            if t.after == 0 {
                let (iova, bytes) = (t.iova, std::mem::take(&mut t.bytes));
                self.tamper = None;
                self.dma_write(func, iova, &bytes)?;
            }
        }
        Ok(())
    }

    fn dma_write(&mut self, func: Function, iova: u64, data: &[u8]) -> Result<(), DmaError> {
        let r = Self::range(iova, data.len())?;
        self.space(func, r.end)[r].copy_from_slice(data);
        Ok(())
    }

    fn raise_irq(&mut self, func: Function, cause: u32) {
        self.irqs.push((func, cause));
    }

    fn uplink_send(&mut self, frame: &[u8]) -> bool {
        self.uplink_out.push(frame.to_vec());
        true
    }

    fn uplink_recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        let f = self.uplink_in.pop_front()?;
        let n = f.len().min(buf.len());
        buf[..n].copy_from_slice(&f[..n]);
        Some(n)
    }

    fn now_us(&mut self) -> u64 {
        self.now_us += 10;
        self.now_us
    }
}

/// A whole firmware on a [`FakePlatform`], driven the way a driver and VMs drive the real
/// device (admin queue and VF rings in DMA memory), one deterministic `poll` at a time.
/// The firmware's tables live in an [`OwnedMemory`] it borrows for `'m`: a test's NIC
/// leaks one ([`FakeNic::new`]), a fuzz target that makes a NIC an input lends its own
/// ([`FakeNic::in_memory`]) so that memory does not grow with every input.
pub struct FakeNic<'m> {
    pub platform: FakePlatform,
    pub fw: crate::Firmware<'m>,
    adminq_tail: u32,
    rings: HashMap<u16, GuestRings>,
}

/// Ring indices of one attached VF.
#[derive(Default)]
struct GuestRings {
    tx_tail: u32,
    rx_next: u32,
    rx_tail: u32,
}

const ADMINQ_IOVA: u64 = 0x0;
const ADMINQ_SIZE: u32 = 16;
const STATS_IOVA: u64 = 0x8000;
const RING_SIZE: u32 = 16;
const TX_RING_IOVA: u64 = 0x0;
pub const RX_RING_IOVA: u64 = 0x1000;
const TX_BUF_IOVA: u64 = 0x10000;
const RX_BUF_IOVA: u64 = 0x60000;
const BUF_SIZE: u64 = 0x2800;
/// Buffers of super-frames (VF offloads): 64 KiB apart.
const BIG_TX_BUF_IOVA: u64 = 0x10_0000;
const BIG_RX_BUF_IOVA: u64 = 0x20_0000;
const BIG_BUF_SIZE: u64 = 0x1_0000;

impl FakeNic<'static> {
    /// A NIC after its power-on reset, with the admin queue running. Its memory is leaked:
    /// a test makes a few.
    pub fn new(sizes: Sizes) -> FakeNic<'static> {
        FakeNic::in_memory(std::boxed::Box::leak(std::boxed::Box::new(
            OwnedMemory::new(sizes),
        )))
    }
}

impl<'m> FakeNic<'m> {
    /// [`FakeNic::new`] on memory the caller owns.
    pub fn in_memory(mem: &'m mut OwnedMemory) -> FakeNic<'m> {
        use shared_regs::pf;
        let mut nic = FakeNic {
            platform: FakePlatform::default(),
            fw: crate::Firmware::new(mem.memory()),
            adminq_tail: 0,
            rings: HashMap::new(),
        };
        nic.poll();
        let p = &mut nic.platform;
        p.write_reg(Function::Pf, pf::ADMINQ_BASE_LO, ADMINQ_IOVA as u32);
        p.write_reg(Function::Pf, pf::ADMINQ_SIZE, ADMINQ_SIZE);
        p.write_reg(Function::Pf, pf::CONTROL, pf::Control::ADMINQ_ENABLE.bits());
        nic.poll();
        nic
    }

    /// Runs the firmware until it has nothing left to do.
    pub fn poll(&mut self) {
        for _ in 0..1000 {
            if !self.fw.poll(&mut self.platform) {
                return;
            }
        }
        panic!("firmware still busy after 1000 polls");
    }

    /// Sends one admin command and returns its completion.
    pub fn submit(&mut self, cmd: shared_regs::admin::AdminCmd) -> shared_regs::admin::AdminCmd {
        use shared_regs::admin::{AdminCmd, CMD_SIZE};
        use zerocopy::{FromBytes, IntoBytes};
        let addr = ADMINQ_IOVA + u64::from(self.adminq_tail) * CMD_SIZE as u64;
        self.platform
            .dma_write(Function::Pf, addr, cmd.as_bytes())
            .unwrap();
        self.adminq_tail = (self.adminq_tail + 1) % ADMINQ_SIZE;
        self.platform
            .write_reg(Function::Pf, shared_regs::pf::ADMINQ_TAIL, self.adminq_tail);
        self.poll();
        let mut raw = [0u8; CMD_SIZE];
        self.platform
            .dma_read(Function::Pf, addr, &mut raw)
            .unwrap();
        AdminCmd::read_from_bytes(&raw).unwrap()
    }

    /// Runs an admin command with inline parameters.
    pub fn admin<T: zerocopy::IntoBytes + zerocopy::Immutable>(
        &mut self,
        op: shared_regs::admin::Opcode,
        params: &T,
    ) -> Result<(), shared_regs::admin::Status> {
        let done = self.submit(shared_regs::admin::AdminCmd::new(op, params));
        done.completion().expect("command not completed")
    }

    /// One function's counters, read with GET_STATS.
    pub fn counters(&mut self, function: u16) -> shared_regs::stats::Counters {
        use shared_regs::admin::{AdminCmd, Opcode};
        use shared_regs::entry::StatsQuery;
        use zerocopy::FromBytes;
        let q = StatsQuery {
            function: shared_regs::Le16::new(function),
        };
        let mut cmd = AdminCmd::new(Opcode::GetStats, &q);
        cmd.buf_addr.set(STATS_IOVA);
        cmd.buf_len.set(4096);
        let done = self.submit(cmd);
        done.completion().unwrap().unwrap();
        let mut raw = vec![0u8; core::mem::size_of::<shared_regs::stats::Counters>()];
        self.platform
            .dma_read(Function::Pf, STATS_IOVA, &mut raw)
            .unwrap();
        shared_regs::stats::Counters::read_from_bytes(&raw).unwrap()
    }

    /// Acts as VF `vf`'s driver in its VM: sets up both rings, posts every RX buffer and
    /// enables the VF.
    pub fn attach_vf(&mut self, vf: u16) {
        self.attach_vf_with(vf, false)
    }

    /// [`FakeNic::attach_vf`]; with `rx_gso`, posts 64 KiB buffers and sets
    /// `CONTROL.RX_GSO`, as a driver taking super-frames does.
    pub fn attach_vf_with(&mut self, vf: u16, rx_gso: bool) {
        use shared_regs::desc::RxDesc;
        use shared_regs::vf as r;
        use zerocopy::IntoBytes;
        let f = Function::Vf(vf);
        let p = &mut self.platform;
        let (base, size, len) = if rx_gso {
            (BIG_RX_BUF_IOVA, BIG_BUF_SIZE, u16::MAX)
        } else {
            (RX_BUF_IOVA, BUF_SIZE, BUF_SIZE as u16)
        };
        for i in 0..RING_SIZE {
            let mut d = RxDesc::default();
            d.addr.set(base + u64::from(i) * size);
            d.buf_len.set(len);
            p.dma_write(f, RX_RING_IOVA + u64::from(i) * 16, d.as_bytes())
                .unwrap();
        }
        p.write_reg(f, r::TX_BASE_LO, TX_RING_IOVA as u32);
        p.write_reg(f, r::TX_SIZE, RING_SIZE);
        p.write_reg(f, r::RX_BASE_LO, RX_RING_IOVA as u32);
        p.write_reg(f, r::RX_SIZE, RING_SIZE);
        p.write_reg(f, r::RX_TAIL, RING_SIZE - 1);
        let control = if rx_gso {
            r::Control::ENABLE | r::Control::RX_GSO
        } else {
            r::Control::ENABLE
        };
        p.write_reg(f, r::CONTROL, control.bits());
        self.rings.insert(
            vf,
            GuestRings {
                rx_tail: RING_SIZE - 1,
                ..GuestRings::default()
            },
        );
        self.poll();
    }

    /// Puts one frame on VF `vf`'s TX ring and lets the firmware run.
    pub fn send(&mut self, vf: u16, frame: &[u8]) {
        self.send_with(vf, frame, shared_regs::desc::TxFlags::empty(), 0)
    }

    /// [`FakeNic::send`] with offload `flags` (besides `EOP`) and `mss`, from a 64 KiB
    /// buffer.
    pub fn send_with(
        &mut self,
        vf: u16,
        frame: &[u8],
        flags: shared_regs::desc::TxFlags,
        mss: u16,
    ) {
        self.post_with(vf, frame, flags, mss);
        self.poll();
    }

    /// Posts one frame as [`FakeNic::send_with`] does, without letting the firmware run.
    pub fn post_with(
        &mut self,
        vf: u16,
        frame: &[u8],
        flags: shared_regs::desc::TxFlags,
        mss: u16,
    ) {
        use shared_regs::desc::{TxDesc, TxFlags};
        use zerocopy::IntoBytes;
        let f = Function::Vf(vf);
        let g = self.rings.get_mut(&vf).expect("VF not attached");
        let slot = g.tx_tail;
        g.tx_tail = (g.tx_tail + 1) % RING_SIZE;
        let tail = g.tx_tail;
        let buf = if flags.is_empty() {
            TX_BUF_IOVA + u64::from(slot) * BUF_SIZE
        } else {
            BIG_TX_BUF_IOVA + u64::from(slot) * BIG_BUF_SIZE
        };
        let mut d = TxDesc::default();
        d.addr.set(buf);
        d.len.set(frame.len() as u16);
        d.flags.set((TxFlags::EOP | flags).bits());
        d.mss.set(mss);
        let p = &mut self.platform;
        p.dma_write(f, buf, frame).unwrap();
        p.dma_write(f, TX_RING_IOVA + u64::from(slot) * 16, d.as_bytes())
            .unwrap();
        p.write_reg(f, shared_regs::vf::TX_TAIL, tail);
    }

    /// The status the firmware wrote back into VF `vf`'s TX descriptor `slot`, once done.
    pub fn tx_status(&mut self, vf: u16, slot: u32) -> Option<u16> {
        use shared_regs::desc::{TxDesc, TxFlags};
        use zerocopy::FromBytes;
        let mut raw = [0u8; 16];
        self.platform
            .dma_read(
                Function::Vf(vf),
                TX_RING_IOVA + u64::from(slot) * 16,
                &mut raw,
            )
            .unwrap();
        let d = TxDesc::read_from_bytes(&raw).unwrap();
        TxFlags::from_bits_retain(d.flags.get())
            .contains(TxFlags::DONE)
            .then_some(d.status.get())
    }

    /// Takes the next frame VF `vf` received, reposting its buffer.
    pub fn recv(&mut self, vf: u16) -> Option<Vec<u8>> {
        self.recv_with(vf).map(|(frame, _, _)| frame)
    }

    /// [`FakeNic::recv`], with the descriptor's flags and mss.
    pub fn recv_with(&mut self, vf: u16) -> Option<(Vec<u8>, shared_regs::desc::RxFlags, u16)> {
        use shared_regs::desc::{RxDesc, RxFlags};
        use zerocopy::{FromBytes, IntoBytes};
        let f = Function::Vf(vf);
        let g = self.rings.get_mut(&vf).expect("VF not attached");
        let p = &mut self.platform;
        let at = RX_RING_IOVA + u64::from(g.rx_next) * 16;
        let mut raw = [0u8; 16];
        p.dma_read(f, at, &mut raw).unwrap();
        let mut d = RxDesc::read_from_bytes(&raw).unwrap();
        if !RxFlags::from_bits_retain(d.flags.get()).contains(RxFlags::DONE) {
            return None;
        }
        let mut frame = vec![0u8; usize::from(d.len.get())];
        p.dma_read(f, d.addr.get(), &mut frame).unwrap();
        let got = (frame, RxFlags::from_bits_retain(d.flags.get()), d.mss.get());
        d.flags.set(0);
        d.len.set(0);
        d.mss.set(0);
        p.dma_write(f, at, d.as_bytes()).unwrap();
        g.rx_next = (g.rx_next + 1) % RING_SIZE;
        g.rx_tail = (g.rx_tail + 1) % RING_SIZE;
        p.write_reg(f, shared_regs::vf::RX_TAIL, g.rx_tail);
        Some(got)
    }
}

/// Clears DF in the IPv4 header of an Ethernet frame and fixes its checksum.
pub fn clear_dont_frag(frame: &mut [u8]) {
    let mut ip = Ipv4Packet::new_checked(&mut frame[14..]).unwrap();
    ip.set_dont_frag(false);
    ip.fill_checksum();
}

/// A VXLAN frame as a remote host's NIC sends it: outer Ethernet, IPv4 (with a valid
/// checksum), UDP to 4789, VXLAN with `vni`, then `inner`.
pub fn vxlan_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    vni: u32,
    inner: &[u8],
) -> Vec<u8> {
    let mut udp_payload = vec![0x08, 0, 0, 0];
    udp_payload.extend_from_slice(&(vni << 8).to_be_bytes());
    udp_payload.extend_from_slice(inner);
    ethernet(
        dst_mac,
        src_mac,
        ETHERTYPE_IPV4,
        &ipv4(
            src,
            dst,
            IpProtocol::Udp,
            64,
            &udp(50000, 4789, &udp_payload),
        ),
    )
}

/// A DHCP client message as a VM's client sends it: from 0.0.0.0 (or `ciaddr` when it has
/// an address) to 255.255.255.255, UDP 68 -> 67.
pub fn dhcp_client_frame(
    mac: [u8; 6],
    kind: smoltcp::wire::DhcpMessageType,
    xid: u32,
    requested: Option<Ipv4Addr>,
    ciaddr: Ipv4Addr,
    broadcast: bool,
) -> Vec<u8> {
    use smoltcp::wire::{DhcpPacket, DhcpRepr};
    let repr = DhcpRepr {
        message_type: kind,
        transaction_id: xid,
        secs: 0,
        client_hardware_address: EthernetAddress(mac),
        client_ip: ciaddr,
        your_ip: Ipv4Addr::UNSPECIFIED,
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast,
        requested_ip: requested,
        client_identifier: Some(EthernetAddress(mac)),
        server_identifier: None,
        parameter_request_list: Some(&[1, 3, 6, 15, 26, 51, 54]),
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let mut dhcp = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut dhcp[..]))
        .unwrap();
    ethernet(
        BROADCAST,
        mac,
        ETHERTYPE_IPV4,
        &ipv4(
            ciaddr,
            Ipv4Addr::BROADCAST,
            IpProtocol::Udp,
            64,
            &udp(68, 67, &dhcp),
        ),
    )
}

/// A DHCP server reply: (IPv4 destination, the parsed DHCP message's type, yiaddr, and
/// each option as (kind, data)).
pub fn parse_dhcp_reply(
    frame: &[u8],
) -> (
    Ipv4Addr,
    smoltcp::wire::DhcpMessageType,
    Ipv4Addr,
    Vec<(u8, Vec<u8>)>,
) {
    use smoltcp::wire::{DhcpPacket, DhcpRepr, UdpPacket};
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert!(ip.verify_checksum());
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((udp.src_port(), udp.dst_port()), (67, 68));
    assert!(udp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
    let pkt = DhcpPacket::new_checked(udp.payload()).unwrap();
    let repr = DhcpRepr::parse(&pkt).unwrap();
    let opts = pkt.options().map(|o| (o.kind, o.data.to_vec())).collect();
    (ip.dst_addr(), repr.message_type, repr.your_ip, opts)
}

/// The VPC the frame-level tests and the offload fuzzer run on: one VPC (10.0.0.0/16,
/// VNI 100) with subnets 10.0.1.0/24 (VF0 .10, VF1 .11) and 10.0.2.0/24 (VF2 .20), both
/// on the main route table, each VF attached with source/destination check; and, with
/// [`vpc::nic_with_uplink`], an uplink, an internet gateway as the default route, a
/// blackhole for 10.0.8.0/24 and an instance 10.0.2.30 on a remote host.
pub mod vpc {
    use super::FakeNic;
    use shared_regs::admin::Opcode;
    use shared_regs::entry::*;
    use shared_regs::Le16;
    use smoltcp::wire::{IpProtocol, Ipv4Packet};

    pub const VNI: u32 = 100;
    pub const GW1_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
    pub const GW2_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x02, 0x01];
    pub const MAC0: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0a];
    pub const MAC1: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0b];
    pub const MAC2: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x02, 0x14];
    pub const UPLINK_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
    pub const NEXT_HOP_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 1];
    pub const IGW_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 1];
    pub const REMOTE_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0x00, 0x02, 0x1e];
    /// 192.0.2.1
    pub const UPLINK: u32 = 0xC000_0201;
    /// 192.0.2.2
    pub const REMOTE_HOST: u32 = 0xC000_0202;
    /// 192.0.2.100
    pub const IGW_HOST: u32 = 0xC000_0264;

    /// The VPC, its two subnets and VFs 0-2.
    pub fn nic() -> FakeNic<'static> {
        let mut nic = FakeNic::new(super::Sizes::default());
        program(&mut nic);
        nic
    }

    /// Programs [`nic`]'s VPC into `nic`.
    pub fn program(nic: &mut FakeNic<'_>) {
        let vpc = VpcEntry {
            id: Le16::new(0),
            main_route_table: Le16::new(0),
            vni: VNI.into(),
            cidr: [10, 0, 0, 0],
            cidr_len: 16,
            ..Default::default()
        };
        nic.admin(Opcode::VpcAdd, &vpc).unwrap();
        let rt = RouteTableEntry {
            id: Le16::new(0),
            vpc_id: Le16::new(0),
        };
        nic.admin(Opcode::RouteTableAdd, &rt).unwrap();
        for (id, net, gw) in [(0u16, [10, 0, 1, 0], GW1_MAC), (1, [10, 0, 2, 0], GW2_MAC)] {
            let s = SubnetEntry {
                id: Le16::new(id),
                vpc_id: Le16::new(0),
                route_table_id: Le16::new(MAIN_ROUTE_TABLE),
                prefix_len: 24,
                prefix: net,
                gateway_mac: gw,
                ..Default::default()
            };
            nic.admin(Opcode::SubnetAdd, &s).unwrap();
        }
        for (vf, subnet, mac, addr) in [
            (0u16, 0u16, MAC0, [10, 0, 1, 10]),
            (1, 0, MAC1, [10, 0, 1, 11]),
            (2, 1, MAC2, [10, 0, 2, 20]),
        ] {
            let e = VfEntry {
                vf: Le16::new(vf),
                subnet_id: Le16::new(subnet),
                flags: Le16::new(VfFlags::SRC_DST_CHECK.bits()),
                mac,
                primary_ip: addr,
                ..Default::default()
            };
            nic.admin(Opcode::VfSet, &e).unwrap();
            let m = MappingEntry {
                vni: VNI.into(),
                ip: addr,
                mac,
                location: MappingLocation::LocalVf as u8,
                vf: Le16::new(vf),
                ..Default::default()
            };
            nic.admin(Opcode::MappingAdd, &m).unwrap();
            nic.attach_vf(vf);
        }
    }

    /// A second VPC beside [`nic`]'s: ID 1, VNI 200, 10.1.0.0/16, no main route table yet.
    pub fn other_vpc() -> VpcEntry {
        VpcEntry {
            id: Le16::new(1),
            main_route_table: Le16::new(MAIN_ROUTE_TABLE),
            vni: 200.into(),
            cidr: [10, 1, 0, 0],
            cidr_len: 16,
            ..Default::default()
        }
    }

    /// [`nic`] plus an uplink, an internet gateway as the default route, a blackhole for
    /// 10.0.8.0/24, and an instance 10.0.2.30 on a remote host.
    pub fn nic_with_uplink() -> FakeNic<'static> {
        let mut nic = nic();
        program_uplink(&mut nic);
        nic
    }

    /// Programs what [`nic_with_uplink`] adds to [`nic`] into `nic`.
    pub fn program_uplink(nic: &mut FakeNic<'_>) {
        let up = UplinkEntry {
            mac: UPLINK_MAC,
            next_hop_mac: NEXT_HOP_MAC,
            underlay_ip: UPLINK.to_be_bytes(),
            ..Default::default()
        };
        nic.admin(Opcode::UplinkSet, &up).unwrap();
        let gw = GatewayEntry {
            id: Le16::new(0),
            kind: GatewayKind::Internet as u8,
            underlay_ip: IGW_HOST.to_be_bytes(),
            mac: IGW_MAC,
            ..Default::default()
        };
        nic.admin(Opcode::GatewayAdd, &gw).unwrap();
        let route = |prefix: [u8; 4], len, target| RouteEntry::new(0, prefix.into(), len, target);
        nic.admin(Opcode::RouteAdd, &route([0; 4], 0, RouteTarget::Gateway(0)))
            .unwrap();
        nic.admin(
            Opcode::RouteAdd,
            &route([10, 0, 8, 0], 24, RouteTarget::Blackhole),
        )
        .unwrap();
        let m = MappingEntry {
            vni: VNI.into(),
            ip: [10, 0, 2, 30],
            mac: REMOTE_MAC,
            location: MappingLocation::Remote as u8,
            underlay_ip: REMOTE_HOST.to_be_bytes(),
            ..Default::default()
        };
        nic.admin(Opcode::MappingAdd, &m).unwrap();
    }

    /// Checks the outer headers of a VXLAN frame the uplink of [`nic_with_uplink`] sent and
    /// returns (underlay dst, VNI, inner frame).
    pub fn outer(f: &[u8]) -> (u32, u32, &[u8]) {
        assert!(f.len() >= 50, "VXLAN frame of {} bytes", f.len());
        assert_eq!(&f[0..6], &NEXT_HOP_MAC);
        assert_eq!(&f[6..12], &UPLINK_MAC);
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(u32::from(ip.src_addr()), UPLINK);
        assert_eq!(ip.hop_limit(), 64);
        assert!(ip.dont_frag());
        assert_eq!(ip.next_header(), IpProtocol::Udp);
        let udp = &f[34..42];
        assert!(u16::from_be_bytes([udp[0], udp[1]]) >= 49152);
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 4789);
        assert_eq!(
            usize::from(u16::from_be_bytes([udp[4], udp[5]])),
            f.len() - 34
        );
        assert_eq!(f[42] & 0x08, 0x08, "VXLAN I flag");
        let vni = u32::from_be_bytes([0, f[46], f[47], f[48]]);
        (u32::from(ip.dst_addr()), vni, &f[50..])
    }
}
