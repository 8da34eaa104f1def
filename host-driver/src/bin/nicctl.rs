//! `nicctl`: look at and control a vpcnic SmartNIC through its PF driver.
use clap::{Parser, Subcommand};
use host_driver::backend::open_by_name;
use host_driver::config::{self, ApplyError, Config, ConfigErrors, Limits, Plan};
use host_driver::control::{self, resolve_port, ControlError, Request};
use host_driver::flow::{frame_for, FlowSpec};
use host_driver::port::port_text;
use host_driver::report::{
    apply_summary, check_summary, info_text, stats_functions, stats_json, stats_table, trace_text,
};
use host_driver::show::{show_text, HostTables, Names};
use host_driver::sriov::{self, SriovError, Sysfs};
use host_driver::vf_token::VfTokens;
use host_driver::{DriverError, PfDriver, StatsFunction};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "nicctl",
    version,
    about = "Control a vpcnic SmartNIC through its physical function"
)]
struct Cli {
    /// The device to open: `sim` is the built-in in-process simulator (the default);
    /// `vfio:<PCI address>` a real PF bound to vfio-pci; `vfio-user:<socket>` a simulator
    /// process (`nic-sim --socket <socket>`). Without it, `stats`, `show` and `trace` without
    /// FILE talk to a running `nicctl up`, if one runs.
    #[arg(long, global = true)]
    device: Option<String>,

    /// VFs of the simulated NIC (with `--device sim`).
    #[arg(long, global = true, default_value_t = 8)]
    vfs: u16,

    /// The control socket of a running `nicctl up` (default: the one running deployment's,
    /// found in /run/vpcnic); for `up`, where to serve it.
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The device to open when no running `nicctl up` is used.
    fn device(&self) -> &str {
        self.device.as_deref().unwrap_or("sim")
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Device identity, ABI version, capabilities, table capacities and heartbeat.
    Info,
    /// Counters of VFs and the uplink (all of them unless some are named), of a running
    /// `nicctl up`'s NIC or of the device.
    Stats {
        /// A VF to report (repeatable): its number, or with a running `nicctl up` an
        /// instance's name.
        #[arg(long = "vf", value_name = "N|INSTANCE")]
        vf: Vec<String>,
        /// Report the uplink.
        #[arg(long)]
        uplink: bool,
        /// Print JSON: {function: {counter: value}}.
        #[arg(long)]
        json: bool,
        /// The host whose NIC to report, with a running `nicctl up` (default: the named
        /// instances' host, else the first).
        #[arg(long)]
        host: Option<String>,
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
    /// Trace one frame through a NIC's pipeline (dry run): the running `nicctl up`'s, or
    /// with FILE a fresh NIC programmed from the VPC file.
    Trace {
        /// A VPC file: trace on a fresh simulated NIC programmed from it instead.
        file: Option<PathBuf>,
        /// The port the frame arrives on: vfN, uplink, or an instance's name (its VF on its
        /// host).
        #[arg(long = "in", value_name = "PORT")]
        port: String,
        /// The frame in hex (spaces and colons allowed).
        #[arg(long, conflicts_with = "flow", required_unless_present = "flow")]
        frame: Option<String>,
        /// A flow: arp|icmp|udp|tcp|ipv6[,src=IP][,dst=IP][,sport=N][,dport=N].
        #[arg(long)]
        flow: Option<String>,
        /// The host of the file whose NIC this is (default: the instance's, else the first).
        #[arg(long)]
        host: Option<String>,
    },
    /// The tables as the NIC holds them (VFs, VPCs, subnets, route tables, gateways,
    /// mappings): the running `nicctl up`'s NICs, with FILE a fresh NIC programmed from the
    /// VPC file, else the device's.
    Show {
        /// A VPC file: show fresh simulated NICs programmed from it instead.
        file: Option<PathBuf>,
        /// Only this host's NIC.
        #[arg(long)]
        host: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The uplink port: the SFP module as the firmware read it from the module's EEPROM
    /// (identifier, vendor, part number, serial), the link and the LEDs; of the running
    /// `nicctl up`'s NICs, else the device's.
    Port {
        /// Only this host's NIC (with a running `nicctl up`).
        #[arg(long)]
        host: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What the running `nicctl up` runs: its file, hosts and their VFs, gateways, and the
    /// underlay namespace (where `tcpdump -i br-hosts` sees VXLAN).
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the frames an instance of the running `nicctl up` sends and receives to a
    /// pcap file, until interrupted (or COUNT frames, or N seconds).
    Capture {
        /// The instance whose VF to capture.
        instance: String,
        /// The pcap file to write.
        #[arg(short = 'w', value_name = "FILE.pcap")]
        write: PathBuf,
        /// Stop after this many frames.
        #[arg(short = 'c', value_name = "COUNT")]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long, value_name = "N")]
        seconds: Option<f64>,
    },
    /// SR-IOV virtual functions of a PF (through sysfs; `enable` needs root).
    Vfs {
        #[command(subcommand)]
        action: VfsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum VfsCommand {
    /// Create N VFs on the PF (writes sriov_numvfs) and bind each to vfio-pci.
    Enable {
        /// How many VFs (0 removes them).
        count: u32,
        /// The PF's PCI address, e.g. 0000:03:00.0.
        #[arg(long, value_name = "BDF")]
        pf: String,
    },
    /// Each VF's PCI address, IOMMU group, driver and the instance of a running
    /// `nicctl up` it serves.
    List {
        /// Only this PF's VFs.
        #[arg(long, value_name = "BDF")]
        pf: Option<String>,
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
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Sriov(#[from] SriovError),
    /// The VF token file (its message names it).
    #[error("VF token: {0}")]
    VfToken(std::io::Error),
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

type Result<T> = std::result::Result<T, CliError>;

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
    /// Opens the device, loads `file` and programs the plan of the host `host` picks.
    fn open(
        cli: &Cli,
        file: &Path,
        host: impl FnOnce(&Config) -> Result<String>,
    ) -> Result<Programmed> {
        let driver = PfDriver::open(open_by_name(cli.device(), cli.vfs)?)?;
        let config = load(file, &Limits::from_info(driver.info()))?;
        let host = host(&config)?;
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

    /// The host named, else the file's first.
    fn host_or_first(host: Option<&str>) -> impl FnOnce(&Config) -> Result<String> + '_ {
        move |config: &Config| Ok(host.unwrap_or(&config.hosts[0].name).to_string())
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

fn up(cli: &Cli, file: &Path, dhcp: bool) -> Result<String> {
    use host_driver::vm::console::UpConsole;
    use host_driver::vm::{Deployment, Server, UpOptions};
    let signals = block_stop_signals();
    let config = load(file, &Limits::vfs(u32::from(hw_sim::MAX_VFS)))?;
    let mut console = UpConsole::default();
    let opts = UpOptions {
        dhcp,
        state_dir: None,
        source: file.display().to_string(),
    };
    let failed = |e: &dyn std::fmt::Display| CliError::Usage(format!("{}: {e}", file.display()));
    let mut deployment = Deployment::up(&config, &opts, &mut |p| console.show(p), &mut |_| None)
        .map_err(|e| failed(&e))?;
    let socket = match &cli.socket {
        Some(s) => s.clone(),
        None => deployment
            .state_file()
            .map(|f| f.with_extension("sock"))
            .unwrap_or_else(|| PathBuf::from("/run/vpcnic/nicctl.sock")),
    };
    let server = Server::start(&deployment, &socket).map_err(|e| failed(&e))?;
    deployment
        .record_socket(Some(socket.clone()))
        .map_err(|e| failed(&e))?;
    eprintln!(
        "up: nicctl stats, show, trace and capture talk to it at {}",
        socket.display()
    );
    println!("ready");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let sig = wait_for_stop(&signals);
    eprintln!("up: {sig}: removing every namespace and device");
    drop(server);
    drop(deployment);
    Ok(String::new())
}

/// Where `stats`, `show` and `trace` get their answers.
enum Source {
    /// A running `nicctl up`'s control socket.
    Running(PathBuf),
    /// A device opened here.
    Device,
}

impl Source {
    /// `--socket` if given, else `--device` if given, else the running `nicctl up` if one
    /// runs, else the device.
    fn of(cli: &Cli) -> Result<Source> {
        if cli.socket.is_none() && cli.device.is_some() {
            return Ok(Source::Device);
        }
        let registry = host_driver::vm::state::Registry::default();
        Ok(
            match control::find_socket(cli.socket.as_deref(), &registry).map_err(CliError::Usage)? {
                Some(path) => Source::Running(path),
                None => Source::Device,
            },
        )
    }

    fn client(path: &Path) -> Result<control::Client> {
        Ok(control::Client::connect(path)?)
    }
}

fn stats(cli: &Cli, vf: &[String], uplink: bool, json: bool, host: Option<&str>) -> Result<String> {
    let columns = match Source::of(cli)? {
        Source::Running(path) => {
            let reply: control::StatsReply = Source::client(&path)?.call(&Request::Stats {
                host: host.map(String::from),
                vfs: vf.to_vec(),
                uplink,
            })?;
            let columns = reply
                .columns
                .iter()
                .map(|c| c.decode())
                .collect::<std::result::Result<Vec<_>, String>>()
                .map_err(CliError::Usage)?;
            if json {
                return Ok(format!("{:#}\n", stats_json(&columns)));
            }
            let named: Vec<String> = reply
                .columns
                .iter()
                .filter_map(|c| Some(format!("{} {}", c.function, c.instance.as_ref()?)))
                .collect();
            let mut out = format!("host {}", reply.host);
            if !named.is_empty() {
                out.push_str(&format!(": {}", named.join(", ")));
            }
            out.push('\n');
            out.push_str(&stats_table(&columns));
            return Ok(out);
        }
        Source::Device => {
            if let Some(h) = host {
                return Err(CliError::Usage(format!(
                    "--host {h}: no `nicctl up` is running, so there are no hosts"
                )));
            }
            let numbers = vf
                .iter()
                .map(|v| {
                    v.trim_start_matches("vf").parse::<u16>().map_err(|_| {
                        CliError::Usage(format!(
                            "--vf {v}: not a VF number (instance names need a running `nicctl up`)"
                        ))
                    })
                })
                .collect::<Result<Vec<u16>>>()?;
            let driver = PfDriver::open(open_by_name(cli.device(), cli.vfs)?)?;
            let functions = stats_functions(driver.info(), &numbers, uplink)?;
            functions
                .into_iter()
                .map(|f| Ok((f, driver.stats(f)?)))
                .collect::<std::result::Result<Vec<_>, DriverError>>()?
        }
    };
    if json {
        Ok(format!("{:#}\n", stats_json(&columns)))
    } else {
        Ok(stats_table(&columns))
    }
}

struct TraceArgs<'a> {
    file: Option<&'a Path>,
    port: &'a str,
    frame: Option<&'a str>,
    flow: Option<&'a str>,
    host: Option<&'a str>,
}

fn trace(cli: &Cli, a: TraceArgs<'_>) -> Result<String> {
    let hex = a.frame.map(parse_hex).transpose()?;
    if a.frame.is_none() && a.flow.is_none() {
        return Err(CliError::Usage("give --frame or --flow".into()));
    }
    let Some(file) = a.file else {
        let Source::Running(path) = Source::of(cli)? else {
            return Err(CliError::Usage(
                "no VPC FILE given and no `nicctl up` is running: give a FILE to trace on a \
                 fresh simulated NIC programmed from it"
                    .into(),
            ));
        };
        let reply: control::TraceReply = Source::client(&path)?.call(&Request::Trace {
            host: a.host.map(String::from),
            port: a.port.to_string(),
            frame: hex.map(|b| b.iter().map(|x| format!("{x:02x}")).collect()),
            flow: a.flow.map(String::from),
        })?;
        return Ok(reply.text);
    };
    let mut port = StatsFunction::Uplink;
    let nic = Programmed::open(cli, file, |config| {
        let (h, p) = resolve_port(config, a.host, a.port).map_err(CliError::Usage)?;
        port = p;
        Ok(config.hosts[h].name.clone())
    })?;
    let (frame, title) = match (hex, a.flow) {
        (Some(bytes), _) => (bytes, "frame given in hex".to_string()),
        (None, Some(flow)) => {
            let spec = FlowSpec::parse(flow).map_err(CliError::Usage)?;
            let frame = frame_for(&nic.config, &nic.plan, port, &spec).map_err(CliError::Usage)?;
            (frame, flow.to_string())
        }
        (None, None) => unreachable!("checked above"),
    };
    let report = nic.driver.trace(port, &frame)?;
    Ok(format!(
        "Flow: {title}, {} bytes in on {port} (host {})\n\n{}",
        frame.len(),
        nic.plan.host,
        trace_text(&report)
    ))
}

fn show(cli: &Cli, file: Option<&Path>, host: Option<&str>, json: bool) -> Result<String> {
    let hosts: Vec<HostTables> = match (file, Source::of(cli)?) {
        (Some(file), _) => {
            let first = Programmed::open(cli, file, Programmed::host_or_first(host))?;
            let mut nics = vec![first];
            if host.is_none() {
                let others: Vec<String> = nics[0].config.hosts[1..]
                    .iter()
                    .map(|h| h.name.clone())
                    .collect();
                for h in others {
                    nics.push(Programmed::open(
                        cli,
                        file,
                        Programmed::host_or_first(Some(&h)),
                    )?);
                }
            }
            nics.iter()
                .map(|n| {
                    Ok(HostTables {
                        host: n.plan.host.clone(),
                        tables: n.driver.read_tables()?,
                        names: Names::from_config(&n.config, &n.plan),
                    })
                })
                .collect::<Result<_>>()?
        }
        (None, Source::Running(path)) => {
            let reply: control::ShowReply = Source::client(&path)?.call(&Request::Show {
                host: host.map(String::from),
            })?;
            reply.hosts
        }
        (None, Source::Device) => {
            if let Some(h) = host {
                return Err(CliError::Usage(format!(
                    "--host {h}: no `nicctl up` is running and no FILE is given, so there are \
                     no hosts"
                )));
            }
            let driver = PfDriver::open(open_by_name(cli.device(), cli.vfs)?)?;
            vec![HostTables {
                host: driver.info().device.clone(),
                tables: driver.read_tables()?,
                names: Names::default(),
            }]
        }
    };
    if json {
        let value = serde_json::to_value(control::ShowReply { hosts })
            .map_err(|e| CliError::Usage(e.to_string()))?;
        return Ok(format!("{value:#}\n"));
    }
    Ok(hosts.iter().map(show_text).collect::<Vec<_>>().join("\n"))
}

fn port(cli: &Cli, host: Option<&str>, json: bool) -> Result<String> {
    let hosts = match Source::of(cli)? {
        Source::Running(path) => {
            let reply: control::PortReply = Source::client(&path)?.call(&Request::Port {
                host: host.map(String::from),
            })?;
            reply.hosts
        }
        Source::Device => {
            if let Some(h) = host {
                return Err(CliError::Usage(format!(
                    "--host {h}: no `nicctl up` is running, so there are no hosts"
                )));
            }
            let driver = PfDriver::open(open_by_name(cli.device(), cli.vfs)?)?;
            let port = driver.port()?;
            if json {
                let value =
                    serde_json::to_value(&port).map_err(|e| CliError::Usage(e.to_string()))?;
                return Ok(format!("{value:#}\n"));
            }
            return Ok(port_text(&port));
        }
    };
    if json {
        let value = serde_json::to_value(control::PortReply { hosts })
            .map_err(|e| CliError::Usage(e.to_string()))?;
        return Ok(format!("{value:#}\n"));
    }
    Ok(hosts
        .iter()
        .map(|h| format!("host {}\n{}", h.host, port_text(&h.port)))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn status(cli: &Cli, json: bool) -> Result<String> {
    let Source::Running(path) = Source::of(cli)? else {
        return Err(CliError::Usage("no `nicctl up` is running".into()));
    };
    let s: control::StatusReply = Source::client(&path)?.call(&Request::Status)?;
    if json {
        let value = serde_json::to_value(&s).map_err(|e| CliError::Usage(e.to_string()))?;
        return Ok(format!("{value:#}\n"));
    }
    let mut out = format!(
        "nicctl up (pid {}) runs {}\ncontrol socket:     {}\nunderlay namespace: {}\n",
        s.pid,
        s.file,
        path.display(),
        s.underlay_namespace
    );
    for h in &s.hosts {
        let vfs: Vec<String> = h.vfs.iter().map(|(n, v)| format!("vf{v} {n}")).collect();
        out.push_str(&format!(
            "host {} ({}): {}\n",
            h.name,
            h.underlay_ip,
            if vfs.is_empty() {
                "no instances".to_string()
            } else {
                vfs.join(", ")
            }
        ));
    }
    if !s.gateways.is_empty() {
        out.push_str(&format!("gateways: {}\n", s.gateways.join(", ")));
    }
    Ok(out)
}

fn capture(
    cli: &Cli,
    instance: &str,
    write: &Path,
    count: Option<u64>,
    seconds: Option<f64>,
) -> Result<String> {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let signals = block_stop_signals();
    let Source::Running(path) = Source::of(cli)? else {
        return Err(CliError::Usage(
            "no `nicctl up` is running to capture from (start one with `nicctl up FILE`)".into(),
        ));
    };
    let mut client = Source::client(&path)?;
    let reply: control::CaptureReply = client.call(&Request::Capture {
        instance: instance.to_string(),
    })?;
    let io_error = |e: std::io::Error| CliError::Usage(format!("{}: {e}", write.display()));
    let mut out = std::fs::File::create(write).map_err(io_error)?;
    out.write_all(&host_driver::pcap::global_header())
        .map_err(io_error)?;
    eprintln!(
        "capturing {} (vf{} of host {}) into {}; Ctrl-C to stop",
        reply.instance,
        reply.vf,
        reply.host,
        write.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        wait_for_stop(&signals);
        s.store(true, Ordering::Relaxed);
    });
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut reader = client.into_reader();
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(ControlError::from)?;
    let (mut pending, mut chunk, mut frames) = (Vec::new(), vec![0u8; 1 << 16], 0u64);
    let done = |frames: u64| count.is_some_and(|c| frames >= c);
    while !done(frames)
        && !stop.load(Ordering::Relaxed)
        && deadline.is_none_or(|d| Instant::now() < d)
    {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(ControlError::from(e).into()),
        }
        while let Some(len) = host_driver::pcap::record_len(&pending) {
            if done(frames) {
                break;
            }
            out.write_all(&pending[..len]).map_err(io_error)?;
            pending.drain(..len);
            frames += 1;
        }
    }
    Ok(format!(
        "{frames} frame{} of {instance} written to {}\n",
        if frames == 1 { "" } else { "s" },
        write.display()
    ))
}

/// The instances of the running `nicctl up` by VF number (its first host's), if one runs.
fn served_instances(cli: &Cli) -> std::collections::HashMap<u32, String> {
    let registry = host_driver::vm::state::Registry::default();
    let Ok(Some(path)) = control::find_socket(cli.socket.as_deref(), &registry) else {
        return Default::default();
    };
    let Ok(status) = control::Client::connect(&path)
        .and_then(|mut c| c.call::<control::StatusReply>(&Request::Status))
    else {
        return Default::default();
    };
    status
        .hosts
        .first()
        .map(|h| {
            h.vfs
                .iter()
                .map(|(n, v)| (u32::from(*v), n.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Makes the VF token of a PF vfio-pci owns and sets it in the kernel by opening the PF
/// with it (no VF is in use yet); says how a VMM presents it.
fn set_vf_token(pf: &str) -> Result<String> {
    let tokens = VfTokens::default();
    let token = tokens.get_or_create(pf).map_err(CliError::VfToken)?;
    let how = format!(
        "a VMM opens each VF as \"<VF address> vf_token={token}\" (DPDK: --vfio-vf-token={token})"
    );
    Ok(match host_driver::backend::vfio::VfioBackend::open(pf) {
        Ok(_) => format!(
            "VF token of {pf}: {token} (kept in {}, set on the PF); {how}\n",
            tokens.path(pf).display()
        ),
        Err(e) => format!(
            "VF token of {pf}: {token} (kept in {}); not yet set on the PF ({e}): the next \
             nicctl that opens the PF sets it; {how}\n",
            tokens.path(pf).display()
        ),
    })
}

fn vfs(cli: &Cli, action: &VfsCommand) -> Result<String> {
    let sys = Sysfs::default();
    match action {
        VfsCommand::Enable { count, pf } => {
            let pf = host_driver::backend::vfio::parse_bdf(pf)?;
            let vfs = sriov::enable(&sys, &pf, *count)?;
            let mut out = format!(
                "{pf}: {count} VF{} bound to vfio-pci\n",
                if *count == 1 { "" } else { "s" }
            );
            out.push_str(&sriov::list_text(&vfs, |_| None));
            if *count > 0 && sriov::pf_driver(&sys, &pf).as_deref() == Some(sriov::VFIO_PCI) {
                out.push_str(&set_vf_token(&pf)?);
            }
            Ok(out)
        }
        VfsCommand::List { pf } => {
            let pf = pf
                .as_deref()
                .map(host_driver::backend::vfio::parse_bdf)
                .transpose()?;
            let vfs = sriov::list(&sys, pf.as_deref())?;
            let served = served_instances(cli);
            let mut out = sriov::list_text(&vfs, |v| served.get(&v.index).cloned());
            let mut pfs: Vec<&str> = vfs.iter().map(|v| v.pf.as_str()).collect();
            pfs.dedup();
            for pf in pfs {
                if let Some(token) = VfTokens::default().get(pf).map_err(CliError::VfToken)? {
                    out.push_str(&format!("VF token of {pf}: {token}\n"));
                }
            }
            Ok(out)
        }
    }
}

fn run(cli: Cli) -> Result<String> {
    match &cli.command {
        Command::Up { file, dhcp } => up(&cli, file, *dhcp),
        Command::Check { file } => {
            let config = load(file, &Limits::vfs(u32::from(cli.vfs)))?;
            Ok(check_summary(&file.display().to_string(), &config))
        }
        Command::Apply { file, host } => {
            let nic = Programmed::open(&cli, file, Programmed::host_or_first(host.as_deref()))?;
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
        } => trace(
            &cli,
            TraceArgs {
                file: file.as_deref(),
                port,
                frame: frame.as_deref(),
                flow: flow.as_deref(),
                host: host.as_deref(),
            },
        ),
        Command::Info => {
            let driver = PfDriver::open(open_by_name(cli.device(), cli.vfs)?)?;
            Ok(info_text(driver.info(), driver.heartbeat()?))
        }
        Command::Stats {
            vf,
            uplink,
            json,
            host,
        } => stats(&cli, vf, *uplink, *json, host.as_deref()),
        Command::Show { file, host, json } => show(&cli, file.as_deref(), host.as_deref(), *json),
        Command::Port { host, json } => port(&cli, host.as_deref(), *json),
        Command::Status { json } => status(&cli, *json),
        Command::Capture {
            instance,
            write,
            count,
            seconds,
        } => capture(&cli, instance, write, *count, *seconds),
        Command::Vfs { action } => vfs(&cli, action),
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
        assert_eq!(
            (cli.device(), cli.vfs, cli.socket.as_deref()),
            ("sim", 8, None)
        );
        let cli = Cli::parse_from([
            "nicctl", "stats", "--vf", "1", "--vf", "3", "--uplink", "--json", "--vfs", "4",
        ]);
        assert_eq!(cli.vfs, 4);
        let Command::Stats {
            vf,
            uplink,
            json,
            host,
        } = cli.command
        else {
            panic!("not stats");
        };
        assert_eq!(
            (vf, uplink, json, host),
            (vec!["1".to_string(), "3".to_string()], true, true, None)
        );
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
    fn vfio_devices_and_vfs_commands_parse() {
        let cli = Cli::parse_from(["nicctl", "--device", "vfio:0000:03:00.0", "info"]);
        assert_eq!(cli.device(), "vfio:0000:03:00.0");
        let cli = Cli::parse_from(["nicctl", "vfs", "enable", "4", "--pf", "0000:03:00.0"]);
        let Command::Vfs {
            action: VfsCommand::Enable { count, pf },
        } = cli.command
        else {
            panic!("not vfs enable");
        };
        assert_eq!((count, pf.as_str()), (4, "0000:03:00.0"));
        let cli = Cli::parse_from(["nicctl", "vfs", "list"]);
        assert!(matches!(
            cli.command,
            Command::Vfs {
                action: VfsCommand::List { pf: None }
            }
        ));
        let cli = Cli::parse_from(["nicctl", "vfs", "enable", "1", "--pf", "nope"]);
        let err = run(cli).unwrap_err().to_string();
        assert!(err.contains("\"nope\" is not a PCI address"), "{err}");
    }

    #[test]
    fn hex_frames_parse() {
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

    #[test]
    fn capture_and_show_flags_parse() {
        let cli = Cli::parse_from([
            "nicctl", "--socket", "/tmp/s", "capture", "web1", "-w", "x.pcap", "-c", "5",
        ]);
        assert_eq!(cli.socket.as_deref(), Some(Path::new("/tmp/s")));
        let Command::Capture {
            instance,
            write,
            count,
            seconds,
        } = cli.command
        else {
            panic!("not capture");
        };
        assert_eq!(
            (instance.as_str(), write, count, seconds),
            ("web1", PathBuf::from("x.pcap"), Some(5), None)
        );
        let cli = Cli::parse_from(["nicctl", "port", "--host", "h2", "--json"]);
        assert!(matches!(
            cli.command,
            Command::Port { host: Some(ref h), json: true } if h == "h2"
        ));
        let cli = Cli::parse_from(["nicctl", "show", "--host", "h2", "--json"]);
        assert!(matches!(
            cli.command,
            Command::Show {
                file: None,
                host: Some(_),
                json: true
            }
        ));
        let cli = Cli::parse_from([
            "nicctl",
            "trace",
            "--in",
            "web1",
            "--flow",
            "icmp,dst=1.1.1.1",
        ]);
        assert!(matches!(cli.command, Command::Trace { file: None, .. }));
    }
}
