//! Checks a [`RawFile`] completely and builds the [`Config`], or returns every error.
//!
//! Sections are checked in the order vpc, gateway, route_table, subnet, instance, host, and
//! entries in file order, so errors come out in a stable order. A value that is itself
//! wrong is not checked further (an unparsable CIDR does not also "overlap" anything).
use super::file::{RawFile, RawInstance, RawRoute, RawSubnet, RawVpc, Text};
use super::model::{self, Config, Gateway, Host, Instance, Route, RouteTable, Subnet, Target, Vpc};
use super::text::{self, cidr_text, contains, is_valid_name, NAME_RULE};
use super::{ConfigError, ConfigErrors};
use host_driver::tables::{Cidr, GatewayKind, MacDisplay};
use indexmap::IndexMap;
use shared_regs::entry::{DOMAIN_MAX, VF_SECONDARY_ADDRS, VNI_MAX, VPC_DNS_SERVERS};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// What the NIC can hold. `vfs` is always checked (instances per host); the table
/// capacities only when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub vfs: u32,
    pub vpcs: Option<u32>,
    pub subnets: Option<u32>,
    /// Route tables, the main table of every VPC included.
    pub route_tables: Option<u32>,
    /// Routes per table, the local route included.
    pub routes_per_table: Option<u32>,
    pub gateways: Option<u32>,
}

impl Default for Limits {
    /// The built-in simulator's default NIC (8 VFs), capacities unknown.
    fn default() -> Self {
        Limits::vfs(8)
    }
}

impl Limits {
    /// Only a VF count.
    pub fn vfs(vfs: u32) -> Self {
        Limits {
            vfs,
            vpcs: None,
            subnets: None,
            route_tables: None,
            routes_per_table: None,
            gateways: None,
        }
    }

    /// Everything a device reported at bring-up.
    pub fn from_info(info: &host_driver::DeviceInfo) -> Self {
        Limits {
            vfs: info.num_vfs,
            vpcs: Some(info.vpcs),
            subnets: Some(info.subnets),
            route_tables: Some(info.route_tables),
            routes_per_table: Some(info.routes_per_table),
            gateways: Some(info.gateways),
        }
    }
}

/// Collects errors, and remembers the file text for line numbers.
struct Checker<'a> {
    src: &'a str,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn err(&mut self, place: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            place: place.into(),
            reason: reason.into(),
            at: None,
        });
    }

    /// An error about the text of `value`, located by its span.
    fn err_at(&mut self, place: impl Into<String>, value: &Text, reason: String) {
        self.errors.push(ConfigError {
            place: place.into(),
            reason,
            at: Some(text::line_col(self.src, value.span().start)),
        });
    }

    fn name(&mut self, section: &str, name: &str) {
        if !is_valid_name(name) {
            self.err(
                format!("{section}.{name}"),
                format!(
                    "the name {name:?} does not match {NAME_RULE} (names name network namespaces)"
                ),
            );
        }
    }

    fn parse<T>(
        &mut self,
        place: &str,
        value: &Text,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(value.get_ref()) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.err_at(place, value, reason);
                None
            }
        }
    }

    /// Index of `name` in `section`, or an error naming the known entries.
    fn reference<V>(
        &mut self,
        place: &str,
        what: &str,
        map: &IndexMap<String, V>,
        name: &Text,
    ) -> Option<usize> {
        let found = map.get_index_of(name.get_ref().as_str());
        if found.is_none() {
            let known: Vec<&str> = map.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                format!("the file has no {what}")
            } else {
                format!("known: {}", known.join(", "))
            };
            self.err(
                place,
                format!("unknown {what} {:?} ({known})", name.get_ref()),
            );
        }
        found
    }

    fn capacity(&mut self, place: &str, what: &str, count: usize, cap: Option<u32>) {
        if let Some(cap) = cap {
            if count > cap as usize {
                self.err(place, format!("{count} {what} but the NIC holds {cap}"));
            }
        }
    }
}

/// Checks `raw` (parsed from `src`) against the rules of spec/vpc-config.md and the NIC's
/// `limits`.
pub fn validate(raw: &RawFile, src: &str, limits: &Limits) -> Result<Config, ConfigErrors> {
    let mut c = Checker {
        src,
        errors: Vec::new(),
    };
    let vpcs = check_vpcs(&mut c, raw);
    let gateways = check_gateways(&mut c, raw, limits);
    let route_tables = check_route_tables(&mut c, raw, &vpcs, limits);
    let subnets = check_subnets(&mut c, raw, &vpcs, &route_tables);
    let hosts = check_hosts(&mut c, raw);
    let instances = check_instances(&mut c, raw, &vpcs, &subnets);
    check_eni_targets(&mut c, raw, &subnets, &instances);
    check_vf_counts(&mut c, raw, &hosts, &instances, limits);
    let route_table_count = vpcs.len() + route_tables.len();
    c.capacity("vpc", "VPCs", vpcs.len(), limits.vpcs);
    c.capacity("subnet", "subnets", subnets.len(), limits.subnets);
    c.capacity(
        "route_table",
        "route tables (one main table per VPC included)",
        route_table_count,
        limits.route_tables,
    );
    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    // No error: every Option below is Some.
    Ok(Config {
        vpcs: vpcs.into_iter().map(|v| v.expect("valid vpc")).collect(),
        gateways,
        route_tables: route_tables
            .into_iter()
            .map(|t| t.expect("valid route table"))
            .collect(),
        subnets: subnets
            .into_iter()
            .map(|s| s.expect("valid subnet"))
            .collect(),
        instances: instances
            .into_iter()
            .map(|i| i.expect("valid instance"))
            .collect(),
        hosts,
    })
}

fn check_vpcs(c: &mut Checker<'_>, raw: &RawFile) -> Vec<Option<Vpc>> {
    let mut vnis: HashMap<i64, &str> = HashMap::new();
    raw.vpc
        .iter()
        .map(|(name, v)| {
            c.name("vpc", name);
            let place = format!("vpc.{name}");
            let vni = *v.vni.get_ref();
            let vni_ok = if !(1..=i64::from(VNI_MAX)).contains(&vni) {
                c.err(
                    format!("{place}.vni"),
                    format!("{vni} is not a VNI (1 to {VNI_MAX})"),
                );
                false
            } else if let Some(other) = vnis.insert(vni, name) {
                vnis.insert(vni, other);
                c.err(
                    format!("{place}.vni"),
                    format!("{vni} is already the VNI of vpc {other}"),
                );
                false
            } else {
                true
            };
            let cidr = c.parse(&format!("{place}.cidr"), &v.cidr, text::parse_cidr);
            let cidr = cidr.filter(|&(_, len)| {
                if len == 0 {
                    c.err_at(
                        format!("{place}.cidr"),
                        &v.cidr,
                        "a VPC CIDR needs a prefix length of 1 to 32".into(),
                    );
                }
                len > 0
            });
            let dns = check_dns(c, &place, v, cidr);
            let domain_ok = check_domain(c, &place, v);
            match (vni_ok, cidr, dns, domain_ok) {
                (true, Some(cidr), Some(dns), true) => Some(Vpc {
                    name: name.clone(),
                    vni: vni as u32,
                    cidr,
                    dns,
                    domain: v.domain.as_ref().map(|d| d.get_ref().clone()),
                }),
                _ => None,
            }
        })
        .collect()
}

fn check_dns(
    c: &mut Checker<'_>,
    place: &str,
    v: &RawVpc,
    cidr: Option<Cidr>,
) -> Option<Vec<Ipv4Addr>> {
    let Some(given) = &v.dns else {
        return cidr.map(|cidr| vec![text::nth(cidr, 2)]);
    };
    if given.len() > VPC_DNS_SERVERS {
        c.err(
            format!("{place}.dns"),
            format!(
                "{} DNS servers given, a VPC carries at most {VPC_DNS_SERVERS}",
                given.len()
            ),
        );
    }
    let parsed: Vec<Option<Ipv4Addr>> = given
        .iter()
        .enumerate()
        .map(|(i, d)| c.parse(&format!("{place}.dns[{i}]"), d, text::parse_ip))
        .collect();
    (given.len() <= VPC_DNS_SERVERS)
        .then(|| parsed.into_iter().collect::<Option<Vec<_>>>())
        .flatten()
}

fn check_domain(c: &mut Checker<'_>, place: &str, v: &RawVpc) -> bool {
    let Some(domain) = &v.domain else {
        return true;
    };
    let d = domain.get_ref();
    let place = format!("{place}.domain");
    let reason = if d.is_empty() {
        Some("the domain is empty; leave it out for none".to_string())
    } else if d.len() > DOMAIN_MAX {
        Some(format!(
            "{d:?} is {} bytes long, a VPC carries at most {DOMAIN_MAX}",
            d.len()
        ))
    } else {
        d.char_indices()
            .find(|&(_, ch)| !(ch.is_ascii_alphanumeric() || ch == '-' || ch == '.'))
            .map(|(at, ch)| {
                format!(
                    "{d:?} has {ch:?} at byte {at}; a DNS domain name holds ASCII letters, \
                     digits, '-' and '.'"
                )
            })
    };
    match reason {
        Some(r) => {
            c.err_at(place, domain, r);
            false
        }
        None => true,
    }
}

fn check_gateways(c: &mut Checker<'_>, raw: &RawFile, limits: &Limits) -> Vec<Gateway> {
    let gateways: Vec<Gateway> = raw
        .gateway
        .iter()
        .map(|(name, g)| {
            c.name("gateway", name);
            let place = format!("gateway.{name}");
            let written = g.kind.get_ref().as_str();
            let kind = match GatewayKind::ALL.iter().find(|k| k.name() == written) {
                Some(&kind) => kind,
                None => {
                    c.err_at(
                        format!("{place}.kind"),
                        &g.kind,
                        format!("unknown gateway kind {written:?} (internet, vpn or nat)"),
                    );
                    GatewayKind::Internet
                }
            };
            let hosts = g
                .hosts
                .iter()
                .enumerate()
                .filter_map(|(i, h)| {
                    c.parse(&format!("{place}.hosts[{i}]"), h, text::parse_interface)
                })
                .collect();
            Gateway {
                name: name.clone(),
                kind,
                hosts,
            }
        })
        .collect();
    if gateways.len() > model::MAX_GATEWAYS {
        c.err(
            "gateway",
            format!(
                "{} gateways, the underlay numbering (203.0.113.1 on) has room for {}",
                gateways.len(),
                model::MAX_GATEWAYS
            ),
        );
    }
    c.capacity("gateway", "gateways", gateways.len(), limits.gateways);
    gateways
}

fn check_route_tables(
    c: &mut Checker<'_>,
    raw: &RawFile,
    vpcs: &[Option<Vpc>],
    limits: &Limits,
) -> Vec<Option<RouteTable>> {
    raw.route_table
        .iter()
        .map(|(name, t)| {
            c.name("route_table", name);
            let place = format!("route_table.{name}");
            let vpc = c.reference(&format!("{place}.vpc"), "vpc", &raw.vpc, &t.vpc);
            let vpc_cidr = vpc.and_then(|v| vpcs[v].as_ref()).map(|v| v.cidr);
            let mut routes: Vec<Option<Route>> = Vec::new();
            let mut seen: HashMap<Cidr, usize> = HashMap::new();
            for (i, r) in t.routes.iter().enumerate() {
                let rplace = format!("{place}.routes[{i}]");
                let dest = c.parse(&format!("{rplace}.dest"), &r.dest, text::parse_cidr);
                let dest = dest.filter(|&d| {
                    if Some(d) == vpc_cidr {
                        c.err(
                            format!("{rplace}.dest"),
                            format!(
                                "{} is the VPC's local route, which every table holds already",
                                cidr_text(d)
                            ),
                        );
                        return false;
                    }
                    if let Some(j) = seen.insert(d, i) {
                        seen.insert(d, j);
                        c.err(
                            format!("{rplace}.dest"),
                            format!("{} is already routed by routes[{j}]", cidr_text(d)),
                        );
                        return false;
                    }
                    true
                });
                let target = route_target(c, raw, &rplace, r, vpc);
                routes.push(
                    dest.zip(target)
                        .map(|(dest, target)| Route { dest, target }),
                );
            }
            if let Some(cap) = limits.routes_per_table {
                if t.routes.len() + 1 > cap as usize {
                    c.err(
                        format!("{place}.routes"),
                        format!(
                            "{} routes and the local route, but a NIC route table holds {cap}",
                            t.routes.len()
                        ),
                    );
                }
            }
            let routes: Option<Vec<Route>> = routes.into_iter().collect();
            Some(RouteTable {
                name: name.clone(),
                vpc: vpc?,
                routes: routes?,
            })
        })
        .collect()
}

/// `igw` (a gateway name), `pcx:<vpc>`, `eni:<instance>` or `blackhole`. The instance's
/// VPC is checked once instances are known ([`check_eni_targets`]).
fn route_target(
    c: &mut Checker<'_>,
    raw: &RawFile,
    place: &str,
    r: &RawRoute,
    table_vpc: Option<usize>,
) -> Option<Target> {
    let t = r.target.get_ref().as_str();
    let place = format!("{place}.target");
    if t == "blackhole" {
        return Some(Target::Blackhole);
    }
    if let Some(peer) = t.strip_prefix("pcx:") {
        let Some(i) = raw.vpc.get_index_of(peer) else {
            c.err(place, format!("{t}: unknown vpc {peer:?} to peer with"));
            return None;
        };
        if Some(i) == table_vpc {
            c.err(place, format!("{t}: a VPC cannot peer with itself"));
            return None;
        }
        return Some(Target::Peering(i));
    }
    if let Some(instance) = t.strip_prefix("eni:") {
        let Some(i) = raw.instance.get_index_of(instance) else {
            c.err(place, format!("{t}: unknown instance {instance:?}"));
            return None;
        };
        return Some(Target::Instance(i));
    }
    if let Some(i) = raw.gateway.get_index_of(t) {
        return Some(Target::Gateway(i));
    }
    let gateways: Vec<&str> = raw.gateway.keys().map(String::as_str).collect();
    let gateways = if gateways.is_empty() {
        "the file has no gateways".to_string()
    } else {
        format!("gateways: {}", gateways.join(", "))
    };
    c.err(
        place,
        format!(
            "unknown route target {t:?}: expected a gateway name ({gateways}), pcx:<vpc>, \
             eni:<instance> or blackhole"
        ),
    );
    None
}

fn check_subnets(
    c: &mut Checker<'_>,
    raw: &RawFile,
    vpcs: &[Option<Vpc>],
    tables: &[Option<RouteTable>],
) -> Vec<Option<Subnet>> {
    let mut placed: Vec<(usize, &str, Cidr)> = Vec::new();
    raw.subnet
        .iter()
        .map(|(name, s)| {
            c.name("subnet", name);
            let place = format!("subnet.{name}");
            let vpc = c.reference(&format!("{place}.vpc"), "vpc", &raw.vpc, &s.vpc);
            let cidr = subnet_cidr(c, &place, s, vpc.and_then(|v| vpcs[v].as_ref()));
            if let (Some(v), Some(cidr)) = (vpc, cidr) {
                if let Some((_, other, oc)) = placed
                    .iter()
                    .find(|(ov, _, oc)| *ov == v && text::overlaps(*oc, cidr))
                {
                    c.err(
                        format!("{place}.cidr"),
                        format!(
                            "{} overlaps subnet {other} ({}) of vpc {}",
                            cidr_text(cidr),
                            cidr_text(*oc),
                            raw.vpc.get_index(v).map(|(n, _)| n.as_str()).unwrap_or("?")
                        ),
                    );
                } else {
                    placed.push((v, name, cidr));
                }
            }
            let route_table = match &s.route_table {
                None => Some(None),
                Some(t) => {
                    let rplace = format!("{place}.route_table");
                    let i = c.reference(&rplace, "route table", &raw.route_table, t)?;
                    if let (Some(table), Some(v)) = (&tables[i], vpc) {
                        if table.vpc != v {
                            c.err(
                                rplace,
                                format!(
                                    "route table {} is of vpc {}, not of this subnet's vpc {}",
                                    t.get_ref(),
                                    raw.route_table[i].vpc.get_ref(),
                                    s.vpc.get_ref()
                                ),
                            );
                            return None;
                        }
                    }
                    Some(Some(i))
                }
            };
            Some(Subnet {
                name: name.clone(),
                vpc: vpc?,
                cidr: cidr?,
                route_table: route_table?,
            })
        })
        .collect()
}

fn subnet_cidr(c: &mut Checker<'_>, place: &str, s: &RawSubnet, vpc: Option<&Vpc>) -> Option<Cidr> {
    let cplace = format!("{place}.cidr");
    let cidr = c.parse(&cplace, &s.cidr, text::parse_cidr)?;
    if !(16..=28).contains(&cidr.1) {
        c.err_at(
            cplace,
            &s.cidr,
            format!(
                "{}: a subnet's prefix length is 16 to 28 (as in Amazon VPC)",
                cidr_text(cidr)
            ),
        );
        return None;
    }
    if let Some(vpc) = vpc {
        if cidr.1 < vpc.cidr.1 || !contains(vpc.cidr, cidr.0) {
            c.err(
                cplace,
                format!(
                    "{} is outside vpc {} ({})",
                    cidr_text(cidr),
                    vpc.name,
                    cidr_text(vpc.cidr)
                ),
            );
            return None;
        }
    }
    Some(cidr)
}

fn check_hosts(c: &mut Checker<'_>, raw: &RawFile) -> Vec<Host> {
    if raw.host.is_empty() {
        return vec![Host {
            name: model::DEFAULT_HOST.to_string(),
        }];
    }
    for name in raw.host.keys() {
        c.name("host", name);
    }
    if raw.host.len() > model::MAX_HOSTS {
        c.err(
            "host",
            format!(
                "{} hosts, the underlay numbering (192.0.2.1 on) has room for {}",
                raw.host.len(),
                model::MAX_HOSTS
            ),
        );
    }
    raw.host
        .keys()
        .map(|name| Host { name: name.clone() })
        .collect()
}

/// Why an address of `subnet` is reserved, if it is.
fn reserved_reason(subnet: Cidr, ip: Ipv4Addr) -> Option<&'static str> {
    let offset = u32::from(ip) - u32::from(subnet.0);
    match offset {
        0 => Some("the network address"),
        1 => Some("the subnet gateway"),
        2 => Some("the DNS server"),
        3 => Some("reserved for future use"),
        _ if ip == text::last(subnet) => Some("the broadcast address"),
        _ => None,
    }
}

/// Who holds each address, per VPC: "instance web1".
type Owners = HashMap<(usize, Ipv4Addr), String>;

#[allow(clippy::too_many_arguments)]
fn check_address(
    c: &mut Checker<'_>,
    place: &str,
    value: &Text,
    subnet: Option<(&Subnet, &str)>,
    owner: &str,
    owners: &mut Owners,
    vpc_name: &str,
) -> Option<Ipv4Addr> {
    let ip = c.parse(place, value, text::parse_ip)?;
    let (subnet, subnet_name) = subnet?;
    if !contains(subnet.cidr, ip) {
        c.err(
            place,
            format!(
                "{ip} is outside subnet {subnet_name} ({})",
                cidr_text(subnet.cidr)
            ),
        );
        return None;
    }
    if let Some(why) = reserved_reason(subnet.cidr, ip) {
        c.err(
            place,
            format!(
                "{ip} is a reserved address of subnet {subnet_name} ({}): {why}",
                cidr_text(subnet.cidr)
            ),
        );
        return None;
    }
    if let Some(other) = owners.get(&(subnet.vpc, ip)) {
        c.err(
            place,
            format!("{ip} is already an address of {other} in vpc {vpc_name}"),
        );
        return None;
    }
    owners.insert((subnet.vpc, ip), owner.to_string());
    Some(ip)
}

fn check_instances(
    c: &mut Checker<'_>,
    raw: &RawFile,
    vpcs: &[Option<Vpc>],
    subnets: &[Option<Subnet>],
) -> Vec<Option<Instance>> {
    let mut owners = Owners::new();
    let mut macs: HashMap<[u8; 6], &str> = HashMap::new();
    raw.instance
        .iter()
        .map(|(name, inst)| {
            c.name("instance", name);
            let place = format!("instance.{name}");
            let subnet_index = c.reference(
                &format!("{place}.subnet"),
                "subnet",
                &raw.subnet,
                &inst.subnet,
            );
            let subnet = subnet_index.and_then(|s| {
                subnets[s].as_ref().map(|sub| {
                    (
                        sub,
                        raw.subnet
                            .get_index(s)
                            .map(|(n, _)| n.as_str())
                            .unwrap_or("?"),
                    )
                })
            });
            let vpc = subnet.and_then(|(s, _)| vpcs[s.vpc].as_ref());
            let vpc_name = vpc.map(|v| v.name.as_str()).unwrap_or("?");
            let owner = format!("instance {name}");
            let ip = check_address(
                c,
                &format!("{place}.ip"),
                &inst.ip,
                subnet,
                &owner,
                &mut owners,
                vpc_name,
            );
            let secondary =
                check_secondaries(c, &place, inst, subnet, &owner, &mut owners, vpc_name);
            let mac = instance_mac(c, &place, inst, vpc, ip, name, &mut macs);
            let host = instance_host(c, raw, &place, inst);
            Some(Instance {
                name: name.clone(),
                subnet: subnet_index?,
                ip: ip?,
                secondary_ips: secondary?,
                mac: mac?,
                src_dst_check: inst.src_dst_check.unwrap_or(true),
                host: host?,
            })
        })
        .collect()
}

fn check_secondaries(
    c: &mut Checker<'_>,
    place: &str,
    inst: &RawInstance,
    subnet: Option<(&Subnet, &str)>,
    owner: &str,
    owners: &mut Owners,
    vpc_name: &str,
) -> Option<Vec<Ipv4Addr>> {
    let too_many = inst.secondary_ips.len() > VF_SECONDARY_ADDRS;
    if too_many {
        c.err(
            format!("{place}.secondary_ips"),
            format!(
                "{} addresses given, a VF holds at most {VF_SECONDARY_ADDRS} secondary addresses",
                inst.secondary_ips.len()
            ),
        );
    }
    let ips: Vec<Option<Ipv4Addr>> = inst
        .secondary_ips
        .iter()
        .enumerate()
        .map(|(i, t)| {
            check_address(
                c,
                &format!("{place}.secondary_ips[{i}]"),
                t,
                subnet,
                owner,
                owners,
                vpc_name,
            )
        })
        .collect();
    if too_many {
        return None;
    }
    ips.into_iter().collect()
}

fn instance_mac<'n>(
    c: &mut Checker<'_>,
    place: &str,
    inst: &RawInstance,
    vpc: Option<&Vpc>,
    ip: Option<Ipv4Addr>,
    name: &'n str,
    macs: &mut HashMap<[u8; 6], &'n str>,
) -> Option<[u8; 6]> {
    let mplace = format!("{place}.mac");
    let (mac, how) = match &inst.mac {
        Some(t) => (c.parse(&mplace, t, text::parse_mac)?, ""),
        None => (
            model::instance_mac(vpc?.vni, ip?),
            " (derived from the VNI and the address; set mac to choose another)",
        ),
    };
    if let Some(other) = macs.get(&mac) {
        c.err(
            mplace,
            format!(
                "{} is already the MAC of instance {other}{how}",
                MacDisplay(&mac)
            ),
        );
        return None;
    }
    macs.insert(mac, name);
    Some(mac)
}

fn instance_host(
    c: &mut Checker<'_>,
    raw: &RawFile,
    place: &str,
    inst: &RawInstance,
) -> Option<usize> {
    match &inst.host {
        None => Some(0),
        Some(h) if raw.host.is_empty() => {
            c.err(
                format!("{place}.host"),
                format!(
                    "unknown host {:?}: the file has no [host] tables, so every instance is on one host",
                    h.get_ref()
                ),
            );
            None
        }
        Some(h) => c.reference(&format!("{place}.host"), "host", &raw.host, h),
    }
}

/// An `eni:` target must be an instance of the route table's VPC (checked on every route
/// whose table VPC and instance are known, even in a table with other errors).
fn check_eni_targets(
    c: &mut Checker<'_>,
    raw: &RawFile,
    subnets: &[Option<Subnet>],
    instances: &[Option<Instance>],
) {
    for (name, table) in &raw.route_table {
        let Some(table_vpc) = raw.vpc.get_index_of(table.vpc.get_ref().as_str()) else {
            continue;
        };
        for (i, route) in table.routes.iter().enumerate() {
            let target = route.target.get_ref();
            let Some(inst) = target
                .strip_prefix("eni:")
                .and_then(|n| raw.instance.get_index_of(n))
            else {
                continue;
            };
            let Some(vpc) = instances[inst]
                .as_ref()
                .and_then(|x| subnets[x.subnet].as_ref())
                .map(|s| s.vpc)
            else {
                continue;
            };
            if vpc != table_vpc {
                c.err(
                    format!("route_table.{name}.routes[{i}].target"),
                    format!(
                        "{target}: the instance is in vpc {}, not in this table's vpc {}",
                        raw.vpc
                            .get_index(vpc)
                            .map(|(n, _)| n.as_str())
                            .unwrap_or("?"),
                        table.vpc.get_ref()
                    ),
                );
            }
        }
    }
}

fn check_vf_counts(
    c: &mut Checker<'_>,
    raw: &RawFile,
    hosts: &[Host],
    instances: &[Option<Instance>],
    limits: &Limits,
) {
    for (h, host) in hosts.iter().enumerate() {
        let on: Vec<&str> = instances
            .iter()
            .flatten()
            .filter(|i| i.host == h)
            .map(|i| i.name.as_str())
            .collect();
        if on.len() > limits.vfs as usize {
            let place = if raw.host.is_empty() {
                "instance".to_string()
            } else {
                format!("host.{}", host.name)
            };
            c.err(
                place,
                format!(
                    "{} instances on host {} but the NIC has {} VFs",
                    on.len(),
                    host.name,
                    limits.vfs
                ),
            );
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
