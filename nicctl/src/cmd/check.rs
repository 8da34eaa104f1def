//! `nicctl check FILE`: validates a VPC file, programs nothing.
use crate::Cli;
use nicctl::config::Limits;
use nicctl::render::report::check_summary;
use nicctl::Result;
use std::path::Path;

pub fn run(cli: &Cli, file: &Path) -> Result<String> {
    let config = super::load(file, &Limits::vfs(u32::from(cli.vfs)))?;
    Ok(check_summary(&file.display().to_string(), &config))
}
