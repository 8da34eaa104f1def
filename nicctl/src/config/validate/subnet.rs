//! Subnets: CIDR inside their VPC, no overlap, their route table.
use super::*;

pub(super) fn check_subnets(
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

pub(super) fn subnet_cidr(
    c: &mut Checker<'_>,
    place: &str,
    s: &RawSubnet,
    vpc: Option<&Vpc>,
) -> Option<Cidr> {
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
