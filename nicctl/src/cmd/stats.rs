//! `nicctl stats`: counters of VFs and the uplink.
use crate::Cli;
use host_driver::tables::Port;
use nicctl::nics::Nics;
use nicctl::render::report::{stats_json, stats_table};
use nicctl::{CliError, Result};

pub fn run(
    cli: &Cli,
    vf: &[String],
    uplink: bool,
    json: bool,
    host: Option<&str>,
) -> Result<String> {
    let nics = super::nics(cli)?;
    let (h, mut numbers) = resolve(&*nics, host, vf)?;
    let mut uplink = uplink;
    if numbers.is_empty() && !uplink {
        if let Some(plan) = &nics.hosts()[h].plan {
            // A NIC with a VPC file has VFs to spare: "every VF" is every instance's.
            numbers = plan.vfs.iter().map(|&(_, vf)| vf).collect();
            numbers.sort_unstable();
            uplink = true;
        }
    }
    let columns = nics.stats(h, &numbers, uplink)?;
    if json {
        return Ok(format!("{:#}\n", stats_json(&columns)));
    }
    if nics.config().is_none() {
        return Ok(stats_table(&columns));
    }
    let named: Vec<String> = columns
        .iter()
        .filter_map(|(f, _)| match f {
            Port::Vf(n) => Some(format!("{f} {}", nics.instance_on(h, *n)?)),
            Port::Uplink => None,
        })
        .collect();
    let mut out = format!("host {}", nics.hosts()[h].name);
    if !named.is_empty() {
        out.push_str(&format!(": {}", named.join(", ")));
    }
    out.push('\n');
    out.push_str(&stats_table(&columns));
    Ok(out)
}

/// The host and VF numbers that `--host` and the `--vf`s (numbers or instance names) name:
/// `--host`, else the named instances' host, else the first.
fn resolve(nics: &dyn Nics, host: Option<&str>, vfs: &[String]) -> Result<(usize, Vec<u16>)> {
    let mut chosen = host.map(|h| nics.resolve_host(Some(h))).transpose()?;
    let mut numbers = Vec::new();
    for v in vfs {
        if nics.config().and_then(|c| c.instance_index(v)).is_none() {
            let n = v.trim_start_matches("vf").parse::<u16>().map_err(|_| {
                CliError::Usage(match nics.config() {
                    Some(_) => format!("{v:?} is neither a VF number nor an instance of the file"),
                    None => format!(
                        "--vf {v}: not a VF number (instance names need a running `nicctl up`)"
                    ),
                })
            })?;
            numbers.push(n);
            continue;
        }
        let (h, port) = nics.resolve_port(None, v)?;
        if let Some(c) = chosen.filter(|&c| c != h) {
            return Err(CliError::Usage(format!(
                "instance {} runs on host {}, not {}",
                v,
                nics.hosts()[h].name,
                nics.hosts()[c].name
            )));
        }
        chosen = Some(h);
        if let Port::Vf(n) = port {
            numbers.push(n);
        }
    }
    Ok((chosen.unwrap_or(0), numbers))
}
