//! One module per command. The commands that look at NICs take them as [`Nics`], from
//! [`nics`] (a running `nicctl up` or the device) or [`programmed`] (fresh simulated NICs
//! programmed from a VPC file), so each is written once whatever it talks to.
pub mod agent;
pub mod apply;
pub mod capture;
pub mod check;
pub mod diff;
pub mod info;
pub mod port;
pub mod show;
pub mod stats;
pub mod status;
pub mod trace;
pub mod up;
pub mod vfs;

use crate::Cli;
use host_driver::backend::open_by_name;
use host_driver::PfDriver;
use nicctl::config::{self, Config, Limits, Plan};
use nicctl::control::client::Remote;
use nicctl::control::find_socket;
use nicctl::nics::{Local, Nics};
use nicctl::up::state::Registry;
use nicctl::{CliError, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The device `--device` names (default: the built-in simulator), its driver opened.
pub fn open_device(cli: &Cli) -> Result<PfDriver> {
    Ok(PfDriver::open(open_by_name(cli.device(), cli.vfs)?)?)
}

/// The URLs of `--etcd`, for a command that needs them.
pub fn etcd(cli: &Cli, what: &str) -> Result<String> {
    cli.etcd
        .clone()
        .ok_or_else(|| CliError::Usage(format!("{what} needs --etcd URLS")))
}

/// Runs `f` on a fresh runtime (etcd's client is async).
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let rt = nicctl::cluster::runtime().map_err(|e| CliError::Usage(format!("tokio: {e}")))?;
    rt.block_on(f)
}

/// The running `nicctl up` a command talks to: `--socket`, else the one running (unless
/// `--device` was given).
pub fn running(cli: &Cli) -> Result<Option<PathBuf>> {
    if cli.socket.is_none() && cli.device.is_some() {
        return Ok(None);
    }
    Ok(find_socket(cli.socket.as_deref(), &Registry::default())?)
}

/// The NICs of the running `nicctl up` if one runs (or `--socket` names one), else the
/// device's.
pub fn nics(cli: &Cli) -> Result<Box<dyn Nics>> {
    Ok(match running(cli)? {
        Some(path) => Box::new(Remote::connect(&path)?),
        // A fresh simulator's zeros would look like a deployment's: only when asked for.
        None if cli.device.is_none() => return Err(no_deployment()),
        None => Box::new(Local::device(open_device(cli)?)),
    })
}

/// No `nicctl up` runs and no `--device` was given: says so, and whether the last
/// deployment died.
fn no_deployment() -> CliError {
    let dead = Registry::default()
        .records()
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| !nicctl::up::state::is_live(r))
        .max_by_key(|r| r.start_time);
    let last = match dead {
        Some(r) => format!(
            ": the last one (pid {}, {}) died; the next `nicctl up` removes what it left",
            r.pid, r.file
        ),
        None => String::new(),
    };
    CliError::Usage(format!(
        "no `nicctl up` is running{last}; `nicctl up FILE` starts one, `--device sim` looks \
         at a fresh simulated NIC"
    ))
}

/// Reads and validates a VPC file.
pub fn load(file: &Path, limits: &Limits) -> Result<Config> {
    config::load(file, limits).map_err(|errors| CliError::Config {
        file: file.display().to_string(),
        errors,
    })
}

/// Fresh NICs programmed from the VPC file `file`: one for each host `which` picks among
/// the file's hosts (the others are not opened).
pub fn programmed(
    cli: &Cli,
    file: &Path,
    which: impl FnOnce(&Local) -> Result<Vec<usize>>,
) -> Result<Local> {
    let first = open_device(cli)?;
    let config = load(file, &Limits::from_info(first.info()))?;
    let mut nics = Local::of_file(config)?;
    let mut first = Some(first);
    for h in which(&nics)? {
        let driver = match first.take() {
            Some(d) => d,
            None => open_device(cli)?,
        };
        // What the NIC holds keeps its IDs; a fresh one gets the file's order.
        let name = nics.hosts()[h].name.clone();
        let held = config::held(&driver).map_err(|error| CliError::Apply {
            file: file.display().to_string(),
            error: Box::new(error),
        })?;
        let vfs = u16::try_from(driver.info().num_vfs).unwrap_or(u16::MAX);
        let config = nics
            .config()
            .ok_or_else(|| CliError::Usage(format!("{} has no hosts", file.display())))?;
        let plan = config::plan_against(config, &name, &held, vfs)?;
        program(&driver, &plan, file)?;
        nics.attach(h, Arc::new(driver), plan);
    }
    Ok(nics)
}

/// Brings a NIC to `plan` (a progress bar for large changes).
pub fn program(driver: &PfDriver, plan: &Plan, file: &Path) -> Result<()> {
    let bar = (plan.commands.len() > 1000).then(|| progress_bar(plan.commands.len()));
    config::apply(driver, plan, |done, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    })
    .map_err(|error| CliError::Apply {
        file: file.display().to_string(),
        error: Box::new(error),
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(())
}

fn progress_bar(total: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} commands ({eta} left)")
    {
        bar.set_style(style);
    }
    bar
}

/// A JSON value as nicctl prints it.
pub fn json(value: &impl serde::Serialize) -> Result<String> {
    let value = serde_json::to_value(value).map_err(|e| CliError::Protocol(e.to_string()))?;
    Ok(format!("{value:#}\n"))
}

/// Blocks SIGINT and SIGTERM in this thread and every thread it starts later, so that
/// [`wait_for_stop`] receives them instead of the default action killing the process with
/// namespaces left behind.
pub fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it before use, and
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits up to `timeout` for SIGINT or SIGTERM; returns its name if one came.
pub fn stop_within(set: &libc::sigset_t, timeout: std::time::Duration) -> Option<&'static str> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    // SAFETY: `set` was initialised by block_stop_signals; `ts` outlives the call, and a
    // null siginfo pointer is allowed.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    match sig {
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}

/// Waits for SIGINT or SIGTERM and returns its name.
pub fn wait_for_stop(set: &libc::sigset_t) -> &'static str {
    let mut sig = 0;
    // SAFETY: `set` was initialised by block_stop_signals; `sig` outlives the call.
    unsafe { libc::sigwait(set, &mut sig) };
    if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}
