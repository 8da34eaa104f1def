//! `nic-sim --socket PATH`: the simulated vpcnic board as its own process, serving each PCI
//! function as a vfio-user device (see `hw_sim::vfio_user`):
//!
//! - `PATH`: the PF, for `nicctl --device vfio-user:PATH ...`;
//! - `PATH.vf0` ... `PATH.vfN-1`: the VFs, for the VMs;
//! - `PATH.uplink`: the far end of the uplink cable (length-prefixed frames).
//!
//! Every socket is mode 0600 from the moment it exists, whatever the umask. It prints
//! `ready` on stdout once every socket listens, then serves until it is killed.
use hw_sim::{Nic, SimConfig};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: nic-sim --socket PATH [--vfs N] [--tables cloud|small]

Serves the simulated vpcnic board over vfio-user: the PF at PATH, VF n at PATH.vfn, the
uplink cable at PATH.uplink. None of these may exist yet. Each socket is mode 0600,
whatever the umask: only the user running nic-sim can connect.

  --socket PATH   where the PF's vfio-user socket goes
  --vfs N         VFs the board exposes (default 8)
  --tables KIND   table capacities: cloud (a cloud NIC's, as nicctl --device sim; the
                  default) or small (the simulator's defaults, for tests)";

struct Args {
    socket: PathBuf,
    cfg: SimConfig,
}

/// Why the command line gives no [`Args`].
#[derive(Debug, thiserror::Error)]
enum ArgsError {
    #[error("help asked for")]
    Help,
    #[error("{0} needs a value")]
    NoValue(&'static str),
    #[error("--vfs {0}: not a number of VFs")]
    Vfs(String),
    #[error("--tables {0}: expected cloud or small")]
    Tables(String),
    #[error("unexpected argument {0:?}")]
    Unexpected(String),
    #[error("--socket PATH is required")]
    NoSocket,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, ArgsError> {
    let mut socket = None;
    let mut vfs: u16 = 8;
    let mut small = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &'static str| args.next().ok_or(ArgsError::NoValue(name));
        match arg.as_str() {
            "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
            "--vfs" => {
                let v = value("--vfs")?;
                vfs = v.parse().map_err(|_| ArgsError::Vfs(v))?;
            }
            "--tables" => match value("--tables")?.as_str() {
                "cloud" => small = false,
                "small" => small = true,
                other => return Err(ArgsError::Tables(other.into())),
            },
            "-h" | "--help" => return Err(ArgsError::Help),
            other => return Err(ArgsError::Unexpected(other.into())),
        }
    }
    let socket = socket.ok_or(ArgsError::NoSocket)?;
    let cfg = if small {
        SimConfig {
            num_vfs: vfs,
            ..SimConfig::default()
        }
    } else {
        SimConfig::cloud_scale(vfs)
    };
    Ok(Args { socket, cfg })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(ArgsError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("nic-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let nic = match Nic::start(args.cfg) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("nic-sim: cannot start the simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = match hw_sim::vfio_user::server::serve(&nic, &args.socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nic-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let names: Vec<String> = served
        .sockets
        .iter()
        .map(|s| s.display().to_string())
        .collect();
    eprintln!("nic-sim: serving {}", names.join(", "));
    println!("ready");
    loop {
        std::thread::park();
    }
}
