//! The PF driver: bring-up, then typed admin commands.
use crate::adminq::AdminQueue;
use crate::bringup::{self, DeviceInfo, Options};
use crate::device::Device;
use crate::dma::{DmaMemory, IovaAllocator};
use crate::error::{command_label, DriverError, Result};
use crate::port::PortStatus;
use crate::tables::{
    mapping_entry, mapping_text, route_entry, route_text, vf_addr_entry, vf_flags_entry, Cidr,
    GatewaySpec, Mac, MappingLocationSpec, Port, RouteTarget, StatsFunction, SubnetSpec,
    UplinkSpec, VfSpec, VpcSpec,
};
use crate::trace::TraceReport;
use shared_regs::admin::{AdminCmd, CmdFlags, Opcode, Status};
use shared_regs::entry::{
    IdParam, MappingEntry, PortInfo, RouteTableEntry, StatsQuery, TraceQuery,
};
use shared_regs::pf;
use shared_regs::stats::Counters;
use shared_regs::{Le16, Le32, Le64};
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};
use zerocopy::{Immutable, IntoBytes};

const STATS_BYTES: usize = std::mem::size_of::<Counters>();
/// Size of the one indirect buffer: counters, a VPC's domain name, or a traced frame and
/// its report (at most 8 + 32 * 20 bytes of steps and the frame grown by encapsulation).
pub(crate) const BUF_BYTES: usize = 16 * 1024;
/// Longest frame `trace` accepts: a jumbo frame with room to spare (the uplink MTU is 9216
/// bytes of IPv4, 9230 with its Ethernet header).
pub const TRACE_FRAME_MAX: usize = 9600;

struct Admin {
    queue: AdminQueue,
    /// Indirect buffer of `GET_STATS`, `VPC_ADD` (domain) and `TRACE`; one command uses it
    /// at a time, under the lock.
    buf: DmaMemory,
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

    /// Brings the device up: takes it over as it is when its firmware runs healthy (else,
    /// or with [`Options::reset`], resets it and waits for ready), checks ID and ABI, reads
    /// the capabilities, starts the admin queue, and checks with a `NOP` that the firmware
    /// takes commands.
    pub fn open_with(device: Box<dyn Device>, opts: Options) -> Result<PfDriver> {
        let (info, was_reset) = bringup::attach(&*device, &opts)?;
        let mut iova = IovaAllocator::default();
        let queue = bringup::start_admin_queue(&*device, &info, &mut iova, &opts, !was_reset)?;
        let buf = iova.alloc_memory(BUF_BYTES as u64)?;
        if let Err(e) = device.dma_map(&buf) {
            let _ = device.dma_unmap(queue.memory());
            return Err(e);
        }
        let driver = PfDriver {
            admin: Mutex::new(Admin { queue, buf }),
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

    /// Resets the device and brings it up again in place, as mlx5's and ENA's recovery do:
    /// the firmware restarts with empty tables, the admin queue is started again over its
    /// memory, and a `NOP` proves it answers. The caller reprograms the tables and the VMs
    /// re-initialise their VFs.
    pub fn recover(&self) -> Result<()> {
        let opts = Options::default();
        {
            let mut admin = self.lock();
            bringup::reset(&*self.device, &opts)?;
            admin.queue.restart(&*self.device)?;
        }
        self.nop()
    }

    /// Every register of the PF's BAR0 map, read now, in offset order (no PF register has a
    /// read side effect).
    pub fn registers(&self) -> Result<Vec<(shared_regs::regs::Reg, u32)>> {
        pf::REGISTERS
            .iter()
            .map(|r| Ok((*r, self.device.read32(r.offset)?)))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Admin> {
        // A panic while holding the lock leaves the queue consistent (each submit writes
        // one entry and waits), so a poisoned lock is still usable.
        self.admin.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the admin queue, under its lock, with the device (the batch path).
    pub(crate) fn with_queue<R>(&self, f: impl FnOnce(&mut AdminQueue, &dyn Device) -> R) -> R {
        f(&mut self.lock().queue, &*self.device)
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

    /// Posts `cmd` with the indirect buffer holding `input` (`buf_len` = `buf_len` or the
    /// input's length) and returns the completed entry and the buffer; a non-OK status is
    /// [`DriverError::Command`].
    pub(crate) fn execute_with_buf<T>(
        &self,
        mut cmd: AdminCmd,
        input: &[u8],
        buf_len: Option<usize>,
        what: String,
        read: impl FnOnce(&AdminCmd, &DmaMemory, &str) -> Result<T>,
    ) -> Result<T> {
        let opcode = Opcode::from_u16(cmd.opcode.get()).unwrap_or(Opcode::Nop);
        let mut admin = self.lock();
        let Admin { queue, buf } = &mut *admin;
        buf.zero(0, BUF_BYTES)?;
        buf.write(0, input)?;
        cmd.buf_addr = Le64::new(buf.iova());
        cmd.buf_len = Le32::new(buf_len.unwrap_or(input.len()) as u32);
        let done = queue.submit(&*self.device, cmd, &what)?;
        check(opcode, &done, what.clone())?;
        read(&done, buf, &what)
    }

    /// `VPC_ADD`, with the domain name in the indirect buffer when there is one.
    pub fn add_vpc(&self, spec: &VpcSpec) -> Result<()> {
        let cmd = AdminCmd::new(Opcode::VpcAdd, &spec.to_entry()?);
        match spec.domain_bytes()? {
            None => self.execute(cmd, || spec.describe()).map(|_| ()),
            Some(domain) => {
                let what = format!(
                    "{}, domain {}",
                    spec.describe(),
                    spec.domain.as_deref().unwrap_or("")
                );
                self.execute_with_buf(cmd, domain, None, what, |_, _, _| Ok(()))
            }
        }
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
    pub fn add_route(&self, table: u16, dest: Cidr, target: RouteTarget) -> Result<()> {
        self.command(Opcode::RouteAdd, &route_entry(table, dest, target), || {
            format!("{} to {target}", route_text(table, dest))
        })
    }

    /// `ROUTE_DEL`.
    pub fn del_route(&self, table: u16, dest: Cidr) -> Result<()> {
        let entry = route_entry(table, dest, RouteTarget::Blackhole);
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

    /// `VF_ADDR_ADD`: a secondary address of an assigned VF.
    pub fn add_vf_addr(&self, vf: u16, ip: Ipv4Addr) -> Result<()> {
        self.command(Opcode::VfAddrAdd, &vf_addr_entry(vf, ip), || {
            format!("vf {vf}, secondary address {ip}")
        })
    }

    /// `VF_ADDR_DEL`.
    pub fn del_vf_addr(&self, vf: u16, ip: Ipv4Addr) -> Result<()> {
        self.command(Opcode::VfAddrDel, &vf_addr_entry(vf, ip), || {
            format!("vf {vf}, secondary address {ip}")
        })
    }

    /// `VF_FLAGS_SET`: turns an assigned VF's source/destination check (F5) on or off.
    pub fn set_vf_flags(&self, vf: u16, src_dst_check: bool) -> Result<()> {
        self.command(
            Opcode::VfFlagsSet,
            &vf_flags_entry(vf, src_dst_check),
            || {
                format!(
                    "vf {vf}, source/destination check {}",
                    if src_dst_check { "on" } else { "off" }
                )
            },
        )
    }

    /// `GATEWAY_ADD`.
    pub fn add_gateway(&self, spec: &GatewaySpec) -> Result<()> {
        self.command(Opcode::GatewayAdd, &spec.to_entry(), || spec.describe())
    }

    /// `GATEWAY_DEL`.
    pub fn del_gateway(&self, id: u16) -> Result<()> {
        self.command(Opcode::GatewayDel, &id_param(id), || {
            format!("gateway {id}")
        })
    }

    /// `TRACE`: runs the pipeline in dry run over `frame` arriving on `port` and returns
    /// every decision it took. Nothing is sent and no counter moves.
    pub fn trace(&self, port: Port, frame: &[u8]) -> Result<TraceReport> {
        let bytes = self.trace_bytes(port, frame)?;
        TraceReport::decode(&bytes).map_err(|why| DriverError::BadCompletion {
            command: command_label(
                Opcode::Trace,
                &format!("{}-byte frame on {port}", frame.len()),
            ),
            what: why.to_string(),
        })
    }

    /// `TRACE`, the report as the firmware wrote it (`shared_regs::trace`'s layout), for
    /// whoever hands it on (a control socket) to decode at the other end.
    pub fn trace_bytes(&self, port: Port, frame: &[u8]) -> Result<Vec<u8>> {
        let what = format!("{}-byte frame on {port}", frame.len());
        if frame.is_empty() || frame.len() > TRACE_FRAME_MAX {
            return Err(DriverError::InvalidArgument(format!(
                "cannot trace a {what}: a traced frame is 1 to {TRACE_FRAME_MAX} bytes"
            )));
        }
        let query = TraceQuery {
            port: Le16::new(port.index()),
            frame_len: Le16::new(frame.len() as u16),
        };
        let cmd = AdminCmd::new(Opcode::Trace, &query);
        self.execute_with_buf(cmd, frame, Some(BUF_BYTES), what, |done, buf, what| {
            let bad = |why: String| DriverError::BadCompletion {
                command: command_label(Opcode::Trace, what),
                what: why,
            };
            let len = done.result.get() as usize;
            if len > BUF_BYTES {
                return Err(bad(format!(
                    "the firmware says it wrote {len} report bytes into a {BUF_BYTES}-byte buffer"
                )));
            }
            let mut bytes = vec![0u8; len];
            buf.read(0, &mut bytes)?;
            Ok(bytes)
        })
    }

    /// `UPLINK_SET`.
    pub fn set_uplink(&self, spec: &UplinkSpec) -> Result<()> {
        self.command(Opcode::UplinkSet, &spec.to_entry(), || spec.describe())
    }

    /// Errors unless the device takes `CmdFlags::REPLACE` (ABI 1.3 and later): an older one
    /// would run the add instead.
    pub(crate) fn require_replace(&self, opcode: Opcode) -> Result<()> {
        if self.info.abi_minor >= 3 {
            return Ok(());
        }
        Err(DriverError::Unsupported {
            device: self.device.describe(),
            what: format!(
                "{} with REPLACE needs device ABI 1.3, the device speaks {}.{}",
                opcode.name(),
                self.info.abi_major,
                self.info.abi_minor
            ),
        })
    }

    /// Runs `opcode` with `CmdFlags::REPLACE` (ABI 1.3): the existing entry with the key of
    /// `params` takes its values in place; `Status::NotFound` when there is none.
    fn replace_command<P: IntoBytes + Immutable>(
        &self,
        opcode: Opcode,
        params: &P,
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        self.require_replace(opcode)?;
        self.execute(replacing(AdminCmd::new(opcode, params)), || {
            format!("replace {}", what())
        })
        .map(|_| ())
    }

    /// `ROUTE_ADD` with `REPLACE`: sets the target of the existing route `dest` of `table`
    /// in one step (the prefix never falls to a shorter route meanwhile).
    pub fn replace_route(&self, table: u16, dest: Cidr, target: RouteTarget) -> Result<()> {
        self.replace_command(Opcode::RouteAdd, &route_entry(table, dest, target), || {
            format!("{} to {target}", route_text(table, dest))
        })
    }

    /// `MAPPING_ADD` with `REPLACE`: sets the MAC and location of the existing mapping
    /// (vni, ip) in one step (an instance moving between hosts).
    pub fn replace_mapping(
        &self,
        vni: u32,
        ip: Ipv4Addr,
        mac: Mac,
        loc: MappingLocationSpec,
    ) -> Result<()> {
        self.replace_command(
            Opcode::MappingAdd,
            &mapping_entry(vni, ip, mac, loc),
            || format!("{} on {loc}", mapping_text(vni, ip)),
        )
    }

    /// `SUBNET_ADD` with `REPLACE`: sets the route table and gateway MAC of an existing
    /// subnet (same VPC and CIDR), VFs using it or not.
    pub fn replace_subnet(&self, spec: &SubnetSpec) -> Result<()> {
        self.replace_command(Opcode::SubnetAdd, &spec.to_entry(), || spec.describe())
    }

    /// `VF_SET` with `REPLACE`: re-sets an assigned VF's MAC, subnet, primary address and
    /// flags; its link stays up and its secondary addresses stay.
    pub fn replace_vf(&self, spec: &VfSpec) -> Result<()> {
        self.replace_command(Opcode::VfSet, &spec.to_entry(), || spec.describe())
    }

    /// `GATEWAY_ADD` with `REPLACE`: sets the kind, underlay address and MAC of an existing
    /// gateway while routes lead to it.
    pub fn replace_gateway(&self, spec: &GatewaySpec) -> Result<()> {
        self.replace_command(Opcode::GatewayAdd, &spec.to_entry(), || spec.describe())
    }

    /// `UPLINK_SET` with `REPLACE`: as [`PfDriver::set_uplink`], but refused with
    /// `NotFound` when no uplink is set.
    pub fn replace_uplink(&self, spec: &UplinkSpec) -> Result<()> {
        self.replace_command(Opcode::UplinkSet, &spec.to_entry(), || spec.describe())
    }

    /// `VPC_ADD` with `REPLACE`: sets the main route table, DNS servers and domain (none
    /// when `spec.domain` is `None`) of an existing VPC; its VNI and CIDR must be the ones
    /// it has.
    pub fn replace_vpc(&self, spec: &VpcSpec) -> Result<()> {
        self.require_replace(Opcode::VpcAdd)?;
        let cmd = replacing(AdminCmd::new(Opcode::VpcAdd, &spec.to_entry()?));
        match spec.domain_bytes()? {
            None => self
                .execute(cmd, || format!("replace {}", spec.describe()))
                .map(|_| ()),
            Some(domain) => {
                let what = format!(
                    "replace {}, domain {}",
                    spec.describe(),
                    spec.domain.as_deref().unwrap_or("")
                );
                self.execute_with_buf(cmd, domain, None, what, |_, _, _| Ok(()))
            }
        }
    }

    /// `GET_STATS`: one function's counters.
    pub fn stats(&self, function: StatsFunction) -> Result<Counters> {
        let cmd = AdminCmd::new(Opcode::GetStats, &stats_query(function));
        let what = function.to_string();
        self.execute_with_buf(cmd, &[], Some(STATS_BYTES), what, |done, buf, what| {
            let written = done.result.get() as usize;
            if written != STATS_BYTES {
                return Err(DriverError::BadCompletion {
                    command: command_label(Opcode::GetStats, what),
                    what: format!(
                        "the firmware wrote {written} bytes of counters, a block is {STATS_BYTES}"
                    ),
                });
            }
            buf.read_obj(0)
        })
    }

    /// `PORT_GET`: the uplink port as the firmware sees it; the firmware reads the SFP
    /// module's EEPROM again for it.
    pub fn port(&self) -> Result<PortStatus> {
        const LEN: usize = std::mem::size_of::<PortInfo>();
        let cmd = AdminCmd::new(Opcode::PortGet, &[0u8; 0]);
        let what = "uplink port".to_string();
        self.execute_with_buf(cmd, &[], Some(LEN), what, |done, buf, what| {
            let bad = |why: String| DriverError::BadCompletion {
                command: command_label(Opcode::PortGet, what),
                what: why,
            };
            let written = done.result.get() as usize;
            if written != LEN {
                return Err(bad(format!(
                    "the firmware wrote {written} bytes of port report, one is {LEN}"
                )));
            }
            let info: PortInfo = buf.read_obj(0)?;
            PortStatus::decode(&info).map_err(|e| bad(e.to_string()))
        })
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
        let _ = self.device.dma_unmap(&admin.buf);
    }
}

/// `cmd` with `CmdFlags::REPLACE`.
pub(crate) fn replacing(mut cmd: AdminCmd) -> AdminCmd {
    cmd.flags = Le16::new(CmdFlags::REPLACE.bits());
    cmd
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
    use zerocopy::IntoBytes;
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
            domain: None,
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
        let last = *Counter::ALL.last().unwrap();
        assert_eq!(c.get(last), 2000 + COUNTER_COUNT as u64 - 1);
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

    fn recorder(dev: &FakeDevice) -> Arc<Mutex<Vec<AdminCmd>>> {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        dev.set_handler(move |cmd| {
            log.lock().unwrap().push(*cmd);
            Reply::status(Status::Ok)
        });
        sent
    }

    #[test]
    fn a_domain_travels_in_the_indirect_buffer() {
        let (dev, drv) = open(FakeConfig::default());
        let sent = recorder(&dev);
        drv.add_vpc(&VpcSpec {
            domain: Some("prod.internal".into()),
            ..vpc()
        })
        .unwrap();
        drv.add_vpc(&vpc()).unwrap();
        let sent = sent.lock().unwrap();
        assert_eq!(sent[0].buf_len.get(), 13);
        assert_ne!(sent[0].buf_addr.get(), 0);
        assert_eq!(dev.buffers(), [b"prod.internal".to_vec()]);
        assert_eq!(
            (sent[1].buf_addr.get(), sent[1].buf_len.get()),
            (0, 0),
            "no domain, no buffer"
        );

        let err = drv
            .add_vpc(&VpcSpec {
                domain: Some("é".into()),
                ..vpc()
            })
            .unwrap_err();
        assert!(matches!(err, DriverError::InvalidArgument(_)), "{err:?}");
        assert_eq!(sent.len(), 2, "a refused domain sends nothing");

        dev.set_handler(|_| Reply::status(Status::BadArgument));
        let err = drv
            .add_vpc(&VpcSpec {
                domain: Some("a_b".into()),
                ..vpc()
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "VPC_ADD (vpc 3, vni 100, 10.0.0.0/16, domain a_b) failed: bad argument"
        );
    }

    #[test]
    fn gateway_and_vf_address_calls_send_their_entries() {
        use crate::tables::{GatewayKind, GatewaySpec};
        let (dev, drv) = open(FakeConfig::default());
        let sent = recorder(&dev);
        let gw = GatewaySpec {
            id: 2,
            kind: GatewayKind::Internet,
            underlay_ip: Ipv4Addr::new(192, 0, 2, 100),
            mac: [2, 0, 0, 0, 0xff, 2],
        };
        drv.add_gateway(&gw).unwrap();
        drv.del_gateway(2).unwrap();
        drv.add_vf_addr(1, Ipv4Addr::new(10, 0, 1, 11)).unwrap();
        drv.del_vf_addr(1, Ipv4Addr::new(10, 0, 1, 11)).unwrap();
        drv.set_vf_flags(1, false).unwrap();
        let sent = sent.lock().unwrap();
        let ops: Vec<u16> = sent.iter().map(|c| c.opcode.get()).collect();
        assert_eq!(
            ops,
            [
                Opcode::GatewayAdd as u16,
                Opcode::GatewayDel as u16,
                Opcode::VfAddrAdd as u16,
                Opcode::VfAddrDel as u16,
                Opcode::VfFlagsSet as u16
            ]
        );
        assert_eq!(&sent[0].params[..16], gw.to_entry().as_bytes());
        assert_eq!(&sent[1].params[..2], &[2, 0]);
        assert_eq!(&sent[2].params[..8], &[1, 0, 0, 0, 10, 0, 1, 11]);
        assert_eq!(&sent[4].params[..4], &[1, 0, 0, 0]);

        dev.set_handler(|_| Reply::status(Status::BadOpcode));
        assert_eq!(
            drv.add_gateway(&gw).unwrap_err().to_string(),
            "GATEWAY_ADD (gateway 2 (internet), underlay 192.0.2.100, 02:00:00:00:ff:02) \
             failed: unknown opcode"
        );
        assert_eq!(
            drv.set_vf_flags(3, true).unwrap_err().to_string(),
            "VF_FLAGS_SET (vf 3, source/destination check on) failed: unknown opcode"
        );
        assert_eq!(
            drv.add_vf_addr(0, Ipv4Addr::new(10, 0, 1, 4))
                .unwrap_err()
                .to_string(),
            "VF_ADDR_ADD (vf 0, secondary address 10.0.1.4) failed: unknown opcode"
        );
    }

    #[test]
    fn trace_sends_the_frame_and_decodes_the_report() {
        use crate::trace::{encode_report, Verdict};
        use shared_regs::trace::{Step, TraceVerdict};
        let (dev, drv) = open(FakeConfig::default());
        let report = encode_report(
            TraceVerdict::Drop,
            Counter::DropEthertype as u8,
            1,
            &[Step::Ethertype { ethertype: 0x86dd }],
            &[],
        );
        let reply = report.clone();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        dev.set_handler(move |cmd| {
            log.lock().unwrap().push(*cmd);
            Reply {
                result: reply.len() as u32,
                buf: Some(reply.clone()),
                ..Reply::status(Status::Ok)
            }
        });
        let frame = [0x5a; 60];
        let r = drv.trace(Port::Vf(1), &frame).unwrap();
        assert_eq!(
            r.verdict,
            Verdict::Drop {
                counter: Counter::DropEthertype,
                port: Port::Vf(1)
            }
        );
        assert_eq!(r.steps.len(), 1);
        let cmd = sent.lock().unwrap()[0];
        assert_eq!(cmd.opcode.get(), Opcode::Trace as u16);
        assert_eq!(&cmd.params[..4], &[1, 0, 60, 0], "port 1, 60 bytes");
        assert_eq!(cmd.buf_len.get() as usize, BUF_BYTES, "room for the report");
        assert_eq!(&dev.buffers()[0][..61], &[&frame[..], &[0]].concat()[..]);

        drv.trace(Port::Uplink, &frame).unwrap();
        assert_eq!(&sent.lock().unwrap()[1].params[..2], &[0xff, 0xff]);

        // A report whose length the completion misstates.
        let short = report.len() as u32 - 1;
        dev.set_handler(move |_| Reply {
            result: short,
            ..Reply::status(Status::Ok)
        });
        let err = drv.trace(Port::Vf(0), &frame).unwrap_err().to_string();
        assert!(
            err.starts_with("TRACE (60-byte frame on vf0): unexpected completion: the report is"),
            "{err}"
        );
        dev.set_handler(|_| Reply {
            result: 1 << 20,
            ..Reply::status(Status::Ok)
        });
        let err = drv.trace(Port::Vf(0), &frame).unwrap_err().to_string();
        assert!(err.contains("wrote 1048576 report bytes"), "{err}");
    }

    #[test]
    fn trace_refuses_empty_and_oversized_frames_without_sending() {
        let (dev, drv) = open(FakeConfig::default());
        let err = drv.trace(Port::Vf(0), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument: cannot trace a 0-byte frame on vf0: a traced frame is 1 to 9600 bytes"
        );
        let err = drv
            .trace(Port::Uplink, &vec![0; TRACE_FRAME_MAX + 1])
            .unwrap_err();
        assert!(
            err.to_string().contains("9601-byte frame on uplink"),
            "{err}"
        );
        assert_eq!(dev.seen().len(), 1, "only the bring-up NOP was sent");
    }

    #[test]
    fn replace_calls_send_the_add_with_replace_and_need_abi_1_3() {
        use crate::tables::{GatewayKind, GatewaySpec, MappingLocationSpec, RouteTarget};
        let (dev, drv) = open(FakeConfig::default());
        let sent = recorder(&dev);
        let dest = (Ipv4Addr::new(10, 0, 9, 0), 24);
        drv.replace_route(0, dest, RouteTarget::Blackhole).unwrap();
        let mac = [2, 0, 0, 0, 0, 9];
        let remote = MappingLocationSpec::Remote(Ipv4Addr::new(192, 0, 2, 2));
        drv.replace_mapping(100, Ipv4Addr::new(10, 0, 1, 10), mac, remote)
            .unwrap();
        let subnet = SubnetSpec {
            id: 1,
            vpc_id: 3,
            cidr: (Ipv4Addr::new(10, 0, 1, 0), 24),
            route_table: Some(2),
            gateway_mac: mac,
        };
        drv.replace_subnet(&subnet).unwrap();
        let vf = VfSpec {
            vf: 1,
            subnet_id: 1,
            mac,
            primary_ip: Ipv4Addr::new(10, 0, 1, 12),
            src_dst_check: true,
        };
        drv.replace_vf(&vf).unwrap();
        let gw = GatewaySpec {
            id: 2,
            kind: GatewayKind::Vpn,
            underlay_ip: Ipv4Addr::new(192, 0, 2, 101),
            mac,
        };
        drv.replace_gateway(&gw).unwrap();
        drv.replace_vpc(&vpc()).unwrap();
        {
            let sent = sent.lock().unwrap();
            let ops: Vec<u16> = sent.iter().map(|c| c.opcode.get()).collect();
            assert_eq!(
                ops,
                [
                    Opcode::RouteAdd as u16,
                    Opcode::MappingAdd as u16,
                    Opcode::SubnetAdd as u16,
                    Opcode::VfSet as u16,
                    Opcode::GatewayAdd as u16,
                    Opcode::VpcAdd as u16,
                ]
            );
            assert!(sent
                .iter()
                .all(|c| c.flags.get() == CmdFlags::REPLACE.bits()));
            let route = route_entry(0, dest, RouteTarget::Blackhole);
            assert_eq!(&sent[0].params[..12], route.as_bytes());
            assert_eq!(&sent[2].params[..20], subnet.to_entry().as_bytes());
            assert_eq!(&sent[3].params[..20], vf.to_entry().as_bytes());
        }

        dev.set_handler(|_| Reply::status(Status::NotFound));
        assert_eq!(
            drv.replace_route(0, dest, RouteTarget::Blackhole)
                .unwrap_err()
                .to_string(),
            "ROUTE_ADD (replace route 10.0.9.0/24 in table 0 to blackhole) failed: not found"
        );

        // A 1.2 device would run the add: nothing is sent.
        let (old, drv) = open(FakeConfig {
            abi: (1 << 16) | 2,
            ..FakeConfig::default()
        });
        let sent = recorder(&old);
        let err = drv
            .replace_route(0, dest, RouteTarget::Blackhole)
            .unwrap_err();
        assert!(matches!(err, DriverError::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains("needs device ABI 1.3"), "{err}");
        assert!(sent.lock().unwrap().is_empty());
    }
}
