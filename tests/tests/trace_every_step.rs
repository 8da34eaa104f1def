//! `TRACE` end to end: frames that make the firmware take every kind of step it can report,
//! traced through the PF driver on the simulated NIC, each step decoded with the contract's
//! `shared_regs::trace::Step::decode`. A step kind, mapping location, route target or
//! decision the firmware can emit but the decoder cannot read fails here, and so does one
//! that this list of frames no longer reaches.
use host_driver::trace::{TraceReport, Verdict};
use host_driver::StatsFunction;
use shared_regs::entry::{MappingLocation, RouteTarget, RouteTargetKind};
use shared_regs::stats::Counter;
use shared_regs::trace::{ArpAnswerCase, DstMacClass, MappedTo, MtuAction, Step, StepKind};
use smoltcp::wire::{DhcpMessageType, IpProtocol};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use tests::frames::{
    arp_request, clear_dont_frag, dhcp_client_frame, icmp_echo_request, ipv4_frame, BROADCAST,
};
use tests::topo::*;
use tests::wire::{from_host, udp_frame};

/// What the traces showed, by the contract's numbers.
#[derive(Default)]
struct Seen {
    kinds: BTreeSet<u8>,
    locations: BTreeSet<u8>,
    targets: BTreeSet<u8>,
    arp_cases: BTreeSet<u8>,
    dst_mac_classes: BTreeSet<u8>,
    mtu_actions: BTreeSet<u8>,
    route_miss: bool,
    mapping_miss: bool,
}

impl Seen {
    fn note(&mut self, step: &Step) {
        self.kinds.insert(step.kind().as_u8());
        match *step {
            Step::MappingHit { to, .. } => {
                self.locations.insert(to.location().as_u8());
            }
            Step::MappingMiss { .. } => self.mapping_miss = true,
            Step::RouteHit { target, .. } => {
                self.targets.insert(target.kind().as_u8());
            }
            Step::RouteMiss { .. } => self.route_miss = true,
            Step::ArpAnswer { case, .. } => {
                self.arp_cases.insert(case.as_u8());
            }
            Step::DstMac { class, .. } => {
                self.dst_mac_classes.insert(class.as_u8());
            }
            Step::Mtu { action, .. } => {
                self.mtu_actions.insert(action.as_u8());
            }
            _ => {}
        }
    }
}

/// The numbers of `all` that `seen` lacks, by name.
fn missing<T: Copy>(
    all: &[T],
    number: fn(T) -> u8,
    name: fn(T) -> &'static str,
    seen: &BTreeSet<u8>,
) -> Vec<&'static str> {
    all.iter()
        .filter(|&&v| !seen.contains(&number(v)))
        .map(|&v| name(v))
        .collect()
}

/// An ICMP echo request frame from VF0 to `dst` through its subnet gateway.
fn ping_via_gateway(dst: Ipv4Addr) -> Vec<u8> {
    ipv4_frame(
        GW_WEB,
        MAC0,
        IP0,
        dst,
        IpProtocol::Icmp,
        64,
        &icmp_echo_request(7, 1, b"trace"),
    )
}

#[test]
fn the_firmware_reports_every_step_kind_and_each_decodes() {
    let tb = standard();
    let big = vec![0x5a; 1600];
    let mut big_no_df = udp_frame(GW_WEB, MAC0, IP0, INTERNET, &big);
    clear_dont_frag(&mut big_no_df);
    let vf0 = StatsFunction::Vf(0);
    let cases: Vec<(&str, StatsFunction, Vec<u8>)> = vec![
        (
            "routed to a local VF",
            vf0,
            udp_frame(GW_WEB, MAC0, IP0, IP2, b"x"),
        ),
        (
            "same subnet, by MAC",
            vf0,
            udp_frame(MAC1, MAC0, IP0, IP1, b"x"),
        ),
        (
            "ARP for the gateway",
            vf0,
            arp_request(MAC0, IP0, GW_WEB_IP),
        ),
        ("ARP for an instance", vf0, arp_request(MAC0, IP0, IP1)),
        (
            "ARP outside the subnet",
            vf0,
            arp_request(MAC0, IP0, NOWHERE),
        ),
        ("no route", vf0, udp_frame(GW_WEB, MAC0, IP0, NOWHERE, b"x")),
        (
            "blackhole",
            vf0,
            udp_frame(GW_WEB, MAC0, IP0, BLACKHOLED, b"x"),
        ),
        ("peering", vf0, udp_frame(GW_WEB, MAC0, IP0, IP5, b"x")),
        (
            "middlebox route",
            vf0,
            udp_frame(GW_WEB, MAC0, IP0, VIA_MIDDLEBOX, b"x"),
        ),
        (
            "gateway route, fits",
            vf0,
            udp_frame(GW_WEB, MAC0, IP0, INTERNET, b"x"),
        ),
        (
            "gateway route, too big with DF",
            vf0,
            udp_frame(GW_WEB, MAC0, IP0, INTERNET, &big),
        ),
        ("gateway route, too big without DF", vf0, big_no_df),
        (
            "remote instance",
            vf0,
            udp_frame(GW_WEB, MAC0, IP0, R_DB_IP, b"x"),
        ),
        (
            "no mapping",
            vf0,
            udp_frame(GW_WEB, MAC0, IP0, ip(10, 0, 1, 99), b"x"),
        ),
        ("another subnet's gateway", vf0, ping_via_gateway(GW_DB_IP)),
        ("own gateway", vf0, ping_via_gateway(GW_WEB_IP)),
        (
            "another subnet's broadcast",
            vf0,
            udp_frame(GW_WEB, MAC0, IP0, ip(10, 0, 2, 255), b"x"),
        ),
        (
            "broadcast",
            vf0,
            udp_frame(BROADCAST, MAC0, IP0, Ipv4Addr::BROADCAST, b"x"),
        ),
        (
            "DHCP discover",
            vf0,
            dhcp_client_frame(
                MAC0,
                DhcpMessageType::Discover,
                1,
                None,
                Ipv4Addr::UNSPECIFIED,
                false,
            ),
        ),
        (
            "from a remote host",
            UPLINK,
            from_host(
                HOST2,
                VNI_A,
                &udp_frame(MAC0, R_WEB_MAC, R_WEB_IP, IP0, b"x"),
            ),
        ),
        (
            "to a VNI's anchor",
            UPLINK,
            from_host(
                HOST2,
                VNI_A,
                &udp_frame(MAC0, R_WEB_MAC, R_WEB_IP, Ipv4Addr::UNSPECIFIED, b"x"),
            ),
        ),
    ];

    let mut seen = Seen::default();
    let mut gateway_hits = Vec::new();
    for (what, port, frame) in &cases {
        let report: TraceReport = tb.driver.trace(*port, frame).expect("TRACE");
        for step in &report.steps {
            let decoded = step
                .detail
                .unwrap_or_else(|u| panic!("{what}: step not decoded: {u:?}\n{report:?}"));
            assert_eq!(step.rule, decoded.rule(), "{what}: {decoded:?}");
            if let Step::MappingHit {
                to: MappedTo::Gateway { underlay },
                ..
            } = decoded
            {
                gateway_hits.push(underlay);
            }
            seen.note(&decoded);
        }
        assert!(!report.truncated, "{what}: {report:?}");
    }

    let kinds = missing(StepKind::ALL, StepKind::as_u8, StepKind::name, &seen.kinds);
    assert!(kinds.is_empty(), "step kinds no frame reached: {kinds:?}");
    let locations = missing(
        MappingLocation::ALL,
        MappingLocation::as_u8,
        MappingLocation::name,
        &seen.locations,
    );
    assert!(
        locations.is_empty(),
        "mapping locations not reached: {locations:?}"
    );
    let targets = missing(
        RouteTargetKind::ALL,
        RouteTargetKind::as_u8,
        RouteTargetKind::name,
        &seen.targets,
    );
    assert!(targets.is_empty(), "route targets not reached: {targets:?}");
    let cases = missing(
        ArpAnswerCase::ALL,
        ArpAnswerCase::as_u8,
        ArpAnswerCase::name,
        &seen.arp_cases,
    );
    assert!(cases.is_empty(), "ARP answers not reached: F3{cases:?}");
    let classes = missing(
        DstMacClass::ALL,
        DstMacClass::as_u8,
        DstMacClass::name,
        &seen.dst_mac_classes,
    );
    assert!(
        classes.is_empty(),
        "destination MAC classes not reached: {classes:?}"
    );
    let actions = missing(
        MtuAction::ALL,
        MtuAction::as_u8,
        MtuAction::name,
        &seen.mtu_actions,
    );
    assert!(actions.is_empty(), "MTU decisions not reached: {actions:?}");
    assert!(seen.route_miss && seen.mapping_miss);
    // ABI 1.2: the NIC answers for a subnet gateway, so the hit names this host's underlay.
    assert_eq!(gateway_hits, vec![HOST]);
}

#[test]
fn a_trace_decodes_to_the_decisions_taken() {
    let tb = standard();
    let to = ip(10, 0, 2, 255);
    let report = tb
        .driver
        .trace(
            StatsFunction::Vf(0),
            &udp_frame(GW_WEB, MAC0, IP0, to, b"x"),
        )
        .expect("TRACE");
    assert_eq!(
        report.verdict,
        Verdict::Drop {
            counter: Counter::DropBcastMcast,
            port: StatsFunction::Vf(0)
        }
    );
    let steps: Vec<Step> = report.steps.iter().map(|s| s.detail.unwrap()).collect();
    assert_eq!(
        steps,
        [
            Step::Received {
                function: 0,
                ethertype: 0x0800,
                len: 43
            },
            Step::Ethertype { ethertype: 0x0800 },
            Step::SrcMac { vf: 0 },
            Step::Ipv4 {
                src: IP0,
                dst: to,
                protocol: 17,
                total_len: 29
            },
            Step::SrcIp {
                vf: 0,
                check: true,
                src: IP0
            },
            Step::DstMac {
                vf: None,
                class: DstMacClass::Gateway
            },
            Step::RouteHit {
                table: TABLE_A_MAIN,
                dst: to,
                prefix: ip(10, 0, 0, 0),
                len: 16,
                target: RouteTarget::Local
            },
            Step::MappingHit {
                vni: VNI_A,
                ip: to,
                to: MappedTo::Broadcast
            },
        ]
    );
    let rules: Vec<u8> = report.steps.iter().map(|s| s.rule).collect();
    assert_eq!(rules, [1, 1, 2, 4, 5, 7, 8, 8]);
}
