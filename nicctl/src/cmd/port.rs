//! `nicctl port`: the uplink port (SFP module, link, LEDs) of each NIC.
use crate::Cli;
use host_driver::port::PortStatus;
use nicctl::render::port::port_text;
use nicctl::Result;
use serde::Serialize;

/// One host's uplink port, as `--json` prints it.
#[derive(Serialize)]
struct HostPort {
    host: String,
    port: PortStatus,
}

#[derive(Serialize)]
struct Hosts {
    hosts: Vec<HostPort>,
}

pub fn run(cli: &Cli, host: Option<&str>, json: bool) -> Result<String> {
    let nics = super::nics(cli)?;
    let mut hosts = Vec::new();
    for h in nics.named_hosts(host)? {
        hosts.push(HostPort {
            host: nics.hosts()[h].name.clone(),
            port: nics.port(h)?,
        });
    }
    if nics.config().is_none() {
        // A device alone: its port, without a host.
        let Some(only) = hosts.pop() else {
            return Ok(String::new());
        };
        return if json {
            super::json(&only.port)
        } else {
            Ok(port_text(&only.port))
        };
    }
    if json {
        return super::json(&Hosts { hosts });
    }
    Ok(hosts
        .iter()
        .map(|h| format!("host {}\n{}", h.host, port_text(&h.port)))
        .collect::<Vec<_>>()
        .join("\n"))
}
