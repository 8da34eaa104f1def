//! `nicctl apply FILE`: validates a VPC file and brings one host's NIC to it (what the NIC
//! holds is read back; only the difference is made).
use crate::Cli;
use nicctl::nics::Nics;
use nicctl::render::report::apply_summary;
use nicctl::{CliError, Result};
use std::path::Path;

pub fn run(cli: &Cli, file: &Path, host: Option<&str>) -> Result<String> {
    if cli.device.is_none() {
        if let Some(socket) = super::running(cli)? {
            // Programming a throwaway simulator here would look like success.
            return Err(CliError::Usage(format!(
                "a `nicctl up` is running (control socket {}): applying a file to it is not \
                 done yet; `nicctl diff {}` shows what would change; give --device to bring a \
                 device to the file",
                socket.display(),
                file.display()
            )));
        }
    }
    let nics = super::programmed(cli, file, |n| Ok(vec![n.resolve_host(host)?]))?;
    let h = nics.resolve_host(host)?;
    let (Some(config), Some(plan)) = (nics.config(), nics.hosts()[h].plan.as_ref()) else {
        return Err(CliError::Usage(format!("{}: no plan", file.display())));
    };
    Ok(apply_summary(&nics.info(h)?.device, config, plan))
}
