//! The deployment's device watchdog: each host's NIC is watched (`STATUS.FATAL`, the
//! heartbeat) every few milliseconds; a faulty one is reset, its tables programmed again
//! from the host's plan, and its VMs' VFs started again, with no one's help. Every reset
//! is kept, with its cause and how long the recovery took (`nicctl status` shows them).
use super::deployment::{Deployment, UpError};
use crate::config::plan;
use crate::control::ResetLine;
use host_driver::health::Fault;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How long an unmoving heartbeat is tolerated: the firmware moves it every millisecond,
/// and a busy machine may not schedule the device thread for tens of them.
pub const STALL_AFTER: std::time::Duration = std::time::Duration::from_millis(60);
/// How often every host is looked at.
pub const PERIOD: std::time::Duration = std::time::Duration::from_millis(5);

impl Deployment {
    /// Recovers host `h`'s NIC from `fault`, seen at `seen`: reset and bring-up, the plan's
    /// tables, every VM of the host plugged into its VF again. Records the reset.
    pub fn recover_host(&mut self, h: usize, fault: &Fault, seen: Instant) {
        let name = self.hosts[h].name.clone();
        let result = self.recover_nic(h);
        let line = ResetLine {
            host: name.clone(),
            cause: fault.to_string(),
            recovery_ms: seen.elapsed().as_secs_f64() * 1000.0,
            at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            error: result.err().map(|e| e.to_string()).unwrap_or_default(),
        };
        eprintln!(
            "up: host {name}: {}; reset and reprogrammed in {:.1} ms{}",
            line.cause,
            line.recovery_ms,
            if line.error.is_empty() {
                String::new()
            } else {
                format!(" (failed: {})", line.error)
            }
        );
        self.resets.push(line);
    }

    fn recover_nic(&mut self, h: usize) -> Result<(), UpError> {
        let host = &self.hosts[h];
        let fail = |reason: String| UpError::Host {
            host: host.name.clone(),
            reason,
        };
        host.driver
            .recover()
            .map_err(|e| fail(format!("reset: {e}")))?;
        plan::apply(&host.driver, &host.plan, |_, _| {})
            .map_err(|e| fail(format!("reprogramming: {e}")))?;
        let name = host.name.clone();
        for i in 0..self.vms.len() {
            if self.vms[i].placement().host != name {
                continue;
            }
            let vm_name = self.vms[i].name().to_string();
            // The same VF: its old driver lets go (and unmaps the VM's memory) first.
            self.vms[i].unplug();
            let (guest, vf) = self.hosts[h].attach_vf(&vm_name).map_err(fail)?;
            let placement = super::instance::Placement {
                host: name.clone(),
                vf,
            };
            self.vms[i].replug(placement, guest)?;
        }
        Ok(())
    }

    /// Makes host `host`'s simulated NIC fail: `hang` or `fatal`.
    pub fn inject_fault(&self, host: &str, kind: &str) -> Result<(), String> {
        let h = self
            .hosts
            .iter()
            .find(|n| n.name == host)
            .ok_or_else(|| format!("no host {host} runs here"))?;
        match kind {
            "hang" => h.faults.hang_firmware(),
            "fatal" => h.faults.fatal_firmware(),
            other => return Err(format!("{other:?} is not a fault: hang or fatal")),
        }
        Ok(())
    }
}
