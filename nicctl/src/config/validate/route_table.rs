//! Route tables and their routes; `eni:` targets once instances are known.
use super::*;

pub(super) fn check_route_tables(
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
pub(super) fn route_target(
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
        format!("gateways: {}", text::few(&gateways))
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

/// An `eni:` target must be an instance of the route table's VPC (checked on every route
/// whose table VPC and instance are known, even in a table with other errors).
pub(super) fn check_eni_targets(
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
