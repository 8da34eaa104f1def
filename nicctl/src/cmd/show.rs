//! `nicctl show`: the tables as the NICs hold them, with the VPC file's names.
use crate::Cli;
use nicctl::nics::Nics;
use nicctl::render::show::{show_text, HostTables, Names};
use nicctl::Result;
use serde::Serialize;
use std::path::Path;

/// `--json`'s shape.
#[derive(Serialize)]
struct Hosts {
    hosts: Vec<HostTables>,
}

pub fn run(cli: &Cli, file: Option<&Path>, host: Option<&str>, json: bool) -> Result<String> {
    let nics: Box<dyn Nics> = match file {
        Some(file) => Box::new(super::programmed(cli, file, |n| n.named_hosts(host))?),
        None => super::nics(cli)?,
    };
    let mut hosts = Vec::new();
    for h in nics.named_hosts(host)? {
        let names = match (nics.config(), &nics.hosts()[h].plan) {
            (Some(config), Some(plan)) => Names::from_config(config, plan),
            _ => Names::default(),
        };
        hosts.push(HostTables {
            host: nics.hosts()[h].name.clone(),
            tables: nics.tables(h)?,
            names,
        });
    }
    if json {
        return super::json(&Hosts { hosts });
    }
    Ok(hosts.iter().map(show_text).collect::<Vec<_>>().join("\n"))
}
