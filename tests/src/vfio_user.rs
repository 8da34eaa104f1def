//! The board as a separate `nic-sim --socket PATH` process, reached through vfio-user:
//! the PF by the driver's `vfio-user:PATH` backend, each VF by a VM through `PATH.vfN`
//! ([`VfioUserPort`]), the uplink through `PATH.uplink`.
//!
//! The binary is `$VPCNIC_NIC_SIM`, or `target/<profile>/nic-sim`, built once per test
//! binary with `cargo build -p hw-sim --bin nic-sim`.
use crate::bin::workspace_binary;
use host_driver::backend::vfio_user::VfioUserBackend;
use host_driver::{DriverError, PfDriver};
use hw_sim::guest::GuestPort;
use hw_sim::vfio_user::client::VfioUserPort;
use hw_sim::vfio_user::uplink::UplinkClient;
use hw_sim::vfio_user::{uplink_socket, vf_socket};
use hw_sim::{Function, SimConfig};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

/// Whether [`crate::Testbed::start`] runs the board as a `nic-sim` process: in test
/// binaries named `vfio_user_*`, or when `VPCNIC_TESTBED=vfio-user`.
pub fn selected() -> bool {
    static SELECTED: OnceLock<bool> = OnceLock::new();
    *SELECTED.get_or_init(|| {
        if let Some(v) = std::env::var_os("VPCNIC_TESTBED") {
            return v == "vfio-user";
        }
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .is_some_and(|n| n.starts_with("vfio_user_"))
    })
}

/// The `nic-sim` binary: `$VPCNIC_NIC_SIM`, or `target/<profile>/nic-sim` of the profile
/// the tests were built with, built (or brought up to date) the first time it is needed.
pub fn nic_sim() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| workspace_binary("VPCNIC_NIC_SIM", "hw-sim", "nic-sim"))
}

/// A running `nic-sim --socket PATH` in a directory of its own; dropping it kills the
/// process and removes the directory.
pub struct NicSim {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
    num_vfs: u16,
}

fn backend_err(reason: String) -> DriverError {
    DriverError::Backend {
        device: "nic-sim".into(),
        reason,
    }
}

impl NicSim {
    /// Starts `nic-sim` with `cfg` and waits until it serves. `cfg` must be the simulator's
    /// default tables (`--tables small`) with any number of VFs.
    pub fn start(cfg: SimConfig) -> Result<NicSim, DriverError> {
        let expected = SimConfig {
            num_vfs: cfg.num_vfs,
            ..SimConfig::default()
        };
        if cfg != expected {
            return Err(backend_err(format!(
                "nic-sim runs the default tables with N VFs; {cfg:?} is not that"
            )));
        }
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vpcnic-nic-sim-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| backend_err(format!("creating {}: {e}", dir.display())))?;
        let socket = dir.join("nic.sock");
        let mut cmd = Command::new(nic_sim());
        cmd.arg("--socket")
            .arg(&socket)
            .args(["--vfs", &cfg.num_vfs.to_string(), "--tables", "small"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        // SAFETY: the closure runs in the child between fork and exec and only makes one
        // async-signal-safe system call: a test killed outright takes its nic-sim with it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| backend_err(format!("starting {}: {e}", nic_sim().display())))?;
        let mut sim = NicSim {
            dir,
            socket,
            num_vfs: cfg.num_vfs,
            child: {
                // Filled in below; the struct exists so that Drop cleans up on failure.
                let stdout = child.stdout.take();
                let mut line = String::new();
                let ready = stdout
                    .map(BufReader::new)
                    .map(|mut r| r.read_line(&mut line))
                    .is_some_and(|r| r.is_ok() && line.trim() == "ready");
                if !ready {
                    let _ = child.kill();
                    let status = child.wait();
                    return Err(backend_err(format!(
                        "nic-sim did not become ready (printed {line:?}, {status:?})"
                    )));
                }
                child
            },
        };
        if !sim.socket.exists() {
            let _ = sim.child.kill();
            return Err(backend_err(
                "nic-sim is ready but its socket is missing".into(),
            ));
        }
        Ok(sim)
    }

    /// The PF's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Connects as the host (the PF driver), the VMs (a port per VF) and the switch (the
    /// uplink).
    #[allow(clippy::type_complexity)]
    pub fn connect(
        &self,
    ) -> Result<(PfDriver, Vec<Arc<dyn GuestPort>>, UplinkClient), DriverError> {
        let driver = PfDriver::open(Box::new(VfioUserBackend::open(&self.socket)?))?;
        let mut vfs: Vec<Arc<dyn GuestPort>> = Vec::new();
        for vf in 0..self.num_vfs {
            let port = VfioUserPort::connect(&vf_socket(&self.socket, vf), Function::Vf(vf))
                .map_err(|e| backend_err(e.to_string()))?;
            vfs.push(Arc::new(port));
        }
        let uplink = UplinkClient::connect(&uplink_socket(&self.socket))
            .map_err(|e| backend_err(e.to_string()))?;
        Ok((driver, vfs, uplink))
    }
}

impl Drop for NicSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
