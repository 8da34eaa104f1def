//! VF TX and RX rings: the device side of the protocol in `shared_regs::desc`.
use crate::frame::FrameBuf;
use crate::platform::{Function, Platform};
use shared_regs::desc::{RxDesc, RxFlags, TxDesc, TxFlags, TxStatus, DESC_SIZE};
use shared_regs::stats::Counter;
use shared_regs::vf;
use zerocopy::{FromBytes, IntoBytes};

/// Most TX descriptors taken in one batch, whatever the batch storage holds.
pub const MAX_BATCH: usize = 64;

/// A VF's ring state as the firmware tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfRings {
    enabled: bool,
    tx_base: u64,
    tx_size: u32,
    tx_head: u32,
    rx_base: u64,
    rx_size: u32,
    rx_head: u32,
}

/// The TX descriptors of one batch, to complete once their frames are handled.
pub(crate) struct TxBatch {
    /// Status of each descriptor taken, in ring order from the head.
    statuses: [TxStatus; MAX_BATCH],
    /// Descriptors taken.
    taken: usize,
    /// For each frame loaded into the batch, in order: nothing else is needed, frames are
    /// `frames[..loaded]`.
    pub loaded: usize,
}

impl TxBatch {
    /// Descriptors taken, loaded or not.
    pub fn taken(&self) -> usize {
        self.taken
    }
}

fn join(lo: u32, hi: u32) -> u64 {
    u64::from(hi) << 32 | u64::from(lo)
}

fn valid_ring(base: u64, size: u32) -> bool {
    size.is_power_of_two() && size <= vf::MAX_RING_SIZE && base.is_multiple_of(DESC_SIZE as u64)
}

/// IOVA of descriptor `index` of a ring at `base`.
fn desc_addr(base: u64, index: u32) -> u64 {
    base.wrapping_add(u64::from(index).wrapping_mul(DESC_SIZE as u64))
}

impl VfRings {
    /// Rings not served.
    pub const EMPTY: VfRings = VfRings {
        enabled: false,
        tx_base: 0,
        tx_size: 0,
        tx_head: 0,
        rx_base: 0,
        rx_size: 0,
        rx_head: 0,
    };

    /// True when the rings are being served.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Follows the VF's `CONTROL.ENABLE`: reads and checks the ring registers when it goes
    /// up, forgets the rings when it goes down. Returns whether the rings are served.
    pub(crate) fn sync<P: Platform>(&mut self, p: &mut P, vf_index: u16) -> bool {
        let f = Function::Vf(vf_index);
        let enable =
            vf::Control::from_bits_retain(p.read_reg(f, vf::CONTROL)).contains(vf::Control::ENABLE);
        if enable == self.enabled {
            return enable;
        }
        if !enable {
            *self = VfRings::EMPTY;
            debug!("VF {} rings down", vf_index);
            p.write_reg(f, vf::TX_HEAD, 0);
            p.write_reg(f, vf::RX_HEAD, 0);
            return false;
        }
        let tx_base = join(p.read_reg(f, vf::TX_BASE_LO), p.read_reg(f, vf::TX_BASE_HI));
        let rx_base = join(p.read_reg(f, vf::RX_BASE_LO), p.read_reg(f, vf::RX_BASE_HI));
        let tx_size = p.read_reg(f, vf::TX_SIZE);
        let rx_size = p.read_reg(f, vf::RX_SIZE);
        if !valid_ring(tx_base, tx_size) || !valid_ring(rx_base, rx_size) {
            // Stay disabled until the driver toggles ENABLE with good registers.
            warn!(
                "VF {} rings refused: TX base {:#x} size {}, RX base {:#x} size {}",
                vf_index, tx_base, tx_size, rx_base, rx_size
            );
            p.write_reg(f, vf::CONTROL, 0);
            p.raise_irq(f, vf::Intr::RING_ERROR.bits());
            return false;
        }
        *self = VfRings {
            enabled: true,
            tx_base,
            tx_size,
            tx_head: 0,
            rx_base,
            rx_size,
            rx_head: 0,
        };
        p.write_reg(f, vf::TX_HEAD, 0);
        p.write_reg(f, vf::RX_HEAD, 0);
        debug!(
            "VF {} rings up: {} TX and {} RX descriptors",
            vf_index, tx_size, rx_size
        );
        true
    }

    /// Takes up to `frames.len()` posted TX descriptors and loads their frames into
    /// `frames`. Descriptors whose frame cannot be taken are counted here and completed with
    /// an error status later by [`VfRings::complete_tx`].
    pub(crate) fn take_tx<P: Platform>(
        &mut self,
        p: &mut P,
        vf_index: u16,
        frames: &mut [FrameBuf],
        counters: &mut crate::counters::CounterBlock,
    ) -> TxBatch {
        let mut batch = TxBatch {
            statuses: [TxStatus::Ok; MAX_BATCH],
            taken: 0,
            loaded: 0,
        };
        if !self.enabled {
            return batch;
        }
        let f = Function::Vf(vf_index);
        let mask = self.tx_size.wrapping_sub(1);
        let tail = p.read_reg(f, vf::TX_TAIL) & mask;
        let pending = tail.wrapping_sub(self.tx_head) & mask;
        let want = usize::try_from(pending)
            .unwrap_or(usize::MAX)
            .min(frames.len())
            .min(MAX_BATCH);
        for status in batch.statuses.iter_mut().take(want) {
            let index = self
                .tx_head
                .wrapping_add(u32::try_from(batch.taken).unwrap_or(0))
                & mask;
            batch.taken = batch.taken.saturating_add(1);
            let Some(frame) = frames.get_mut(batch.loaded) else {
                break;
            };
            match load_tx(p, f, desc_addr(self.tx_base, index), frame) {
                Ok(()) => {
                    counters.bump(Counter::TxPackets);
                    counters.add(Counter::TxBytes, frame.len() as u64);
                    batch.loaded = batch.loaded.saturating_add(1);
                }
                Err((tx_status, drop)) => {
                    *status = tx_status;
                    counters.bump(Counter::TxPackets);
                    counters.bump(drop);
                }
            }
        }
        batch
    }

    /// Writes back the descriptors of `batch`, advances `TX_HEAD` and raises `TX_DONE`.
    pub(crate) fn complete_tx<P: Platform>(&mut self, p: &mut P, vf_index: u16, batch: &TxBatch) {
        if batch.taken == 0 {
            return;
        }
        let f = Function::Vf(vf_index);
        let mask = self.tx_size.wrapping_sub(1);
        for status in batch.statuses.iter().take(batch.taken) {
            let addr = desc_addr(self.tx_base, self.tx_head);
            // Status before flags: the driver trusts `status` once it sees DONE.
            let _ = p.dma_write(f, addr.wrapping_add(12), &(*status as u16).to_le_bytes());
            let flags = TxFlags::EOP | TxFlags::DONE;
            let _ = p.dma_write(f, addr.wrapping_add(10), &flags.bits().to_le_bytes());
            self.tx_head = self.tx_head.wrapping_add(1) & mask;
        }
        p.write_reg(f, vf::TX_HEAD, self.tx_head);
        p.raise_irq(f, vf::Intr::TX_DONE.bits());
    }

    /// Writes `frame` into the next posted RX buffer. `Err` names the drop counter.
    pub(crate) fn deliver<P: Platform>(
        &mut self,
        p: &mut P,
        vf_index: u16,
        frame: &[u8],
    ) -> Result<(), Counter> {
        if !self.enabled {
            return Err(Counter::DropRxNoBuffer);
        }
        let f = Function::Vf(vf_index);
        let mask = self.rx_size.wrapping_sub(1);
        let tail = p.read_reg(f, vf::RX_TAIL) & mask;
        if tail == self.rx_head {
            return Err(Counter::DropRxNoBuffer);
        }
        let addr = desc_addr(self.rx_base, self.rx_head);
        let mut raw = [0u8; DESC_SIZE];
        p.dma_read(f, addr, &mut raw)
            .map_err(|_| Counter::DropDmaError)?;
        let mut desc = RxDesc::read_from_bytes(&raw).map_err(|_| Counter::DropDmaError)?;
        let len = u16::try_from(frame.len()).map_err(|_| Counter::DropRxNoBuffer)?;
        if desc.buf_len.get() < len {
            return Err(Counter::DropRxNoBuffer);
        }
        p.dma_write(f, desc.addr.get(), frame)
            .map_err(|_| Counter::DropDmaError)?;
        desc.len.set(len);
        desc.flags.set(RxFlags::DONE.bits());
        // Length before flags, as for TX.
        p.dma_write(f, addr.wrapping_add(10), desc.len.as_bytes())
            .map_err(|_| Counter::DropDmaError)?;
        p.dma_write(f, addr.wrapping_add(12), desc.flags.as_bytes())
            .map_err(|_| Counter::DropDmaError)?;
        self.rx_head = self.rx_head.wrapping_add(1) & mask;
        p.write_reg(f, vf::RX_HEAD, self.rx_head);
        p.raise_irq(f, vf::Intr::RX.bits());
        Ok(())
    }
}

/// Reads one TX descriptor and its frame. `Err` holds the status to write back and the
/// drop counter that moves.
fn load_tx<P: Platform>(
    p: &mut P,
    f: Function,
    addr: u64,
    frame: &mut FrameBuf,
) -> Result<(), (TxStatus, Counter)> {
    let dma = (TxStatus::DmaError, Counter::DropDmaError);
    let bad = (TxStatus::BadDescriptor, Counter::DropMalformed);
    let mut raw = [0u8; DESC_SIZE];
    p.dma_read(f, addr, &mut raw).map_err(|_| dma)?;
    let desc = TxDesc::read_from_bytes(&raw).map_err(|_| bad)?;
    let len = usize::from(desc.len.get());
    let eop = TxFlags::from_bits_retain(desc.flags.get()).contains(TxFlags::EOP);
    if !eop || len == 0 {
        return Err(bad);
    }
    // F13: longer than a VF frame (MTU 9001) is an oversize drop, not a malformed one.
    if len > shared_regs::VF_MAX_FRAME {
        return Err((TxStatus::BadDescriptor, Counter::DropOversize));
    }
    let buf = frame.reset(len).ok_or(bad)?;
    p.dma_read(f, desc.addr.get(), buf).map_err(|_| dma)?;
    Ok(())
}
