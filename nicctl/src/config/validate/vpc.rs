//! VPCs: name, VNI, CIDR, DNS servers and domain.
use super::*;

pub(super) fn check_vpcs(c: &mut Checker<'_>, raw: &RawFile) -> Vec<Option<Vpc>> {
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

pub(super) fn check_dns(
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

pub(super) fn check_domain(c: &mut Checker<'_>, place: &str, v: &RawVpc) -> bool {
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
