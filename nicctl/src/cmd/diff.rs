//! `nicctl diff FILE`: what `apply FILE` would change, as `terraform plan` or `kubectl diff`
//! show it, without changing anything.
use crate::Cli;
use host_driver::reconcile::{self, State};
use nicctl::config::{self, Limits};
use nicctl::control::{ChangeLine, HostChanges};
use nicctl::render::report::changes_text;
use nicctl::{CliError, Result};
use std::path::Path;

/// The text (or JSON) and whether anything would change.
pub fn run(cli: &Cli, file: &Path, host: Option<&str>, json: bool) -> Result<(String, bool)> {
    let nics = super::nics(cli)?;
    let config = super::load(file, &Limits::vfs(u32::from(hw_sim::MAX_VFS)))?;
    // (name in the file, index among the NICs)
    let hosts: Vec<(String, usize)> = match nics.config() {
        // A running deployment: its hosts, by name.
        Some(_) => {
            let names: Vec<String> = match host {
                Some(h) => vec![h.to_string()],
                None => config.hosts.iter().map(|h| h.name.clone()).collect(),
            };
            names
                .into_iter()
                .map(|name| {
                    let i = nics.resolve_host(Some(&name)).map_err(|_| {
                        CliError::Usage(format!(
                            "host {name} of {} has no NIC in the running `nicctl up` (hosts \
                             are added by starting it again)",
                            file.display()
                        ))
                    })?;
                    Ok((name, i))
                })
                .collect::<Result<_>>()?
        }
        // A device: it is the file's host named, else the first.
        None => vec![(
            host.map_or_else(|| config.hosts[0].name.clone(), String::from),
            0,
        )],
    };
    let mut all = Vec::new();
    for (name, i) in hosts {
        let held = State::from_tables(&nics.tables(i)?)
            .map_err(|e| CliError::Protocol(format!("host {name}: {e}")))?;
        // The NIC refuses a VF it does not have, naming it; no VF limit is guessed here.
        let desired = config::plan_against(&config, &name, &held, u16::MAX)?.desired();
        all.push((name, reconcile::diff(&desired, &held)));
    }
    let changed = all.iter().any(|(_, c)| !c.is_empty());
    let hosts: Vec<HostChanges> = all
        .iter()
        .map(|(host, changes)| HostChanges {
            host: host.clone(),
            changes: changes.iter().map(ChangeLine::of).collect(),
        })
        .collect();
    if json {
        return Ok((super::json(&hosts)?, changed));
    }
    Ok((changes_text(&hosts, &[]), changed))
}
