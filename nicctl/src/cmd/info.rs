//! `nicctl info`: the device's identity, ABI, capabilities and heartbeat.
use crate::Cli;
use nicctl::render::report::info_text;
use nicctl::Result;

pub fn run(cli: &Cli) -> Result<String> {
    let driver = super::open_device(cli)?;
    Ok(info_text(driver.info(), driver.heartbeat()?))
}
