//! `nicctl apply FILE`: validates a VPC file and brings the NICs to it (what they hold is
//! read back; only the difference is made). Against a running `nicctl up` (through its
//! control socket) the deployment's VMs and gateways follow the file too.
use crate::Cli;
use nicctl::cluster;
use nicctl::config::Limits;
use nicctl::control::client::{Client, APPLY_TIMEOUT};
use nicctl::control::{ApplyReply, Request};
use nicctl::nics::Nics;
use nicctl::render::report::{apply_summary, changes_text};
use nicctl::{CliError, Result};
use std::path::Path;

/// What `apply` did, and the failure that stopped it (what was done before stays done).
pub struct Applied {
    pub text: String,
    pub error: Option<CliError>,
}

pub fn run(cli: &Cli, file: &Path, host: Option<&str>) -> Result<Applied> {
    if let Some(urls) = &cli.etcd {
        return to_store(urls, file, host);
    }
    if cli.device.is_none() {
        if let Some(socket) = super::running(cli)? {
            return to_running(&socket, file, host);
        }
    }
    let nics = super::programmed(cli, file, |n| Ok(vec![n.resolve_host(host)?]))?;
    let h = nics.resolve_host(host)?;
    let (Some(config), Some(plan)) = (nics.config(), nics.hosts()[h].plan.as_ref()) else {
        return Err(CliError::Usage(format!("{}: no plan", file.display())));
    };
    Ok(Applied {
        text: apply_summary(&nics.info(h)?.device, config, plan),
        error: None,
    })
}

/// Writes `file`, validated, as the cluster's desired state: the agents take it from there.
fn to_store(urls: &str, file: &Path, host: Option<&str>) -> Result<Applied> {
    if let Some(h) = host {
        return Err(CliError::Usage(format!(
            "--host {h}: the store holds the whole file; each host's agent takes its part"
        )));
    }
    // The NICs' VF counts are the agents' to check; the file's own rules are checked here.
    let config = super::load(file, &Limits::vfs(u32::from(hw_sim::MAX_VFS)))?;
    let name = file.display().to_string();
    let published = super::block_on(async {
        let mut client = cluster::connect(urls).await?;
        Ok(cluster::publish::publish(&mut client, &config, &name).await?)
    })?;
    let mut text = String::new();
    for k in &published.deleted {
        text.push_str(&format!("  - {k}\n"));
    }
    for k in &published.put {
        text.push_str(&format!("  ~ {k}\n"));
    }
    text.push_str(
        &if published.put.is_empty() && published.deleted.is_empty() {
            format!("no change (store revision {})\n", published.revision)
        } else {
            format!(
                "{} records written, {} deleted: store revision {}\n",
                published.put.len(),
                published.deleted.len(),
                published.revision
            )
        },
    );
    Ok(Applied { text, error: None })
}

/// Applies `file` to the running `nicctl up` at `socket`: validated here, so that an
/// invalid file changes nothing, then brought about by the deployment.
fn to_running(socket: &Path, file: &Path, host: Option<&str>) -> Result<Applied> {
    if let Some(h) = host {
        return Err(CliError::Usage(format!(
            "--host {h}: a running `nicctl up` is brought to the whole file, every host at \
             once"
        )));
    }
    let config = super::load(file, &Limits::vfs(u32::from(hw_sim::MAX_VFS)))?;
    let mut client = Client::connect(socket)?;
    client.set_timeout(APPLY_TIMEOUT)?;
    let reply: ApplyReply = client.call(&Request::Apply {
        file: file.display().to_string(),
        config,
    })?;
    let mut text = changes_text(&reply.hosts, &reply.namespaces);
    let nothing = reply.hosts.iter().all(|h| h.changes.is_empty()) && reply.namespaces.is_empty();
    let error = reply.error.map(|reason| CliError::Up {
        file: file.display().to_string(),
        reason,
    });
    match (&error, nothing) {
        (Some(_), _) => text.push_str(&format!(
            "stopped after {:.1} ms; what is above was done, and applying the file again goes \
             on from there\n",
            reply.millis
        )),
        (None, true) => text.push_str("no change\n"),
        (None, false) => text.push_str(&format!("applied in {:.1} ms\n", reply.millis)),
    }
    Ok(Applied { text, error })
}
