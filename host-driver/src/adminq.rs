//! The admin queue client: one ring of [`AdminCmd`] entries in host memory.
//!
//! [`AdminQueue::submit`] keeps one command in flight: it writes the entry at its tail with
//! `flags` = 0, rings `ADMINQ_TAIL` with the next index, and waits until the firmware has
//! written `CmdFlags::DONE` into the same entry (the completion is in place). It sleeps on
//! the PF's interrupt eventfd when it has one and polls otherwise; either way it re-reads
//! the entry, so a lost interrupt costs at most one wait slice.
//!
//! [`AdminQueue::submit_batch`] keeps up to `size - 1` commands in flight instead: it fills
//! the free entries, rings the doorbell once per fill, and collects completions in order
//! from their `DONE` flags, refilling the entries it reclaims (see [`crate::batch`]).
//!
//! `ADMINQ_TAIL` is written as an index in `0..size`; `ADMINQ_HEAD` is read modulo `size`.
use crate::device::Device;
use crate::dma::DmaMemory;
use crate::error::{raw_opcode_label, DriverError, Result};
use shared_regs::admin::{AdminCmd, CmdFlags, Status, CMD_SIZE};
use shared_regs::pf;
use shared_regs::Le16;
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;
use zerocopy::FromZeros;

/// How long a command may take before the driver gives up on it.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Byte offset of `flags` inside an entry.
const FLAGS_OFFSET: u64 = 2;
/// How long one wait on the interrupt (or one poll sleep at most) lasts.
const WAIT_SLICE: Duration = Duration::from_millis(10);

/// The driver's side of the admin queue.
#[derive(Debug)]
pub struct AdminQueue {
    mem: DmaMemory,
    size: u32,
    tail: u32,
    cookie: u16,
    irq: Option<EventFd>,
    timeout: Duration,
}

impl AdminQueue {
    /// Bytes of ring memory a queue of `entries` needs.
    pub fn ring_bytes(entries: u32) -> u64 {
        u64::from(entries) * CMD_SIZE as u64
    }

    /// A queue over `mem` (at least [`AdminQueue::ring_bytes`] of `size`), which the device
    /// has been told about: its head and tail are 0. `irq` is the eventfd of
    /// [`pf::IRQ_VECTOR`], if interrupts are set up.
    pub fn new(mem: DmaMemory, size: u32, irq: Option<EventFd>, timeout: Duration) -> Self {
        debug_assert!(size.is_power_of_two());
        debug_assert!(mem.size() >= Self::ring_bytes(size));
        AdminQueue {
            mem,
            size,
            tail: 0,
            cookie: 0,
            irq,
            timeout,
        }
    }

    /// Starts the queue again over its memory after a device reset: the ring is cleared,
    /// the firmware told where it is, and the interrupt unmasked again.
    pub fn restart(&mut self, dev: &dyn Device) -> Result<()> {
        self.mem.zero(0, Self::ring_bytes(self.size) as usize)?;
        self.tail = 0;
        dev.write32(
            pf::INTR_MASK,
            if self.irq.is_some() {
                !pf::Intr::ADMINQ.bits()
            } else {
                u32::MAX
            },
        )?;
        let base = self.mem.iova();
        dev.write32(pf::ADMINQ_BASE_LO, base as u32)?;
        dev.write32(pf::ADMINQ_BASE_HI, (base >> 32) as u32)?;
        dev.write32(pf::ADMINQ_SIZE, self.size)?;
        dev.write32(pf::CONTROL, pf::Control::ADMINQ_ENABLE.bits())?;
        Ok(())
    }

    /// The ring memory.
    pub fn memory(&self) -> &DmaMemory {
        &self.mem
    }

    /// Entries in the ring.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The index the next command goes to.
    pub fn tail(&self) -> u32 {
        self.tail
    }

    /// Sets how long a command may take.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Posts `cmd`, waits for its completion and returns the completed entry, whatever its
    /// status. `what` names the thing the command is about, for error messages.
    pub fn submit(&mut self, dev: &dyn Device, mut cmd: AdminCmd, what: &str) -> Result<AdminCmd> {
        let head = dev.read32(pf::ADMINQ_HEAD)? % self.size;
        let next = (self.tail + 1) % self.size;
        if next == head {
            return Err(DriverError::AdminQueueFull {
                device: dev.describe(),
                size: self.size,
                head,
                tail: self.tail,
            });
        }
        let entry = self.tail;
        let offset = u64::from(entry) * CMD_SIZE as u64;
        self.cookie = self.cookie.wrapping_add(1);
        // The caller's flags (`REPLACE`) go as they are; DONE is the device's to set.
        cmd.flags = Le16::new(cmd.flags.get() & !CmdFlags::DONE.bits());
        cmd.status = Le16::new(0);
        cmd.result = 0.into();
        cmd.cookie = Le16::new(self.cookie);
        self.mem.write_obj(offset, &cmd)?;
        // The entry must be in memory before the device sees the doorbell.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.drain_irq();
        dev.write32(pf::ADMINQ_TAIL, next)?;
        self.tail = next;

        let done = self.wait_done(dev, offset, entry, cmd.opcode.get(), what)?;
        // Acknowledge the interrupt cause; the device raises it again for the next command.
        dev.write32(pf::INTR_CAUSE, pf::Intr::ADMINQ.bits())?;
        if done.cookie.get() != self.cookie {
            return Err(DriverError::BadCompletion {
                command: raw_opcode_label(cmd.opcode.get(), what),
                what: format!(
                    "entry {entry} completed with cookie {} but was posted with cookie {}",
                    done.cookie.get(),
                    self.cookie
                ),
            });
        }
        Ok(done)
    }

    /// Posts `cmds` in order, as many per doorbell as the ring has free entries, and
    /// collects their completions in order as their `DONE` flags appear, reclaiming each
    /// entry and refilling the ring as it goes. `progress` is called with the number of
    /// commands completed OK so far after each collecting round.
    ///
    /// With `chain`, every command but the first carries [`CmdFlags::CHAIN`] (the device
    /// must have `Caps::ADMIN_CHAIN`): once one completes with a status other than OK, the
    /// firmware skips those posted after it and the driver posts no more. Without it, at
    /// most one command is in flight and the batch also stops at the first refusal. Either
    /// way the commands before a refused one are applied and none after it.
    ///
    /// The outcome holds the completed entries of every command up to and including the
    /// first that did not complete OK (skipped ones left out), and the device error
    /// (timeout, fatal status, register access) that ended the batch early, if any. A batch
    /// never returns with commands of its own still in the ring, except after such an error.
    pub fn submit_batch(
        &mut self,
        dev: &dyn Device,
        cmds: &[AdminCmd],
        chain: bool,
        progress: &mut dyn FnMut(usize),
    ) -> BatchOutcome {
        let mut completed = Vec::with_capacity(cmds.len());
        let error = self
            .run_batch(dev, cmds, chain, progress, &mut completed)
            .err();
        BatchOutcome { completed, error }
    }

    fn run_batch(
        &mut self,
        dev: &dyn Device,
        cmds: &[AdminCmd],
        chain: bool,
        progress: &mut dyn FnMut(usize),
        completed: &mut Vec<AdminCmd>,
    ) -> Result<()> {
        let mask = self.size - 1;
        // One entry stays empty so that a full ring is not mistaken for an empty one.
        let window = if chain { (self.size - 1) as usize } else { 1 };
        // The ring must be empty. The firmware moves ADMINQ_HEAD just after it writes an
        // entry's DONE, so the head may trail the last completion seen by a moment.
        let deadline = Instant::now() + self.timeout;
        let mut head = dev.read32(pf::ADMINQ_HEAD)? % self.size;
        while head != self.tail && Instant::now() < deadline {
            std::thread::yield_now();
            head = dev.read32(pf::ADMINQ_HEAD)? % self.size;
        }
        if head != self.tail {
            return Err(DriverError::AdminQueueFull {
                device: dev.describe(),
                size: self.size,
                head,
                tail: self.tail,
            });
        }
        let start_tail = self.tail;
        let start_cookie = self.cookie;
        let entry_of = |i: usize| (start_tail.wrapping_add(i as u32)) & mask;
        let cookie_of = |i: usize| start_cookie.wrapping_add(i as u16).wrapping_add(1);
        let (mut posted, mut reaped) = (0usize, 0usize);
        let mut stopped = false;
        self.drain_irq();
        while reaped < cmds.len() {
            let room = window - (posted - reaped);
            if !stopped && room > 0 && posted < cmds.len() {
                let end = (posted + room).min(cmds.len());
                for (i, cmd) in cmds.iter().enumerate().take(end).skip(posted) {
                    let mut cmd = *cmd;
                    // The caller's flags (REPLACE) go as they are; CHAIN is the batch's and
                    // DONE the device's to set.
                    let mut flags = CmdFlags::from_bits_retain(cmd.flags.get())
                        .difference(CmdFlags::DONE | CmdFlags::CHAIN);
                    if chain && i > 0 {
                        flags |= CmdFlags::CHAIN;
                    }
                    cmd.flags = Le16::new(flags.bits());
                    cmd.status = Le16::new(0);
                    cmd.result = 0.into();
                    cmd.cookie = Le16::new(cookie_of(i));
                    self.mem
                        .write_obj(u64::from(entry_of(i)) * CMD_SIZE as u64, &cmd)?;
                }
                // The entries must be in memory before the device sees the doorbell.
                std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
                self.tail = entry_of(end);
                self.cookie = cookie_of(end - 1);
                dev.write32(pf::ADMINQ_TAIL, self.tail)?;
                posted = end;
            }
            if reaped == posted {
                break;
            }
            // Wait for the oldest command in flight, then take every completion behind it.
            let entry = entry_of(reaped);
            let offset = u64::from(entry) * CMD_SIZE as u64;
            self.wait_done(dev, offset, entry, cmds[reaped].opcode.get(), "")?;
            while reaped < posted {
                let offset = u64::from(entry_of(reaped)) * CMD_SIZE as u64;
                if !self.is_done(offset)? {
                    break;
                }
                let done: AdminCmd = self.mem.read_obj(offset)?;
                if done.cookie.get() != cookie_of(reaped) {
                    return Err(DriverError::BadCompletion {
                        command: raw_opcode_label(cmds[reaped].opcode.get(), ""),
                        what: format!(
                            "entry {} completed with cookie {} but was posted with cookie {}",
                            entry_of(reaped),
                            done.cookie.get(),
                            cookie_of(reaped)
                        ),
                    });
                }
                reaped += 1;
                match Status::from_u16(done.status.get()) {
                    Status::Ok => completed.push(done),
                    Status::Skipped if stopped => {}
                    _ => {
                        if !stopped {
                            completed.push(done);
                        }
                        stopped = true;
                    }
                }
            }
            progress(completed.len() - usize::from(stopped));
        }
        // Acknowledge the interrupt cause once for the whole batch.
        dev.write32(pf::INTR_CAUSE, pf::Intr::ADMINQ.bits())?;
        Ok(())
    }

    fn is_done(&self, offset: u64) -> Result<bool> {
        let flags: u16 = self.mem.load(offset + FLAGS_OFFSET)?;
        Ok(CmdFlags::from_bits_retain(flags).contains(CmdFlags::DONE))
    }

    fn wait_done(
        &self,
        dev: &dyn Device,
        offset: u64,
        entry: u32,
        opcode: u16,
        what: &str,
    ) -> Result<AdminCmd> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut spins = 0u32;
        let mut last_status_check = start;
        loop {
            if self.is_done(offset)? {
                return self.mem.read_obj(offset);
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if now.duration_since(last_status_check) >= WAIT_SLICE {
                last_status_check = now;
                let status = dev.read32(pf::STATUS)?;
                if pf::Status::from_bits_retain(status).contains(pf::Status::FATAL) {
                    return Err(DriverError::Fatal {
                        device: dev.describe(),
                        status,
                    });
                }
            }
            let slice = (deadline - now).min(WAIT_SLICE);
            match &self.irq {
                Some(fd) => wait_eventfd(fd, slice),
                None if spins < 64 => {
                    spins += 1;
                    std::thread::yield_now();
                }
                None => std::thread::sleep(slice.min(Duration::from_micros(200))),
            }
        }
        // One last look: the completion may have landed while we checked the clock.
        if self.is_done(offset)? {
            return self.mem.read_obj(offset);
        }
        Err(self.timeout_error(dev, entry, opcode, what, start.elapsed()))
    }

    fn timeout_error(
        &self,
        dev: &dyn Device,
        entry: u32,
        opcode: u16,
        what: &str,
        waited: Duration,
    ) -> DriverError {
        let read = |off| dev.read32(off).unwrap_or(u32::MAX);
        let head = read(pf::ADMINQ_HEAD);
        let status = read(pf::STATUS);
        let hb1 = read(pf::HEARTBEAT);
        std::thread::sleep(Duration::from_millis(5));
        let hb2 = read(pf::HEARTBEAT);
        let heartbeat = if hb1 == hb2 {
            format!("HEARTBEAT stuck at {hb1}: the firmware is not running")
        } else {
            format!(
                "HEARTBEAT moving ({hb1} -> {hb2}): the firmware runs but did not take the command"
            )
        };
        DriverError::CommandTimeout {
            command: raw_opcode_label(opcode, what),
            waited,
            entry,
            head,
            status,
            heartbeat,
        }
    }

    fn drain_irq(&self) {
        if let Some(fd) = &self.irq {
            // Non-blocking: EAGAIN when nothing is pending.
            let _ = fd.read();
        }
    }
}

/// What [`AdminQueue::submit_batch`] did.
#[derive(Debug)]
pub struct BatchOutcome {
    /// The completed entries in order: every command that completed OK, then the first
    /// that did not, if one did not. Commands after it were skipped or never posted.
    pub completed: Vec<AdminCmd>,
    /// The device error that ended the batch before its end, if any.
    pub error: Option<DriverError>,
}

/// Waits until `fd` is readable or `timeout` passes, then consumes its count.
fn wait_eventfd(fd: &EventFd, timeout: Duration) {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: `pfd` is one valid pollfd that lives across the call; the count passed is 1.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n > 0 {
        let _ = fd.read();
    }
}

/// A zeroed command with this raw opcode number (for tests that send unknown opcodes).
pub fn raw_command(opcode: u16) -> AdminCmd {
    let mut cmd = AdminCmd::new_zeroed();
    cmd.opcode = Le16::new(opcode);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bringup::{reset, start_admin_queue, Options};
    use crate::dma::IovaAllocator;
    use crate::test_utils::{FakeConfig, FakeDevice, Reply};
    use shared_regs::admin::{Opcode, Status};
    use shared_regs::entry::IdParam;

    fn queue(cfg: FakeConfig, entries: u32, use_irq: bool) -> (FakeDevice, AdminQueue) {
        let dev = FakeDevice::new(cfg);
        let opts = Options {
            adminq_entries: entries,
            command_timeout: Duration::from_millis(150),
            use_irq,
            ..Options::default()
        };
        let info = reset(&dev, &opts).unwrap();
        let q =
            start_admin_queue(&dev, &info, &mut IovaAllocator::default(), &opts, false).unwrap();
        (dev, q)
    }

    fn silent() -> FakeConfig {
        FakeConfig {
            answer: false,
            ..Default::default()
        }
    }

    #[test]
    fn tail_wraps_around_the_ring() {
        for use_irq in [true, false] {
            let (dev, mut q) = queue(FakeConfig::default(), 4, use_irq);
            for i in 0..10u16 {
                let cmd = AdminCmd::new(Opcode::VpcDel, &IdParam { id: i.into() });
                let done = q.submit(&dev, cmd, "").unwrap();
                assert_eq!(done.completion(), Some(Ok(())));
                assert_eq!(
                    done.params[0], i as u8,
                    "the entry read back is this command's"
                );
            }
            assert_eq!(dev.tails(), [1, 2, 3, 0, 1, 2, 3, 0, 1, 2]);
            let entries: Vec<u32> = dev.seen().iter().map(|s| s.0).collect();
            assert_eq!(entries, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
            assert_eq!(q.tail(), 2);
            assert_eq!(dev.peek(pf::ADMINQ_HEAD), 2);
            assert_eq!(dev.peek(pf::INTR_CAUSE), 0, "ADMINQ cause acknowledged");
        }
    }

    #[test]
    fn completion_status_and_result_are_returned_raw() {
        let (dev, mut q) = queue(FakeConfig::default(), 8, true);
        dev.set_handler(|cmd| Reply {
            status: if Opcode::from_u16(cmd.opcode.get()).is_some() {
                Status::Ok
            } else {
                Status::BadOpcode
            },
            result: 42,
            buf: None,
            cookie: None,
        });
        let done = q.submit(&dev, raw_command(0xbeef), "").unwrap();
        assert_eq!(done.completion(), Some(Err(Status::BadOpcode)));
        assert_eq!(done.result.get(), 42);
        assert_eq!(done.opcode.get(), 0xbeef);
    }

    #[test]
    fn unanswered_command_times_out_naming_the_opcode() {
        let (dev, mut q) = queue(silent(), 8, true);
        let start = Instant::now();
        let cmd = AdminCmd::new(Opcode::VpcDel, &IdParam { id: 3.into() });
        let err = q.submit(&dev, cmd, "vpc 3").unwrap_err();
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(1));
        let msg = err.to_string();
        assert!(
            msg.starts_with("VPC_DEL (vpc 3): the firmware did not answer within"),
            "{msg}"
        );
        assert!(msg.contains("admin queue entry 0"), "{msg}");
        assert!(msg.contains("HEARTBEAT moving"), "{msg}");
    }

    #[test]
    fn timeout_says_when_the_firmware_is_not_running() {
        let (dev, mut q) = queue(
            FakeConfig {
                heartbeat: false,
                ..silent()
            },
            8,
            false,
        );
        let err = q
            .submit(&dev, raw_command(Opcode::Nop as u16), "")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("NOP: the firmware did not answer"), "{msg}");
        assert!(
            msg.contains("HEARTBEAT stuck at 0: the firmware is not running"),
            "{msg}"
        );
    }

    #[test]
    fn a_full_queue_is_refused_without_overwriting_pending_entries() {
        let (dev, mut q) = queue(silent(), 2, false);
        q.set_timeout(Duration::from_millis(20));
        assert!(matches!(
            q.submit(&dev, raw_command(1), ""),
            Err(DriverError::CommandTimeout { .. })
        ));
        let err = q.submit(&dev, raw_command(1), "").unwrap_err();
        assert!(
            matches!(
                err,
                DriverError::AdminQueueFull {
                    size: 2,
                    head: 0,
                    tail: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            dev.tails(),
            [1],
            "the doorbell was not rung for the refused command"
        );
    }

    #[test]
    fn fatal_status_ends_the_wait_early() {
        let (dev, mut q) = queue(silent(), 8, true);
        q.set_timeout(Duration::from_secs(5));
        dev.poke(pf::STATUS, (pf::Status::READY | pf::Status::FATAL).bits());
        let start = Instant::now();
        let err = q.submit(&dev, raw_command(1), "").unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(matches!(err, DriverError::Fatal { .. }), "{err:?}");
        assert!(err.to_string().contains("STATUS.FATAL"), "{err}");
    }

    #[test]
    fn a_completion_with_another_cookie_is_rejected() {
        let (dev, mut q) = queue(FakeConfig::default(), 4, false);
        dev.set_handler(|_| Reply {
            cookie: Some(0x7777),
            ..Reply::status(Status::Ok)
        });
        let err = q.submit(&dev, raw_command(1), "").unwrap_err();
        assert!(matches!(err, DriverError::BadCompletion { .. }), "{err:?}");
        assert!(err.to_string().contains("cookie 30583"), "{err}");
    }
}
