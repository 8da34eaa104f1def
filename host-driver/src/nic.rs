//! The PF driver: bring-up, then typed admin commands.
use crate::adminq::AdminQueue;
use crate::bringup::{self, DeviceInfo, Options};
use crate::device::Device;
use crate::dma::{DmaMemory, IovaAllocator};
use crate::error::{command_label, DriverError, Result};
use crate::tables::{
    mapping_entry, mapping_text, route_entry, route_text, Cidr, Mac, MappingLocationSpec,
    RouteTargetSpec, StatsFunction, SubnetSpec, UplinkSpec, VfSpec, VpcSpec,
};
use shared_regs::admin::{AdminCmd, Opcode, Status};
use shared_regs::entry::{IdParam, MappingEntry, RouteTableEntry, StatsQuery};
use shared_regs::pf;
use shared_regs::stats::Counters;
use shared_regs::{Le16, Le32, Le64};
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};
use zerocopy::{Immutable, IntoBytes};

const STATS_BYTES: usize = std::mem::size_of::<Counters>();

struct Admin {
    queue: AdminQueue,
    /// Indirect buffer for `GET_STATS`.
    stats: DmaMemory,
}

/// The driver of one vpcnic physical function.
pub struct PfDriver {
    // Declared before `device` so that it is dropped (and unmapped) first.
    admin: Mutex<Admin>,
    info: DeviceInfo,
    device: Box<dyn Device>,
}

impl std::fmt::Debug for PfDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PfDriver")
            .field("info", &self.info)
            .finish()
    }
}

impl PfDriver {
    /// Brings the device up with default timeouts (2 s) and returns its driver.
    pub fn open(device: Box<dyn Device>) -> Result<PfDriver> {
        Self::open_with(device, Options::default())
    }

    /// Brings the device up: reset, wait for ready, check ID and ABI, read capabilities,
    /// start the admin queue, and check with a `NOP` that the firmware takes commands.
    pub fn open_with(device: Box<dyn Device>, opts: Options) -> Result<PfDriver> {
        let info = bringup::reset(&*device, &opts)?;
        let mut iova = IovaAllocator::default();
        let queue = bringup::start_admin_queue(&*device, &info, &mut iova, &opts)?;
        let stats = iova.alloc_memory(STATS_BYTES as u64)?;
        if let Err(e) = device.dma_map(&stats) {
            let _ = device.dma_unmap(queue.memory());
            return Err(e);
        }
        let driver = PfDriver {
            admin: Mutex::new(Admin { queue, stats }),
            info,
            device,
        };
        if let Err(e) = driver.nop() {
            // A queue the firmware refused only shows once the firmware has looked at it.
            let status = driver.device.read32(pf::STATUS)?;
            let admin = driver.lock();
            bringup::check_adminq_status(
                &*driver.device,
                status,
                admin.queue.memory().iova(),
                admin.queue.size(),
                driver.info.adminq_entries,
            )?;
            return Err(e);
        }
        Ok(driver)
    }

    /// What the device said at bring-up.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The device backend.
    pub fn device(&self) -> &dyn Device {
        &*self.device
    }

    /// The firmware's heartbeat counter (moves at least every millisecond while it runs).
    pub fn heartbeat(&self) -> Result<u32> {
        self.device.read32(pf::HEARTBEAT)
    }

    fn lock(&self) -> MutexGuard<'_, Admin> {
        // A panic while holding the lock leaves the queue consistent (each submit writes
        // one entry and waits), so a poisoned lock is still usable.
        self.admin.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Posts a raw command and returns the completed entry whatever its status: for tests
    /// that send malformed commands. Errors only if the command could not be completed.
    pub fn submit(&self, cmd: AdminCmd) -> Result<AdminCmd> {
        self.lock().queue.submit(&*self.device, cmd, "")
    }

    /// Posts a command and turns a non-OK status into [`DriverError::Command`].
    fn execute(&self, cmd: AdminCmd, what: impl FnOnce() -> String) -> Result<AdminCmd> {
        let opcode = Opcode::from_u16(cmd.opcode.get()).unwrap_or(Opcode::Nop);
        let what = what();
        let done = self.lock().queue.submit(&*self.device, cmd, &what)?;
        check(opcode, &done, what)?;
        Ok(done)
    }

    fn command<P: IntoBytes + Immutable>(
        &self,
        opcode: Opcode,
        params: &P,
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        self.execute(AdminCmd::new(opcode, params), what)
            .map(|_| ())
    }

    /// `NOP`: checks that the firmware takes commands.
    pub fn nop(&self) -> Result<()> {
        self.command(Opcode::Nop, &[0u8; 0], String::new)
    }

    /// `VPC_ADD`.
    pub fn add_vpc(&self, spec: &VpcSpec) -> Result<()> {
        self.command(Opcode::VpcAdd, &spec.to_entry()?, || spec.describe())
    }

    /// `VPC_DEL`.
    pub fn del_vpc(&self, id: u16) -> Result<()> {
        self.command(Opcode::VpcDel, &id_param(id), || format!("vpc {id}"))
    }

    /// `SUBNET_ADD`.
    pub fn add_subnet(&self, spec: &SubnetSpec) -> Result<()> {
        self.command(Opcode::SubnetAdd, &spec.to_entry(), || spec.describe())
    }

    /// `SUBNET_DEL`.
    pub fn del_subnet(&self, id: u16) -> Result<()> {
        self.command(Opcode::SubnetDel, &id_param(id), || format!("subnet {id}"))
    }

    /// `ROUTE_TABLE_ADD`: a route table of `vpc_id`, holding the VPC's local route.
    pub fn add_route_table(&self, id: u16, vpc_id: u16) -> Result<()> {
        let entry = RouteTableEntry {
            id: Le16::new(id),
            vpc_id: Le16::new(vpc_id),
        };
        self.command(Opcode::RouteTableAdd, &entry, || {
            format!("route table {id} of vpc {vpc_id}")
        })
    }

    /// `ROUTE_TABLE_DEL`.
    pub fn del_route_table(&self, id: u16) -> Result<()> {
        self.command(Opcode::RouteTableDel, &id_param(id), || {
            format!("route table {id}")
        })
    }

    /// `ROUTE_ADD`.
    pub fn add_route(&self, table: u16, dest: Cidr, target: RouteTargetSpec) -> Result<()> {
        self.command(Opcode::RouteAdd, &route_entry(table, dest, target), || {
            format!("{} to {target}", route_text(table, dest))
        })
    }

    /// `ROUTE_DEL`.
    pub fn del_route(&self, table: u16, dest: Cidr) -> Result<()> {
        let entry = route_entry(table, dest, RouteTargetSpec::Blackhole);
        self.command(Opcode::RouteDel, &entry, || route_text(table, dest))
    }

    /// `MAPPING_ADD`: (vni, ip) -> (mac, location).
    pub fn add_mapping(
        &self,
        vni: u32,
        ip: Ipv4Addr,
        mac: Mac,
        loc: MappingLocationSpec,
    ) -> Result<()> {
        self.command(
            Opcode::MappingAdd,
            &mapping_entry(vni, ip, mac, loc),
            || format!("{} on {loc}", mapping_text(vni, ip)),
        )
    }

    /// `MAPPING_DEL`.
    pub fn del_mapping(&self, vni: u32, ip: Ipv4Addr) -> Result<()> {
        let entry = MappingEntry {
            vni: Le32::new(vni),
            ip: ip.octets(),
            ..Default::default()
        };
        self.command(Opcode::MappingDel, &entry, || mapping_text(vni, ip))
    }

    /// `VF_SET`: assigns a VF to an instance; its link goes up.
    pub fn set_vf(&self, spec: &VfSpec) -> Result<()> {
        self.command(Opcode::VfSet, &spec.to_entry(), || spec.describe())
    }

    /// `VF_CLEAR`: unassigns a VF; its link goes down.
    pub fn clear_vf(&self, vf: u16) -> Result<()> {
        self.command(Opcode::VfClear, &id_param(vf), || format!("vf {vf}"))
    }

    /// `UPLINK_SET`.
    pub fn set_uplink(&self, spec: &UplinkSpec) -> Result<()> {
        self.command(Opcode::UplinkSet, &spec.to_entry(), || spec.describe())
    }

    /// `GET_STATS`: one function's counters.
    pub fn stats(&self, function: StatsFunction) -> Result<Counters> {
        let mut admin = self.lock();
        let Admin { queue, stats } = &mut *admin;
        stats.zero(0, STATS_BYTES)?;
        let mut cmd = AdminCmd::new(Opcode::GetStats, &stats_query(function));
        cmd.buf_addr = Le64::new(stats.iova());
        cmd.buf_len = Le32::new(STATS_BYTES as u32);
        let what = function.to_string();
        let done = queue.submit(&*self.device, cmd, &what)?;
        check(Opcode::GetStats, &done, what.clone())?;
        let written = done.result.get() as usize;
        if written != STATS_BYTES {
            return Err(DriverError::BadCompletion {
                command: command_label(Opcode::GetStats, &what),
                what: format!(
                    "the firmware wrote {written} bytes of counters, a block is {STATS_BYTES}"
                ),
            });
        }
        stats.read_obj(0)
    }

    /// `CLEAR_STATS`: zeroes one function's counters.
    pub fn clear_stats(&self, function: StatsFunction) -> Result<()> {
        self.command(Opcode::ClearStats, &stats_query(function), || {
            function.to_string()
        })
    }
}

impl Drop for PfDriver {
    fn drop(&mut self) {
        // Stop the device from touching memory that is about to be freed.
        let _ = self.device.write32(pf::CONTROL, 0);
        let _ = self.device.write32(pf::INTR_MASK, u32::MAX);
        let _ = self.device.set_irq(pf::IRQ_VECTOR, None);
        let admin = self.lock();
        let _ = self.device.dma_unmap(admin.queue.memory());
        let _ = self.device.dma_unmap(&admin.stats);
    }
}

fn id_param(id: u16) -> IdParam {
    IdParam { id: Le16::new(id) }
}

fn stats_query(function: StatsFunction) -> StatsQuery {
    StatsQuery {
        function: Le16::new(function.index()),
    }
}

fn check(opcode: Opcode, done: &AdminCmd, what: String) -> Result<()> {
    match Status::from_u16(done.status.get()) {
        Status::Ok => Ok(()),
        status => Err(DriverError::Command {
            opcode,
            status,
            what,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{FakeConfig, FakeDevice, Reply};
    use shared_regs::entry::VpcEntry;
    use shared_regs::stats::{Counter, COUNTER_COUNT};
    use std::sync::Arc;
    use std::time::Duration;
    use zerocopy::{FromBytes, FromZeros};

    fn open(cfg: FakeConfig) -> (Arc<FakeDevice>, PfDriver) {
        let dev = Arc::new(FakeDevice::new(cfg));
        let opts = Options {
            ready_timeout: Duration::from_millis(100),
            command_timeout: Duration::from_millis(100),
            ..Options::default()
        };
        let drv = PfDriver::open_with(Box::new(dev.clone()), opts).unwrap();
        (dev, drv)
    }

    fn vpc() -> VpcSpec {
        VpcSpec {
            id: 3,
            vni: 100,
            cidr: (Ipv4Addr::new(10, 0, 0, 0), 16),
            main_route_table: Some(1),
            dns: vec![],
        }
    }

    #[test]
    fn open_checks_the_queue_with_a_nop() {
        let (dev, drv) = open(FakeConfig::default());
        assert_eq!(dev.seen(), [(0, Opcode::Nop as u16)]);
        assert_eq!(drv.info().num_vfs, 4);
        assert!(drv.heartbeat().unwrap() < drv.heartbeat().unwrap());
    }

    #[test]
    fn open_fails_when_the_firmware_does_not_answer() {
        let dev = Arc::new(FakeDevice::new(FakeConfig {
            answer: false,
            ..Default::default()
        }));
        let opts = Options {
            command_timeout: Duration::from_millis(50),
            ..Options::default()
        };
        let err = PfDriver::open_with(Box::new(dev.clone()), opts).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("NOP: the firmware did not answer"),
            "{err}"
        );
    }

    #[test]
    fn typed_calls_send_the_entry_and_name_the_thing_on_failure() {
        let (dev, drv) = open(FakeConfig::default());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        dev.set_handler(move |cmd| {
            log.lock().unwrap().push(*cmd);
            Reply::status(if cmd.opcode.get() == Opcode::VpcAdd as u16 {
                Status::Exists
            } else {
                Status::Ok
            })
        });
        let err = drv.add_vpc(&vpc()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "VPC_ADD (vpc 3, vni 100, 10.0.0.0/16) failed: already exists"
        );
        assert!(matches!(
            err,
            DriverError::Command {
                opcode: Opcode::VpcAdd,
                status: Status::Exists,
                ..
            }
        ));
        drv.del_route(1, (Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        drv.clear_vf(5).unwrap();
        let sent = sent.lock().unwrap();
        let entry = VpcEntry::read_from_prefix(&sent[0].params).unwrap().0;
        assert_eq!(entry.vni.get(), 100);
        assert_eq!(entry.main_route_table.get(), 1);
        assert_eq!(sent[1].opcode.get(), Opcode::RouteDel as u16);
        assert_eq!(sent[2].opcode.get(), Opcode::VfClear as u16);
        assert_eq!(&sent[2].params[..2], &[5, 0]);
    }

    #[test]
    fn stats_are_read_from_the_indirect_buffer() {
        let (dev, drv) = open(FakeConfig::default());
        dev.set_handler(|cmd| {
            assert_eq!(cmd.opcode.get(), Opcode::GetStats as u16);
            assert_eq!(cmd.buf_len.get() as usize, STATS_BYTES);
            let function = u16::from_le_bytes([cmd.params[0], cmd.params[1]]);
            let mut c = Counters::new_zeroed();
            for (i, v) in c.values.iter_mut().enumerate() {
                *v = Le64::new(u64::from(function) * 1000 + i as u64);
            }
            Reply {
                result: STATS_BYTES as u32,
                buf: Some(c.as_bytes().to_vec()),
                ..Reply::status(Status::Ok)
            }
        });
        let c = drv.stats(StatsFunction::Vf(2)).unwrap();
        assert_eq!(c.get(Counter::TxPackets), 2000);
        assert_eq!(
            c.get(Counter::DropUnsupported),
            2000 + COUNTER_COUNT as u64 - 1
        );
        let u = drv.stats(StatsFunction::Uplink).unwrap();
        assert_eq!(u.get(Counter::RxBytes), 0xFFFF * 1000 + 3);
    }

    #[test]
    fn short_stats_are_an_error() {
        let (dev, drv) = open(FakeConfig::default());
        dev.set_handler(|_| Reply {
            result: 8,
            buf: Some(vec![1; 8]),
            ..Reply::status(Status::Ok)
        });
        let err = drv.stats(StatsFunction::Vf(0)).unwrap_err();
        assert!(
            err.to_string()
                .contains("GET_STATS (vf0): unexpected completion: the firmware wrote 8 bytes"),
            "{err}"
        );
    }

    #[test]
    fn drop_quiesces_the_device_and_unmaps_memory() {
        let (dev, drv) = open(FakeConfig::default());
        let base =
            u64::from(dev.peek(pf::ADMINQ_BASE_LO)) | u64::from(dev.peek(pf::ADMINQ_BASE_HI)) << 32;
        assert!(dev.mapped(base));
        drop(drv);
        assert!(!dev.mapped(base));
        assert_eq!(dev.peek(pf::CONTROL), 0);
        assert_eq!(dev.peek(pf::INTR_MASK), u32::MAX);
    }
}
