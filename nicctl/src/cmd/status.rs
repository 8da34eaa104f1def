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
    let mut out = format!(
        "nicctl up (pid {}) runs {}\ncontrol socket:     {}\nunderlay namespace: {}\n",
        s.pid,
        s.file,
        path.display(),
        s.underlay_namespace
    );
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
    Ok(out)
}
