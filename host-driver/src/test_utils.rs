//! A fake PF for unit tests: a register file, DMA memory reached through the memfds the
//! driver maps, an interrupt eventfd, and a scripted "firmware" that answers admin commands
//! synchronously when the doorbell is written.
use crate::device::Device;
use crate::dma::DmaMemory;
use crate::error::{DriverError, Result};
use shared_regs::admin::{AdminCmd, CmdFlags, Status, CMD_SIZE};
use shared_regs::pf::{self, Control};
use shared_regs::{Le16, Le32};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use vmm_sys_util::eventfd::EventFd;
use zerocopy::{FromBytes, IntoBytes};

/// What the fake firmware does with one command: the status, the result, and bytes to
/// write to the indirect buffer.
pub struct Reply {
    pub status: Status,
    pub result: u32,
    pub buf: Option<Vec<u8>>,
    /// Write back this cookie instead of the driver's (a confused firmware).
    pub cookie: Option<u16>,
}

impl Reply {
    pub fn status(status: Status) -> Self {
        Reply {
            status,
            result: 0,
            buf: None,
            cookie: None,
        }
    }
}

type Handler = Box<dyn FnMut(&AdminCmd) -> Reply + Send>;

/// How the fake behaves.
pub struct FakeConfig {
    /// Set STATUS.READY after a reset.
    pub ready: bool,
    /// The ABI_VERSION register after reset.
    pub abi: u32,
    pub caps: u32,
    pub num_vfs: u32,
    pub adminq_max: u32,
    /// Answer commands (else they stay pending: "firmware not answering").
    pub answer: bool,
    /// Advance HEARTBEAT on every read.
    pub heartbeat: bool,
    /// Refuse every admin queue (STATUS.ADMINQ_ERROR on enable).
    pub reject_adminq: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            ready: true,
            abi: shared_regs::ABI_VERSION,
            caps: 0b11,
            num_vfs: 4,
            adminq_max: 64,
            answer: true,
            heartbeat: true,
            reject_adminq: false,
        }
    }
}

struct State {
    regs: BTreeMap<u32, u32>,
    maps: Vec<(u64, u64, File)>,
    irq: Option<EventFd>,
    handler: Handler,
    /// Opcodes of every command taken, in order, with the entry index they were in.
    seen: Vec<(u32, u16)>,
    /// Every doorbell value written.
    tails: Vec<u32>,
    /// The indirect buffer of every command that named one (`buf_len` bytes, as the
    /// firmware would read them), in order.
    buffers: Vec<Vec<u8>>,
}

/// The fake device.
pub struct FakeDevice {
    cfg: FakeConfig,
    state: Mutex<State>,
}

impl FakeDevice {
    pub fn new(cfg: FakeConfig) -> Self {
        let mut regs = BTreeMap::new();
        regs.insert(pf::ID, shared_regs::DEVICE_ID_MAGIC);
        regs.insert(pf::INTR_MASK, u32::MAX);
        FakeDevice {
            cfg,
            state: Mutex::new(State {
                regs,
                maps: Vec::new(),
                irq: None,
                handler: Box::new(|_| Reply::status(Status::Ok)),
                seen: Vec::new(),
                tails: Vec::new(),
                buffers: Vec::new(),
            }),
        }
    }

    /// Replaces the fake firmware's command handler.
    pub fn set_handler(&self, h: impl FnMut(&AdminCmd) -> Reply + Send + 'static) {
        self.state.lock().unwrap().handler = Box::new(h);
    }

    /// Overrides a register.
    pub fn poke(&self, offset: u32, value: u32) {
        self.state.lock().unwrap().regs.insert(offset, value);
    }

    pub fn peek(&self, offset: u32) -> u32 {
        reg(&self.state.lock().unwrap(), offset)
    }

    /// (entry index, opcode) of every command taken.
    pub fn seen(&self) -> Vec<(u32, u16)> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Every value written to ADMINQ_TAIL.
    pub fn tails(&self) -> Vec<u32> {
        self.state.lock().unwrap().tails.clone()
    }

    /// The indirect buffers commands named, as the firmware saw them.
    pub fn buffers(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().buffers.clone()
    }

    /// Whether a DMA mapping exists at `iova`.
    pub fn mapped(&self, iova: u64) -> bool {
        self.state.lock().unwrap().maps.iter().any(|m| m.0 == iova)
    }

    fn reset(&self, s: &mut State) {
        let keep_id = reg(s, pf::ID);
        s.regs.clear();
        s.regs.insert(pf::ID, keep_id);
        s.regs.insert(pf::INTR_MASK, u32::MAX);
        if self.cfg.ready {
            s.regs.insert(pf::ABI_VERSION, self.cfg.abi);
            s.regs.insert(pf::CAPS, self.cfg.caps);
            s.regs.insert(pf::NUM_VFS, self.cfg.num_vfs);
            for (i, r) in [
                pf::CAP_VPCS,
                pf::CAP_SUBNETS,
                pf::CAP_ROUTE_TABLES,
                pf::CAP_ROUTES,
                pf::CAP_MAPPINGS,
                pf::CAP_GATEWAYS,
                pf::CAP_UNDERLAYS,
            ]
            .into_iter()
            .enumerate()
            {
                s.regs.insert(r, 10 * (i as u32 + 1));
            }
            s.regs.insert(pf::CAP_ADMINQ_ENTRIES, self.cfg.adminq_max);
            s.regs.insert(pf::STATUS, pf::Status::READY.bits());
        }
    }

    fn dma(s: &State, iova: u64, len: usize) -> Option<(&File, u64)> {
        s.maps
            .iter()
            .find(|(base, size, _)| iova >= *base && iova + len as u64 <= base + size)
            .map(|(base, _, f)| (f, iova - base))
    }

    fn doorbell(&self, s: &mut State, tail: u32) {
        s.tails.push(tail);
        if !self.cfg.answer || reg(s, pf::CONTROL) & Control::ADMINQ_ENABLE.bits() == 0 {
            return;
        }
        let size = reg(s, pf::ADMINQ_SIZE);
        let base =
            u64::from(reg(s, pf::ADMINQ_BASE_LO)) | u64::from(reg(s, pf::ADMINQ_BASE_HI)) << 32;
        let mut head = reg(s, pf::ADMINQ_HEAD);
        while head != tail % size {
            let at = base + u64::from(head) * CMD_SIZE as u64;
            let mut raw = [0u8; CMD_SIZE];
            {
                let (f, off) = Self::dma(s, at, CMD_SIZE).expect("admin queue entry not mapped");
                f.read_exact_at(&mut raw, off).unwrap();
            }
            let mut cmd = AdminCmd::read_from_bytes(&raw).unwrap();
            s.seen.push((head, cmd.opcode.get()));
            let len = cmd.buf_len.get() as usize;
            if len > 0 {
                let mut buf = vec![0u8; len];
                let (f, off) =
                    Self::dma(s, cmd.buf_addr.get(), len).expect("indirect buffer not mapped");
                f.read_exact_at(&mut buf, off).unwrap();
                s.buffers.push(buf);
            }
            let reply = (s.handler)(&cmd);
            if let Some(buf) = reply.buf {
                let (f, off) =
                    Self::dma(s, cmd.buf_addr.get(), buf.len()).expect("buffer not mapped");
                f.write_all_at(&buf, off).unwrap();
            }
            cmd.status = Le16::new(reply.status as u16);
            cmd.result = Le32::new(reply.result);
            cmd.flags = Le16::new(CmdFlags::DONE.bits());
            if let Some(c) = reply.cookie {
                cmd.cookie = Le16::new(c);
            }
            let (f, off) = Self::dma(s, at, CMD_SIZE).unwrap();
            f.write_all_at(cmd.as_bytes(), off).unwrap();
            head = (head + 1) % size;
            s.regs.insert(pf::ADMINQ_HEAD, head);
        }
        let cause = reg(s, pf::INTR_CAUSE) | pf::Intr::ADMINQ.bits();
        s.regs.insert(pf::INTR_CAUSE, cause);
        if reg(s, pf::INTR_MASK) & pf::Intr::ADMINQ.bits() == 0 {
            if let Some(fd) = &s.irq {
                fd.write(1).unwrap();
            }
        }
    }
}

fn reg(s: &State, offset: u32) -> u32 {
    s.regs.get(&offset).copied().unwrap_or(0)
}

impl Device for FakeDevice {
    fn describe(&self) -> String {
        "fake NIC".into()
    }

    fn bar0_size(&self) -> u64 {
        u64::from(pf::BAR0_SIZE)
    }

    fn read32(&self, offset: u32) -> Result<u32> {
        if offset >= pf::BAR0_SIZE {
            return Err(DriverError::register(self, "read", offset, "outside BAR0"));
        }
        let mut s = self.state.lock().unwrap();
        let v = reg(&s, offset);
        if offset == pf::HEARTBEAT && self.cfg.heartbeat {
            s.regs.insert(offset, v.wrapping_add(1));
        }
        Ok(v)
    }

    fn write32(&self, offset: u32, value: u32) -> Result<()> {
        if offset >= pf::BAR0_SIZE {
            return Err(DriverError::register(self, "write", offset, "outside BAR0"));
        }
        let mut s = self.state.lock().unwrap();
        match offset {
            pf::CONTROL if value & Control::RESET.bits() != 0 => self.reset(&mut s),
            pf::CONTROL => {
                s.regs.insert(offset, value);
                let size = reg(&s, pf::ADMINQ_SIZE);
                let base = reg(&s, pf::ADMINQ_BASE_LO);
                if value & Control::ADMINQ_ENABLE.bits() != 0
                    && (self.cfg.reject_adminq
                        || !size.is_power_of_two()
                        || size > self.cfg.adminq_max
                        || !base.is_multiple_of(64))
                {
                    let st = reg(&s, pf::STATUS) | pf::Status::ADMINQ_ERROR.bits();
                    s.regs.insert(pf::STATUS, st);
                }
            }
            pf::ADMINQ_TAIL => {
                s.regs.insert(offset, value);
                self.doorbell(&mut s, value);
            }
            pf::INTR_CAUSE => {
                let v = reg(&s, offset) & !value;
                s.regs.insert(offset, v);
            }
            pf::ID | pf::STATUS | pf::ADMINQ_HEAD | pf::HEARTBEAT => {}
            _ => {
                s.regs.insert(offset, value);
            }
        }
        Ok(())
    }

    fn dma_map(&self, mem: &DmaMemory) -> Result<()> {
        let f = mem
            .file()
            .try_clone()
            .map_err(|e| DriverError::dma_map(self, "map", mem, e))?;
        self.state
            .lock()
            .unwrap()
            .maps
            .push((mem.iova(), mem.size(), f));
        Ok(())
    }

    fn dma_unmap(&self, mem: &DmaMemory) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        let before = s.maps.len();
        s.maps.retain(|m| m.0 != mem.iova());
        if s.maps.len() == before {
            return Err(DriverError::dma_map(self, "unmap", mem, "not mapped"));
        }
        Ok(())
    }

    fn set_irq(&self, vector: u32, fd: Option<&EventFd>) -> Result<()> {
        assert_eq!(vector, pf::IRQ_VECTOR);
        self.state.lock().unwrap().irq = fd.map(|f| f.try_clone().unwrap());
        Ok(())
    }
}
