//! The device's health as a watchdog sees it, as mlx5's health poll and ENA's keep-alive
//! watch theirs: `STATUS.FATAL` set, or a heartbeat that stopped moving. The firmware moves
//! `HEARTBEAT` at least every millisecond while it runs, so a counter unchanged for
//! [`Watch::stall_after`] means it hangs. Recovery is [`crate::PfDriver::recover`].
use crate::PfDriver;
use shared_regs::pf;
use std::time::{Duration, Instant};

/// What is wrong with the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The firmware set `STATUS.FATAL`.
    Fatal { status: u32 },
    /// `HEARTBEAT` stayed at `heartbeat` for `stalled`.
    Stalled { heartbeat: u32, stalled: Duration },
    /// The device did not answer a register read.
    Unreachable { reason: String },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Fatal { status } => write!(f, "firmware fatal error (STATUS {status:#010x})"),
            Fault::Stalled { heartbeat, stalled } => write!(
                f,
                "firmware hung (HEARTBEAT stuck at {heartbeat} for {} ms)",
                stalled.as_millis()
            ),
            Fault::Unreachable { reason } => write!(f, "device unreachable: {reason}"),
        }
    }
}

/// One device's watch: call [`Watch::check`] often (every few milliseconds).
#[derive(Debug)]
pub struct Watch {
    last: Option<u32>,
    since: Instant,
    stall_after: Duration,
}

impl Watch {
    /// A watch that calls a heartbeat unchanged for `stall_after` a hang.
    pub fn new(stall_after: Duration) -> Watch {
        Watch {
            last: None,
            since: Instant::now(),
            stall_after,
        }
    }

    /// How long an unmoving heartbeat is tolerated.
    pub fn stall_after(&self) -> Duration {
        self.stall_after
    }

    /// Starts over (after a recovery).
    pub fn rearm(&mut self) {
        self.last = None;
        self.since = Instant::now();
    }

    /// The device's fault, if it has one now.
    pub fn check(&mut self, drv: &PfDriver) -> Option<Fault> {
        let unreachable = |e: crate::DriverError| Fault::Unreachable {
            reason: e.to_string(),
        };
        let status = match drv.device().read32(pf::STATUS) {
            Ok(s) => s,
            Err(e) => return Some(unreachable(e)),
        };
        if pf::Status::from_bits_retain(status).contains(pf::Status::FATAL) {
            return Some(Fault::Fatal { status });
        }
        let heartbeat = match drv.heartbeat() {
            Ok(h) => h,
            Err(e) => return Some(unreachable(e)),
        };
        if self.last != Some(heartbeat) {
            self.last = Some(heartbeat);
            self.since = Instant::now();
            return None;
        }
        let stalled = self.since.elapsed();
        (stalled > self.stall_after).then_some(Fault::Stalled { heartbeat, stalled })
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;
    use crate::backend::sim::SimBackend;

    fn wait_fault(w: &mut Watch, d: &PfDriver) -> Fault {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(f) = w.check(d) {
                return f;
            }
            assert!(Instant::now() < deadline, "no fault seen");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_hang_and_a_fatal_error_are_seen_and_a_recovery_brings_the_device_back() {
        let nic = hw_sim::Nic::start(hw_sim::SimConfig::default()).unwrap();
        let faults = nic.faults();
        let d = PfDriver::open(Box::new(SimBackend::on(nic))).unwrap();
        let vpc = crate::VpcSpec {
            id: 0,
            vni: 7,
            cidr: (std::net::Ipv4Addr::new(10, 0, 0, 0), 16),
            main_route_table: None,
            dns: Vec::new(),
            domain: None,
        };
        d.add_vpc(&vpc).unwrap();
        let mut w = Watch::new(Duration::from_millis(50));
        for _ in 0..20 {
            assert_eq!(w.check(&d), None, "a healthy device");
            std::thread::sleep(Duration::from_millis(5));
        }
        faults.hang_firmware();
        let f = wait_fault(&mut w, &d);
        assert!(matches!(f, Fault::Stalled { .. }), "{f}");
        d.recover().unwrap();
        w.rearm();
        // Empty tables: the caller reprograms them.
        assert!(d.read_tables().unwrap().vpcs.is_empty());
        d.add_vpc(&vpc).unwrap();
        faults.fatal_firmware();
        let f = wait_fault(&mut w, &d);
        assert!(matches!(f, Fault::Fatal { .. }), "{f}");
        d.recover().unwrap();
        w.rearm();
        for _ in 0..20 {
            assert_eq!(w.check(&d), None, "healthy again");
            std::thread::sleep(Duration::from_millis(5));
        }
        d.add_vpc(&vpc).unwrap();
    }
}
