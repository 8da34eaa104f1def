//! The simulated NIC: its functions as the PCI bus shows them, its uplink, its fault seam,
//! and the device thread that runs the firmware.
use crate::device::{self, Wake};
use crate::dma::DmaSpace;
use crate::error::SimError;
use crate::faults::{FaultInjector, Faults};
use crate::irq::IrqLine;
use crate::polls::Polls;
use crate::port::{Leds, PortHw, SfpEeprom};
use crate::regs::{RegisterFile, WriteEffect};
use crate::uplink::{Uplink, UplinkPort};
use nic_firmware::Function;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vmm_sys_util::eventfd::EventFd;

/// Most VFs a simulated NIC exposes (an SR-IOV PF without ARI).
pub const MAX_VFS: u16 = 256;

/// Stack of the device thread: the firmware keeps frames and parse state on its stack.
const DEVICE_STACK: usize = 8 << 20;

/// What to build: the VF count and the capacity of every firmware table. These are the
/// "silicon" choices a board makes with static arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// VFs the device exposes (at most [`MAX_VFS`]).
    pub num_vfs: u16,
    /// Capacity of the VPC table.
    pub vpcs: u16,
    /// Capacity of the subnet table.
    pub subnets: u16,
    /// Route tables (VRFs).
    pub route_tables: u16,
    /// Routes per route table, the local route included.
    pub routes_per_table: u16,
    /// Buckets of the mapping table, a power of two; each holds 4 mappings.
    pub mapping_buckets: u32,
    /// Distinct underlay addresses (hosts of remote instances) the mappings may use, at
    /// most 65,536.
    pub underlays: u32,
    /// Capacity of the gateway table.
    pub gateways: u16,
    /// Frames the firmware takes from a ring in one batch (at least 1).
    pub batch: u16,
    /// The SFP module in the uplink's cage (page A0h of its EEPROM), or `None` for an
    /// empty cage. Default: [`SfpEeprom::default_module`].
    pub sfp: Option<SfpEeprom>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            num_vfs: 8,
            vpcs: 64,
            subnets: 256,
            route_tables: 256,
            routes_per_table: 64,
            mapping_buckets: 4096,
            underlays: 4096,
            gateways: 16,
            batch: 32,
            sfp: Some(SfpEeprom::default_module()),
        }
    }
}

impl SimConfig {
    /// The capacities of a cloud NIC: 4,096 VPCs and route tables (VRFs) of 1,000 routes
    /// each, 8,192 subnets, 1,048,576 mapping entries (about 87 MB of device memory), 64
    /// gateways, with `num_vfs` VFs.
    pub fn cloud_scale(num_vfs: u16) -> SimConfig {
        SimConfig {
            num_vfs,
            vpcs: 4096,
            subnets: 8192,
            route_tables: 4096,
            routes_per_table: 1000,
            mapping_buckets: 262_144,
            underlays: 16_384,
            gateways: 64,
            batch: 32,
            sfp: Some(SfpEeprom::default_module()),
        }
    }

    /// Refuses configurations no chip could have.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.num_vfs > MAX_VFS {
            return Err(SimError::Config(format!(
                "{} VFs requested, the device has at most {MAX_VFS}",
                self.num_vfs
            )));
        }
        if self.batch == 0 {
            return Err(SimError::Config(
                "batch must hold at least one frame".into(),
            ));
        }
        if !self.mapping_buckets.is_power_of_two() {
            return Err(SimError::Config(format!(
                "{} mapping buckets requested: the mapping table's bucket count is a power of two",
                self.mapping_buckets
            )));
        }
        if self.mapping_buckets > 1 << 25 {
            return Err(SimError::Config(format!(
                "{} mapping buckets requested, at most {} fit device memory",
                self.mapping_buckets,
                1u32 << 25
            )));
        }
        if self.underlays > 1 << 16 {
            return Err(SimError::Config(format!(
                "{} underlay addresses requested: a mapping refers to one by a 16-bit index",
                self.underlays
            )));
        }
        Ok(())
    }
}

/// One PCI function's silicon.
pub(crate) struct FunctionState {
    pub(crate) regs: RegisterFile,
    pub(crate) dma: DmaSpace,
    pub(crate) irq: IrqLine,
}

/// Everything the host side and the device thread share.
pub(crate) struct Shared {
    num_vfs: u16,
    /// The PF, then VF 0, VF 1, ...
    pub(crate) functions: Box<[FunctionState]>,
    pub(crate) faults: Faults,
    pub(crate) uplink: Uplink,
    /// The SFP cage and the LED pins.
    pub(crate) port: PortHw,
    pub(crate) wake: Wake,
    pub(crate) shutdown: AtomicBool,
    /// Calls of `Firmware::poll`, for liveness checks and tests.
    pub(crate) polls: Polls,
}

impl Shared {
    /// Index of `func` in `functions`, if the NIC has it.
    pub(crate) fn index(&self, func: Function) -> Option<usize> {
        match func {
            Function::Pf => Some(0),
            Function::Vf(n) if n < self.num_vfs => Some(usize::from(n) + 1),
            Function::Vf(_) => None,
        }
    }

    pub(crate) fn get(&self, func: Function) -> Option<&FunctionState> {
        self.index(func).and_then(|i| self.functions.get(i))
    }
}

/// The simulated NIC. Owns the device thread; dropping the NIC stops and joins it.
pub struct Nic {
    pub(crate) shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Nic {
    /// Powers the NIC on: builds the register files at their reset values, allocates the
    /// firmware's memory and starts the device thread. The firmware takes its power-on
    /// reset at its first poll.
    pub fn start(cfg: SimConfig) -> Result<Nic, SimError> {
        cfg.validate()?;
        let functions: Box<[FunctionState]> = std::iter::once(Function::Pf)
            .chain((0..cfg.num_vfs).map(Function::Vf))
            .map(|f| FunctionState {
                regs: RegisterFile::new(f),
                dma: DmaSpace::new(f),
                irq: IrqLine::new(f),
            })
            .collect();
        let shared = Arc::new(Shared {
            num_vfs: cfg.num_vfs,
            faults: Faults::new(functions.len()),
            functions,
            uplink: Uplink::default(),
            port: PortHw::new(cfg.sfp),
            wake: Wake::new()
                .map_err(|e| SimError::io("creating the device's doorbell eventfd", e))?,
            shutdown: AtomicBool::new(false),
            polls: Polls::default(),
        });
        let ram = crate::firmware_ram::allocate(&cfg);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hw-sim-device".into())
            .stack_size(DEVICE_STACK)
            .spawn(move || device::run(thread_shared, ram))
            .map_err(|e| SimError::io("spawning the device thread", e))?;
        Ok(Nic {
            shared,
            thread: Some(thread),
        })
    }

    /// The PF as the PCI bus shows it to the host driver.
    pub fn pf(&self) -> FunctionPort {
        self.port(Function::Pf, 0)
    }

    /// VF `vf` as its VM sees it, if the NIC has it.
    pub fn vf(&self, vf: u16) -> Option<FunctionPort> {
        let f = Function::Vf(vf);
        self.shared.index(f).map(|i| self.port(f, i))
    }

    fn port(&self, function: Function, index: usize) -> FunctionPort {
        FunctionPort {
            shared: Arc::clone(&self.shared),
            function,
            index,
        }
    }

    /// VFs the NIC exposes.
    pub fn num_vfs(&self) -> u16 {
        self.shared.num_vfs
    }

    /// The far end of the uplink cable.
    pub fn uplink(&self) -> UplinkPort {
        UplinkPort {
            shared: Arc::clone(&self.shared),
        }
    }

    /// What the uplink's link and activity LEDs show now.
    pub fn leds(&self) -> Leds {
        self.shared.port.leds()
    }

    /// I2C transactions the firmware has addressed to the SFP cage's bus.
    pub fn sfp_reads(&self) -> u32 {
        self.shared.port.transactions()
    }

    /// The fault-injection seam.
    pub fn faults(&self) -> FaultInjector {
        FaultInjector {
            shared: Arc::clone(&self.shared),
        }
    }

    /// How many times the device thread has polled the firmware: a liveness probe for
    /// tests (a stalled or idle-sleeping device counts slowly, a spinning one fast).
    pub fn polls(&self) -> u64 {
        self.shared.polls.count()
    }

    /// Waits until the device thread has polled the firmware `target` times in all, or
    /// `timeout` passes; whether it has. `wait_polls(polls() + 1, ..)` waits for the next
    /// poll: the firmware has then seen everything written before the call.
    pub fn wait_polls(&self, target: u64, timeout: Duration) -> bool {
        self.shared.polls.wait_for(target, timeout)
    }

    /// Stops the device thread and joins it, reporting a firmware panic as an error
    /// (dropping the NIC does the same but can only print it).
    pub fn stop(mut self) -> Result<(), SimError> {
        self.join()
    }

    fn join(&mut self) -> Result<(), SimError> {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake.ring();
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        thread.join().map_err(|payload| {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            SimError::DevicePanicked(msg)
        })
    }
}

impl Drop for Nic {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            eprintln!("hw-sim: {e}");
        }
    }
}

/// One PCI function as its owner sees it: BAR0, DMA mappings, interrupt vectors.
/// Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct FunctionPort {
    shared: Arc<Shared>,
    function: Function,
    index: usize,
}

impl std::fmt::Debug for FunctionPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionPort")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl FunctionPort {
    fn state(&self) -> &FunctionState {
        &self.shared.functions[self.index]
    }

    /// Which function this is.
    pub fn function(&self) -> Function {
        self.function
    }

    /// Size of BAR0 in bytes.
    pub fn bar_size(&self) -> u64 {
        self.state().regs.bar_size()
    }

    /// A 32-bit read of BAR0. The offset must be 4-byte aligned and inside the BAR.
    pub fn bar_read32(&self, offset: u64) -> Result<u32, SimError> {
        self.state().regs.host_read(offset)
    }

    /// A 32-bit write of BAR0 under the register's access rule. Every write wakes the
    /// device, as a doorbell write would.
    pub fn bar_write32(&self, offset: u64, value: u32) -> Result<(), SimError> {
        let st = self.state();
        match st.regs.host_write(offset, value)? {
            WriteEffect::MaskChanged => st.irq.mask_changed(&st.regs),
            WriteEffect::Reset => self.shared.faults.reset(),
            WriteEffect::None => {}
        }
        self.shared.wake.ring();
        Ok(())
    }

    /// Like `VFIO_IOMMU_MAP_DMA` / vfio-user `DMA_MAP` with an fd: makes
    /// `[iova, iova + size)` of this function's DMA space read and write `file` from
    /// `file_offset` (a `MAP_SHARED` mapping). `iova`, `size` and `file_offset` must be
    /// multiples of 4 KiB, and the range must not overlap an existing mapping.
    ///
    /// The caller must not shrink `file` while it is mapped: the device thread would take
    /// SIGBUS. This process's own callers are trusted with that; the vfio-user server, whose
    /// clients are not, maps only files sealed against shrinking (see [`crate::memfd`]).
    pub fn dma_map(
        &self,
        iova: u64,
        size: u64,
        file: &File,
        file_offset: u64,
    ) -> Result<(), SimError> {
        self.state().dma.map(iova, size, file, file_offset)
    }

    /// Removes the mappings in `[iova, iova + size)`; the range must cover whole mappings.
    pub fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), SimError> {
        self.state().dma.unmap(iova, size)
    }

    /// Wires interrupt `vector` (only vector 0 exists) to `eventfd`, or unwires it.
    pub fn set_irq(&self, vector: u32, eventfd: Option<EventFd>) -> Result<(), SimError> {
        self.state().irq.set(vector, eventfd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfd::SharedMemory;
    use shared_regs::{pf, vf};
    use std::time::Duration;

    fn small() -> SimConfig {
        SimConfig {
            num_vfs: 2,
            ..SimConfig::default()
        }
    }

    #[test]
    fn default_config_is_the_documented_one() {
        let c = SimConfig::default();
        assert_eq!(
            (
                c.num_vfs,
                c.vpcs,
                c.subnets,
                c.route_tables,
                c.routes_per_table
            ),
            (8, 64, 256, 256, 64)
        );
        assert_eq!((c.mapping_buckets, c.underlays, c.batch), (4096, 4096, 32));
    }

    #[test]
    fn bad_configs_are_refused() {
        let e = Nic::start(SimConfig {
            batch: 0,
            ..small()
        })
        .err()
        .unwrap();
        assert!(e.to_string().contains("batch"), "{e}");
        assert!(Nic::start(SimConfig {
            num_vfs: MAX_VFS + 1,
            ..small()
        })
        .is_err());
    }

    #[test]
    fn start_and_stop_join_the_device_thread() {
        let nic = Nic::start(small()).unwrap();
        assert!(
            nic.wait_polls(1, Duration::from_secs(5)),
            "the firmware was never polled"
        );
        let probe = Arc::downgrade(&nic.shared);
        nic.stop().unwrap();
        assert!(
            probe.upgrade().is_none(),
            "the device thread still holds the NIC"
        );

        let nic = Nic::start(small()).unwrap();
        let port = nic.pf();
        drop(nic); // joins; ports outlive the NIC harmlessly
        assert_eq!(
            port.bar_read32(u64::from(pf::ID)).unwrap(),
            shared_regs::DEVICE_ID_MAGIC
        );
    }

    #[test]
    fn idle_device_does_not_spin() {
        let nic = Nic::start(small()).unwrap();
        assert!(nic.wait_polls(1, Duration::from_secs(5)), "never polled");
        // Past bring-up.
        std::thread::sleep(Duration::from_millis(20));
        let before = nic.polls();
        // A rate over a window of time: this sleep is the measurement, not a wait.
        std::thread::sleep(Duration::from_millis(50));
        let polls = nic.polls() - before;
        // One poll per 1 ms idle wait: about 50. A spinning thread would do millions.
        assert!(polls > 0, "the device thread stopped polling");
        assert!(
            polls < 200,
            "{polls} polls in 50 ms idle: the device thread spins"
        );
    }

    #[test]
    fn stall_stops_polling_and_resumes() {
        let nic = Nic::start(small()).unwrap();
        assert!(nic.wait_polls(1, Duration::from_secs(5)), "never polled");
        // No settling time: once stall_firmware returns, no poll is running or starts.
        nic.faults().stall_firmware(true);
        let before = nic.polls();
        assert!(
            !nic.wait_polls(before + 1, Duration::from_millis(30)),
            "a stalled device must not poll"
        );
        nic.faults().stall_firmware(false);
        assert!(
            nic.wait_polls(before + 1, Duration::from_secs(5)),
            "polling resumes"
        );
    }

    /// The device thread really runs the firmware: it takes the power-on reset, announces
    /// itself, keeps a heartbeat, and takes a reset the host requests.
    #[test]
    fn firmware_comes_up_and_takes_a_requested_reset() {
        let nic = Nic::start(small()).unwrap();
        let pf = nic.pf();
        // Each check waits for the firmware's next poll, not for some time.
        let until = |what: &str, done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !done() {
                assert!(std::time::Instant::now() < deadline, "{what}");
                nic.wait_polls(nic.polls() + 1, Duration::from_millis(100));
            }
        };
        let ready = |pf: &FunctionPort| {
            until("firmware never became ready", &|| {
                pf.bar_read32(u64::from(pf::STATUS)).unwrap() & pf::Status::READY.bits() != 0
            })
        };
        ready(&pf);
        assert_eq!(
            pf.bar_read32(u64::from(pf::ID)).unwrap(),
            shared_regs::DEVICE_ID_MAGIC
        );
        assert_eq!(pf.bar_read32(u64::from(pf::NUM_VFS)).unwrap(), 2);
        let beat = pf.bar_read32(u64::from(pf::HEARTBEAT)).unwrap();
        until("no heartbeat", &|| {
            pf.bar_read32(u64::from(pf::HEARTBEAT)).unwrap() != beat
        });

        nic.faults().stall_firmware(true);
        pf.bar_write32(u64::from(pf::CONTROL), pf::Control::RESET.bits())
            .unwrap();
        assert_eq!(pf.bar_read32(u64::from(pf::STATUS)).unwrap(), 0);
        nic.faults().stall_firmware(false);
        ready(&pf);
        assert_eq!(
            pf.bar_read32(u64::from(pf::CONTROL)).unwrap() & pf::Control::RESET.bits(),
            0
        );
    }

    #[test]
    fn functions_are_those_configured() {
        let nic = Nic::start(small()).unwrap();
        assert_eq!(nic.num_vfs(), 2);
        assert!(nic.vf(2).is_none());
        let vf1 = nic.vf(1).unwrap();
        assert_eq!(vf1.function(), Function::Vf(1));
        assert_eq!(vf1.bar_size(), u64::from(vf::BAR0_SIZE));
        assert_eq!(nic.pf().bar_size(), u64::from(pf::BAR0_SIZE));
        assert_eq!(vf1.bar_read32(u64::from(vf::VF_INDEX)).unwrap(), 1);
        let e = vf1.bar_write32(0x1002, 0).unwrap_err();
        assert!(e.to_string().contains("VF 1"), "{e}");
        let e = nic.pf().bar_read32(0x2000).unwrap_err();
        assert!(
            e.to_string().contains("PF") && e.to_string().contains("0x2000"),
            "{e}"
        );
    }

    #[test]
    fn a_vf_cannot_reach_pf_mapped_memory_through_its_port() {
        let nic = Nic::start(small()).unwrap();
        nic.faults().stall_firmware(true);
        let shm = SharedMemory::new("pf", 0, 4096).unwrap();
        nic.pf().dma_map(0, 4096, shm.file(), 0).unwrap();
        // The same IOVA is free in VF 0's own domain, and unmapping there finds nothing.
        assert!(nic.vf(0).unwrap().dma_unmap(0, 4096).is_err());
        nic.vf(0).unwrap().dma_map(0, 4096, shm.file(), 0).unwrap();
        nic.pf().dma_unmap(0, 4096).unwrap();
    }

    #[test]
    fn port_is_send_and_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<FunctionPort>();
        check::<UplinkPort>();
        check::<FaultInjector>();
        fn send<T: Send>() {}
        send::<Nic>();
    }
}
