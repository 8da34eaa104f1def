//! Instances: subnet, addresses (primary and secondary, none reserved or taken), MAC and host.
use super::*;

/// Why an address of `subnet` is reserved, if it is.
pub(super) fn reserved_reason(subnet: Cidr, ip: Ipv4Addr) -> Option<&'static str> {
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
pub(super) fn check_address(
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

pub(super) fn check_instances(
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

pub(super) fn check_secondaries(
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

pub(super) fn instance_mac<'n>(
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

pub(super) fn instance_host(
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
