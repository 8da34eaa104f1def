//! `nicctl`: look at and control a vpcnic SmartNIC through its PF driver. This file parses
//! the command line and dispatches; each command is one file under `cmd/`.
use clap::{Parser, Subcommand};
use nicctl::{CliError, Result};
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

mod cmd;

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
    /// found in /run/vpcnic); for `up` and `agent`, where to serve it.
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// The cluster's etcd (comma-separated URLs, e.g. http://127.0.0.1:2379): `apply`
    /// writes the desired state there, `agent` reconciles its host's NIC from it, `status`
    /// reports every agent. Without it, everything runs on this machine with no server.
    #[arg(long, global = true, value_name = "URLS")]
    etcd: Option<String>,

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
    /// What `apply FILE` would change: the file's plan against what the NICs hold (the
    /// running `nicctl up`'s, else the device's), one line per change, `+` added, `~`
    /// changed in place, `-` removed, in the order they would be made. Exit status: 0 no
    /// change, 2 changes, 1 an error.
    Diff {
        file: PathBuf,
        /// Only this host's NIC (default: every host of the running `nicctl up`, or the
        /// file's first host for a device).
        #[arg(long)]
        host: Option<String>,
        /// Print JSON: [{host, changes: [{op, object, change}]}].
        #[arg(long)]
        json: bool,
    },
    /// Validate a VPC file and bring the NICs to it: what they hold is read back and only
    /// the difference is made, in make-before-break order. A running `nicctl up` is
    /// brought to it whole: every host's NIC, and VMs and gateways added, removed or moved
    /// to another host. Without one, a device (on the built-in simulator, a fresh NIC whose
    /// tables last as long as the command).
    Apply {
        file: PathBuf,
        /// The host of the file whose NIC this is (default: the first; not with a running
        /// `nicctl up`).
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
    /// underlay namespace (where `tcpdump -i br-hosts` sees VXLAN). With `--etcd`: every
    /// host of the store, its agent's applied revision and health, lagging hosts flagged.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a host's simulated NIC of the running `nicctl up` fail, to watch its watchdog
    /// recover it: `hang` stops the firmware (no heartbeat), `fatal` sets STATUS.FATAL.
    /// `nicctl status` then shows the reset, its cause and how long the recovery took.
    Fault {
        /// `hang` or `fatal`.
        kind: String,
        /// The host (default: the first).
        #[arg(long)]
        host: Option<String>,
    },
    /// Keep this host's NIC at the desired state in etcd (`--etcd URLS`): read it all at one
    /// revision, reconcile, watch from the next revision and reconcile each change; its
    /// status (applied revision, health) lives under a lease. Runs until SIGINT or SIGTERM;
    /// with `--socket`, serves stats, show and trace of its NIC there.
    Agent {
        /// The host it serves, as the VPC file names it.
        #[arg(long)]
        host: String,
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

/// What a command prints, and its exit status; `error` is printed after `text` (a
/// command that did part of its work before failing).
#[derive(Debug)]
struct Done {
    text: String,
    status: u8,
    error: Option<CliError>,
}

impl From<String> for Done {
    fn from(text: String) -> Done {
        Done {
            text,
            status: 0,
            error: None,
        }
    }
}

fn run(cli: Cli) -> Result<Done> {
    if let Command::Diff { file, host, json } = &cli.command {
        let (text, changes) = cmd::diff::run(&cli, file, host.as_deref(), *json)?;
        return Ok(Done {
            text,
            status: if changes { 2 } else { 0 },
            error: None,
        });
    }
    if let Command::Apply { file, host } = &cli.command {
        let applied = cmd::apply::run(&cli, file, host.as_deref())?;
        return Ok(Done {
            text: applied.text,
            status: u8::from(applied.error.is_some()),
            error: applied.error,
        });
    }
    run_text(&cli).map(Done::from)
}

fn run_text(cli: &Cli) -> Result<String> {
    match &cli.command {
        Command::Diff { .. } => Ok(String::new()),
        Command::Up { file, dhcp } => cmd::up::run(cli, file, *dhcp),
        Command::Check { file } => cmd::check::run(cli, file),
        Command::Apply { .. } => Ok(String::new()),
        Command::Trace {
            file,
            port,
            frame,
            flow,
            host,
        } => cmd::trace::run(
            cli,
            cmd::trace::Args {
                file: file.as_deref(),
                port,
                frame: frame.as_deref(),
                flow: flow.as_deref(),
                host: host.as_deref(),
            },
        ),
        Command::Info => cmd::info::run(cli),
        Command::Stats {
            vf,
            uplink,
            json,
            host,
        } => cmd::stats::run(cli, vf, *uplink, *json, host.as_deref()),
        Command::Show { file, host, json } => {
            cmd::show::run(cli, file.as_deref(), host.as_deref(), *json)
        }
        Command::Port { host, json } => cmd::port::run(cli, host.as_deref(), *json),
        Command::Status { json } => cmd::status::run(cli, *json),
        Command::Agent { host } => cmd::agent::run(cli, host),
        Command::Fault { kind, host } => cmd::status::fault(cli, kind, host.as_deref()),
        Command::Capture {
            instance,
            write,
            count,
            seconds,
        } => cmd::capture::run(cli, instance, write, *count, *seconds),
        Command::Vfs { action } => cmd::vfs::run(cli, action),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(done) => {
            print!("{}", done.text);
            if let Some(e) = &done.error {
                report(e);
            }
            ExitCode::from(done.status)
        }
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error and its causes on one line.
fn report(e: &CliError) {
    let mut msg = format!("nicctl: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    eprintln!("{msg}");
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
        assert_eq!(
            cmd::trace::parse_hex("ff:00 0A\n01").unwrap(),
            [0xff, 0, 10, 1]
        );
        assert_eq!(
            cmd::trace::parse_hex("abc").unwrap_err().to_string(),
            "--frame: 3 hex digits is not a whole number of bytes"
        );
        assert_eq!(
            cmd::trace::parse_hex("0g").unwrap_err().to_string(),
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
