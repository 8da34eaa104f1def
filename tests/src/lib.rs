//! Helpers shared by the whole-system tests in `tests/tests/`: a simulated NIC brought up by
//! the real PF driver, with VMs (guest VF drivers) attached to its VFs and the far end of its
//! uplink cable in the test's hands.
//!
//! - [`Testbed`]: the board, its driver, its VMs and its uplink, with counter helpers that
//!   prove F17 on every drop ([`Testbed::expect_drop`]).
//! - [`topo`]: a fixture builder for VPCs, subnets, instances, gateways and routes, and the
//!   standard topology most conformance tests run on.
//! - [`wire`]: frame builders and parsers beyond [`frames`] (IPv4 header surgery, TCP,
//!   VXLAN parsing, DHCP client messages).
//! - [`vfio_user`] and [`bin`]: the board as a `nic-sim` process, and the workspace's
//!   binaries the tests run.
//!
//! The whole-system tests of `nicctl up` live with the nicctl crate (`nicctl/tests/`).
use host_driver::backend::sim::SimBackend;
use host_driver::{DriverError, PfDriver, StatsFunction};
use hw_sim::guest::GuestPort;
use hw_sim::vfio_user::uplink::UplinkClient;
use hw_sim::{SimConfig, UplinkPort};
use shared_regs::stats::{Counter, Counters};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vf_driver::VfDriver;
use zerocopy::FromZeros;

pub mod bin;
pub mod model;
pub mod topo;
pub mod vfio_user;
pub mod wire;

pub use nic_firmware::testing as frames;

/// How long a test waits for a frame that should arrive, or a counter that should move.
pub const ARRIVES: Duration = Duration::from_secs(2);
/// How long a test waits to be sure a frame does not arrive when it has no counter to
/// watch. Drops are proven with counters instead ([`Testbed::expect_drop`]).
pub const NEVER_ARRIVES: Duration = Duration::from_millis(50);
/// Pause between two reads of a counter that is expected to move.
const COUNTER_POLL: Duration = Duration::from_micros(500);

/// Counters of every function, by function.
pub type Snapshot = BTreeMap<StatsFunction, Counters>;

/// The far end of the uplink cable, in-process or plugged into a `nic-sim` process.
pub enum Uplink {
    /// The in-process simulator's uplink.
    Sim(UplinkPort),
    /// `PATH.uplink` of a `nic-sim --socket PATH`.
    Socket(UplinkClient),
}

impl Uplink {
    /// Puts a frame on the wire towards the NIC.
    pub fn send(&self, frame: &[u8]) {
        match self {
            Uplink::Sim(p) => p.send(frame),
            Uplink::Socket(c) => c.send(frame),
        }
    }

    /// The next frame the NIC sent, waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        match self {
            Uplink::Sim(p) => p.recv(timeout),
            Uplink::Socket(c) => c.recv(timeout),
        }
    }
}

/// A simulated NIC, its PF driver, one VM per attached VF and the uplink's far end.
///
/// [`Testbed::start`] runs the simulator in-process, except in the `vfio_user_*` test
/// binaries (or with `VPCNIC_TESTBED=vfio-user`), where it is a `nic-sim` process reached
/// through vfio-user ([`Testbed::start_vfio_user`]): that is how the scenarios of other test
/// files run once more through the vfio-user backend.
pub struct Testbed {
    pub driver: PfDriver,
    /// The far end of the uplink cable: the top-of-rack switch.
    pub uplink: Uplink,
    vf_ports: Vec<Arc<dyn GuestPort>>,
    vms: Vec<Option<VfDriver>>,
    /// Drop counters as of the last [`Testbed::expect_drop`] (or [`Testbed::mark`]).
    seen: Snapshot,
    /// The `nic-sim` process, when the board is one. Dropped last.
    _nic_sim: Option<vfio_user::NicSim>,
}

impl Testbed {
    /// Starts the simulator with `cfg` and brings it up through the PF driver: in-process,
    /// or as a `nic-sim` process when [`vfio_user::selected`] says so.
    pub fn start(cfg: SimConfig) -> Result<Testbed, DriverError> {
        if vfio_user::selected() {
            return Testbed::start_vfio_user(cfg);
        }
        let board = hw_sim::Nic::start(cfg).map_err(|e| DriverError::Backend {
            device: "simulated NIC (in-process)".into(),
            reason: format!("could not start the simulator: {e}"),
        })?;
        // The VFs belong to the VMs and the uplink to the switch, not to the driver: take
        // them before the driver owns the board.
        let vf_ports: Vec<Arc<dyn GuestPort>> = (0..board.num_vfs())
            .filter_map(|vf| board.vf(vf))
            .map(|p| Arc::new(p) as Arc<dyn GuestPort>)
            .collect();
        let uplink = Uplink::Sim(board.uplink());
        let driver = PfDriver::open(Box::new(SimBackend::on(board)))?;
        Ok(Testbed::assemble(driver, uplink, vf_ports, None))
    }

    /// Starts `nic-sim --socket PATH` with `cfg` (which must be the simulator's default
    /// tables with any number of VFs) and brings it up through the PF driver's vfio-user
    /// backend; the VMs reach their VFs through `PATH.vfN` and the switch the uplink
    /// through `PATH.uplink`.
    pub fn start_vfio_user(cfg: SimConfig) -> Result<Testbed, DriverError> {
        let sim = vfio_user::NicSim::start(cfg)?;
        let (driver, vf_ports, uplink) = sim.connect()?;
        Ok(Testbed::assemble(
            driver,
            Uplink::Socket(uplink),
            vf_ports,
            Some(sim),
        ))
    }

    fn assemble(
        driver: PfDriver,
        uplink: Uplink,
        vf_ports: Vec<Arc<dyn GuestPort>>,
        nic_sim: Option<vfio_user::NicSim>,
    ) -> Testbed {
        let vms = vf_ports.iter().map(|_| None).collect();
        let mut tb = Testbed {
            driver,
            uplink,
            vf_ports,
            vms,
            seen: Snapshot::new(),
            _nic_sim: nic_sim,
        };
        tb.seen = tb
            .functions()
            .into_iter()
            .map(|f| (f, Counters::new_zeroed()))
            .collect();
        tb
    }

    /// Boots a VM on VF `vf`: its VF driver takes the rings.
    pub fn attach_vm(&mut self, vf: u16) -> &mut VfDriver {
        let port = self.vf_ports[usize::from(vf)].clone();
        let guest = VfDriver::attach(port, 64).expect("guest VF driver attaches");
        let slot = &mut self.vms[usize::from(vf)];
        *slot = Some(guest);
        slot.as_mut().expect("just attached")
    }

    /// VF `vf` as its VM sees it (BAR registers).
    pub fn vf_port(&self, vf: u16) -> &Arc<dyn GuestPort> {
        &self.vf_ports[usize::from(vf)]
    }

    /// The VM on VF `vf`.
    pub fn vm(&mut self, vf: u16) -> &mut VfDriver {
        self.vms[usize::from(vf)]
            .as_mut()
            .expect("no VM attached to that VF")
    }

    /// The VM on VF `vf` transmits `frame`.
    pub fn send(&mut self, vf: u16, frame: &[u8]) {
        self.vm(vf)
            .send(frame)
            .unwrap_or_else(|e| panic!("VF{vf} cannot send: {e}"));
    }

    /// The next frame the VM on VF `vf` receives; fails the test after [`ARRIVES`].
    pub fn recv(&mut self, vf: u16) -> Vec<u8> {
        self.vm(vf)
            .recv(ARRIVES)
            .unwrap_or_else(|| panic!("VF{vf} received nothing within {ARRIVES:?}"))
    }

    /// The switch puts `frame` on the uplink towards the NIC.
    pub fn send_uplink(&self, frame: &[u8]) {
        self.uplink.send(frame);
    }

    /// The next frame the NIC sends out of its uplink; fails the test after [`ARRIVES`].
    pub fn recv_uplink(&self) -> Vec<u8> {
        self.uplink
            .recv(ARRIVES)
            .unwrap_or_else(|| panic!("nothing left the uplink within {ARRIVES:?}"))
    }

    /// Every function with counters: the VFs, then the uplink.
    pub fn functions(&self) -> Vec<StatsFunction> {
        let vfs = u16::try_from(self.vf_ports.len()).expect("VF count fits u16");
        (0..vfs)
            .map(StatsFunction::Vf)
            .chain([StatsFunction::Uplink])
            .collect()
    }

    /// One function's counters, read through the driver.
    pub fn counters(&self, function: StatsFunction) -> Counters {
        self.driver.stats(function).expect("GET_STATS")
    }

    /// The counters of every function.
    pub fn snapshot(&self) -> Snapshot {
        self.functions()
            .into_iter()
            .map(|f| (f, self.counters(f)))
            .collect()
    }

    /// Reads `function`'s counters until `done` holds, and returns them. Counters move in
    /// the same firmware pass that decides a frame's fate, so this is how a test waits for
    /// a frame that has no output. Fails the test after [`ARRIVES`].
    pub fn wait_counters(
        &self,
        function: StatsFunction,
        what: &str,
        done: impl Fn(&Counters) -> bool,
    ) -> Counters {
        let deadline = Instant::now() + ARRIVES;
        loop {
            let c = self.counters(function);
            if done(&c) {
                return c;
            }
            if Instant::now() >= deadline {
                panic!("{what} of {function} did not happen within {ARRIVES:?}: {c:?}");
            }
            std::thread::sleep(COUNTER_POLL);
        }
    }

    /// Waits until `counter` of `function` reaches at least `value`.
    pub fn wait_counter(&self, function: StatsFunction, counter: Counter, value: u64) -> Counters {
        self.wait_counters(
            function,
            &format!("{} reaching {value}", counter.name()),
            |c| c.get(counter) >= value,
        )
    }

    /// Takes the current drop counters as the baseline of the next [`Testbed::expect_drop`].
    pub fn mark(&mut self) {
        self.seen = self.snapshot();
    }

    /// F17 for one frame that must be dropped: waits until `reason` of `function` moves,
    /// then asserts that, across every function of the NIC, it is the one drop counter that
    /// moved since the last check, by exactly one, and that nothing came out of any VF or
    /// the uplink.
    pub fn expect_drop(&mut self, function: StatsFunction, reason: Counter) {
        assert!(reason.is_drop(), "{} is not a drop counter", reason.name());
        let before = self.seen[&function].get(reason);
        let deadline = Instant::now() + ARRIVES;
        while self.counters(function).get(reason) <= before {
            if Instant::now() >= deadline {
                panic!(
                    "{} of {function} did not move within {ARRIVES:?}; drops that moved: {:?}; \
                     frames that came out: {:?}",
                    reason.name(),
                    self.drops_moved(&self.snapshot()),
                    self.take_outputs()
                );
            }
            std::thread::sleep(COUNTER_POLL);
        }
        let now = self.snapshot();
        assert_eq!(
            self.drops_moved(&now),
            vec![format!("{} of {function} +1", reason.name())],
            "exactly one drop counter of the whole NIC moves, by one (F17)"
        );
        self.seen = now;
        self.assert_nothing_out();
    }

    /// "reason of function +n" for every drop counter of `now` that differs from the last
    /// check.
    fn drops_moved(&self, now: &Snapshot) -> Vec<String> {
        let mut moved = Vec::new();
        for (f, c) in now {
            for &d in Counter::ALL.iter().filter(|d| d.is_drop()) {
                let delta = c.get(d).wrapping_sub(self.seen[f].get(d));
                if delta != 0 {
                    moved.push(format!("{} of {f} +{delta}", d.name()));
                }
            }
        }
        moved
    }

    /// Asserts that no drop counter moved since the last check.
    pub fn assert_no_drops(&mut self) {
        let now = self.snapshot();
        assert_eq!(self.drops_moved(&now), Vec::<String>::new(), "no drop");
        self.seen = now;
    }

    /// Takes every frame waiting in an attached VM or on the uplink, described as
    /// "VF4: 60 bytes" or "uplink: 110 bytes".
    pub fn take_outputs(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (vf, vm) in self.vms.iter_mut().enumerate() {
            if let Some(vm) = vm {
                while let Some(f) = vm.try_recv() {
                    out.push(format!("VF{vf}: {} bytes", f.len()));
                }
            }
        }
        while let Some(f) = self.uplink.recv(Duration::ZERO) {
            out.push(format!("uplink: {} bytes", f.len()));
        }
        out
    }

    /// Asserts that no frame is waiting in any attached VM or on the uplink.
    pub fn assert_nothing_out(&mut self) {
        let out = self.take_outputs();
        assert!(out.is_empty(), "frames came out: {out:?}");
    }

    /// Asserts that no attached VM and not the uplink receives anything within
    /// [`NEVER_ARRIVES`].
    pub fn assert_silence(&mut self) {
        std::thread::sleep(NEVER_ARRIVES);
        self.assert_nothing_out();
    }

    /// Asserts that, of all drop counters of `function`, exactly `reason` moved, by one,
    /// since the board started.
    pub fn assert_one_drop(&self, function: StatsFunction, reason: Counter) {
        let c = self.counters(function);
        assert_eq!(c.get(reason), 1, "{} of {function}", reason.name());
        assert_eq!(c.drops(), 1, "drops of {function}");
    }
}
