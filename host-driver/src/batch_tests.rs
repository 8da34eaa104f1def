//! Tests of [`Batch`]: against the fake device (a firmware without `ADMIN_CHAIN`: one
//! command at a time) and, with the `sim` feature, against the simulated NIC.
use super::*;
use crate::bringup::Options;
use crate::test_utils::{FakeConfig, FakeDevice, Reply};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn vpc(id: u16, domain: Option<&str>) -> VpcSpec {
    VpcSpec {
        id,
        vni: 100 + u32::from(id),
        cidr: (Ipv4Addr::new(10, id as u8, 0, 0), 16),
        main_route_table: None,
        dns: vec![],
        domain: domain.map(str::to_string),
    }
}

fn ip(vpc: u16, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, vpc as u8, 0, 0)) + 256 * 8 + n)
}

fn mac(n: u32) -> Mac {
    let b = n.to_le_bytes();
    [0x02, 0x10, b[0], b[1], b[2], b[3]]
}

fn remote(n: u32) -> MappingLocationSpec {
    MappingLocationSpec::Remote(Ipv4Addr::new(192, 0, 2, (n % 200) as u8 + 1))
}

fn batch_error(e: DriverError) -> (usize, usize, DriverError) {
    match e {
        DriverError::Batch {
            applied,
            total,
            error,
        } => (applied, total, *error),
        e => panic!("not a batch error: {e:?}"),
    }
}

#[test]
fn without_chains_a_batch_runs_one_at_a_time_and_stops_at_a_refusal() {
    let dev = Arc::new(FakeDevice::new(FakeConfig::default()));
    let opts = Options {
        command_timeout: Duration::from_millis(200),
        ..Options::default()
    };
    let drv = PfDriver::open_with(Box::new(dev.clone()), opts).unwrap();
    assert!(!drv.chains(), "the fake has no ADMIN_CHAIN");
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = sent.clone();
    dev.set_handler(move |cmd| {
        log.lock().unwrap().push(*cmd);
        let ip = cmd.params_as::<MappingEntry>().unwrap().ip;
        Reply::status(if ip == [10, 0, 8, 3] {
            Status::TableFull
        } else {
            Status::Ok
        })
    });
    let mut b = drv.batch();
    for n in 0..6 {
        b.add_mapping(100, ip(0, n), mac(n), remote(n));
    }
    let mut seen = Vec::new();
    let err = b.run_with_progress(|n, t| seen.push((n, t))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "MAPPING_ADD (mapping vni 100 10.0.8.3 on remote host 192.0.2.4) failed: table full \
         (command 4 of a batch of 6: the 3 before it were applied)"
    );
    let (applied, total, inner) = batch_error(err);
    assert_eq!((applied, total), (3, 6));
    assert!(matches!(
        inner,
        DriverError::Command {
            opcode: Opcode::MappingAdd,
            status: Status::TableFull,
            ..
        }
    ));
    assert_eq!(sent.lock().unwrap().len(), 4, "nothing after the refusal");
    assert_eq!(seen.last(), Some(&(3, 6)));
    assert!(
        sent.lock().unwrap().iter().all(|c| c.flags.get() == 0),
        "no CHAIN flag for a firmware without ADMIN_CHAIN"
    );
    // The queue is in order for what follows.
    drv.nop().unwrap();
    assert_eq!(drv.batch().run().unwrap(), 0);
}

#[cfg(feature = "sim")]
mod sim {
    use super::*;
    use crate::backend::sim::SimBackend;
    use crate::tables::GatewayKind;
    use hw_sim::SimConfig;

    fn open() -> PfDriver {
        let sim = SimBackend::start(SimConfig::default()).unwrap();
        let drv = PfDriver::open(Box::new(sim)).unwrap();
        assert!(drv.chains());
        drv
    }

    /// A mapping to one remote host more than the NIC's underlay table holds is refused
    /// with a status and message that name that table, not the mapping table (which has
    /// room); hosts already known still take new mappings.
    #[test]
    fn a_full_underlay_table_is_named_as_such() {
        let sim = SimBackend::start(SimConfig {
            underlays: 2,
            ..SimConfig::default()
        })
        .unwrap();
        let drv = PfDriver::open(Box::new(sim)).unwrap();
        assert_eq!(drv.info().underlays, 2, "CAP_UNDERLAYS");
        drv.add_vpc(&vpc(0, None)).unwrap();
        drv.add_mapping(100, ip(0, 1), mac(1), remote(1)).unwrap();
        drv.add_mapping(100, ip(0, 2), mac(2), remote(2)).unwrap();
        let err = drv
            .add_mapping(100, ip(0, 3), mac(3), remote(3))
            .unwrap_err();
        assert!(
            matches!(
                err,
                DriverError::Command {
                    opcode: Opcode::MappingAdd,
                    status: Status::UnderlayFull,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("underlay table full: no room for another remote host's address"),
            "{err}"
        );
        drv.add_mapping(100, ip(0, 4), mac(4), remote(2)).unwrap();
    }

    /// One change of the mixed workload.
    enum Op {
        Uplink(UplinkSpec),
        Gateway(GatewaySpec),
        Vpc(VpcSpec),
        RouteTable(u16, u16),
        Subnet(SubnetSpec),
        Route(u16, Cidr, RouteTarget),
        DelRoute(u16, Cidr),
        Mapping(u32, Ipv4Addr, Mac, MappingLocationSpec),
        DelMapping(u32, Ipv4Addr),
        Vf(VfSpec),
        VfAddr(u16, Ipv4Addr),
        VfFlags(u16, bool),
    }

    fn one(drv: &PfDriver, op: &Op) -> Result<()> {
        match op {
            Op::Uplink(s) => drv.set_uplink(s),
            Op::Gateway(s) => drv.add_gateway(s),
            Op::Vpc(s) => drv.add_vpc(s),
            Op::RouteTable(id, vpc) => drv.add_route_table(*id, *vpc),
            Op::Subnet(s) => drv.add_subnet(s),
            Op::Route(t, d, target) => drv.add_route(*t, *d, *target),
            Op::DelRoute(t, d) => drv.del_route(*t, *d),
            Op::Mapping(vni, ip, mac, loc) => drv.add_mapping(*vni, *ip, *mac, *loc),
            Op::DelMapping(vni, ip) => drv.del_mapping(*vni, *ip),
            Op::Vf(s) => drv.set_vf(s),
            Op::VfAddr(vf, ip) => drv.add_vf_addr(*vf, *ip),
            Op::VfFlags(vf, on) => drv.set_vf_flags(*vf, *on),
        }
    }

    fn queue(b: &mut Batch<'_>, op: &Op) {
        match op {
            Op::Uplink(s) => b.set_uplink(s),
            Op::Gateway(s) => b.add_gateway(s),
            Op::Vpc(s) => b.add_vpc(s).unwrap(),
            Op::RouteTable(id, vpc) => b.add_route_table(*id, *vpc),
            Op::Subnet(s) => b.add_subnet(s),
            Op::Route(t, d, target) => b.add_route(*t, *d, *target),
            Op::DelRoute(t, d) => b.del_route(*t, *d),
            Op::Mapping(vni, ip, mac, loc) => b.add_mapping(*vni, *ip, *mac, *loc),
            Op::DelMapping(vni, ip) => b.del_mapping(*vni, *ip),
            Op::Vf(s) => b.set_vf(s),
            Op::VfAddr(vf, ip) => b.add_vf_addr(*vf, *ip),
            Op::VfFlags(vf, on) => b.set_vf_flags(*vf, *on),
        };
    }

    /// About 3,000 changes of every fixed-size kind, a VPC with a domain (indirect buffer)
    /// in the middle, and deletions of some of what was added.
    fn workload() -> Vec<Op> {
        let mut ops = vec![
            Op::Uplink(UplinkSpec {
                mac: [2, 0, 0, 0, 0xfe, 1],
                next_hop_mac: [2, 0, 0, 0, 0xfe, 2],
                underlay_ip: Ipv4Addr::new(192, 0, 2, 1),
                mtu: 9000,
            }),
            Op::Gateway(GatewaySpec {
                id: 1,
                kind: GatewayKind::Internet,
                underlay_ip: Ipv4Addr::new(192, 0, 2, 100),
                mac: [2, 0, 0, 0, 0xff, 1],
            }),
        ];
        let vpcs = 8u16;
        for v in 0..vpcs {
            ops.push(Op::Vpc(vpc(v, (v == 3).then_some("prod.internal"))));
            ops.push(Op::RouteTable(v, v));
            ops.push(Op::Subnet(SubnetSpec {
                id: v,
                vpc_id: v,
                cidr: (Ipv4Addr::new(10, v as u8, 1, 0), 24),
                route_table: Some(v),
                gateway_mac: [2, 0, 0, 1, v as u8, 1],
            }));
            ops.push(Op::Route(
                v,
                (Ipv4Addr::UNSPECIFIED, 0),
                RouteTarget::Gateway(1),
            ));
            for r in 0..40u8 {
                ops.push(Op::Route(
                    v,
                    (Ipv4Addr::new(172, 16, r, 0), 24),
                    RouteTarget::Blackhole,
                ));
            }
            ops.push(Op::Vf(VfSpec {
                vf: v,
                subnet_id: v,
                mac: [2, 0, 0, 2, v as u8, 1],
                primary_ip: Ipv4Addr::new(10, v as u8, 1, 10),
                src_dst_check: true,
            }));
            ops.push(Op::VfAddr(v, Ipv4Addr::new(10, v as u8, 1, 11)));
            if v % 2 == 1 {
                ops.push(Op::VfFlags(v, false));
            }
        }
        for n in 0..2400u32 {
            let v = (n % u32::from(vpcs)) as u16;
            ops.push(Op::Mapping(100 + u32::from(v), ip(v, n), mac(n), remote(n)));
        }
        for n in (0..2400u32).step_by(24) {
            let v = (n % u32::from(vpcs)) as u16;
            ops.push(Op::DelMapping(100 + u32::from(v), ip(v, n)));
        }
        for v in 0..vpcs {
            ops.push(Op::DelRoute(v, (Ipv4Addr::new(172, 16, 7, 0), 24)));
        }
        ops
    }

    #[test]
    fn a_mixed_batch_leaves_the_tables_of_the_same_commands_one_by_one() {
        let ops = workload();
        assert!(ops.len() > 2500, "{}", ops.len());
        let single = open();
        for op in &ops {
            one(&single, op).unwrap();
        }
        let batched = open();
        let mut b = batched.batch();
        for op in &ops {
            queue(&mut b, op);
        }
        assert_eq!(b.len(), ops.len());
        let mut rounds = Vec::new();
        let applied = b.run_with_progress(|n, t| rounds.push((n, t))).unwrap();
        assert_eq!(applied, ops.len());
        assert_eq!(rounds.last(), Some(&(ops.len(), ops.len())));
        assert!(
            rounds.windows(2).all(|w| w[0].0 <= w[1].0),
            "progress only grows"
        );
        let want = single.read_tables().unwrap();
        assert_eq!(batched.read_tables().unwrap(), want);
        assert!(want.mappings.len() > 2300 && want.vfs.len() == 8);
    }

    #[test]
    fn a_refused_command_stops_the_batch_after_exactly_the_commands_before_it() {
        let drv = open();
        drv.add_vpc(&vpc(0, None)).unwrap();
        let before = drv.read_tables().unwrap().mappings.len();
        let total = 2000u32;
        let refused = 1234u32;
        let mut b = drv.batch();
        for n in 0..total {
            if n == 600 {
                // An indirect-buffer command in the middle goes alone, in its place.
                b.add_vpc(&vpc(1, Some("corp.internal"))).unwrap();
            } else if n == refused {
                b.add_mapping(100, ip(0, 5), mac(5), remote(5)); // a duplicate
            } else {
                b.add_mapping(100, ip(0, n), mac(n), remote(n));
            }
        }
        let err = b.run().unwrap_err();
        assert_eq!(
            err.to_string(),
            "MAPPING_ADD (mapping vni 100 10.0.8.5 on remote host 192.0.2.6) failed: already \
             exists (command 1235 of a batch of 2000: the 1234 before it were applied)"
        );
        let (applied, t, inner) = batch_error(err);
        assert_eq!((applied, t), (refused as usize, total as usize));
        assert!(matches!(
            inner,
            DriverError::Command {
                opcode: Opcode::MappingAdd,
                status: Status::Exists,
                ..
            }
        ));
        let tables = drv.read_tables().unwrap();
        assert_eq!(tables.vpcs.len(), 2, "the VPC before the refusal was added");
        let has = |n: u32| {
            tables
                .mappings
                .iter()
                .any(|m| m.vni == 100 && m.ip == ip(0, n))
        };
        assert!(has(0) && has(599) && has(601) && has(refused - 1));
        assert!(!has(refused) && !has(refused + 1) && !has(total - 1));
        // VPC 1 brings its own VNI anchor mapping.
        assert_eq!(
            tables.mappings.len(),
            before + 1 + refused as usize - 1,
            "exactly the commands before the refused one"
        );

        // The queue is in order: the rest goes through, one at a time or batched.
        drv.add_mapping(100, ip(0, refused), mac(refused), remote(refused))
            .unwrap();
        let mut rest = drv.batch();
        for n in refused + 1..total {
            rest.add_mapping(100, ip(0, n), mac(n), remote(n));
        }
        assert_eq!(rest.run().unwrap(), (total - refused - 1) as usize);
        let raw = drv
            .submit_batch(&[
                AdminCmd::new(Opcode::Nop, &[0u8; 0]),
                AdminCmd::new(Opcode::VpcDel, &id_param(9)),
                AdminCmd::new(Opcode::Nop, &[0u8; 0]),
            ])
            .unwrap();
        assert_eq!(raw.len(), 2, "stops at the refused VPC_DEL");
        assert_eq!(raw[1].completion(), Some(Err(Status::NotFound)));
        assert_eq!(
            drv.read_tables().unwrap().mappings.len(),
            before + total as usize
        );
    }
}
