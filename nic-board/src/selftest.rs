//! The self-test the QEMU image runs (and `cargo test` runs on the host): the firmware over
//! the board's static memory, configured through its real admin queue, then the pipeline
//! over built-in frames, each verdict checked and printed.
//!
//! The admin queue lives in [`Loopback`], a platform of plain arrays (QEMU has no NIC), so
//! what is proven is the firmware's code on the core: reset, the admin handler, the tables,
//! the pipeline, and the SFP and LED drivers over a pretend I2C EEPROM and pins. The board's MMIO platform is proven on the board.
use core::fmt::Write;
use nic_firmware::frame::FrameBuf;
use nic_firmware::pipeline::{process_frame, Port, Verdict};
use nic_firmware::{DmaError, Firmware, Function, Platform};
use shared_regs::admin::{AdminCmd, Opcode, Status, CMD_SIZE};
use shared_regs::entry::*;
use shared_regs::stats::Counter;
use shared_regs::{pf, Le16};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Words of each function's register file kept (the maps end below 0x100).
const REG_WORDS: usize = 64;
const FUNCS: usize = crate::memory::VFS + 1;
const ADMINQ_ENTRIES: u32 = 16;
/// The admin queue's indirect buffer (for `PORT_GET`), after the queue.
const BUF_IOVA: usize = CMD_SIZE * ADMINQ_ENTRIES as usize;
const BUF_SIZE: usize = 64;
/// The PF's DMA space: the admin queue and one indirect buffer.
const PF_DMA: usize = BUF_IOVA + BUF_SIZE;
const SFP_VENDOR: &str = "VPCNIC SELFTEST";
const SFP_PART: &str = "SFP-10G-SR";
const SFP_SERIAL: &str = "QEMU0001";

/// A platform of arrays: register files, the PF's admin queue memory, an SFP EEPROM on a
/// pretend I2C bus and two LED pins; no uplink.
pub struct Loopback {
    regs: [[u32; REG_WORDS]; FUNCS],
    pf_dma: [u8; PF_DMA],
    now_us: u64,
    i2c: LoopbackI2c,
    link_led: LoopbackPin,
    activity_led: LoopbackPin,
}

/// An I2C bus with an SFP module's EEPROM at 0x50 when `present`.
pub struct LoopbackI2c {
    present: bool,
    eeprom: [u8; nic_firmware::port::sfp::PAGE_SIZE],
    pointer: u8,
}

impl embedded_hal::i2c::ErrorType for LoopbackI2c {
    type Error = embedded_hal::i2c::ErrorKind;
}

impl embedded_hal::i2c::I2c for LoopbackI2c {
    fn transaction(
        &mut self,
        addr: u8,
        ops: &mut [embedded_hal::i2c::Operation<'_>],
    ) -> Result<(), Self::Error> {
        use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource, Operation};
        if !self.present || addr != nic_firmware::port::sfp::EEPROM_ADDR {
            return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        }
        for op in ops {
            match op {
                Operation::Write(w) => self.pointer = w.first().copied().unwrap_or(self.pointer),
                Operation::Read(r) => {
                    for b in r.iter_mut() {
                        *b = self
                            .eeprom
                            .get(usize::from(self.pointer))
                            .copied()
                            .unwrap_or(0xff);
                        self.pointer = self.pointer.wrapping_add(1);
                    }
                }
            }
        }
        Ok(())
    }
}

/// An LED pin: its level.
pub struct LoopbackPin(bool);

impl embedded_hal::digital::ErrorType for LoopbackPin {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for LoopbackPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.0 = false;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0 = true;
        Ok(())
    }
}

impl Loopback {
    pub const NEW: Loopback = Loopback {
        regs: [[0; REG_WORDS]; FUNCS],
        pf_dma: [0; PF_DMA],
        now_us: 0,
        i2c: LoopbackI2c {
            present: false,
            eeprom: [0; nic_firmware::port::sfp::PAGE_SIZE],
            pointer: 0,
        },
        link_led: LoopbackPin(false),
        activity_led: LoopbackPin(false),
    };

    /// Plugs an SFP module into the cage.
    pub fn insert_module(&mut self, vendor: &str, part: &str, serial: &str) {
        self.i2c.eeprom = nic_firmware::port::eeprom_image(0x03, vendor, part, serial);
        self.i2c.present = true;
    }

    fn reg(&mut self, func: Function, offset: u32) -> Option<&mut u32> {
        let f = match func {
            Function::Pf => 0,
            Function::Vf(n) => usize::from(n).checked_add(1)?,
        };
        let word = usize::try_from(offset / 4).ok()?;
        self.regs.get_mut(f)?.get_mut(word)
    }

    fn pf_range(
        func: Function,
        iova: u64,
        len: usize,
    ) -> Result<core::ops::Range<usize>, DmaError> {
        let start = usize::try_from(iova).map_err(|_| DmaError)?;
        let end = start.checked_add(len).ok_or(DmaError)?;
        if func != Function::Pf || end > PF_DMA {
            return Err(DmaError);
        }
        Ok(start..end)
    }
}

impl Platform for Loopback {
    type I2c = LoopbackI2c;
    type Led = LoopbackPin;
    fn peripherals(&mut self) -> nic_firmware::Peripherals<'_, LoopbackI2c, LoopbackPin> {
        nic_firmware::Peripherals {
            i2c: &mut self.i2c,
            link_led: &mut self.link_led,
            activity_led: &mut self.activity_led,
        }
    }
    fn read_reg(&mut self, func: Function, offset: u32) -> u32 {
        self.reg(func, offset).map_or(0, |r| *r)
    }
    fn write_reg(&mut self, func: Function, offset: u32, value: u32) {
        if let Some(r) = self.reg(func, offset) {
            *r = value;
        }
    }
    fn dma_read(&mut self, func: Function, iova: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let src = self
            .pf_dma
            .get(Self::pf_range(func, iova, buf.len())?)
            .ok_or(DmaError)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn dma_write(&mut self, func: Function, iova: u64, data: &[u8]) -> Result<(), DmaError> {
        let r = Self::pf_range(func, iova, data.len())?;
        self.pf_dma
            .get_mut(r)
            .ok_or(DmaError)?
            .copy_from_slice(data);
        Ok(())
    }
    fn raise_irq(&mut self, _func: Function, _cause: u32) {}
    fn uplink_send(&mut self, _frame: &[u8]) -> bool {
        true
    }
    fn uplink_recv(&mut self, _buf: &mut [u8]) -> Option<usize> {
        None
    }
    fn now_us(&mut self) -> u64 {
        self.now_us = self.now_us.wrapping_add(10);
        self.now_us
    }
}

/// Passed and failed checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
}

impl Summary {
    fn record(
        &mut self,
        out: &mut impl Write,
        name: &str,
        ok: bool,
        detail: core::fmt::Arguments<'_>,
    ) {
        let mark = if ok { "ok" } else { "FAIL" };
        // The UART never fails; a failing writer only loses the line.
        let _ = writeln!(out, "selftest: {name}: {detail} ... {mark}");
        if ok {
            self.passed = self.passed.saturating_add(1);
        } else {
            self.failed = self.failed.saturating_add(1);
        }
    }
}

struct Driver<'a, 'm> {
    fw: Firmware<'m>,
    p: &'a mut Loopback,
    tail: u32,
}

impl Driver<'_, '_> {
    fn run(&mut self) {
        for _ in 0..100 {
            if !self.fw.poll(self.p) {
                return;
            }
        }
    }

    fn admin<T: IntoBytes + Immutable>(
        &mut self,
        op: Opcode,
        params: &T,
    ) -> Option<Result<(), Status>> {
        let cmd = AdminCmd::new(op, params);
        let at = u64::from(self.tail).checked_mul(CMD_SIZE as u64)?;
        self.p.dma_write(Function::Pf, at, cmd.as_bytes()).ok()?;
        self.tail = self.tail.checked_add(1)? % ADMINQ_ENTRIES;
        self.p.write_reg(Function::Pf, pf::ADMINQ_TAIL, self.tail);
        self.run();
        let mut raw = [0u8; CMD_SIZE];
        self.p.dma_read(Function::Pf, at, &mut raw).ok()?;
        AdminCmd::read_from_bytes(&raw).ok()?.completion()
    }

    /// `PORT_GET`, its report read from the indirect buffer.
    fn port_get(&mut self) -> Option<PortInfo> {
        let mut cmd = AdminCmd::new(Opcode::PortGet, &[0u8; 0]);
        cmd.buf_addr.set(BUF_IOVA as u64);
        cmd.buf_len.set(BUF_SIZE as u32);
        let at = u64::from(self.tail).checked_mul(CMD_SIZE as u64)?;
        self.p.dma_write(Function::Pf, at, cmd.as_bytes()).ok()?;
        self.tail = self.tail.checked_add(1)? % ADMINQ_ENTRIES;
        self.p.write_reg(Function::Pf, pf::ADMINQ_TAIL, self.tail);
        self.run();
        let mut raw = [0u8; CMD_SIZE];
        self.p.dma_read(Function::Pf, at, &mut raw).ok()?;
        AdminCmd::read_from_bytes(&raw).ok()?.completion()?.ok()?;
        let mut info = [0u8; core::mem::size_of::<PortInfo>()];
        self.p
            .dma_read(Function::Pf, BUF_IOVA as u64, &mut info)
            .ok()?;
        PortInfo::read_from_bytes(&info).ok()
    }
}

/// A NUL-padded text field of [`PortInfo`].
fn field(bytes: &[u8; 16]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(bytes.get(..end).unwrap_or(&[])).unwrap_or("?")
}

/// The SFP module through `PORT_GET`, and the link LED after `UPLINK_SET`.
fn check_port(d: &mut Driver<'_, '_>, out: &mut impl Write, sum: &mut Summary) {
    match d.port_get() {
        Some(info) => {
            let ok = info.present == 1
                && info.identifier == 0x03
                && info.checksum_ok == 1
                && field(&info.vendor) == SFP_VENDOR
                && field(&info.part) == SFP_PART
                && field(&info.serial) == SFP_SERIAL;
            sum.record(
                out,
                "admin PORT_GET reads the SFP module",
                ok,
                format_args!(
                    "present {} id {:#x} vendor {:?} part {:?} serial {:?}",
                    info.present,
                    info.identifier,
                    field(&info.vendor),
                    field(&info.part),
                    field(&info.serial)
                ),
            );
            let lit = d.p.link_led.0;
            sum.record(
                out,
                "link LED lit after UPLINK_SET",
                info.link_up == 1 && info.link_led == 1 && lit,
                format_args!("link_up {} led {} pin {lit}", info.link_up, info.link_led),
            );
        }
        None => {
            sum.record(
                out,
                "admin PORT_GET reads the SFP module",
                false,
                format_args!("no completion"),
            );
        }
    }
}

const VNI: u32 = 100;
const GW1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const GW2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
const MAC0: [u8; 6] = [0x02, 0, 0x0a, 0, 0x01, 0x0a];
const MAC1: [u8; 6] = [0x02, 0, 0x0a, 0, 0x01, 0x0b];
const MAC2: [u8; 6] = [0x02, 0, 0x0a, 0, 0x02, 0x14];
const REMOTE_MAC: [u8; 6] = [0x02, 0, 0x0a, 0, 0x02, 0x1e];
const UPLINK_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];
const NEXT_HOP_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 0x01];
const UNDERLAY: [u8; 4] = [192, 168, 0, 1];
const REMOTE_UNDERLAY: [u8; 4] = [192, 168, 0, 2];

/// Configures one VPC (10.0.0.0/16, VNI 100): subnets 10.0.1.0/24 (VF0 .10, VF1 .11) and
/// 10.0.2.0/24 (VF2 .20, and .30 on another host), and the uplink.
fn configure(d: &mut Driver<'_, '_>, out: &mut impl Write, sum: &mut Summary) {
    let mut check = |_: &mut Driver<'_, '_>, name: &str, r: Option<Result<(), Status>>| {
        sum.record(out, name, r == Some(Ok(())), format_args!("{r:?}"));
    };
    let vpc = VpcEntry {
        id: Le16::new(0),
        main_route_table: Le16::new(0),
        vni: VNI.into(),
        cidr: [10, 0, 0, 0],
        cidr_len: 16,
        ..Default::default()
    };
    let r = d.admin(Opcode::VpcAdd, &vpc);
    check(d, "admin VPC_ADD", r);
    let rt = RouteTableEntry {
        id: Le16::new(0),
        vpc_id: Le16::new(0),
    };
    let r = d.admin(Opcode::RouteTableAdd, &rt);
    check(d, "admin ROUTE_TABLE_ADD", r);
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
        let r = d.admin(Opcode::SubnetAdd, &s);
        check(d, "admin SUBNET_ADD", r);
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
        let r = d.admin(Opcode::VfSet, &e);
        check(d, "admin VF_SET", r);
        let m = MappingEntry {
            vni: VNI.into(),
            ip: addr,
            mac,
            location: MappingLocation::LocalVf as u8,
            vf: Le16::new(vf),
            ..Default::default()
        };
        let r = d.admin(Opcode::MappingAdd, &m);
        check(d, "admin MAPPING_ADD local", r);
    }
    let m = MappingEntry {
        vni: VNI.into(),
        ip: [10, 0, 2, 30],
        mac: REMOTE_MAC,
        location: MappingLocation::Remote as u8,
        underlay_ip: REMOTE_UNDERLAY,
        ..Default::default()
    };
    let r = d.admin(Opcode::MappingAdd, &m);
    check(d, "admin MAPPING_ADD remote", r);
    let u = UplinkEntry {
        mac: UPLINK_MAC,
        next_hop_mac: NEXT_HOP_MAC,
        underlay_ip: UNDERLAY,
        mtu: Le16::new(9216),
        ..Default::default()
    };
    let r = d.admin(Opcode::UplinkSet, &u);
    check(d, "admin UPLINK_SET", r);
}

/// The internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let hi = pair.first().copied().unwrap_or(0);
        let lo = pair.get(1).copied().unwrap_or(0);
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([hi, lo])));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff).wrapping_add(sum >> 16);
    }
    !(sum as u16)
}

/// A frame under construction in a fixed buffer.
struct Frame {
    buf: [u8; 256],
    len: usize,
}

impl Frame {
    fn new() -> Frame {
        Frame {
            buf: [0; 256],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) -> usize {
        let at = self.len;
        let end = at.saturating_add(bytes.len()).min(self.buf.len());
        if let Some(dst) = self.buf.get_mut(at..end) {
            dst.copy_from_slice(bytes.get(..end.saturating_sub(at)).unwrap_or(&[]));
        }
        self.len = end;
        at
    }

    fn set(&mut self, at: usize, bytes: &[u8]) {
        let end = at.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(at..end) {
            dst.copy_from_slice(bytes);
        }
    }

    fn eth(&mut self, dst: [u8; 6], src: [u8; 6], ethertype: u16) {
        self.push(&dst);
        self.push(&src);
        self.push(&ethertype.to_be_bytes());
    }

    /// An IPv4 header (DF set, TTL 64) for `payload_len` bytes; returns its offset.
    fn ipv4(&mut self, src: [u8; 4], dst: [u8; 4], proto: u8, payload_len: usize) -> usize {
        let total = u16::try_from(payload_len.saturating_add(20)).unwrap_or(u16::MAX);
        let at = self.push(&[0x45, 0]);
        self.push(&total.to_be_bytes());
        self.push(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
        self.push(&src);
        self.push(&dst);
        let sum = checksum(self.buf.get(at..at.saturating_add(20)).unwrap_or(&[]));
        self.set(at.saturating_add(10), &sum.to_be_bytes());
        at
    }

    /// An ICMP echo request with 8 bytes of data.
    fn icmp_echo(&mut self) {
        let at = self.push(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
        self.push(b"selftest");
        let sum = checksum(self.buf.get(at..self.len).unwrap_or(&[]));
        self.set(at.saturating_add(2), &sum.to_be_bytes());
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// An ICMP echo request from `src` to `dst` as a VM sends it.
fn ping(dst_mac: [u8; 6], src_mac: [u8; 6], src: [u8; 4], dst: [u8; 4]) -> Frame {
    let mut f = Frame::new();
    f.eth(dst_mac, src_mac, 0x0800);
    f.ipv4(src, dst, 1, 16);
    f.icmp_echo();
    f
}

fn arp_request(sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Frame {
    let mut f = Frame::new();
    f.eth([0xff; 6], sha, 0x0806);
    f.push(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.push(&sha);
    f.push(&spa);
    f.push(&[0; 6]);
    f.push(&tpa);
    f
}

/// `inner` in VXLAN from the remote host, as the uplink receives it.
fn vxlan(inner: &Frame) -> Frame {
    let mut f = Frame::new();
    f.eth(UPLINK_MAC, NEXT_HOP_MAC, 0x0800);
    let udp_len = inner.len.saturating_add(16);
    f.ipv4(REMOTE_UNDERLAY, UNDERLAY, 17, udp_len);
    f.push(&49152u16.to_be_bytes());
    f.push(&4789u16.to_be_bytes());
    f.push(&u16::try_from(udp_len).unwrap_or(0).to_be_bytes());
    f.push(&[0, 0]);
    f.push(&[0x08, 0, 0, 0]);
    f.push(&(VNI << 8).to_be_bytes());
    f.push(inner.bytes());
    f
}

/// Runs the self-test, printing one line per check and the summary line to `out`.
pub fn run(
    mem: nic_firmware::FirmwareMemory<'_>,
    p: &mut Loopback,
    out: &mut impl Write,
) -> Summary {
    let mut sum = Summary::default();
    p.insert_module(SFP_VENDOR, SFP_PART, SFP_SERIAL);
    let mut d = Driver {
        fw: Firmware::new(mem),
        p,
        tail: 0,
    };
    d.run();
    let status = d.p.read_reg(Function::Pf, pf::STATUS);
    let abi = d.p.read_reg(Function::Pf, pf::ABI_VERSION);
    sum.record(
        out,
        "reset",
        status & pf::Status::READY.bits() != 0 && abi == shared_regs::ABI_VERSION,
        format_args!("STATUS {status:#x} ABI {abi:#x}"),
    );
    d.p.write_reg(Function::Pf, pf::ADMINQ_SIZE, ADMINQ_ENTRIES);
    d.p.write_reg(Function::Pf, pf::CONTROL, pf::Control::ADMINQ_ENABLE.bits());
    d.run();
    configure(&mut d, out, &mut sum);
    check_port(&mut d, out, &mut sum);

    let cases: [(&str, Port, Frame, Verdict); 9] = [
        (
            "ARP for the gateway is answered",
            Port::Vf(0),
            arp_request(MAC0, [10, 0, 1, 10], [10, 0, 1, 1]),
            Verdict::Reply { vf: 0 },
        ),
        (
            "ping of the gateway is answered",
            Port::Vf(0),
            ping(GW1_MAC, MAC0, [10, 0, 1, 10], [10, 0, 1, 1]),
            Verdict::Reply { vf: 0 },
        ),
        (
            "VF0 -> VF1, same subnet",
            Port::Vf(0),
            ping(GW1_MAC, MAC0, [10, 0, 1, 10], [10, 0, 1, 11]),
            Verdict::ToVf { vf: 1 },
        ),
        (
            "VF0 -> VF2, other subnet",
            Port::Vf(0),
            ping(GW1_MAC, MAC0, [10, 0, 1, 10], [10, 0, 2, 20]),
            Verdict::ToVf { vf: 2 },
        ),
        (
            "VF0 -> remote host, VXLAN out",
            Port::Vf(0),
            ping(GW1_MAC, MAC0, [10, 0, 1, 10], [10, 0, 2, 30]),
            Verdict::ToUplink,
        ),
        (
            "spoofed source is dropped",
            Port::Vf(0),
            ping(GW1_MAC, MAC0, [10, 0, 1, 99], [10, 0, 1, 11]),
            Verdict::drop(Port::Vf(0), Counter::DropSrcIp),
        ),
        (
            "unmapped destination is dropped",
            Port::Vf(0),
            ping(GW1_MAC, MAC0, [10, 0, 1, 10], [10, 0, 3, 5]),
            Verdict::drop(Port::Vf(0), Counter::DropNoMapping),
        ),
        (
            "runt frame is dropped",
            Port::Vf(1),
            {
                let mut f = Frame::new();
                f.push(&[0xff; 10]);
                f
            },
            Verdict::drop(Port::Vf(1), Counter::DropMalformed),
        ),
        (
            "VXLAN from the remote host -> VF1",
            Port::Uplink,
            vxlan(&ping(MAC1, REMOTE_MAC, [10, 0, 2, 30], [10, 0, 1, 11])),
            Verdict::ToVf { vf: 1 },
        ),
    ];
    let mut frame = FrameBuf::EMPTY;
    for (name, port, bytes, want) in cases {
        let got = if frame.load(bytes.bytes()) {
            Some(process_frame(d.fw.tables(), port, &mut frame))
        } else {
            None
        };
        sum.record(
            out,
            name,
            got == Some(want),
            format_args!("{port:?} -> {got:?}"),
        );
    }
    let _ = writeln!(
        out,
        "selftest: {} passed, {} failed",
        sum.passed, sum.failed
    );
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::StaticMemory;

    static MEM: StaticMemory = StaticMemory::new();

    #[test]
    fn every_check_passes_on_the_host() {
        let mem = MEM.take().unwrap();
        assert!(MEM.take().is_none(), "handed out once");
        let mut p = Loopback::NEW;
        let mut out = std::string::String::new();
        let sum = run(mem.memory(), &mut p, &mut out);
        println!("{out}");
        assert_eq!(sum.failed, 0, "{out}");
        assert_eq!(sum.passed, 24);
        assert!(out.ends_with("selftest: 24 passed, 0 failed\n"));
    }
}
