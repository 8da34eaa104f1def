//! VF TX and RX rings: the device side of the protocol in `shared_regs::desc`.
use crate::coalesce::Run;
use crate::frame::{FrameBuf, MAX_FRAME};
use crate::offload::{self, SuperFrame, MAX_HEADER};
use crate::platform::{Function, Platform};
use shared_regs::desc::{RxDesc, RxFlags, TxDesc, TxFlags, TxStatus, DESC_SIZE};
use shared_regs::stats::Counter;
use shared_regs::vf;
use zerocopy::FromBytes;

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
    /// The super-frame of the descriptor at the TX head while it is being cut into
    /// segments; the descriptor completes with its last segment.
    cutting: Option<SuperFrame>,
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
    /// The frame holding the first segment of a super-frame just taken (always the last
    /// frame): if its verdict is a VF that takes super-frames it goes whole
    /// ([`VfRings::deliver_whole`]), else the rest is cut in the next batches.
    pub whole: Option<usize>,
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
        cutting: None,
    };

    /// True when the rings are being served.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Follows the VF's `CONTROL.ENABLE`: reads and checks the ring registers when it goes
    /// up, forgets the rings when it goes down, and says which in `STATUS.RINGS_UP` (the
    /// driver's side of the handshake: `shared_regs::vf`). Returns whether the rings are
    /// served.
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
            // Last: a driver waiting to restart the rings may go on once it reads this.
            p.write_reg(f, vf::STATUS, 0);
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
            p.write_reg(f, vf::STATUS, 0);
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
            cutting: None,
        };
        p.write_reg(f, vf::TX_HEAD, 0);
        p.write_reg(f, vf::RX_HEAD, 0);
        p.write_reg(f, vf::STATUS, vf::Status::RINGS_UP.bits());
        debug!(
            "VF {} rings up: {} TX and {} RX descriptors",
            vf_index, tx_size, rx_size
        );
        true
    }

    /// Takes up to `frames.len()` (at most [`MAX_BATCH`]) posted TX descriptors and loads
    /// their frames into `frames`. Descriptors whose frame cannot be taken are counted here and completed with
    /// an error status later by [`VfRings::complete_tx`].
    ///
    /// A TSO super-frame fills as many frames as it has segments, over as many batches as
    /// it takes; its descriptor is taken with its last segment. A fresh one ends the batch
    /// after its first segment, so that its verdict decides whether it goes whole.
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
            whole: None,
        };
        if !self.enabled {
            return batch;
        }
        // The caller acts on at most MAX_BATCH verdicts; a longer batch would load frames
        // (a super-frame's segments) that nothing carries out.
        let cap = frames.len().min(MAX_BATCH);
        let frames = frames.get_mut(..cap).unwrap_or(&mut []);
        let f = Function::Vf(vf_index);
        let mask = self.tx_size.wrapping_sub(1);
        let tail = p.read_reg(f, vf::TX_TAIL) & mask;
        let pending = tail.wrapping_sub(self.tx_head) & mask;
        let want = usize::try_from(pending)
            .unwrap_or(usize::MAX)
            .min(MAX_BATCH);
        while batch.taken < want {
            if let Some(mut sf) = self.cutting.take() {
                while !sf.done() {
                    let Some(frame) = frames.get_mut(batch.loaded) else {
                        break;
                    };
                    if let Err((status, drop)) = cut_segment(p, f, &mut sf, frame) {
                        // What is left of the super-frame is lost with this segment.
                        if let Some(s) = batch.statuses.get_mut(batch.taken) {
                            *s = status;
                        }
                        counters.bump(drop);
                        break;
                    }
                    batch.loaded = batch.loaded.saturating_add(1);
                }
                if !sf.done() && frames.get(batch.loaded).is_none() {
                    self.cutting = Some(sf);
                    return batch;
                }
                batch.taken = batch.taken.saturating_add(1);
                continue;
            }
            let index = self
                .tx_head
                .wrapping_add(u32::try_from(batch.taken).unwrap_or(0))
                & mask;
            let Some(frame) = frames.get_mut(batch.loaded) else {
                break;
            };
            counters.bump(Counter::TxPackets);
            match load_tx(p, f, desc_addr(self.tx_base, index), frame) {
                Ok(Loaded::Frame) => {
                    counters.add(Counter::TxBytes, frame.len() as u64);
                    batch.loaded = batch.loaded.saturating_add(1);
                    batch.taken = batch.taken.saturating_add(1);
                }
                Ok(Loaded::Super(sf)) => {
                    counters.add(Counter::TxBytes, u64::from(sf.len));
                    batch.whole = Some(batch.loaded);
                    batch.loaded = batch.loaded.saturating_add(1);
                    self.cutting = Some(sf);
                    return batch;
                }
                Err((tx_status, drop)) => {
                    if let Some(s) = batch.statuses.get_mut(batch.taken) {
                        *s = tx_status;
                    }
                    counters.bump(drop);
                    batch.taken = batch.taken.saturating_add(1);
                }
            }
        }
        batch
    }

    /// The super-frame whose first segment is `batch.whole` went whole (or was lost trying):
    /// nothing more is cut and its descriptor is taken, with `status`.
    pub(crate) fn whole_sent(&mut self, batch: &mut TxBatch, status: TxStatus) {
        if self.cutting.take().is_some() {
            if let Some(s) = batch.statuses.get_mut(batch.taken) {
                *s = status;
            }
            batch.taken = batch.taken.saturating_add(1).min(MAX_BATCH);
        }
    }

    /// The super-frame being cut, if any.
    pub(crate) fn cutting(&self) -> Option<SuperFrame> {
        self.cutting
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

    /// Writes `frame` into the next posted RX buffer, with `flags` besides `DONE`. `Err`
    /// names the drop counter.
    pub(crate) fn deliver<P: Platform>(
        &mut self,
        p: &mut P,
        vf_index: u16,
        frame: &[u8],
        flags: RxFlags,
    ) -> Result<(), Counter> {
        let f = Function::Vf(vf_index);
        let (addr, desc) = self.next_rx(p, f)?;
        let len = u16::try_from(frame.len()).map_err(|_| Counter::DropRxNoBuffer)?;
        if desc.buf_len.get() < len {
            return Err(Counter::DropRxNoBuffer);
        }
        p.dma_write(f, desc.addr.get(), frame)
            .map_err(|_| Counter::DropDmaError)?;
        self.complete_rx(p, f, addr, len, flags | RxFlags::DONE, 0)
    }

    /// The next posted RX descriptor and its IOVA.
    fn next_rx<P: Platform>(&self, p: &mut P, f: Function) -> Result<(u64, RxDesc), Counter> {
        if !self.enabled {
            return Err(Counter::DropRxNoBuffer);
        }
        let mask = self.rx_size.wrapping_sub(1);
        let tail = p.read_reg(f, vf::RX_TAIL) & mask;
        if tail == self.rx_head {
            return Err(Counter::DropRxNoBuffer);
        }
        let addr = desc_addr(self.rx_base, self.rx_head);
        let mut raw = [0u8; DESC_SIZE];
        p.dma_read(f, addr, &mut raw)
            .map_err(|_| Counter::DropDmaError)?;
        let desc = RxDesc::read_from_bytes(&raw).map_err(|_| Counter::DropDmaError)?;
        Ok((addr, desc))
    }

    /// Writes back the RX descriptor at `addr` and hands it to the driver.
    fn complete_rx<P: Platform>(
        &mut self,
        p: &mut P,
        f: Function,
        addr: u64,
        len: u16,
        flags: RxFlags,
        mss: u16,
    ) -> Result<(), Counter> {
        // Length (and mss) before flags: the driver trusts them once it sees DONE.
        p.dma_write(f, addr.wrapping_add(10), &len.to_le_bytes())
            .map_err(|_| Counter::DropDmaError)?;
        if mss != 0 {
            p.dma_write(f, addr.wrapping_add(14), &mss.to_le_bytes())
                .map_err(|_| Counter::DropDmaError)?;
        }
        p.dma_write(f, addr.wrapping_add(12), &flags.bits().to_le_bytes())
            .map_err(|_| Counter::DropDmaError)?;
        let mask = self.rx_size.wrapping_sub(1);
        self.rx_head = self.rx_head.wrapping_add(1) & mask;
        p.write_reg(f, vf::RX_HEAD, self.rx_head);
        p.raise_irq(f, vf::Intr::RX.bits());
        Ok(())
    }

    /// Delivers super-frame `sf` of VF `src` whole into this VF's next RX buffer, as
    /// [`RxFlags::GSO_TCP4`]: the payload moves from the sender's buffer by DMA through
    /// `bounce`, whose frame (the first segment, as the pipeline rewrote it) gives the
    /// Ethernet header. `Ok(false)` when this VF does not take it (no `RX_GSO`, no buffer
    /// or one too small): the caller cuts it instead. `Err`: lost half way, and why.
    pub(crate) fn deliver_whole<P: Platform>(
        &mut self,
        p: &mut P,
        vf_index: u16,
        src: u16,
        sf: &SuperFrame,
        bounce: &mut FrameBuf,
    ) -> Result<bool, WholeFault> {
        let f = Function::Vf(vf_index);
        let control = vf::Control::from_bits_retain(p.read_reg(f, vf::CONTROL));
        if !control.contains(vf::Control::RX_GSO) {
            return Ok(false);
        }
        let Ok((addr, desc)) = self.next_rx(p, f) else {
            return Ok(false);
        };
        if desc.buf_len.get() < sf.len {
            return Ok(false);
        }
        let from = Function::Vf(src);
        let mut header = [0u8; MAX_HEADER];
        let h = usize::from(sf.header_len);
        let sender = WholeFault::Sender;
        let receiver = WholeFault::Receiver;
        // The headers are the first segment's, as the pipeline judged and rewrote them: read
        // again from the VF's memory they could say anything by now (a tenant's other vCPU).
        let hdr = header.get_mut(..h).ok_or(sender(Counter::DropMalformed))?;
        hdr.copy_from_slice(
            bounce
                .data()
                .get(..h)
                .ok_or(sender(Counter::DropMalformed))?,
        );
        let mut acc = 0;
        let mut off = h;
        let len = usize::from(sf.len);
        while off < len {
            // Even chunks: an odd one may only be the last piece of a checksum.
            let n = len.saturating_sub(off).min(MAX_FRAME & !1);
            let chunk = bounce.reset(n).ok_or(sender(Counter::DropMalformed))?;
            let at = off as u64;
            p.dma_read(from, sf.addr.wrapping_add(at), chunk)
                .map_err(|_| sender(Counter::DropDmaError))?;
            acc = offload::sum(chunk, acc);
            p.dma_write(f, desc.addr.get().wrapping_add(at), chunk)
                .map_err(|_| receiver(Counter::DropDmaError))?;
            off = off.saturating_add(n);
        }
        sf.finish_whole(hdr, acc)
            .ok_or(sender(Counter::DropMalformed))?;
        p.dma_write(f, desc.addr.get(), hdr)
            .map_err(|_| receiver(Counter::DropDmaError))?;
        let flags = RxFlags::DONE | RxFlags::CSUM_VALID | RxFlags::GSO_TCP4;
        self.complete_rx(p, f, addr, sf.len, flags, sf.mss)
            .map_err(receiver)?;
        Ok(true)
    }
}

impl VfRings {
    /// Delivers the segments at the start of `frames` (`None` where a frame is bound
    /// elsewhere) as one super-frame ([`crate::coalesce`]) when this VF takes super-frames and at
    /// least two coalesce into its next RX buffer: how many frames it took and the
    /// super-frame's length, `Ok((0, 0))` when none (the caller delivers the first alone).
    /// `Err`: that many frames lost, and why.
    pub(crate) fn deliver_coalesced<'a, P: Platform>(
        &mut self,
        p: &mut P,
        vf_index: u16,
        frames: impl Iterator<Item = Option<&'a [u8]>> + Clone,
    ) -> Result<(usize, usize), (usize, Counter)> {
        let f = Function::Vf(vf_index);
        let control = vf::Control::from_bits_retain(p.read_reg(f, vf::CONTROL));
        if !self.enabled || !control.contains(vf::Control::RX_GSO) {
            return Ok((0, 0));
        }
        let max = usize::from(u16::MAX);
        let Some(run) = Run::find(frames.clone(), max) else {
            return Ok((0, 0));
        };
        let Ok((addr, desc)) = self.next_rx(p, f) else {
            return Ok((0, 0));
        };
        let room = usize::from(desc.buf_len.get());
        let run = if run.len <= room {
            run
        } else {
            match Run::find(frames.clone(), room) {
                Some(run) => run,
                None => return Ok((0, 0)),
            }
        };
        let lost = |c| (run.count, c);
        let mut at = desc.addr.get();
        let mut header = [0u8; MAX_HEADER];
        let header = header
            .get_mut(..run.header_len)
            .ok_or(lost(Counter::DropMalformed))?;
        for (i, frame) in frames.take(run.count).enumerate() {
            let frame = frame.ok_or(lost(Counter::DropMalformed))?;
            let piece = if i == 0 {
                header.copy_from_slice(
                    frame
                        .get(..run.header_len)
                        .ok_or(lost(Counter::DropMalformed))?,
                );
                frame
            } else {
                run.payload(frame).ok_or(lost(Counter::DropMalformed))?
            };
            p.dma_write(f, at, piece)
                .map_err(|_| lost(Counter::DropDmaError))?;
            at = at.wrapping_add(piece.len() as u64);
        }
        run.finish(header).ok_or(lost(Counter::DropMalformed))?;
        p.dma_write(f, desc.addr.get(), header)
            .map_err(|_| lost(Counter::DropDmaError))?;
        let len = u16::try_from(run.len).map_err(|_| lost(Counter::DropMalformed))?;
        let flags = RxFlags::DONE | RxFlags::CSUM_VALID | RxFlags::GSO_TCP4;
        self.complete_rx(p, f, addr, len, flags, run.mss)
            .map_err(lost)?;
        Ok((run.count, run.len))
    }
}

/// Why a super-frame going whole was lost half way, and whose fault it was: the sender's
/// (its buffer could not be read: its descriptor completes with an error and its counter
/// moves) or the receiver's (its buffer could not be written: the sender's frame was sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WholeFault {
    Sender(Counter),
    Receiver(Counter),
}

/// What one TX descriptor held.
enum Loaded {
    /// A frame, in the frame buffer.
    Frame,
    /// A super-frame, whose first segment is in the frame buffer.
    Super(SuperFrame),
}

/// Reads one TX descriptor and its frame, or the first segment of its super-frame. `Err`
/// holds the status to write back and the drop counter that moves.
fn load_tx<P: Platform>(
    p: &mut P,
    f: Function,
    addr: u64,
    frame: &mut FrameBuf,
) -> Result<Loaded, (TxStatus, Counter)> {
    let dma = (TxStatus::DmaError, Counter::DropDmaError);
    let bad = (TxStatus::BadDescriptor, Counter::DropMalformed);
    let oversize = (TxStatus::BadDescriptor, Counter::DropOversize);
    let mut raw = [0u8; DESC_SIZE];
    p.dma_read(f, addr, &mut raw).map_err(|_| dma)?;
    let desc = TxDesc::read_from_bytes(&raw).map_err(|_| bad)?;
    let len = usize::from(desc.len.get());
    let flags = TxFlags::from_bits_retain(desc.flags.get());
    if !flags.contains(TxFlags::EOP) || len == 0 {
        return Err(bad);
    }
    if flags.contains(TxFlags::TSO) {
        let mut head = [0u8; MAX_HEADER];
        let head = head.get_mut(..len.min(MAX_HEADER)).ok_or(bad)?;
        p.dma_read(f, desc.addr.get(), head).map_err(|_| dma)?;
        let mut sf =
            SuperFrame::parse(desc.addr.get(), desc.len.get(), desc.mss.get(), head).ok_or(bad)?;
        // F13 holds for every segment: one longer than a VF frame is never cut.
        let segment = usize::from(sf.header_len).saturating_add(usize::from(sf.next_len()));
        if segment > shared_regs::VF_MAX_FRAME {
            return Err(oversize);
        }
        cut_segment(p, f, &mut sf, frame)?;
        // One segment long, the super-frame is that segment: its payload is the buffer's
        // after the headers and its headers a segment's (IPv4 length and checksum too),
        // whatever the IPv4 length it came with, as when it is longer.
        return Ok(if sf.single() {
            Loaded::Frame
        } else {
            Loaded::Super(sf)
        });
    }
    // F13: longer than a VF frame (MTU 9001) is an oversize drop, not a malformed one.
    if len > shared_regs::VF_MAX_FRAME {
        return Err(oversize);
    }
    let buf = frame.reset(len).ok_or(bad)?;
    p.dma_read(f, desc.addr.get(), buf).map_err(|_| dma)?;
    if flags.intersects(TxFlags::CSUM | TxFlags::TSO) {
        let done = offload::complete_checksum(buf);
        frame.set_checksummed(done);
    }
    Ok(Loaded::Frame)
}

/// Cuts the next segment of `sf` into `frame`: the super-frame's headers, then its next
/// payload bytes, read by DMA, then the segment's own headers.
fn cut_segment<P: Platform>(
    p: &mut P,
    f: Function,
    sf: &mut SuperFrame,
    frame: &mut FrameBuf,
) -> Result<(), (TxStatus, Counter)> {
    let dma = (TxStatus::DmaError, Counter::DropDmaError);
    let bad = (TxStatus::BadDescriptor, Counter::DropMalformed);
    let h = usize::from(sf.header_len);
    let n = usize::from(sf.next_len());
    let buf = frame.reset(h.saturating_add(n)).ok_or(bad)?;
    let (header, payload) = buf.split_at_mut_checked(h).ok_or(bad)?;
    p.dma_read(f, sf.addr, header).map_err(|_| dma)?;
    let at = sf
        .addr
        .wrapping_add(h as u64)
        .wrapping_add(u64::from(sf.cut));
    p.dma_read(f, at, payload).map_err(|_| dma)?;
    sf.finish_segment(buf).ok_or(bad)?;
    frame.set_checksummed(true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::platform::{Function, Platform};
    use crate::testing::{FakeNic, Sizes};
    use shared_regs::{pf, vf};

    const VF: Function = Function::Vf(0);

    fn reg(nic: &mut FakeNic<'_>, offset: u32) -> u32 {
        nic.platform.read_reg(VF, offset)
    }

    #[test]
    fn status_says_when_the_rings_are_served_and_when_they_are_let_go() {
        let up = vf::Status::RINGS_UP.bits();
        let mut nic = FakeNic::new(Sizes::default());
        assert_eq!(reg(&mut nic, vf::STATUS), 0);
        nic.attach_vf(0);
        assert_eq!(reg(&mut nic, vf::STATUS), up);

        // A driver clearing ENABLE sees the rings up until the firmware has let go of them:
        // then the heads are back at 0 and nothing of the old rings is touched again.
        nic.platform.write_reg(VF, vf::CONTROL, 0);
        assert_eq!(reg(&mut nic, vf::STATUS), up);
        nic.poll();
        assert_eq!(reg(&mut nic, vf::STATUS), 0);
        assert_eq!(reg(&mut nic, vf::RX_HEAD), 0);

        // Rings refused (a size that is no power of two): never up.
        nic.platform.write_reg(VF, vf::TX_SIZE, 3);
        nic.platform
            .write_reg(VF, vf::CONTROL, vf::Control::ENABLE.bits());
        nic.poll();
        assert_eq!(reg(&mut nic, vf::STATUS), 0);
        assert_eq!(reg(&mut nic, vf::CONTROL), 0);

        // A PF reset stops every VF's rings, and says so.
        nic.attach_vf(0);
        assert_eq!(reg(&mut nic, vf::STATUS), up);
        nic.platform
            .write_reg(Function::Pf, pf::CONTROL, pf::Control::RESET.bits());
        nic.poll();
        assert_eq!(reg(&mut nic, vf::STATUS), 0);
    }
}
