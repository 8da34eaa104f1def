//! `nicctl status`: what the running `nicctl up` runs.
use crate::Cli;
use nicctl::cluster;
use nicctl::control::client::Client;
use nicctl::control::{Request, StatusReply};
use nicctl::{CliError, Result};

pub fn run(cli: &Cli, json: bool) -> Result<String> {
    if let Some(urls) = &cli.etcd {
        let status = super::block_on(async {
            let mut client = cluster::connect(urls).await?;
            Ok(cluster::status::read(&mut client).await?)
        })?;
        return if json {
            super::json(&status)
        } else {
            Ok(cluster::status::text(&status))
        };
    }
    let Some(path) = super::running(cli)? else {
        return Err(CliError::Usage("no `nicctl up` is running".into()));
    };
    let s: StatusReply = Client::connect(&path)?.call(&Request::Status)?;
    if json {
        return super::json(&s);
    }
    // An agent's socket serves its NIC only: no deployment, no underlay.
    let mut out = if s.underlay_namespace.is_empty() {
        format!(
            "nicctl agent (pid {}) keeps its NIC at {}\ncontrol socket:     {}\n",
            s.pid,
            s.file,
            path.display()
        )
    } else {
        format!(
            "nicctl up (pid {}) runs {}\ncontrol socket:     {}\nunderlay namespace: {}\n",
            s.pid,
            s.file,
            path.display(),
            s.underlay_namespace
        )
    };
    for h in &s.hosts {
        let vfs: Vec<String> = h.vfs.iter().map(|(n, v)| format!("vf{v} {n}")).collect();
        out.push_str(&format!(
            "host {} ({}): {}\n",
            h.name,
            h.underlay_ip,
            if vfs.is_empty() {
                "no instances".to_string()
            } else {
                vfs.join(", ")
            }
        ));
    }
    if !s.gateways.is_empty() {
        out.push_str(&format!("gateways: {}\n", s.gateways.join(", ")));
    }
    for r in &s.resets {
        out.push_str(&format!(
            "reset: host {}: {}; recovered in {:.1} ms{}\n",
            r.host,
            r.cause,
            r.recovery_ms,
            if r.error.is_empty() {
                String::new()
            } else {
                format!(" (failed: {})", r.error)
            }
        ));
    }
    Ok(out)
}

/// `nicctl fault KIND [--host H]`: through the running `nicctl up`'s control socket.
pub fn fault(cli: &Cli, kind: &str, host: Option<&str>) -> Result<String> {
    let Some(path) = super::running(cli)? else {
        return Err(CliError::Usage(
            "no `nicctl up` is running: faults are injected into its simulated NICs".into(),
        ));
    };
    let mut client = Client::connect(&path)?;
    let s: StatusReply = client.call(&Request::Status)?;
    let host = match host {
        Some(h) => h.to_string(),
        None => s
            .hosts
            .first()
            .map(|h| h.name.clone())
            .ok_or_else(|| CliError::Usage("the deployment has no host".into()))?,
    };
    client.call::<()>(&Request::Fault {
        host: host.clone(),
        kind: kind.to_string(),
    })?;
    Ok(format!(
        "host {host}: firmware {kind}; `nicctl status` shows the recovery\n"
    ))
}
