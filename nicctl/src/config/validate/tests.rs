use super::*;
use crate::config::parse;

/// A small valid file the bad cases below change.
const BASE: &str = r#"
[vpc.prod]
vni = 100
cidr = "10.0.0.0/16"

[vpc.other]
vni = 200
cidr = "10.9.0.0/16"

[gateway.igw]
kind = "internet"

[route_table.public]
vpc = "prod"
routes = [{ dest = "0.0.0.0/0", target = "igw" }]

[subnet.web]
vpc = "prod"
cidr = "10.0.1.0/24"
route_table = "public"

[subnet.app]
vpc = "prod"
cidr = "10.0.2.0/24"

[subnet.far]
vpc = "other"
cidr = "10.9.1.0/24"

[instance.web1]
subnet = "web"
ip = "10.0.1.10"

[instance.app1]
subnet = "app"
ip = "10.0.2.20"
"#;

fn errors(extra: &str) -> Vec<String> {
    errors_with(extra, &Limits::default())
}

fn errors_with(extra: &str, limits: &Limits) -> Vec<String> {
    match parse(&format!("{BASE}{extra}"), limits) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

/// Line of the first line of `extra` once appended to BASE.
fn line(n: usize) -> usize {
    BASE.lines().count() + n
}

#[test]
fn the_base_file_is_valid_with_defaults_filled_in() {
    let c = parse(BASE, &Limits::default()).unwrap();
    assert_eq!(c.vpcs[0].dns, [Ipv4Addr::new(10, 0, 0, 2)]);
    assert_eq!(c.vpcs[1].dns, [Ipv4Addr::new(10, 9, 0, 2)]);
    assert_eq!(
        c.hosts,
        [Host {
            name: "local".into(),
            underlay: Ipv4Addr::new(192, 0, 2, 1),
        }]
    );
    let web1 = &c.instances[0];
    assert_eq!(web1.mac, [2, 100, 10, 0, 1, 10]);
    assert!(web1.src_dst_check);
    assert_eq!(web1.host, 0);
    assert_eq!(c.subnets[1].route_table, None, "main table");
    assert_eq!(c.subnets[0].route_table, Some(0));
    assert_eq!(
        c.route_tables[0].routes,
        [Route {
            dest: (Ipv4Addr::UNSPECIFIED, 0),
            target: Target::Gateway(0)
        }]
    );
}

#[test]
fn bad_files_report_every_error_with_place_and_reason() {
    let l = line(1);
    let cases: Vec<(String, Vec<String>)> = vec![
        // Names.
        (
            "[vpc.Prod]\nvni = 7\ncidr = \"10.1.0.0/16\"\n".into(),
            vec!["vpc.Prod: the name \"Prod\" does not match [a-z][a-z0-9-]{0,14} (names name network namespaces)".into()],
        ),
        (
            "[instance.a-very-long-name-x]\nsubnet = \"web\"\nip = \"10.0.1.11\"\n".into(),
            vec!["instance.a-very-long-name-x: the name \"a-very-long-name-x\" does not match [a-z][a-z0-9-]{0,14} (names name network namespaces)".into()],
        ),
        // VNIs.
        (
            "[vpc.dup]\nvni = 100\ncidr = \"10.1.0.0/16\"\n[vpc.zero]\nvni = 0\ncidr = \"10.2.0.0/16\"\n[vpc.big]\nvni = 16777216\ncidr = \"10.3.0.0/16\"\n".into(),
            vec![
                "vpc.dup.vni: 100 is already the VNI of vpc prod".into(),
                "vpc.zero.vni: 0 is not a VNI (1 to 16777215)".into(),
                "vpc.big.vni: 16777216 is not a VNI (1 to 16777215)".into(),
            ],
        ),
        // CIDR text, with line and column.
        (
            "[vpc.x]\nvni = 7\ncidr = \"10.1.0.0/33\"\n".into(),
            vec![format!("vpc.x.cidr: \"10.1.0.0/33\" is not an IPv4 CIDR: the prefix length \"33\" is not 0 to 32 (line {}, column 8)", l + 2)],
        ),
        (
            "[subnet.s]\nvpc = \"prod\"\ncidr = \"10.0.3.1/24\"\n".into(),
            vec![format!("subnet.s.cidr: \"10.0.3.1/24\" has host bits set: the network is 10.0.3.0/24 (line {}, column 8)", l + 2)],
        ),
        // DNS and domain.
        (
            "[vpc.x]\nvni = 7\ncidr = \"10.1.0.0/16\"\ndns = [\"10.1.0.2\", \"1.1.1\", \"8.8.8.8\", \"9.9.9.9\", \"1.0.0.1\"]\ndomain = \"my domain\"\n".into(),
            vec![
                "vpc.x.dns: 5 DNS servers given, a VPC carries at most 4".into(),
                format!("vpc.x.dns[1]: \"1.1.1\" is not an IPv4 address (expected a.b.c.d) (line {}, column 20)", l + 3),
                format!("vpc.x.domain: \"my domain\" has ' ' at byte 2; a DNS domain name holds ASCII letters, digits, '-' and '.' (line {}, column 10)", l + 4),
            ],
        ),
        (
            format!("[vpc.x]\nvni = 7\ncidr = \"10.1.0.0/16\"\ndomain = \"{}\"\n", "a".repeat(65)),
            vec![format!("vpc.x.domain: \"{}\" is 65 bytes long, a VPC carries at most 64 (line {}, column 10)", "a".repeat(65), l + 3)],
        ),
        // Gateways.
        (
            "[gateway.vgw]\nkind = \"vpc-peering\"\nhosts = [\"198.51.100.1\"]\n".into(),
            vec![
                format!("gateway.vgw.kind: unknown gateway kind \"vpc-peering\" (internet, vpn or nat) (line {}, column 8)", l + 1),
                format!("gateway.vgw.hosts[0]: \"198.51.100.1\" is not an IPv4 address with a prefix length (expected a.b.c.d/len) (line {}, column 10)", l + 2),
            ],
        ),
        // Route tables and targets.
        (
            "[route_table.t]\nvpc = \"prd\"\nroutes = [{ dest = \"0.0.0.0/0\", target = \"igw\" }]\n".into(),
            vec!["route_table.t.vpc: unknown vpc \"prd\" (known: prod, other)".into()],
        ),
        (
            concat!(
                "[route_table.t]\nvpc = \"prod\"\nroutes = [\n",
                "  { dest = \"10.8.0.0/16\", target = \"ngw\" },\n",
                "  { dest = \"10.9.0.0/16\", target = \"pcx:nowhere\" },\n",
                "  { dest = \"10.10.0.0/16\", target = \"pcx:prod\" },\n",
                "  { dest = \"10.11.0.0/16\", target = \"eni:ghost\" },\n",
                "  { dest = \"10.12.0.0/16\", target = \"eni:far1\" },\n",
                "  { dest = \"10.0.0.0/16\", target = \"blackhole\" },\n",
                "  { dest = \"10.8.0.0/16\", target = \"blackhole\" },\n",
                "  { dest = \"10.13.0.0/16\", target = \"pcx:other\" },\n",
                "]\n",
                "[instance.far1]\nsubnet = \"far\"\nip = \"10.9.1.10\"\n",
            )
            .into(),
            vec![
                "route_table.t.routes[0].target: unknown route target \"ngw\": expected a gateway name (gateways: igw), pcx:<vpc>, eni:<instance> or blackhole".into(),
                "route_table.t.routes[1].target: pcx:nowhere: unknown vpc \"nowhere\" to peer with".into(),
                "route_table.t.routes[2].target: pcx:prod: a VPC cannot peer with itself".into(),
                "route_table.t.routes[3].target: eni:ghost: unknown instance \"ghost\"".into(),
                "route_table.t.routes[5].dest: 10.0.0.0/16 is the VPC's local route, which every table holds already".into(),
                "route_table.t.routes[6].dest: 10.8.0.0/16 is already routed by routes[0]".into(),
                "route_table.t.routes[4].target: eni:far1: the instance is in vpc other, not in this table's vpc prod".into(),
            ],
        ),
        // Subnets.
        (
            concat!(
                "[subnet.over]\nvpc = \"prod\"\ncidr = \"10.0.1.128/25\"\n",
                "[subnet.out]\nvpc = \"prod\"\ncidr = \"10.1.1.0/24\"\n",
                "[subnet.wide]\nvpc = \"prod\"\ncidr = \"10.0.0.0/15\"\n",
                "[subnet.tiny]\nvpc = \"prod\"\ncidr = \"10.0.9.0/29\"\n",
                "[subnet.cross]\nvpc = \"other\"\ncidr = \"10.9.2.0/24\"\nroute_table = \"public\"\n",
                "[subnet.lost]\nvpc = \"nope\"\ncidr = \"10.0.7.0/24\"\nroute_table = \"nope\"\n",
            )
            .into(),
            vec![
                "subnet.over.cidr: 10.0.1.128/25 overlaps subnet web (10.0.1.0/24) of vpc prod".into(),
                "subnet.out.cidr: 10.1.1.0/24 is outside vpc prod (10.0.0.0/16)".into(),
                format!("subnet.wide.cidr: 10.0.0.0/15: a subnet's prefix length is 16 to 28 (as in Amazon VPC) (line {}, column 8)", l + 8),
                format!("subnet.tiny.cidr: 10.0.9.0/29: a subnet's prefix length is 16 to 28 (as in Amazon VPC) (line {}, column 8)", l + 11),
                "subnet.cross.route_table: route table public is of vpc prod, not of this subnet's vpc other".into(),
                "subnet.lost.vpc: unknown vpc \"nope\" (known: prod, other)".into(),
                "subnet.lost.route_table: unknown route table \"nope\" (known: public)".into(),
            ],
        ),
        // Instance addresses.
        (
            concat!(
                "[instance.out]\nsubnet = \"web\"\nip = \"10.0.2.10\"\n",
                "[instance.gw]\nsubnet = \"web\"\nip = \"10.0.1.1\"\n",
                "[instance.base]\nsubnet = \"web\"\nip = \"10.0.1.0\"\n",
                "[instance.dns]\nsubnet = \"web\"\nip = \"10.0.1.2\"\n",
                "[instance.three]\nsubnet = \"web\"\nip = \"10.0.1.3\"\n",
                "[instance.bcast]\nsubnet = \"web\"\nip = \"10.0.1.255\"\n",
                "[instance.dup]\nsubnet = \"web\"\nip = \"10.0.1.10\"\n",
                "[instance.nosub]\nsubnet = \"db\"\nip = \"10.0.5.5\"\n",
            )
            .into(),
            vec![
                "instance.out.ip: 10.0.2.10 is outside subnet web (10.0.1.0/24)".into(),
                "instance.gw.ip: 10.0.1.1 is a reserved address of subnet web (10.0.1.0/24): the subnet gateway".into(),
                "instance.base.ip: 10.0.1.0 is a reserved address of subnet web (10.0.1.0/24): the network address".into(),
                "instance.dns.ip: 10.0.1.2 is a reserved address of subnet web (10.0.1.0/24): the DNS server".into(),
                "instance.three.ip: 10.0.1.3 is a reserved address of subnet web (10.0.1.0/24): reserved for future use".into(),
                "instance.bcast.ip: 10.0.1.255 is a reserved address of subnet web (10.0.1.0/24): the broadcast address".into(),
                "instance.dup.ip: 10.0.1.10 is already an address of instance web1 in vpc prod".into(),
                "instance.nosub.subnet: unknown subnet \"db\" (known: web, app, far)".into(),
            ],
        ),
        // Secondary addresses and MACs.
        (
            concat!(
                "[instance.many]\nsubnet = \"web\"\nip = \"10.0.1.20\"\n",
                "secondary_ips = [\"10.0.1.21\", \"10.0.1.22\", \"10.0.1.23\", \"10.0.1.24\", \"10.0.1.25\", \"10.0.1.26\", \"10.0.1.27\", \"10.0.1.20\"]\n",
                "[instance.mac1]\nsubnet = \"app\"\nip = \"10.0.2.30\"\nmac = \"02:64:0a:00:01:0a\"\n",
                "[instance.mac2]\nsubnet = \"app\"\nip = \"10.0.2.31\"\nmac = \"03:00:00:00:00:01\"\n",
            )
            .into(),
            vec![
                "instance.many.secondary_ips: 8 addresses given, a VF holds at most 7 secondary addresses".into(),
                "instance.many.secondary_ips[7]: 10.0.1.20 is already an address of instance many in vpc prod".into(),
                "instance.mac1.mac: 02:64:0a:00:01:0a is already the MAC of instance web1".into(),
                format!("instance.mac2.mac: 03:00:00:00:00:01 is a multicast MAC address; an instance needs a unicast one (line {}, column 7)", l + 11),
            ],
        ),
        // Derived MACs that collide across VPCs (VNIs 100 and 356 share their low byte).
        (
            "[vpc.v356]\nvni = 356\ncidr = \"10.0.0.0/16\"\n[subnet.s356]\nvpc = \"v356\"\ncidr = \"10.0.1.0/24\"\n[instance.twin]\nsubnet = \"s356\"\nip = \"10.0.1.10\"\n".into(),
            vec!["instance.twin.mac: 02:64:0a:00:01:0a is already the MAC of instance web1 (derived from the VNI and the address; set mac to choose another)".into()],
        ),
        // Hosts.
        (
            "[instance.h]\nsubnet = \"web\"\nip = \"10.0.1.30\"\nhost = \"h9\"\n".into(),
            vec!["instance.h.host: unknown host \"h9\": the file has no [host] tables, so every instance is on one host".into()],
        ),
        (
            "[host.h1]\n[host.H2]\n[instance.h]\nsubnet = \"web\"\nip = \"10.0.1.30\"\nhost = \"h2\"\n".into(),
            vec![
                "host.H2: the name \"H2\" does not match [a-z][a-z0-9-]{0,14} (names name network namespaces)".into(),
                "instance.h.host: unknown host \"h2\" (known: h1, H2)".into(),
            ],
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(errors(&extra), expected, "file tail:\n{extra}");
    }
}

#[test]
fn more_instances_on_a_host_than_vfs() {
    assert_eq!(
        errors_with("", &Limits::vfs(1)),
        ["instance: 2 instances on host local but the NIC has 1 VFs"]
    );
    let two_hosts =
        "[host.h1]\n[host.h2]\n[instance.c]\nsubnet = \"app\"\nip = \"10.0.2.21\"\nhost = \"h2\"\n";
    assert_eq!(
        errors_with(two_hosts, &Limits::vfs(1)),
        ["host.h1: 2 instances on host h1 but the NIC has 1 VFs"]
    );
    assert!(errors_with(two_hosts, &Limits::vfs(2)).is_empty());
}

#[test]
fn table_capacities_are_checked_when_known() {
    let limits = Limits {
        vfs: 8,
        vpcs: Some(1),
        subnets: Some(2),
        route_tables: Some(2),
        routes_per_table: Some(1),
        gateways: Some(0),
    };
    assert_eq!(
        errors_with("", &limits),
        [
            "gateway: 1 gateways but the NIC holds 0",
            "route_table.public.routes: 1 routes and the local route, but a NIC route table holds 1",
            "vpc: 2 VPCs but the NIC holds 1",
            "subnet: 3 subnets but the NIC holds 2",
            "route_table: 3 route tables (one main table per VPC included) but the NIC holds 2",
        ]
    );
}

#[test]
fn type_errors_stop_at_the_first_with_its_line() {
    let err = parse(
        "[vpc.a]\nvni = \"100\"\ncidr = \"10.0.0.0/16\"\n",
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(err.0[0].reason.contains("invalid type"), "{err}");
    assert_eq!(err.0[0].at, Some((2, 7)));
}

#[test]
fn underlay_addresses_are_given_or_numbered_and_unique() {
    let c = parse(
        &format!(
            "{BASE}\n[host.h1]\n[host.h2]\nunderlay = \"192.0.2.77\"\n\n\
             [gateway.vgw]\nkind = \"vpn\"\nunderlay = \"203.0.113.9\"\n"
        ),
        &Limits::default(),
    )
    .unwrap();
    let hosts: Vec<Ipv4Addr> = c.hosts.iter().map(|h| h.underlay).collect();
    assert_eq!(
        hosts,
        [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 77)]
    );
    assert_eq!(c.hosts[1].uplink_mac(), [0x0e, 0, 192, 0, 2, 77]);
    assert_eq!(c.gateways[1].underlay, Ipv4Addr::new(203, 0, 113, 9));
    assert_eq!(c.gateways[1].mac(), [0x0a, 0, 203, 0, 113, 9]);
    assert_eq!(
        errors("\n[host.h1]\n[host.h2]\nunderlay = \"192.0.2.1\"\n"),
        ["host.h2.underlay: 192.0.2.1 is host h1's underlay address too"]
    );
    let bad = errors("\n[host.h1]\nunderlay = \"192.0.2\"\n");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].starts_with("host.h1.underlay: "), "{bad:?}");
}

#[test]
fn an_instance_and_a_gateway_cannot_share_a_name() {
    // Both become network namespaces: `up` would lose one of them.
    assert_eq!(
        errors("\n[instance.igw]\nsubnet = \"web\"\nip = \"10.0.1.50\"\n"),
        [
            "instance.igw: the name igw is gateway igw's too: instances and gateways each name a \
          network namespace"
        ]
    );
}
