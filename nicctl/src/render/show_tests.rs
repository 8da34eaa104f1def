use super::*;
use host_driver::table_read::{
    GatewayRow, MappingRow, NicTables, RouteRow, RouteTableRow, SubnetRow, UplinkRow, VfRow, VpcRow,
};
use host_driver::PfDriver;

fn sample() -> HostTables {
    let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    let mut names = Names::default();
    names.vpcs.insert(0, "prod".into());
    names.subnets.insert(0, "web".into());
    names.route_tables.insert(0, "prod main".into());
    names.route_tables.insert(1, "public".into());
    names.gateways.insert(0, "igw".into());
    names.vfs.insert(0, "web1".into());
    names.hosts.insert(a("192.0.2.2"), "h2".into());
    names.instances.push((100, a("10.0.1.10"), "web1".into()));
    names.instances.push((100, a("10.0.1.11"), "web2".into()));
    HostTables {
        host: "h1".into(),
        tables: NicTables {
            uplink: Some(UplinkRow {
                mac: [0x0e, 0, 192, 0, 2, 1],
                next_hop_mac: [0x0e, 0, 192, 0, 2, 254],
                underlay_ip: a("192.0.2.1"),
                mtu: 9216,
            }),
            vpcs: vec![VpcRow {
                id: 0,
                vni: 100,
                cidr: (a("10.0.0.0"), 16),
                main_route_table: Some(0),
                dns: vec![],
                domain: Some("prod.internal".into()),
            }],
            gateways: vec![GatewayRow {
                id: 0,
                kind: "internet".into(),
                underlay_ip: a("203.0.113.1"),
                mac: [0x0a, 0, 203, 0, 113, 1],
            }],
            route_tables: vec![RouteTableRow {
                id: 1,
                vpc_id: 0,
                routes: vec![
                    RouteRow {
                        dest: (a("0.0.0.0"), 0),
                        target: RouteTarget::Gateway(0),
                    },
                    RouteRow {
                        dest: (a("10.0.0.0"), 16),
                        target: RouteTarget::Local,
                    },
                    RouteRow {
                        dest: (a("10.0.7.0"), 24),
                        target: RouteTarget::Instance(a("10.0.1.10")),
                    },
                ],
            }],
            subnets: vec![SubnetRow {
                id: 0,
                vpc_id: 0,
                cidr: (a("10.0.1.0"), 24),
                route_table: Some(1),
                gateway_mac: [6, 100, 10, 0, 1, 1],
            }],
            vfs: vec![VfRow {
                vf: 0,
                subnet_id: 0,
                mac: [2, 100, 10, 0, 1, 10],
                primary_ip: a("10.0.1.10"),
                secondary_ips: vec![a("10.0.1.12")],
                src_dst_check: true,
                link_up: true,
            }],
            mappings: vec![
                MappingRow {
                    vni: 100,
                    ip: a("0.0.0.0"),
                    mac: [0; 6],
                    place: PlaceRow::VniAnchor(0),
                },
                MappingRow {
                    vni: 100,
                    ip: a("10.0.1.10"),
                    mac: [2, 100, 10, 0, 1, 10],
                    place: PlaceRow::LocalVf(0),
                },
                MappingRow {
                    vni: 100,
                    ip: a("10.0.1.11"),
                    mac: [2, 100, 10, 0, 1, 11],
                    place: PlaceRow::Remote(a("192.0.2.2")),
                },
            ],
            domains_read: true,
        },
        names,
    }
}

#[test]
fn show_text_names_every_id_it_can() {
    let text = show_text(&sample());
    let expected = "\
Host h1: uplink 192.0.2.1 (0e:00:c0:00:02:01), next hop 0e:00:c0:00:02:fe, MTU 9216

VFs (1)
  VF   instance  MAC                subnet   primary    secondary  src/dst check  link
  vf0  web1      02:64:0a:00:01:0a  0 (web)  10.0.1.10  10.0.1.12  on             up

VPCs (1)
  VPC       VNI  CIDR         main route table  DNS      domain
  0 (prod)  100  10.0.0.0/16  0                 default  prod.internal

Subnets (1)
  subnet   VPC       CIDR         route table  gateway MAC
  0 (web)  0 (prod)  10.0.1.0/24  1 (public)   06:64:0a:00:01:01

Route tables (1)
  table 1 (public) of VPC 0 (prod)
    0.0.0.0/0    -> gateway 0 (igw)
    10.0.0.0/16  -> local
    10.0.7.0/24  -> instance 10.0.1.10 (web1)

Gateways (1)
  gateway  kind      underlay     MAC
  0 (igw)  internet  203.0.113.1  0a:00:cb:00:71:01

Mappings (3)
  VNI  address    MAC                location                instance
  100  0.0.0.0    00:00:00:00:00:00  anchor of VPC 0 (prod)  -
  100  10.0.1.10  02:64:0a:00:01:0a  local vf0               web1
  100  10.0.1.11  02:64:0a:00:01:0b  host h2 (192.0.2.2)     web2
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn the_model_survives_json() {
    let h = sample();
    let json = serde_json::to_value(&h).unwrap();
    assert_eq!(json["tables"]["vfs"][0]["mac"], "02:64:0a:00:01:0a");
    assert_eq!(json["tables"]["vpcs"][0]["cidr"], "10.0.0.0/16");
    assert_eq!(
        json["tables"]["route_tables"][0]["routes"][0]["target"]["gateway"],
        0
    );
    assert_eq!(
        json["tables"]["mappings"][2]["place"]["remote"],
        "192.0.2.2"
    );
    let back: HostTables = serde_json::from_value(json).unwrap();
    assert_eq!(back, h);
}

/// The simulator's firmware holds what a plan programs, and `read_tables` gets it back.
#[test]
fn the_simulator_reads_back_a_programmed_file() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/three-tier.toml"
    ))
    .unwrap();
    let config = crate::config::parse(&text, &crate::config::Limits::default()).unwrap();
    let plan = crate::config::plan(&config, "h1").unwrap();
    let drv = PfDriver::open(host_driver::backend::open_by_name("sim", 4).unwrap()).unwrap();
    crate::config::apply(&drv, &plan, |_, _| {}).unwrap();
    let tables = drv.read_tables().unwrap();
    assert_eq!(
        tables.uplink.as_ref().unwrap().underlay_ip,
        plan.underlay_ip
    );
    assert_eq!(tables.vpcs.len(), 2);
    assert_eq!(tables.gateways.len(), 2);
    assert_eq!(tables.subnets.len(), 4);
    assert_eq!(
        tables.route_tables.len(),
        5,
        "2 main tables and 3 of the file"
    );
    assert_eq!(tables.vfs.len(), 3);
    let app1 = &tables.vfs[1];
    assert_eq!(app1.primary_ip, Ipv4Addr::new(10, 0, 2, 20));
    assert_eq!(app1.secondary_ips, [Ipv4Addr::new(10, 0, 2, 21)]);
    assert!(!tables.vfs[2].src_dst_check, "fw1");
    assert!(!app1.link_up, "no VM driver has enabled the rings");
    let private = tables.route_tables.iter().find(|t| t.id == 3).unwrap();
    assert!(private.routes.contains(&RouteRow {
        dest: (Ipv4Addr::new(10, 0, 0, 0), 16),
        target: RouteTarget::Local
    }));
    assert!(private.routes.contains(&RouteRow {
        dest: (Ipv4Addr::new(10, 0, 8, 0), 24),
        target: RouteTarget::Blackhole
    }));
    let web2 = tables
        .mappings
        .iter()
        .find(|m| m.ip == Ipv4Addr::new(10, 0, 1, 11))
        .unwrap();
    assert_eq!(web2.place, PlaceRow::Remote(Ipv4Addr::new(192, 0, 2, 2)));
    assert!(tables
        .mappings
        .iter()
        .any(|m| m.place == PlaceRow::VniAnchor(0) && m.vni == 100));
    let text = show_text(&HostTables {
        host: "h1".into(),
        names: Names::from_config(&config, &plan),
        tables,
    });
    assert!(
        text.contains("  vf1  app1      02:64:0a:00:02:14  1 (app)  10.0.2.20  10.0.2.21"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("10.0.1.11")
            && l.contains("host h2 (192.0.2.2)")
            && l.ends_with(" web2")),
        "{text}"
    );
}
