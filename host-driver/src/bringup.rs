//! Device bring-up: reset, wait for the firmware, check identity and ABI, read the
//! capabilities, start the admin queue (shared_regs::pf, "Bring-up").
use crate::adminq::AdminQueue;
use crate::device::{pf_register_name, Device};
use crate::dma::IovaAllocator;
use crate::error::{DriverError, Result};
use shared_regs::pf::{self, Caps, Control, Status};
use shared_regs::{ABI_VERSION_MAJOR, ABI_VERSION_MINOR, DEVICE_ID_MAGIC};
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Timeouts and sizes of bring-up.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long the firmware may take to set `STATUS.READY` after a reset.
    pub ready_timeout: Duration,
    /// How long one admin command may take.
    pub command_timeout: Duration,
    /// Admin queue entries wanted; capped by `CAP_ADMINQ_ENTRIES` and rounded down to a
    /// power of two. A batch ([`crate::batch`]) keeps up to this many minus one in flight:
    /// 1,024 entries (64 KiB of ring) let the driver refill the ring while the firmware
    /// works through it.
    pub adminq_entries: u32,
    /// Wait for completions on the PF interrupt (else poll).
    pub use_irq: bool,
    /// Reset the device even when its firmware is up and healthy. Without it, a driver
    /// takes over a running device as it is, tables and data plane untouched (a restarted
    /// `nicctl` or agent must not take the VMs' network down); a device that is not ready,
    /// or whose firmware stopped, is reset either way.
    pub reset: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ready_timeout: Duration::from_secs(2),
            command_timeout: crate::adminq::DEFAULT_COMMAND_TIMEOUT,
            adminq_entries: 1024,
            use_irq: true,
            reset: false,
        }
    }
}

/// What the device said about itself at bring-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// What the backend is, e.g. "simulated NIC (in-process)".
    pub device: String,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub caps: Caps,
    pub num_vfs: u32,
    /// Capacity of the VPC table.
    pub vpcs: u32,
    /// Capacity of the subnet table.
    pub subnets: u32,
    /// Number of route tables (VRFs).
    pub route_tables: u32,
    /// Routes per route table, the implicit local route included.
    pub routes_per_table: u32,
    /// Entries of the mapping table.
    pub mappings: u32,
    /// Largest admin queue the firmware accepts.
    pub adminq_entries: u32,
    /// Capacity of the gateway table (`CAP_GATEWAYS`, ABI 1.1; 0 on a 1.0 device).
    pub gateways: u32,
    /// Remote hosts the mapping table can point to (`CAP_UNDERLAYS`, ABI 1.4; 0 on an
    /// older device, which does not say).
    pub underlays: u32,
}

impl DeviceInfo {
    /// Names of the capability bits, and hex for bits this driver does not know.
    pub fn cap_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.caps.iter_names().map(|(n, _)| n.to_string()).collect();
        let unknown = self.caps.bits() & !Caps::all().bits();
        if unknown != 0 {
            names.push(format!("{unknown:#x}"));
        }
        names
    }
}

/// Polls `register` until `done(value)` or `timeout`.
pub(crate) fn wait_for(
    dev: &dyn Device,
    register: u32,
    what: &'static str,
    timeout: Duration,
    done: impl Fn(u32) -> bool,
) -> Result<u32> {
    let start = Instant::now();
    let mut sleep = Duration::from_micros(50);
    loop {
        let v = dev.read32(register)?;
        if done(v) {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(DriverError::RegisterTimeout {
                device: dev.describe(),
                register: pf_register_name(register),
                what,
                waited: start.elapsed(),
                last: v,
            });
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(5));
    }
}

fn check_id(dev: &dyn Device) -> Result<()> {
    let id = dev.read32(pf::ID)?;
    if id != DEVICE_ID_MAGIC {
        return Err(DriverError::NotVpcnic {
            device: dev.describe(),
            found: id,
            expected: DEVICE_ID_MAGIC,
        });
    }
    Ok(())
}

/// Resets the device, waits for the firmware and reads what it offers.
pub fn reset(dev: &dyn Device, opts: &Options) -> Result<DeviceInfo> {
    check_id(dev)?;
    dev.write32(pf::CONTROL, Control::RESET.bits())?;
    let status = wait_for(dev, pf::STATUS, "READY (bit 0)", opts.ready_timeout, |v| {
        Status::from_bits_retain(v).intersects(Status::READY | Status::FATAL)
    })?;
    if Status::from_bits_retain(status).contains(Status::FATAL) {
        return Err(DriverError::Fatal {
            device: dev.describe(),
            status,
        });
    }
    read_info(dev)
}

/// What a ready device offers: identity, ABI (the major must be the driver's), capacities.
fn read_info(dev: &dyn Device) -> Result<DeviceInfo> {
    check_id(dev)?;
    let abi = dev.read32(pf::ABI_VERSION)?;
    let (abi_major, abi_minor) = ((abi >> 16) as u16, abi as u16);
    if abi_major != ABI_VERSION_MAJOR {
        return Err(DriverError::AbiMismatch {
            device: dev.describe(),
            device_major: abi_major,
            device_minor: abi_minor,
            driver_major: ABI_VERSION_MAJOR,
            driver_minor: ABI_VERSION_MINOR,
        });
    }
    Ok(DeviceInfo {
        device: dev.describe(),
        abi_major,
        abi_minor,
        caps: Caps::from_bits_retain(dev.read32(pf::CAPS)?),
        num_vfs: dev.read32(pf::NUM_VFS)?,
        vpcs: dev.read32(pf::CAP_VPCS)?,
        subnets: dev.read32(pf::CAP_SUBNETS)?,
        route_tables: dev.read32(pf::CAP_ROUTE_TABLES)?,
        routes_per_table: dev.read32(pf::CAP_ROUTES)?,
        mappings: dev.read32(pf::CAP_MAPPINGS)?,
        adminq_entries: dev.read32(pf::CAP_ADMINQ_ENTRIES)?,
        // The register exists from ABI 1.1 on; a 1.0 device has no gateway table.
        gateways: if abi_minor >= 1 {
            dev.read32(pf::CAP_GATEWAYS)?
        } else {
            0
        },
        underlays: if abi_minor >= 4 {
            dev.read32(pf::CAP_UNDERLAYS)?
        } else {
            0
        },
    })
}

/// Takes over the device: as it is when its firmware is ready and healthy (its tables and
/// the data plane go on), else (or with [`Options::reset`]) through a reset. Returns what
/// it offers and whether it was reset.
pub fn attach(dev: &dyn Device, opts: &Options) -> Result<(DeviceInfo, bool)> {
    check_id(dev)?;
    let status = Status::from_bits_retain(dev.read32(pf::STATUS)?);
    if opts.reset || !status.contains(Status::READY) || status.contains(Status::FATAL) {
        return Ok((reset(dev, opts)?, true));
    }
    Ok((read_info(dev)?, false))
}

/// Waits until the firmware has run two full polls (two heartbeat steps) since this call:
/// whatever was written to its registers before it, it has seen.
fn wait_two_polls(dev: &dyn Device, timeout: std::time::Duration) -> Result<()> {
    let start = std::time::Instant::now();
    let mut last = dev.read32(pf::HEARTBEAT)?;
    let mut steps = 0;
    while steps < 2 {
        let now = dev.read32(pf::HEARTBEAT)?;
        if now != last {
            steps += 1;
            last = now;
            continue;
        }
        if start.elapsed() > timeout {
            return Err(DriverError::RegisterTimeout {
                device: dev.describe(),
                register: "HEARTBEAT",
                what: "two heartbeats (the firmware taking the admin queue's disable)",
                waited: timeout,
                last: now,
            });
        }
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
    Ok(())
}

/// The admin queue size to use: the wish capped by the device, a power of two, at least 2.
pub fn adminq_size(wanted: u32, device_max: u32) -> Option<u32> {
    let n = wanted.min(device_max);
    if n < 2 {
        return None;
    }
    Some(1 << (31 - n.leading_zeros()))
}

/// Allocates, maps and programs the admin queue, enables it and connects its interrupt.
pub fn start_admin_queue(
    dev: &dyn Device,
    info: &DeviceInfo,
    iova: &mut IovaAllocator,
    opts: &Options,
    taken_over: bool,
) -> Result<AdminQueue> {
    if taken_over {
        // A previous driver's queue (its memory gone with it) must be stopped, and seen
        // stopped by the firmware, before this one is programmed: the firmware restarts a
        // queue from entry 0 only when it sees ADMINQ_ENABLE go from clear to set.
        dev.write32(pf::CONTROL, 0)?;
        wait_two_polls(dev, opts.ready_timeout)?;
    }
    let size = adminq_size(opts.adminq_entries, info.adminq_entries).ok_or_else(|| {
        DriverError::Unsupported {
            device: dev.describe(),
            what: format!(
                "CAP_ADMINQ_ENTRIES is {}; the driver needs an admin queue of at least 2 entries",
                info.adminq_entries
            ),
        }
    })?;
    let mem = iova.alloc_memory(AdminQueue::ring_bytes(size))?;
    dev.dma_map(&mem)?;
    let irq = if opts.use_irq {
        let fd = EventFd::new(EFD_NONBLOCK).map_err(|e| DriverError::Irq {
            device: dev.describe(),
            vector: pf::IRQ_VECTOR,
            reason: e.to_string(),
        })?;
        dev.set_irq(pf::IRQ_VECTOR, Some(&fd))?;
        dev.write32(pf::INTR_MASK, !pf::Intr::ADMINQ.bits())?;
        Some(fd)
    } else {
        dev.write32(pf::INTR_MASK, u32::MAX)?;
        None
    };
    let base = mem.iova();
    dev.write32(pf::ADMINQ_BASE_LO, base as u32)?;
    dev.write32(pf::ADMINQ_BASE_HI, (base >> 32) as u32)?;
    dev.write32(pf::ADMINQ_SIZE, size)?;
    dev.write32(pf::CONTROL, Control::ADMINQ_ENABLE.bits())?;
    if taken_over {
        // ADMINQ_HEAD still holds the previous queue's position until the firmware starts
        // this one (at entry 0); a command posted before that would see a full ring.
        wait_two_polls(dev, opts.ready_timeout)?;
    }
    let status = dev.read32(pf::STATUS)?;
    check_adminq_status(dev, status, base, size, info.adminq_entries)?;
    Ok(AdminQueue::new(mem, size, irq, opts.command_timeout))
}

/// Error if `status` says the admin queue is not running.
pub(crate) fn check_adminq_status(
    dev: &dyn Device,
    status: u32,
    base: u64,
    size: u32,
    max: u32,
) -> Result<()> {
    let status_bits = Status::from_bits_retain(status);
    if status_bits.contains(Status::FATAL) {
        return Err(DriverError::Fatal {
            device: dev.describe(),
            status,
        });
    }
    if status_bits.contains(Status::ADMINQ_ERROR) {
        return Err(DriverError::AdminQueueRejected {
            device: dev.describe(),
            base,
            size,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adminq_size_is_a_capped_power_of_two() {
        assert_eq!(adminq_size(64, 256), Some(64));
        assert_eq!(adminq_size(64, 48), Some(32));
        assert_eq!(adminq_size(100, 1024), Some(64));
        assert_eq!(adminq_size(64, 1), None);
        assert_eq!(adminq_size(64, 0), None);
    }

    #[test]
    fn cap_names_lists_known_and_unknown_bits() {
        let info = DeviceInfo {
            device: "x".into(),
            abi_major: 1,
            abi_minor: 0,
            caps: Caps::from_bits_retain(Caps::ARP_PROXY.bits() | Caps::MULTI_VRF.bits() | 1 << 20),
            num_vfs: 0,
            vpcs: 0,
            subnets: 0,
            route_tables: 0,
            routes_per_table: 0,
            mappings: 0,
            adminq_entries: 0,
            gateways: 0,
            underlays: 0,
        };
        assert_eq!(info.cap_names(), ["ARP_PROXY", "MULTI_VRF", "0x100000"]);
    }
}

#[cfg(test)]
mod fake_tests {
    use super::*;
    use crate::test_utils::{FakeConfig, FakeDevice};

    fn quick() -> Options {
        Options {
            ready_timeout: Duration::from_millis(100),
            command_timeout: Duration::from_millis(100),
            ..Options::default()
        }
    }

    #[test]
    fn ready_timeout_names_device_register_bit_and_last_value() {
        let dev = FakeDevice::new(FakeConfig {
            ready: false,
            ..Default::default()
        });
        dev.poke(pf::STATUS, pf::Status::ADMINQ_ERROR.bits());
        // A reset clears STATUS; the fake then never sets READY.
        let start = Instant::now();
        let err = reset(&dev, &quick()).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(
            matches!(err, DriverError::RegisterTimeout { last: 0, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        for part in [
            "fake NIC",
            "register STATUS",
            "READY",
            "last value read: 0x00000000",
        ] {
            assert!(msg.contains(part), "{part:?} missing from {msg:?}");
        }
    }

    #[test]
    fn abi_major_mismatch_names_both_versions() {
        let dev = FakeDevice::new(FakeConfig {
            abi: (2 << 16) | 3,
            ..Default::default()
        });
        let err = reset(&dev, &quick()).unwrap_err();
        let msg = err.to_string();
        let expected = format!(
            "fake NIC speaks device ABI 2.3 but this driver speaks ABI {ABI_VERSION_MAJOR}.{ABI_VERSION_MINOR}"
        );
        assert!(msg.contains(&expected), "{msg}");
    }

    #[test]
    fn a_newer_minor_is_accepted() {
        let dev = FakeDevice::new(FakeConfig {
            abi: (u32::from(ABI_VERSION_MAJOR) << 16) | 7,
            ..Default::default()
        });
        let info = reset(&dev, &quick()).unwrap();
        assert_eq!((info.abi_major, info.abi_minor), (ABI_VERSION_MAJOR, 7));
    }

    #[test]
    fn wrong_magic_is_not_a_vpcnic() {
        let dev = FakeDevice::new(FakeConfig::default());
        dev.poke(pf::ID, 0x1234_5678);
        let msg = reset(&dev, &quick()).unwrap_err().to_string();
        assert!(msg.contains("fake NIC is not a vpcnic device"), "{msg}");
        assert!(msg.contains("0x12345678"), "{msg}");
        assert_eq!(
            dev.peek(pf::CONTROL),
            0,
            "nothing written to a foreign device"
        );
    }

    #[test]
    fn info_comes_from_the_capability_registers() {
        let dev = FakeDevice::new(FakeConfig::default());
        let info = reset(&dev, &quick()).unwrap();
        assert_eq!(info.device, "fake NIC");
        assert_eq!(info.caps, Caps::ARP_PROXY | Caps::MULTI_VRF);
        assert_eq!(info.num_vfs, 4);
        assert_eq!(
            (
                info.vpcs,
                info.subnets,
                info.route_tables,
                info.routes_per_table,
                info.mappings
            ),
            (10, 20, 30, 40, 50)
        );
        assert_eq!(info.adminq_entries, 64);
        assert_eq!(info.gateways, 60);
        assert_eq!(info.underlays, 70);
    }

    #[test]
    fn an_abi_1_0_device_has_no_gateway_table() {
        let dev = FakeDevice::new(FakeConfig {
            abi: 1 << 16,
            ..Default::default()
        });
        let info = reset(&dev, &quick()).unwrap();
        assert_eq!((info.abi_minor, info.gateways, info.underlays), (0, 0, 0));
    }

    #[test]
    fn admin_queue_is_programmed_mapped_and_enabled() {
        let dev = FakeDevice::new(FakeConfig {
            adminq_max: 16,
            ..Default::default()
        });
        let info = reset(&dev, &quick()).unwrap();
        let mut iova = IovaAllocator::default();
        let q = start_admin_queue(&dev, &info, &mut iova, &quick(), false).unwrap();
        let base = q.memory().iova();
        assert_eq!(q.size(), 16);
        assert!(dev.mapped(base));
        assert_eq!(dev.peek(pf::ADMINQ_BASE_LO), base as u32);
        assert_eq!(dev.peek(pf::ADMINQ_BASE_HI), (base >> 32) as u32);
        assert_eq!(dev.peek(pf::ADMINQ_SIZE), 16);
        assert_eq!(dev.peek(pf::CONTROL), Control::ADMINQ_ENABLE.bits());
        assert_eq!(dev.peek(pf::INTR_MASK) & pf::Intr::ADMINQ.bits(), 0);
    }

    #[test]
    fn rejected_admin_queue_is_reported() {
        let dev = FakeDevice::new(FakeConfig {
            reject_adminq: true,
            ..Default::default()
        });
        let info = reset(&dev, &quick()).unwrap();
        let err = start_admin_queue(&dev, &info, &mut IovaAllocator::default(), &quick(), false)
            .unwrap_err();
        assert!(
            matches!(err, DriverError::AdminQueueRejected { size: 64, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("STATUS.ADMINQ_ERROR"), "{err}");
    }

    #[test]
    fn a_device_without_an_admin_queue_is_unsupported() {
        let dev = FakeDevice::new(FakeConfig {
            adminq_max: 0,
            ..Default::default()
        });
        let info = reset(&dev, &quick()).unwrap();
        let err = start_admin_queue(&dev, &info, &mut IovaAllocator::default(), &quick(), false)
            .unwrap_err();
        assert!(err.to_string().contains("CAP_ADMINQ_ENTRIES is 0"), "{err}");
    }
}
