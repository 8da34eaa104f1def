use super::*;
use crate::bringup::Options;
use crate::test_utils::{FakeConfig, FakeDevice, Reply};
use shared_regs::admin::Status;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zerocopy::IntoBytes;

fn open() -> (Arc<FakeDevice>, PfDriver) {
    let dev = Arc::new(FakeDevice::new(FakeConfig::default()));
    let opts = Options {
        ready_timeout: Duration::from_millis(100),
        command_timeout: Duration::from_millis(100),
        ..Options::default()
    };
    let drv = PfDriver::open_with(Box::new(dev.clone()), opts).unwrap();
    (dev, drv)
}

fn mapping(i: u8) -> MappingEntry {
    crate::tables::mapping_entry(
        100,
        Ipv4Addr::new(10, 0, 1, i),
        [2, 0, 0, 0, 0, i],
        crate::tables::MappingLocationSpec::LocalVf(u16::from(i)),
    )
}

/// A reply of `TABLE_READ`: the header and the entries.
fn reply<E: IntoBytes + Immutable>(entries: &[E], next: u32) -> Reply {
    let mut buf = TableReadHeader {
        count: Le32::new(entries.len() as u32),
        next_cursor: Le32::new(next),
    }
    .as_bytes()
    .to_vec();
    for e in entries {
        buf.extend_from_slice(e.as_bytes());
    }
    Reply {
        result: buf.len() as u32,
        buf: Some(buf),
        ..Reply::status(Status::Ok)
    }
}

#[test]
fn read_table_follows_the_cursor_to_the_end() {
    let (dev, drv) = open();
    let queries = Arc::new(Mutex::new(Vec::new()));
    let log = queries.clone();
    dev.set_handler(move |cmd| {
        let q: TableReadQuery = cmd.params_as().unwrap();
        assert_eq!(cmd.opcode.get(), Opcode::TableRead as u16);
        assert_eq!(cmd.buf_len.get() as usize, BUF_BYTES);
        log.lock().unwrap().push((q.table, q.cursor.get()));
        match q.cursor.get() {
            0 => reply(&[mapping(1), mapping(2)], 17),
            17 => reply(&[mapping(3)], CURSOR_END),
            c => panic!("cursor {c}"),
        }
    });
    let got: Vec<MappingEntry> = drv.read_table(TableId::Mapping, 0).unwrap();
    let ips: Vec<[u8; 4]> = got.iter().map(|m| m.ip).collect();
    assert_eq!(ips, [[10, 0, 1, 1], [10, 0, 1, 2], [10, 0, 1, 3]]);
    assert_eq!(
        *queries.lock().unwrap(),
        [(TableId::Mapping as u8, 0), (TableId::Mapping as u8, 17)]
    );
}

#[test]
fn read_table_refuses_answers_that_do_not_add_up_or_never_end() {
    let (dev, drv) = open();
    dev.set_handler(|_| {
        let mut r = reply(&[mapping(1)], CURSOR_END);
        r.result -= 1;
        r
    });
    let err = drv
        .read_table::<MappingEntry>(TableId::Mapping, 0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "TABLE_READ (mapping table, from 0): unexpected completion: 1 entry of 24 bytes does not \
         make the 23 bytes written after the header"
    );
    dev.set_handler(|_| reply::<MappingEntry>(&[], 0));
    let err = drv
        .read_table::<MappingEntry>(TableId::Mapping, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("returned nothing new and cursor 0"), "{err}");
    dev.set_handler(|_| Reply::status(Status::NotFound));
    let err = drv
        .read_table::<RouteEntry>(TableId::Route, 9)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "TABLE_READ (routes of route table 9, from 0) failed: not found"
    );
}

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
  VPC       VNI  CIDR         main route table  DNS
  0 (prod)  100  10.0.0.0/16  0                 default

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

#[test]
fn entries_decode_as_the_contract_defines_them() {
    let spec = crate::tables::VfSpec {
        vf: 3,
        subnet_id: 2,
        mac: [2, 0, 0, 0, 0, 9],
        primary_ip: Ipv4Addr::new(10, 0, 2, 9),
        src_dst_check: false,
    };
    let mut e = VfReadEntry {
        entry: spec.to_entry(),
        secondary_count: 2,
        rings_enabled: 0,
        ..Default::default()
    };
    e.secondary[0] = [10, 0, 2, 10];
    e.secondary[1] = [10, 0, 2, 11];
    e.secondary[2] = [10, 0, 2, 99];
    let row = VfRow::from(&e);
    assert_eq!(
        (row.vf, row.subnet_id, row.src_dst_check, row.link_up),
        (3, 2, false, false)
    );
    assert_eq!(
        row.secondary_ips,
        [Ipv4Addr::new(10, 0, 2, 10), Ipv4Addr::new(10, 0, 2, 11)]
    );
    let r = RouteRow::from(&crate::tables::route_entry(
        1,
        (Ipv4Addr::new(10, 9, 0, 0), 16),
        RouteTarget::Peering(1),
    ));
    assert_eq!(r.target, RouteTarget::Peering(1));
    let s = SubnetRow::from(
        &crate::tables::SubnetSpec {
            id: 4,
            vpc_id: 1,
            cidr: (Ipv4Addr::new(10, 0, 3, 0), 24),
            route_table: None,
            gateway_mac: [6, 0, 0, 0, 0, 1],
        }
        .to_entry(),
    );
    assert_eq!(
        s.route_table, None,
        "MAIN_ROUTE_TABLE reads as the main table"
    );
}

/// The simulator's firmware holds what a plan programs, and `read_tables` gets it back.
#[cfg(feature = "sim")]
#[test]
fn the_simulator_reads_back_a_programmed_file() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/three-tier.toml"
    ))
    .unwrap();
    let config = crate::config::parse(&text, &crate::config::Limits::default()).unwrap();
    let plan = crate::config::plan(&config, "h1").unwrap();
    let drv = PfDriver::open(crate::backend::open_by_name("sim", 4).unwrap()).unwrap();
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
