//! Helpers shared by the whole-system tests in `tests/tests/`: a simulated NIC brought up by
//! the real PF driver, with VMs (guest VF drivers) attached to its VFs.
use host_driver::backend::sim::SimBackend;
use host_driver::{DriverError, PfDriver, StatsFunction};
use hw_sim::guest::VfGuest;
use hw_sim::{FunctionPort, SimConfig};
use shared_regs::stats::{Counter, Counters};
use std::time::Duration;

pub use nic_firmware::testing as frames;

/// How long a test waits for a frame that should arrive.
pub const ARRIVES: Duration = Duration::from_secs(2);
/// How long a test waits to be sure a frame does not arrive.
pub const NEVER_ARRIVES: Duration = Duration::from_millis(200);

/// A simulated NIC, its PF driver, and one VM per attached VF.
pub struct Testbed {
    pub driver: PfDriver,
    vf_ports: Vec<FunctionPort>,
    vms: Vec<Option<VfGuest>>,
}

impl Testbed {
    /// Starts the simulator with `cfg` and brings it up through the PF driver.
    pub fn start(cfg: SimConfig) -> Result<Testbed, DriverError> {
        let backend = SimBackend::start(cfg)?;
        // The VFs belong to the VMs, not to the driver: take them before the driver owns
        // the board.
        let vf_ports: Vec<FunctionPort> = (0..backend.nic().num_vfs())
            .filter_map(|vf| backend.nic().vf(vf))
            .collect();
        let driver = PfDriver::open(Box::new(backend))?;
        let vms = vf_ports.iter().map(|_| None).collect();
        Ok(Testbed {
            driver,
            vf_ports,
            vms,
        })
    }

    /// Boots a VM on VF `vf`: its VF driver takes the rings.
    pub fn attach_vm(&mut self, vf: u16) -> &mut VfGuest {
        let port = self.vf_ports[usize::from(vf)].clone();
        let guest = VfGuest::attach(port, 64).expect("guest VF driver attaches");
        let slot = &mut self.vms[usize::from(vf)];
        *slot = Some(guest);
        slot.as_mut().expect("just attached")
    }

    /// VF `vf` as its VM sees it (BAR registers).
    pub fn vf_port(&self, vf: u16) -> &FunctionPort {
        &self.vf_ports[usize::from(vf)]
    }

    /// The VM on VF `vf`.
    pub fn vm(&mut self, vf: u16) -> &mut VfGuest {
        self.vms[usize::from(vf)]
            .as_mut()
            .expect("no VM attached to that VF")
    }

    /// One function's counters, read through the driver.
    pub fn counters(&self, function: StatsFunction) -> Counters {
        self.driver.stats(function).expect("GET_STATS")
    }

    /// Asserts that no attached VM receives anything within [`NEVER_ARRIVES`].
    pub fn assert_silence(&mut self) {
        std::thread::sleep(NEVER_ARRIVES);
        for (vf, vm) in self.vms.iter_mut().enumerate() {
            if let Some(vm) = vm {
                assert_eq!(vm.try_recv(), None, "VM on VF{vf} received a frame");
            }
        }
    }

    /// Asserts that, of all drop counters of `function`, exactly `reason` moved, by one.
    pub fn assert_one_drop(&self, function: StatsFunction, reason: Counter) {
        let c = self.counters(function);
        assert_eq!(c.get(reason), 1, "{} of {function}", reason.name());
        assert_eq!(c.drops(), 1, "drops of {function}");
    }
}
