//! `nicctl`: look at and control a vpcnic SmartNIC through its PF driver.
use clap::{Parser, Subcommand};
use host_driver::backend::open_by_name;
use host_driver::config::{self, ApplyError, Config, ConfigErrors, Limits, Plan};
use host_driver::flow::{frame_for, FlowSpec};
use host_driver::report::{
    apply_summary, check_summary, info_text, stats_functions, stats_json, stats_table, trace_text,
};
use host_driver::{DriverError, PfDriver, Port};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "nicctl",
    version,
    about = "Control a vpcnic SmartNIC through its physical function"
)]
struct Cli {
    /// The device to open: `sim` is the built-in in-process simulator.
    #[arg(long, global = true, default_value = "sim")]
    device: String,

    /// VFs of the simulated NIC (with `--device sim`).
    #[arg(long, global = true, default_value_t = 8)]
    vfs: u16,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Device identity, ABI version, capabilities, table capacities and heartbeat.
    Info,
    /// Counters of VFs and the uplink (all of them unless some are named).
    Stats {
        /// A VF to report (repeatable).
        #[arg(long = "vf", value_name = "N")]
        vf: Vec<u16>,
        /// Report the uplink.
        #[arg(long)]
        uplink: bool,
        /// Print JSON: {function: {counter: value}}.
        #[arg(long)]
        json: bool,
    },
    /// Validate a VPC description file; program nothing.
    Check {
        /// The VPC file (TOML).
        file: PathBuf,
    },
    /// Validate a VPC file and program the NIC with it (on the built-in simulator, the
    /// tables last as long as the command).
    Apply {
        file: PathBuf,
        /// The host of the file whose NIC this is (default: the first).
        #[arg(long)]
        host: Option<String>,
    },
    /// Bring a VPC file to life on simulated NICs: a network namespace per instance whose
    /// eth0 crosses its VF's rings and the firmware, a namespace per gateway, the underlay.
    /// Prints `ready`, serves until SIGINT or SIGTERM, then removes all it made.
    Up {
        file: PathBuf,
        /// Address the VMs with a DHCP client (the firmware's server) instead.
        #[arg(long)]
        dhcp: bool,
    },
    /// Program a NIC from a VPC file, then trace one frame through its pipeline.
    Trace {
        file: PathBuf,
        /// The port the frame arrives on: vfN or uplink.
        #[arg(long = "in", value_name = "PORT", value_parser = parse_port)]
        port: Port,
        /// The frame in hex (spaces and colons allowed).
        #[arg(long, conflicts_with = "flow", required_unless_present = "flow")]
        frame: Option<String>,
        /// A flow: arp|icmp|udp|tcp|ipv6[,src=IP][,dst=IP][,sport=N][,dport=N].
        #[arg(long)]
        flow: Option<String>,
        /// The host of the file whose NIC this is (default: the first).
        #[arg(long)]
        host: Option<String>,
    },
}

/// Everything `nicctl` reports as a failure.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("{file}: {} error{}:\n{}", .errors.0.len(), if .errors.0.len() == 1 { "" } else { "s" }, indent(&.errors.to_string()))]
    Config { file: String, errors: ConfigErrors },
    #[error("{file}: {error}")]
    Apply {
        file: String,
        error: Box<ApplyError>,
    },
    #[error("{0}")]
    Usage(String),
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

type Result<T> = std::result::Result<T, CliError>;

fn parse_port(text: &str) -> std::result::Result<Port, String> {
    if text == "uplink" {
        return Ok(Port::Uplink);
    }
    text.strip_prefix("vf")
        .and_then(|n| n.parse().ok())
        .map(Port::Vf)
        .ok_or_else(|| format!("{text:?} is not a port: vf0, vf1, ... or uplink"))
}

fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let bad = |why: String| CliError::Usage(format!("--frame: {why}"));
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(bad(format!("{c:?} is not a hex digit")));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(bad(format!(
            "{} hex digits is not a whole number of bytes",
            digits.len()
        )));
    }
    Ok((0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits"))
        .collect())
}

fn load(file: &Path, limits: &Limits) -> Result<Config> {
    config::load(file, limits).map_err(|errors| CliError::Config {
        file: file.display().to_string(),
        errors,
    })
}

/// The NIC a command about a VPC file works on. Today it is always a NIC opened here and
/// programmed from the file; once `nicctl up` runs, a running instance will be another
/// source (the same calls, served by it).
struct Programmed {
    driver: PfDriver,
    config: Config,
    plan: Plan,
}

impl Programmed {
    fn open(cli: &Cli, file: &Path, host: Option<&str>) -> Result<Programmed> {
        let driver = PfDriver::open(open_by_name(&cli.device, cli.vfs)?)?;
        let config = load(file, &Limits::from_info(driver.info()))?;
        let host = host.unwrap_or(&config.hosts[0].name).to_string();
        let plan = config::plan(&config, &host).map_err(CliError::Usage)?;
        let bar = (plan.commands.len() > 1000).then(|| progress_bar(plan.commands.len()));
        config::apply(&driver, &plan, |done, _| {
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
        Ok(Programmed {
            driver,
            config,
            plan,
        })
    }
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

/// Blocks SIGINT and SIGTERM in this thread and every thread it starts later, so that
/// [`wait_for_stop`] receives them instead of the default action killing the process with
/// namespaces left behind.
fn block_stop_signals() -> libc::sigset_t {
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

/// Waits for SIGINT or SIGTERM and returns its name.
fn wait_for_stop(set: &libc::sigset_t) -> &'static str {
    let mut sig = 0;
    // SAFETY: `set` was initialised by block_stop_signals; `sig` outlives the call.
    unsafe { libc::sigwait(set, &mut sig) };
    if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

fn up(file: &Path, dhcp: bool) -> Result<String> {
    use host_driver::vm::{Deployment, UpOptions};
    let signals = block_stop_signals();
    let config = load(file, &Limits::vfs(u32::from(hw_sim::MAX_VFS)))?;
    let deployment = Deployment::up(
        &config,
        &UpOptions { dhcp },
        &mut |step| eprintln!("up: {step}"),
        &mut |_| None,
    )
    .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    println!("ready");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let sig = wait_for_stop(&signals);
    eprintln!("up: {sig}: removing every namespace and device");
    drop(deployment);
    Ok(String::new())
}

fn run(cli: Cli) -> Result<String> {
    match &cli.command {
        Command::Up { file, dhcp } => up(file, *dhcp),
        Command::Check { file } => {
            let config = load(file, &Limits::vfs(u32::from(cli.vfs)))?;
            Ok(check_summary(&file.display().to_string(), &config))
        }
        Command::Apply { file, host } => {
            let nic = Programmed::open(&cli, file, host.as_deref())?;
            Ok(apply_summary(
                &nic.driver.info().device,
                &nic.config,
                &nic.plan,
            ))
        }
        Command::Trace {
            file,
            port,
            frame,
            flow,
            host,
        } => {
            let nic = Programmed::open(&cli, file, host.as_deref())?;
            let (frame, title) = match (frame, flow) {
                (Some(hex), _) => (parse_hex(hex)?, "frame given in hex".to_string()),
                (None, Some(flow)) => {
                    let spec = FlowSpec::parse(flow).map_err(CliError::Usage)?;
                    let frame =
                        frame_for(&nic.config, &nic.plan, *port, &spec).map_err(CliError::Usage)?;
                    (frame, flow.clone())
                }
                (None, None) => return Err(CliError::Usage("give --frame or --flow".into())),
            };
            let report = nic.driver.trace(*port, &frame)?;
            Ok(format!(
                "Flow: {title}, {} bytes in on {port} (host {})\n\n{}",
                frame.len(),
                nic.plan.host,
                trace_text(&report)
            ))
        }
        Command::Info => {
            let driver = PfDriver::open(open_by_name(&cli.device, cli.vfs)?)?;
            Ok(info_text(driver.info(), driver.heartbeat()?))
        }
        Command::Stats { vf, uplink, json } => {
            let driver = PfDriver::open(open_by_name(&cli.device, cli.vfs)?)?;
            let functions = stats_functions(driver.info(), vf, *uplink)?;
            let columns = functions
                .into_iter()
                .map(|f| Ok((f, driver.stats(f)?)))
                .collect::<std::result::Result<Vec<_>, DriverError>>()?;
            if *json {
                Ok(format!("{:#}\n", stats_json(&columns)))
            } else {
                Ok(stats_table(&columns))
            }
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut msg = format!("nicctl: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_stats_flags_parse() {
        let cli = Cli::parse_from(["nicctl", "info"]);
        assert_eq!((cli.device.as_str(), cli.vfs), ("sim", 8));
        let cli = Cli::parse_from([
            "nicctl", "stats", "--vf", "1", "--vf", "3", "--uplink", "--json", "--vfs", "4",
        ]);
        assert_eq!(cli.vfs, 4);
        let Command::Stats { vf, uplink, json } = cli.command else {
            panic!("not stats");
        };
        assert_eq!((vf, uplink, json), (vec![1, 3], true, true));
    }

    #[test]
    fn unknown_device_is_a_clear_error() {
        let cli = Cli::parse_from(["nicctl", "--device", "pci", "info"]);
        let err = run(cli).unwrap_err().to_string();
        assert!(
            err.starts_with("unknown device \"pci\"; known devices:"),
            "{err}"
        );
    }

    #[test]
    fn ports_and_hex_frames_parse() {
        assert_eq!(parse_port("vf3"), Ok(Port::Vf(3)));
        assert_eq!(parse_port("uplink"), Ok(Port::Uplink));
        assert_eq!(
            parse_port("eth0").unwrap_err(),
            "\"eth0\" is not a port: vf0, vf1, ... or uplink"
        );
        assert_eq!(parse_hex("ff:00 0A\n01").unwrap(), [0xff, 0, 10, 1]);
        assert_eq!(
            parse_hex("abc").unwrap_err().to_string(),
            "--frame: 3 hex digits is not a whole number of bytes"
        );
        assert_eq!(
            parse_hex("0g").unwrap_err().to_string(),
            "--frame: 'g' is not a hex digit"
        );
        let cli = Cli::try_parse_from(["nicctl", "trace", "f.toml", "--in", "vf0"]);
        assert!(cli.is_err(), "--frame or --flow is required");
    }
}
