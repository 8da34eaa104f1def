//! `nicctl apply FILE`: validates a VPC file and programs one host's NIC with it.
use crate::Cli;
use nicctl::nics::Nics;
use nicctl::render::report::apply_summary;
use nicctl::{CliError, Result};
use std::path::Path;

pub fn run(cli: &Cli, file: &Path, host: Option<&str>) -> Result<String> {
    let nics = super::programmed(cli, file, |n| Ok(vec![n.resolve_host(host)?]))?;
    let h = nics.resolve_host(host)?;
    let (Some(config), Some(plan)) = (nics.config(), nics.hosts()[h].plan.as_ref()) else {
        return Err(CliError::Usage(format!("{}: no plan", file.display())));
    };
    Ok(apply_summary(&nics.info(h)?.device, config, plan))
}
