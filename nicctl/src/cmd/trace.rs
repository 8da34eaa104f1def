//! `nicctl trace`: one frame through a NIC's pipeline in dry run, every decision printed.
use crate::Cli;
use nicctl::flow::{frame_for, FlowSpec};
use nicctl::nics::{Local, Nics};
use nicctl::render::report::trace_text;
use nicctl::{CliError, Result};
use std::path::Path;

pub struct Args<'a> {
    pub file: Option<&'a Path>,
    pub port: &'a str,
    pub frame: Option<&'a str>,
    pub flow: Option<&'a str>,
    pub host: Option<&'a str>,
}

pub fn run(cli: &Cli, a: Args<'_>) -> Result<String> {
    let hex = a.frame.map(parse_hex).transpose()?;
    if a.frame.is_none() && a.flow.is_none() {
        return Err(CliError::Usage("give --frame or --flow".into()));
    }
    let nics: Box<dyn Nics> = match a.file {
        Some(file) => Box::new(super::programmed(cli, file, |n: &Local| {
            Ok(vec![n.resolve_port(a.host, a.port)?.0])
        })?),
        None => {
            if super::running(cli)?.is_none() && cli.device.is_none() {
                return Err(CliError::Usage(
                    "no VPC FILE given and no `nicctl up` is running: give a FILE to trace on a \
                     fresh simulated NIC programmed from it"
                        .into(),
                ));
            }
            super::nics(cli)?
        }
    };
    let (h, port) = nics.resolve_port(a.host, a.port)?;
    let (frame, title) = match (hex, a.flow) {
        (Some(bytes), _) => (bytes, "frame given in hex".to_string()),
        (None, Some(flow)) => {
            let spec = FlowSpec::parse(flow).map_err(CliError::Usage)?;
            let (Some(config), Some(plan)) = (nics.config(), &nics.hosts()[h].plan) else {
                return Err(CliError::Usage(
                    "--flow needs a VPC file (or a running `nicctl up`) to address the frame; \
                     give --frame"
                        .into(),
                ));
            };
            let frame = frame_for(config, plan, port, &spec).map_err(CliError::Usage)?;
            (frame, flow.to_string())
        }
        (None, None) => return Err(CliError::Usage("give --frame or --flow".into())),
    };
    let report = nics.trace(h, port, &frame)?;
    Ok(format!(
        "Flow: {title}, {} bytes in on {port} (host {})\n\n{}",
        frame.len(),
        nics.hosts()[h].name,
        trace_text(&report)
    ))
}

/// A frame given in hex (spaces and colons allowed).
pub fn parse_hex(text: &str) -> Result<Vec<u8>> {
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
    nicctl::control::from_hex(&digits).map_err(bad)
}
