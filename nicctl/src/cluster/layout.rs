//! The key layout of the desired state in etcd, and the records under it.
//!
//! Every record is one entry of the VPC file as JSON, with the same fields as its TOML
//! table (names, not IDs) and every default the file left out filled in, so that what an
//! agent reads back is a VPC file it validates like any other:
//!
//! | key | record |
//! | --- | --- |
//! | `/vpcnic/v1/desired` | [`Desired`]: the file last applied, and how many of each agent's watches its transaction wrote to; every apply writes it |
//! | `/vpcnic/v1/hosts/<host>` | `{"underlay": "192.0.2.1"}` |
//! | `/vpcnic/v1/gateways/<gateway>` | `{"kind", "hosts", "underlay"}` |
//! | `/vpcnic/v1/serves/<host>/<vpc>` | `{}`: the host's NIC needs that VPC |
//! | `/vpcnic/v1/vpcs/<vpc>/vpc` | `{"vni", "cidr", "dns", "domain"}` |
//! | `/vpcnic/v1/vpcs/<vpc>/subnets/<subnet>` | `{"vpc", "cidr", "route_table"}` |
//! | `/vpcnic/v1/vpcs/<vpc>/route_tables/<table>` | `{"vpc", "routes": [{"dest", "target"}]}` |
//! | `/vpcnic/v1/vpcs/<vpc>/instances/<instance>` | `{"subnet", "ip", "secondary_ips", "mac", "src_dst_check", "host"}` |
//! | `/vpcnic/v1/agents/<host>` | [`super::AgentStatus`], under the agent's lease |
//!
//! A host serves the VPCs it has an instance in, and every VPC their route tables peer
//! with (and theirs, and so on): its agent reads and watches `vpcs/<vpc>/` of those only,
//! so a host never receives the records of a VPC it does not serve (as OVN's port bindings
//! reach only the chassis that need them). Hosts and gateways are few and every agent
//! reads them all.
pub use super::arrival::WatchCounts;
use crate::config::model::{Config, Target};
use crate::config::text::cidr_text;
use crate::config::{self, ConfigErrors, Limits};
use host_driver::tables::MacDisplay;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Where everything lives.
pub const ROOT: &str = "/vpcnic/v1/";
/// Written by every apply, in the same transaction as its changes.
pub const DESIRED: &str = "/vpcnic/v1/desired";
pub const HOSTS: &str = "/vpcnic/v1/hosts/";
pub const GATEWAYS: &str = "/vpcnic/v1/gateways/";
pub const SERVES: &str = "/vpcnic/v1/serves/";
pub const VPCS: &str = "/vpcnic/v1/vpcs/";
pub const AGENTS: &str = "/vpcnic/v1/agents/";

/// `/vpcnic/v1/desired`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// The VPC file, as the command line named it.
    pub file: String,
    /// How many records the apply left in the store.
    pub records: usize,
    /// How many of each agent's watches the apply's transaction wrote to, so that an agent
    /// knows when all of it has arrived (absent: written by a nicctl that did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watches: Option<WatchCounts>,
}

/// The prefix an agent watches that `key` falls under: [`HOSTS`], [`GATEWAYS`],
/// `serves/<host>/` or `vpcs/<vpc>/`; `None` for [`DESIRED`] (a watch of its own) and
/// for keys no agent watches.
pub fn watch_of(key: &str) -> Option<&str> {
    for p in [HOSTS, GATEWAYS] {
        if key.starts_with(p) {
            return key.get(..p.len());
        }
    }
    for p in [SERVES, VPCS] {
        if let Some(rest) = key.strip_prefix(p) {
            let (name, _) = rest.split_once('/')?;
            return key.get(..p.len() + name.len() + 1);
        }
    }
    None
}

/// The prefix of host `host`'s served VPCs.
pub fn serves_prefix(host: &str) -> String {
    format!("{SERVES}{host}/")
}

/// The prefix of VPC `vpc`'s records.
pub fn vpc_prefix(vpc: &str) -> String {
    format!("{VPCS}{vpc}/")
}

/// The key of host `host`'s agent status.
pub fn agent_key(host: &str) -> String {
    format!("{AGENTS}{host}")
}

/// The records of `config`: key to JSON value. [`DESIRED`] is not among them.
pub fn records_of(config: &Config) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for h in &config.hosts {
        out.insert(
            format!("{HOSTS}{}", h.name),
            json!({ "underlay": h.underlay.to_string() }),
        );
    }
    for g in &config.gateways {
        let hosts: Vec<String> = g.hosts.iter().map(|c| cidr_text(*c)).collect();
        out.insert(
            format!("{GATEWAYS}{}", g.name),
            json!({ "kind": g.kind.name(), "hosts": hosts, "underlay": g.underlay.to_string() }),
        );
    }
    for v in &config.vpcs {
        let dns: Vec<String> = v.dns.iter().map(|d| d.to_string()).collect();
        let mut rec = json!({ "vni": v.vni, "cidr": cidr_text(v.cidr), "dns": dns });
        if let Some(d) = &v.domain {
            rec["domain"] = json!(d);
        }
        out.insert(format!("{}vpc", vpc_prefix(&v.name)), rec);
    }
    for t in &config.route_tables {
        let vpc = &config.vpcs[t.vpc].name;
        let routes: Vec<Value> = t
            .routes
            .iter()
            .map(|r| {
                let target = match r.target {
                    Target::Gateway(g) => config.gateways[g].name.clone(),
                    Target::Peering(p) => format!("pcx:{}", config.vpcs[p].name),
                    Target::Instance(i) => format!("eni:{}", config.instances[i].name),
                    Target::Blackhole => "blackhole".to_string(),
                };
                json!({ "dest": cidr_text(r.dest), "target": target })
            })
            .collect();
        out.insert(
            format!("{}route_tables/{}", vpc_prefix(vpc), t.name),
            json!({ "vpc": vpc, "routes": routes }),
        );
    }
    for s in &config.subnets {
        let vpc = &config.vpcs[s.vpc].name;
        let mut rec = json!({ "vpc": vpc, "cidr": cidr_text(s.cidr) });
        if let Some(t) = s.route_table {
            rec["route_table"] = json!(config.route_tables[t].name);
        }
        out.insert(format!("{}subnets/{}", vpc_prefix(vpc), s.name), rec);
    }
    for i in &config.instances {
        let vpc = &config.vpcs[config.subnets[i.subnet].vpc].name;
        let secondary: Vec<String> = i.secondary_ips.iter().map(|a| a.to_string()).collect();
        out.insert(
            format!("{}instances/{}", vpc_prefix(vpc), i.name),
            json!({
                "subnet": config.subnets[i.subnet].name,
                "ip": i.ip.to_string(),
                "secondary_ips": secondary,
                "mac": MacDisplay(&i.mac).to_string(),
                "src_dst_check": i.src_dst_check,
                "host": config.hosts[i.host].name,
            }),
        );
    }
    for (h, host) in config.hosts.iter().enumerate() {
        for v in served(config, h) {
            out.insert(
                format!("{}{}", serves_prefix(&host.name), config.vpcs[v].name),
                json!({}),
            );
        }
    }
    out
}

/// The VPCs host `h` needs (indices): those it has an instance in, and every VPC their
/// route tables peer with, transitively.
pub fn served(config: &Config, h: usize) -> BTreeSet<usize> {
    let mut out: BTreeSet<usize> = config
        .instances
        .iter()
        .filter(|i| i.host == h)
        .map(|i| config.subnets[i.subnet].vpc)
        .collect();
    let mut todo: Vec<usize> = out.iter().copied().collect();
    while let Some(v) = todo.pop() {
        for t in config.route_tables.iter().filter(|t| t.vpc == v) {
            for r in &t.routes {
                if let Target::Peering(p) = r.target {
                    if out.insert(p) {
                        todo.push(p);
                    }
                }
            }
        }
    }
    out
}

/// The records host `host` reads of `records`: every host and gateway, and the VPCs it
/// serves.
pub fn host_view(records: &BTreeMap<String, Vec<u8>>, host: &str) -> BTreeMap<String, Vec<u8>> {
    let serves = serves_prefix(host);
    let vpcs: Vec<String> = records
        .keys()
        .filter_map(|k| k.strip_prefix(&serves).map(vpc_prefix))
        .collect();
    records
        .iter()
        .filter(|(k, _)| {
            k.starts_with(HOSTS)
                || k.starts_with(GATEWAYS)
                || k.starts_with(&serves)
                || vpcs.iter().any(|v| k.starts_with(v))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The file host `host`'s agent makes of `config` once written to the store: its part.
pub fn host_part(config: &Config, host: &str, limits: &Limits) -> Read {
    let records = records_of(config)
        .into_iter()
        .map(|(k, v)| (k, serde_json::to_vec(&v).unwrap_or_default()))
        .collect();
    read(&host_view(&records, host), limits)
}

/// A record the agent could not take, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub key: String,
    pub reason: String,
}

/// What a set of records makes: the VPC file they describe, validated, and the records
/// refused (each with its reason; the others stand without them).
#[derive(Debug)]
pub struct Read {
    pub config: Config,
    pub refused: Vec<Refusal>,
}

/// The file section and entry name a key stands for (`("instance", "web1")`).
fn entry_of(key: &str) -> Option<(&'static str, &str)> {
    if let Some(name) = key.strip_prefix(HOSTS) {
        return Some(("host", name));
    }
    if let Some(name) = key.strip_prefix(GATEWAYS) {
        return Some(("gateway", name));
    }
    let rest = key.strip_prefix(VPCS)?;
    let (vpc, what) = rest.split_once('/')?;
    if what == "vpc" {
        return Some(("vpc", vpc));
    }
    let (kind, name) = what.split_once('/')?;
    let section = match kind {
        "subnets" => "subnet",
        "route_tables" => "route_table",
        "instances" => "instance",
        _ => return None,
    };
    Some((section, name))
}

/// The VPC file the records `kvs` (key to JSON text; keys outside hosts, gateways and VPCs
/// are ignored) describe. A record that is not JSON, or that the file's validation refuses,
/// is left out with its reason, and so is what leans on it (an instance of a refused
/// subnet), so one bad record never stops the others.
pub fn read(kvs: &BTreeMap<String, Vec<u8>>, limits: &Limits) -> Read {
    let mut refused = Vec::new();
    // section -> name -> (key, table)
    let mut entries: BTreeMap<&'static str, BTreeMap<String, (String, toml::Value)>> =
        BTreeMap::new();
    for (key, bytes) in kvs {
        let Some((section, name)) = entry_of(key) else {
            continue;
        };
        let table = serde_json::from_slice::<Value>(bytes)
            .map_err(|e| e.to_string())
            .and_then(|v| match v {
                Value::Object(_) => toml::Value::try_from(v).map_err(|e| e.to_string()),
                _ => Err("not a JSON object".to_string()),
            });
        match table {
            Ok(t) => {
                entries
                    .entry(section)
                    .or_default()
                    .insert(name.to_string(), (key.clone(), t));
            }
            Err(reason) => refused.push(Refusal {
                key: key.clone(),
                reason: format!("not a record: {reason}"),
            }),
        }
    }
    loop {
        let mut file = toml::Table::new();
        for (section, names) in &entries {
            let mut t = toml::Table::new();
            for (name, (_, value)) in names {
                t.insert(name.clone(), value.clone());
            }
            file.insert(section.to_string(), toml::Value::Table(t));
        }
        let text = toml::to_string(&file).unwrap_or_default();
        let errors: ConfigErrors = match config::parse(&text, limits) {
            Ok(config) => return Read { config, refused },
            Err(e) => e,
        };
        // Each error names its entry first: `instance.web1.ip`. Those entries go.
        let mut dropped = false;
        for e in &errors.0 {
            let mut parts = e.place.splitn(3, '.');
            let (Some(section), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            let name = name.split('[').next().unwrap_or(name);
            if let Some((key, _)) = entries.get_mut(section).and_then(|m| m.remove(name)) {
                refused.push(Refusal {
                    key,
                    reason: e.to_string(),
                });
                dropped = true;
            }
        }
        if !dropped {
            // An error that names no record: nothing can be taken.
            for e in errors.0 {
                refused.push(Refusal {
                    key: ROOT.to_string(),
                    reason: e.to_string(),
                });
            }
            return Read {
                config: Config {
                    vpcs: Vec::new(),
                    gateways: Vec::new(),
                    route_tables: Vec::new(),
                    subnets: Vec::new(),
                    instances: Vec::new(),
                    hosts: Vec::new(),
                },
                refused,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> Config {
        let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
        config::load(std::path::Path::new(&path), &Limits::default()).unwrap()
    }

    fn bytes(records: &BTreeMap<String, Value>) -> BTreeMap<String, Vec<u8>> {
        records
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_vec(v).unwrap()))
            .collect()
    }

    #[test]
    fn every_example_reads_back_as_itself() {
        for name in ["three-tier.toml", "two-hosts.toml", "peering.toml"] {
            let config = example(name);
            let records = records_of(&config);
            let back = read(&bytes(&records), &Limits::default());
            assert!(back.refused.is_empty(), "{name}: {:?}", back.refused);
            // The same file, entries in key order: the same records.
            assert_eq!(records_of(&back.config), records, "{name}");
        }
    }

    #[test]
    fn a_host_reads_only_what_it_serves_and_its_plan_is_the_same() {
        let config = example("two-hosts.toml");
        let mut more = config.clone();
        // A second VPC with an instance on h2 only.
        let text = std::fs::read_to_string(format!(
            "{}/../examples/two-hosts.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
            + "\n[vpc.lab]\nvni = 77\ncidr = \"10.77.0.0/16\"\n\
               [subnet.lab-a]\nvpc = \"lab\"\ncidr = \"10.77.1.0/24\"\n\
               [instance.l1]\nsubnet = \"lab-a\"\nip = \"10.77.1.5\"\nhost = \"h2\"\n";
        more = config::parse(&text, &Limits::default()).unwrap_or(more);
        let records = records_of(&more);
        let h1 = host_view(&bytes(&records), "h1");
        assert!(
            !h1.keys().any(|k| k.starts_with(&vpc_prefix("lab"))),
            "h1 serves no lab: {:?}",
            h1.keys()
        );
        let read_h1 = read(&h1, &Limits::default());
        assert!(read_h1.refused.is_empty(), "{:?}", read_h1.refused);
        assert_eq!(read_h1.config.vpcs.len(), 1);
        // h1's NIC holds what it held before the lab VPC came.
        let mine = config::plan(&read_h1.config, "h1").unwrap();
        let before = config::plan(&config, "h1").unwrap();
        assert_eq!(mine.desired(), before.desired());
        let h2 = host_part(&more, "h2", &Limits::default());
        assert_eq!(h2.config.vpcs.len(), 2);
    }

    #[test]
    fn a_bad_record_is_refused_with_what_leans_on_it_and_the_rest_stands() {
        let config = example("three-tier.toml");
        let mut kvs = bytes(&records_of(&config));
        let subnet = format!("{}subnets/web", vpc_prefix("prod"));
        kvs.insert(
            subnet.clone(),
            br#"{"vpc": "prod", "cidr": "10.0.1.0/33"}"#.to_vec(),
        );
        let garbage = format!("{}instances/app1", vpc_prefix("prod"));
        kvs.insert(garbage.clone(), b"{not json".to_vec());
        let back = read(&kvs, &Limits::default());
        let keys: BTreeSet<&str> = back.refused.iter().map(|r| r.key.as_str()).collect();
        assert!(keys.contains(subnet.as_str()), "{:?}", back.refused);
        assert!(keys.contains(garbage.as_str()), "{:?}", back.refused);
        // web1 and web2 were in the refused subnet; db1 stands.
        let names: Vec<&str> = back
            .config
            .instances
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert!(names.contains(&"db1"), "{names:?}");
        assert!(
            !names.contains(&"web1") && !names.contains(&"app1"),
            "{names:?}"
        );
        let reason = &back
            .refused
            .iter()
            .find(|r| r.key == subnet)
            .unwrap()
            .reason;
        assert!(reason.starts_with("subnet.web.cidr: "), "{reason}");
    }
}
