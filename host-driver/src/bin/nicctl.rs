//! `nicctl`: look at and control a vpcnic SmartNIC through its PF driver.
use clap::{Parser, Subcommand};
use host_driver::backend::open_by_name;
use host_driver::report::{info_text, stats_functions, stats_json, stats_table};
use host_driver::{PfDriver, Result};
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
}

fn run(cli: Cli) -> Result<String> {
    let driver = PfDriver::open(open_by_name(&cli.device, cli.vfs)?)?;
    match cli.command {
        Command::Info => Ok(info_text(driver.info(), driver.heartbeat()?)),
        Command::Stats { vf, uplink, json } => {
            let functions = stats_functions(driver.info(), &vf, uplink)?;
            let columns = functions
                .into_iter()
                .map(|f| Ok((f, driver.stats(f)?)))
                .collect::<Result<Vec<_>>>()?;
            if json {
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
}
