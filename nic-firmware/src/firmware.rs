//! The firmware's main loop: reset, heartbeat, admin queue, VF rings, uplink.
use crate::admin::{self, AdminQueue};
use crate::counters::CounterBlock;
use crate::frame::FrameBuf;
use crate::memory::FirmwareMemory;
use crate::pipeline::{process_batch, process_batch_cached, FlowCache, Port, Verdict};
use crate::platform::{Function, Platform};
use crate::port::PortState;
use crate::rings::{VfRings, WholeFault, MAX_BATCH};
use crate::tables::{Tables, Uplink};
use shared_regs::desc::{RxFlags, TxStatus};
use shared_regs::stats::Counter;
use shared_regs::{pf, vf};

/// Microseconds between heartbeat increments.
const HEARTBEAT_PERIOD_US: u64 = 1000;

/// The running firmware.
pub struct Firmware<'m> {
    tables: Tables<'m>,
    counters: &'m mut [CounterBlock],
    rings: &'m mut [VfRings],
    batch: &'m mut [FrameBuf],
    flows: FlowCache<'m>,
    verdicts: [Verdict; MAX_BATCH],
    adminq: AdminQueue,
    port: PortState,
    initialized: bool,
    last_heartbeat_us: u64,
}

impl<'m> Firmware<'m> {
    /// Firmware over its device memory. It takes the power-on reset at the first
    /// [`Firmware::poll`].
    pub fn new(mut mem: FirmwareMemory<'m>) -> Self {
        Firmware {
            tables: Tables::take_from(&mut mem),
            counters: mem.counters,
            rings: mem.vf_rings,
            batch: mem.batch,
            flows: FlowCache::new(mem.flow_cache),
            verdicts: [Verdict::drop(Port::Uplink, Counter::DropUnsupported); MAX_BATCH],
            adminq: AdminQueue::default(),
            port: PortState::NEW,
            initialized: false,
            last_heartbeat_us: 0,
        }
    }

    /// The tables, for inspection by tests.
    pub fn tables(&self) -> &Tables<'m> {
        &self.tables
    }

    /// The uplink port: the SFP module read at reset (or at the last `PORT_GET`) and the
    /// LEDs.
    pub fn port(&self) -> &PortState {
        &self.port
    }

    /// Does one round of work: a reset request, admin commands, one batch per VF TX ring,
    /// uplink frames, the heartbeat. Returns true when it did anything but the heartbeat, so
    /// the platform may sleep until the next doorbell when it returns false.
    pub fn poll<P: Platform>(&mut self, p: &mut P) -> bool {
        let control = pf::Control::from_bits_retain(p.read_reg(Function::Pf, pf::CONTROL));
        if !self.initialized || control.contains(pf::Control::RESET) {
            self.reset(p);
            return true;
        }
        let now = self.heartbeat(p);
        let mut busy = self.adminq.poll(&mut admin::Context {
            platform: p,
            tables: &mut self.tables,
            counters: self.counters,
            scratch: self.batch.first_mut(),
            rings: self.rings,
            port: &mut self.port,
        });
        // Whatever a command changed, no flow may go on as the old tables had it.
        if busy {
            self.flows.invalidate();
        }
        // Every ring follows its ENABLE before any frame moves, so a frame for a VF whose
        // driver has just enabled it finds its RX ring.
        for (index, rings) in (0..self.tables.num_vfs()).zip(self.rings.iter_mut()) {
            rings.sync(p, index);
        }
        for vf in 0..self.tables.num_vfs() {
            busy |= self.serve_vf(p, vf);
        }
        busy |= self.serve_uplink(p);
        // The link LED shows the configured uplink; the activity LED blinks while frames or
        // commands move.
        self.port
            .drive_leds(p, self.tables.uplink.is_some(), busy, now);
        busy
    }

    /// Beats when due; returns the time it read.
    fn heartbeat<P: Platform>(&mut self, p: &mut P) -> u64 {
        let now = p.now_us();
        if now.saturating_sub(self.last_heartbeat_us) >= HEARTBEAT_PERIOD_US {
            self.last_heartbeat_us = now;
            let beat = p.read_reg(Function::Pf, pf::HEARTBEAT).wrapping_add(1);
            p.write_reg(Function::Pf, pf::HEARTBEAT, beat);
        }
        now
    }

    /// Empties every table and counter, stops every queue, and announces readiness.
    fn reset<P: Platform>(&mut self, p: &mut P) {
        self.tables.clear();
        self.flows.invalidate();
        self.counters.fill(CounterBlock::ZERO);
        self.rings.fill(VfRings::EMPTY);
        self.adminq.stop();
        // The module may have changed while the device was held in reset; the LEDs go dark
        // with the uplink's configuration.
        self.port = PortState::NEW;
        self.port.read_module(p);
        self.port.drive_leds(p, false, false, 0);
        for index in 0..self.tables.num_vfs() {
            let f = Function::Vf(index);
            for reg in [
                vf::MAC_LO,
                vf::MAC_HI,
                vf::LINK,
                vf::MTU,
                vf::CONTROL,
                vf::STATUS,
                vf::TX_HEAD,
                vf::RX_HEAD,
                vf::INTR_CAUSE,
            ] {
                p.write_reg(f, reg, 0);
            }
            p.write_reg(f, vf::OFFLOADS, crate::offload::OFFERED.bits());
        }
        let caps = pf::Caps::ARP_PROXY
            | pf::Caps::MULTI_VRF
            | pf::Caps::VXLAN
            | pf::Caps::DHCP
            | pf::Caps::TRACE
            | pf::Caps::ADMIN_CHAIN;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let pf_regs = [
            (pf::ABI_VERSION, shared_regs::ABI_VERSION),
            (pf::CAPS, caps.bits()),
            (pf::NUM_VFS, u32::from(self.tables.num_vfs())),
            (pf::CAP_VPCS, count(self.tables.vpcs.len())),
            (pf::CAP_SUBNETS, count(self.tables.subnets.len())),
            (pf::CAP_ROUTE_TABLES, count(self.tables.route_tables.len())),
            (pf::CAP_ROUTES, count(self.tables.routes.routes_per_table())),
            (pf::CAP_MAPPINGS, count(self.tables.mappings.capacity())),
            (pf::CAP_UNDERLAYS, count(self.tables.mappings.underlays().1)),
            (pf::CAP_ADMINQ_ENTRIES, admin::MAX_ENTRIES),
            (
                pf::CAP_GATEWAYS,
                count(
                    self.tables
                        .gateways
                        .len()
                        .min(usize::from(admin::MAX_GATEWAYS)),
                ),
            ),
            (pf::ADMINQ_BASE_LO, 0),
            (pf::ADMINQ_BASE_HI, 0),
            (pf::ADMINQ_SIZE, 0),
            (pf::ADMINQ_HEAD, 0),
            (pf::ADMINQ_TAIL, 0),
            (pf::INTR_CAUSE, 0),
            (pf::CONTROL, 0),
        ];
        for (reg, value) in pf_regs {
            p.write_reg(Function::Pf, reg, value);
        }
        p.write_reg(Function::Pf, pf::STATUS, pf::Status::READY.bits());
        p.raise_irq(Function::Pf, pf::Intr::READY.bits());
        self.initialized = true;
        self.last_heartbeat_us = p.now_us();
        info!(
            "reset: ready, ABI {:#x}, {} VFs, room for {} VPCs and {} mappings",
            shared_regs::ABI_VERSION,
            self.tables.num_vfs(),
            self.tables.vpcs.len(),
            self.tables.mappings.capacity()
        );
    }

    /// Takes one batch from VF `index`'s TX ring, runs the pipeline over it and acts on
    /// each verdict. Unassigned VFs are not served: their link is down.
    fn serve_vf<P: Platform>(&mut self, p: &mut P, index: u16) -> bool {
        let Some(rings) = self.rings.get_mut(usize::from(index)) else {
            return false;
        };
        if !rings.enabled() || self.tables.vf(index).is_none() {
            return false;
        }
        let Some(counters) = self.counters.get_mut(usize::from(index)) else {
            return false;
        };
        let mut batch = rings.take_tx(p, index, self.batch, counters);
        if batch.taken() == 0 && batch.loaded == 0 {
            return false;
        }
        let frames = self.batch.get_mut(..batch.loaded).unwrap_or(&mut []);
        let verdicts = self.verdicts.get_mut(..batch.loaded).unwrap_or(&mut []);
        process_batch_cached(
            &self.tables,
            &mut self.flows,
            Port::Vf(index),
            frames,
            verdicts,
        );
        let mut out = Output {
            p: &mut *p,
            rings: self.rings,
            counters: self.counters,
            uplink: self.tables.uplink,
        };
        let mut whole_sent = None;
        for (i, (frame, verdict)) in frames.iter_mut().zip(verdicts.iter()).enumerate() {
            if batch.whole == Some(i) {
                if let Verdict::ToVf { vf } = *verdict {
                    if let Some(status) = out.deliver_whole(index, vf, frame) {
                        whole_sent = Some(status);
                        continue;
                    }
                }
            }
            out.act(Port::Vf(index), *verdict, frame);
        }
        if let Some(rings) = self.rings.get_mut(usize::from(index)) {
            if let Some(status) = whole_sent {
                rings.whole_sent(&mut batch, status);
            }
            rings.complete_tx(p, index, &batch);
        }
        true
    }

    /// Takes the frames waiting on the uplink, up to one batch.
    fn serve_uplink<P: Platform>(&mut self, p: &mut P) -> bool {
        let uplink = usize::from(self.tables.num_vfs());
        let mut n: usize = 0;
        for frame in self.batch.iter_mut().take(MAX_BATCH) {
            let Some(buf) = frame.reset(crate::frame::MAX_FRAME) else {
                break;
            };
            let Some(len) = p.uplink_recv(buf) else {
                break;
            };
            frame.truncate(len);
            if let Some(c) = self.counters.get_mut(uplink) {
                c.bump(Counter::RxPackets);
                c.add(Counter::RxBytes, len as u64);
            }
            n = n.saturating_add(1);
        }
        if n == 0 {
            return false;
        }
        let frames = self.batch.get_mut(..n).unwrap_or(&mut []);
        let verdicts = self.verdicts.get_mut(..n).unwrap_or(&mut []);
        process_batch(&self.tables, Port::Uplink, frames, verdicts);
        let mut out = Output {
            p,
            rings: self.rings,
            counters: self.counters,
            uplink: self.tables.uplink,
        };
        let mut i = 0;
        while let (Some(frame), Some(&verdict)) = (frames.get(i), verdicts.get(i)) {
            let coalesced = match verdict {
                Verdict::ToVf { vf } => {
                    let rest = frames.get(i..).unwrap_or(&[]);
                    let bound = verdicts.get(i..).unwrap_or(&[]);
                    out.deliver_coalesced(vf, rest, bound)
                }
                _ => 0,
            };
            if coalesced == 0 {
                out.act(Port::Uplink, verdict, frame);
            }
            i = i.saturating_add(coalesced.max(1));
        }
        true
    }
}

/// The counter block of a port: VFs first, the uplink last.
fn block(counters: &mut [CounterBlock], port: Port) -> Option<&mut CounterBlock> {
    let index = match port {
        Port::Vf(vf) => usize::from(vf),
        Port::Uplink => counters.len().checked_sub(1)?,
    };
    counters.get_mut(index)
}

/// Where verdicts are carried out: the rings, the counters and the uplink.
struct Output<'a, P> {
    p: &'a mut P,
    rings: &'a mut [VfRings],
    counters: &'a mut [CounterBlock],
    uplink: Option<Uplink>,
}

impl<P: Platform> Output<'_, P> {
    /// Carries out the verdict on a frame that arrived on `src`.
    fn act(&mut self, src: Port, verdict: Verdict, buf: &FrameBuf) {
        let frame = buf.data();
        match verdict {
            Verdict::Drop { port, reason } => self.count(port, reason, 1),
            Verdict::ToUplink => self.send_uplink(frame),
            Verdict::Fragment { encap, mtu } => {
                let Some(uplink) = self.uplink else {
                    return self.count(src, Counter::DropNoRoute, 1);
                };
                let done = crate::pipeline::mtu::fragment(frame, &uplink, &encap, mtu, |f| {
                    self.send_uplink(f)
                });
                if done.is_none() {
                    self.count(src, Counter::DropMalformed, 1);
                }
            }
            Verdict::ToVf { vf } => {
                let flags = if buf.checksummed() {
                    RxFlags::CSUM_VALID
                } else {
                    RxFlags::empty()
                };
                self.deliver(vf, frame, flags)
            }
            Verdict::Reply { vf } => {
                self.count(Port::Vf(vf), Counter::Replies, 1);
                self.deliver(vf, frame, RxFlags::empty());
            }
        }
    }

    fn count(&mut self, port: Port, c: Counter, n: u64) {
        if let Some(block) = block(self.counters, port) {
            block.add(c, n);
        }
    }

    fn send_uplink(&mut self, frame: &[u8]) {
        if self.p.uplink_send(frame) {
            self.count(Port::Uplink, Counter::TxPackets, 1);
            self.count(Port::Uplink, Counter::TxBytes, frame.len() as u64);
        } else {
            self.count(Port::Uplink, Counter::DropRxNoBuffer, 1);
        }
    }

    /// Delivers the super-frame VF `src` is sending, whose first segment `first` is
    /// bound for VF `vf`, whole, if `vf` takes it: the status of the sender's descriptor.
    /// `None` when the caller is to go on cutting it.
    fn deliver_whole(&mut self, src: u16, vf: u16, first: &mut FrameBuf) -> Option<TxStatus> {
        let sf = self.rings.get(usize::from(src)).and_then(|r| r.cutting())?;
        let delivered = match self.rings.get_mut(usize::from(vf)) {
            Some(r) => r.deliver_whole(self.p, vf, src, &sf, first),
            None => Ok(false),
        };
        match delivered {
            Ok(false) => None,
            Ok(true) => {
                self.count(Port::Vf(vf), Counter::RxPackets, 1);
                self.count(Port::Vf(vf), Counter::RxBytes, u64::from(sf.len));
                Some(TxStatus::Ok)
            }
            Err(WholeFault::Receiver(reason)) => {
                self.count(Port::Vf(vf), reason, 1);
                Some(TxStatus::Ok)
            }
            Err(WholeFault::Sender(reason)) => {
                self.count(Port::Vf(src), reason, 1);
                Some(if reason == Counter::DropDmaError {
                    TxStatus::DmaError
                } else {
                    TxStatus::BadDescriptor
                })
            }
        }
    }

    /// Delivers the frames at the start of `frames` that coalesce into one super-frame for
    /// VF `vf` ([`VfRings::deliver_coalesced`]): how many it took, 0 when none.
    fn deliver_coalesced(&mut self, vf: u16, frames: &[FrameBuf], verdicts: &[Verdict]) -> usize {
        let Some(rings) = self.rings.get_mut(usize::from(vf)) else {
            return 0;
        };
        let bound = frames
            .iter()
            .zip(verdicts)
            .map(|(frame, verdict)| (*verdict == Verdict::ToVf { vf }).then_some(frame.data()));
        match rings.deliver_coalesced(self.p, vf, bound) {
            Ok((0, _)) => 0,
            Ok((n, len)) => {
                self.count(Port::Vf(vf), Counter::RxPackets, 1);
                self.count(Port::Vf(vf), Counter::RxBytes, len as u64);
                n
            }
            Err((n, reason)) => {
                self.count(Port::Vf(vf), reason, n as u64);
                n
            }
        }
    }

    fn deliver(&mut self, vf: u16, frame: &[u8], flags: RxFlags) {
        let delivered = match self.rings.get_mut(usize::from(vf)) {
            Some(r) => r.deliver(self.p, vf, frame, flags),
            None => Err(Counter::DropRxNoBuffer),
        };
        match delivered {
            Ok(()) => {
                self.count(Port::Vf(vf), Counter::RxPackets, 1);
                self.count(Port::Vf(vf), Counter::RxBytes, frame.len() as u64);
            }
            Err(reason) => self.count(Port::Vf(vf), reason, 1),
        }
    }
}
