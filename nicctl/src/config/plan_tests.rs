use super::*;
use crate::config::{parse, Limits};

const THREE_TIER: &str = include_str!("../../tests/data/three-tier.toml");
const ONE_HOST: &str = include_str!("../../tests/data/one-host.toml");

fn three_tier() -> Config {
    parse(THREE_TIER, &Limits::default()).unwrap()
}

#[test]
fn three_tier_plan_for_h1() {
    let p = plan(&three_tier(), "h1").unwrap();
    let text: Vec<String> = p.commands.iter().map(|c| c.to_string()).collect();
    let expected = [
        "UPLINK_SET uplink 192.0.2.1, mtu 9216",
        "VPC_ADD vpc 0, vni 100, 10.0.0.0/16",
        "VPC_ADD vpc 1, vni 200, 10.9.0.0/16",
        "GATEWAY_ADD gateway 0 (internet), underlay 203.0.113.1, 0a:00:cb:00:71:01",
        "GATEWAY_ADD gateway 1 (nat), underlay 203.0.113.2, 0a:00:cb:00:71:02",
        "ROUTE_TABLE_ADD route table 0 of vpc 0",
        "ROUTE_TABLE_ADD route table 1 of vpc 1",
        "ROUTE_TABLE_ADD route table 2 of vpc 0",
        "ROUTE_TABLE_ADD route table 3 of vpc 0",
        "ROUTE_TABLE_ADD route table 4 of vpc 1",
        "ROUTE_ADD route 0.0.0.0/0 in table 2 to gateway 0",
        "ROUTE_ADD route 10.9.0.0/16 in table 2 to peering to vpc 1",
        "ROUTE_ADD route 0.0.0.0/0 in table 3 to gateway 1",
        "ROUTE_ADD route 10.9.0.0/16 in table 3 to peering to vpc 1",
        "ROUTE_ADD route 192.168.0.0/16 in table 3 to instance 10.0.2.5",
        "ROUTE_ADD route 10.0.8.0/24 in table 3 to blackhole",
        "ROUTE_ADD route 10.0.0.0/16 in table 4 to peering to vpc 0",
        "SUBNET_ADD subnet 0 of vpc 0, 10.0.1.0/24",
        "SUBNET_ADD subnet 1 of vpc 0, 10.0.2.0/24",
        "SUBNET_ADD subnet 2 of vpc 0, 10.0.3.0/24",
        "SUBNET_ADD subnet 3 of vpc 1, 10.9.1.0/24",
        "VF_SET vf 0 in subnet 0, 10.0.1.10, 02:64:0a:00:01:0a",
        "VF_SET vf 1 in subnet 1, 10.0.2.20, 02:64:0a:00:02:14",
        "VF_ADDR_ADD vf 1, 10.0.2.21",
        "VF_SET vf 2 in subnet 1, 10.0.2.5, 02:00:0a:00:02:05",
        "MAPPING_ADD mapping vni 100 10.0.1.10 on local vf 0",
        "MAPPING_ADD mapping vni 100 10.0.1.11 on remote host 192.0.2.2",
        "MAPPING_ADD mapping vni 100 10.0.2.20 on local vf 1",
        "MAPPING_ADD mapping vni 100 10.0.2.21 on local vf 1",
        "MAPPING_ADD mapping vni 100 10.0.2.5 on local vf 2",
        "MAPPING_ADD mapping vni 100 10.0.3.30 on remote host 192.0.2.2",
        "MAPPING_ADD mapping vni 200 10.9.1.53 on remote host 192.0.2.2",
    ];
    assert_eq!(text, expected);
    assert_eq!(p.host, "h1");
    assert_eq!(p.underlay_ip, Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(
        p.vfs,
        [("web1".into(), 0), ("app1".into(), 1), ("fw1".into(), 2)]
    );

    // What the text does not show.
    let Command::AddVpc(prod) = &p.commands[1] else {
        panic!("{:?}", p.commands[1]);
    };
    assert_eq!(prod.domain.as_deref(), Some("prod.internal"));
    assert_eq!(prod.dns, [Ipv4Addr::new(10, 0, 0, 2)]);
    assert_eq!(prod.main_route_table, Some(0));
    let Command::AddVpc(shared) = &p.commands[2] else {
        panic!();
    };
    assert_eq!(shared.dns.len(), 2);
    let subnets: Vec<&SubnetSpec> = p
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::AddSubnet(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        subnets.iter().map(|s| s.route_table).collect::<Vec<_>>(),
        [Some(2), Some(3), None, Some(4)]
    );
    assert_eq!(subnets[0].gateway_mac, [6, 100, 10, 0, 1, 1]);
    assert_eq!(subnets[3].gateway_mac, [6, 200, 10, 9, 1, 1]);
    let fw = p.commands.iter().find_map(|c| match c {
        Command::SetVf(v) if v.vf == 2 => Some(v),
        _ => None,
    });
    assert!(!fw.unwrap().src_dst_check);
    assert_eq!(
        p.counts(),
        [
            ("UPLINK_SET", 1),
            ("VPC_ADD", 2),
            ("GATEWAY_ADD", 2),
            ("ROUTE_TABLE_ADD", 5),
            ("ROUTE_ADD", 7),
            ("SUBNET_ADD", 4),
            ("VF_SET", 3),
            ("VF_ADDR_ADD", 1),
            ("MAPPING_ADD", 7),
        ]
    );
}

#[test]
fn the_other_host_sees_the_first_as_remote() {
    let p = plan(&three_tier(), "h2").unwrap();
    assert_eq!(p.underlay_ip, Ipv4Addr::new(192, 0, 2, 2));
    assert_eq!(
        p.vfs,
        [("web2".into(), 0), ("db1".into(), 1), ("dns1".into(), 2)]
    );
    let mappings: Vec<String> = p
        .commands
        .iter()
        .filter(|c| matches!(c, Command::AddMapping { .. }))
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        mappings[0],
        "MAPPING_ADD mapping vni 100 10.0.1.10 on remote host 192.0.2.1"
    );
    assert_eq!(
        mappings[1],
        "MAPPING_ADD mapping vni 100 10.0.1.11 on local vf 0"
    );
    assert_eq!(
        mappings[6],
        "MAPPING_ADD mapping vni 200 10.9.1.53 on local vf 2"
    );
}

#[test]
fn an_unknown_host_is_refused() {
    assert_eq!(
        plan(&three_tier(), "h3").unwrap_err().to_string(),
        "unknown host \"h3\" (hosts of the file: h1, h2)"
    );
}

mod sim {
    use super::*;
    use host_driver::backend::sim::SimBackend;
    use host_driver::tables::StatsFunction;
    use hw_sim::FunctionPort;
    use shared_regs::stats::Counter;

    /// A driver on a fresh simulated NIC, and the NIC's VFs as its VMs reach them.
    fn driver(vfs: u16) -> (Vec<FunctionPort>, PfDriver) {
        let board = hw_sim::Nic::start(hw_sim::SimConfig {
            num_vfs: vfs,
            ..Default::default()
        })
        .unwrap();
        let ports = (0..vfs).filter_map(|vf| board.vf(vf)).collect();
        let drv = PfDriver::open(Box::new(SimBackend::on(board))).unwrap();
        (ports, drv)
    }

    fn vf_reg(vfs: &[FunctionPort], vf: u16, reg: u32) -> u32 {
        vfs[usize::from(vf)].bar_read32(u64::from(reg)).unwrap()
    }

    #[test]
    fn a_plan_applied_to_the_simulator_takes() {
        let config = parse(ONE_HOST, &Limits::vfs(4)).unwrap();
        let p = plan(&config, "local").unwrap();
        let (sim, drv) = driver(4);
        let mut seen = Vec::new();
        apply(&drv, &p, |done, total| seen.push((done, total))).unwrap();
        let n = p.commands.len();
        // Progress comes per round of completions, not per command.
        assert!(!seen.is_empty() && seen.len() <= n);
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
        assert_eq!(seen.last(), Some(&(n, n)));

        // Each VF the plan assigned is up with the instance's MAC; the fourth is not.
        use shared_regs::vf;
        for (name, v) in &p.vfs {
            let inst = &config.instances[config.instance_index(name).unwrap()];
            assert_ne!(vf_reg(&sim, *v, vf::LINK), 0, "{name} on vf{v} is down");
            let mac = vf::mac_from_regs(vf_reg(&sim, *v, vf::MAC_LO), vf_reg(&sim, *v, vf::MAC_HI));
            assert_eq!(mac, inst.mac, "{name}");
        }
        assert_eq!(vf_reg(&sim, 3, vf::LINK), 0);
        // The counters of every port read, and nothing has moved.
        for f in [0, 1, 2]
            .map(StatsFunction::Vf)
            .into_iter()
            .chain([StatsFunction::Uplink])
        {
            let c = drv.stats(f).unwrap();
            assert_eq!(c.get(Counter::TxPackets) + c.drops(), 0, "{f}");
        }
        // The tables hold the plan: applying it again reads them back and changes nothing.
        let again = apply(&drv, &p, |_, _| {}).unwrap();
        assert!(again.is_empty(), "{again:#?}");
    }

    /// A plan bigger than one of the NIC's tables is refused before anything changes, and
    /// the message names the table and the register; at exactly the NIC's capacity the same
    /// plan applies. h1's three-tier plan: route table 3 has four routes and its local one,
    /// and every remote mapping points to one host.
    #[test]
    fn a_plan_too_big_for_the_nic_changes_nothing_and_names_the_table() {
        let p = plan(&three_tier(), "h1").unwrap();
        let nic = |routes_per_table| {
            let board = hw_sim::Nic::start(hw_sim::SimConfig {
                num_vfs: 4,
                routes_per_table,
                underlays: 1,
                ..Default::default()
            })
            .unwrap();
            PfDriver::open(Box::new(SimBackend::on(board))).unwrap()
        };
        let small = nic(4);
        let err = apply(&small, &p, |_, _| {}).unwrap_err();
        assert!(matches!(err, ApplyError::NoRoom(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the file does not fit this NIC, so nothing was changed: it needs 5 routes in \
             route table 3 (its local route included), and the NIC holds 4 (CAP_ROUTES)"
        );
        let held_small = held(&small).unwrap();
        assert!(
            held_small.vpcs.is_empty() && held_small.uplink.is_none(),
            "{held_small:?}"
        );
        let err = plan_nic(&small, &three_tier(), "h1").unwrap_err();
        assert!(matches!(err, ApplyError::NoRoom(_)), "{err:?}");

        let exact = nic(5);
        apply(&exact, &p, |_, _| {}).unwrap();
        assert!(apply(&exact, &p, |_, _| {}).unwrap().is_empty());
    }

    /// The three-tier plan of h1 applied, then frames traced through it.
    #[test]
    fn three_tier_on_the_simulator_traces_like_the_spec() {
        use crate::flow::{frame_for, FlowSpec};
        use crate::render::report::trace_text;
        let config = three_tier();
        let p = plan(&config, "h1").unwrap();
        let (_sim, drv) = driver(8);
        apply(&drv, &p, |_, _| {}).unwrap();
        let trace = |port: StatsFunction, flow: &str| {
            let frame = frame_for(&config, &p, port, &FlowSpec::parse(flow).unwrap()).unwrap();
            trace_text(&drv.trace(port, &frame).unwrap())
        };
        let verdict = |text: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix("Datapath action: "))
                .unwrap_or_default()
                .to_string()
        };
        let vf0 = StatsFunction::Vf(0);

        let t = trace(vf0, "icmp,dst=10.0.2.20");
        assert_eq!(verdict(&t), "deliver to vf1", "{t}");
        assert!(
            t.contains("[route table 2] 10.0.2.20 matches 10.0.0.0/16 -> local"),
            "{t}"
        );
        assert!(t.contains("vni 100 10.0.2.20 -> vf 1"), "{t}");
        assert!(
            t.contains("Output frame: 06:64:0a:00:02:01 -> 02:64:0a:00:02:14"),
            "{t}"
        );

        let t = trace(vf0, "icmp,dst=10.0.1.11");
        assert_eq!(verdict(&t), "output to uplink", "{t}");
        assert!(
            t.contains("vni 100 10.0.1.11 -> remote host 192.0.2.2"),
            "{t}"
        );
        assert!(t.contains("VXLAN encapsulation"), "{t}");

        let t = trace(vf0, "udp,dst=8.8.8.8,sport=4000,dport=53");
        assert_eq!(verdict(&t), "output to uplink", "{t}");
        assert!(t.contains("8.8.8.8 matches 0.0.0.0/0 -> gateway 0"), "{t}");
        assert!(t.contains("to 203.0.113.1, vni 100"), "{t}");

        let t = trace(vf0, "arp,dst=10.0.1.1");
        assert_eq!(verdict(&t), "reply to vf0", "{t}");
        assert!(t.contains("10.0.1.1 is at 06:64:0a:00:01:01 (F3a)"), "{t}");

        let t = trace(vf0, "ipv6");
        assert_eq!(verdict(&t), "drop: drop_ethertype (counted on vf0)", "{t}");

        let t = trace(StatsFunction::Vf(1), "icmp,dst=10.0.8.9");
        assert_eq!(verdict(&t), "drop: drop_blackhole (counted on vf1)", "{t}");

        let t = trace(StatsFunction::Uplink, "icmp,src=10.0.1.11,dst=10.0.1.10");
        assert_eq!(verdict(&t), "deliver to vf0", "{t}");
        assert!(t.contains("VXLAN decapsulation"), "{t}");
    }
}
