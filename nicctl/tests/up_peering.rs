//! `nicctl up examples/peering.toml`: two VPCs with the same CIDR (10.0.0.0/16; blue VNI
//! 100, green VNI 200) on one NIC. blue1 and green1 even share 10.0.1.10, and never see each
//! other; the peering subnets (blue-peer 10.0.10.0/24, green-peer 10.0.20.0/24) route each
//! other's CIDR over the peering connection (pcx), so bpeer1 and gpeer1 talk.
mod common;
use common::{example, ping, ping_answers, ping_fails, Sniffer, Up};

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn up_same_cidr_vpcs_stay_isolated_and_a_pcx_route_lets_the_peered_subnets_talk() {
    let up = Up::start(&example("peering.toml"), &[]);
    // green1 watches everything that reaches it while blue talks to its own 10.0.1.10.
    let at_green1 = Sniffer::tcpdump("green1", "eth0", &["-Q", "in"], "not arp");
    let at_blue1 = Sniffer::tcpdump("blue1", "eth0", &["-Q", "in"], "icmp");
    ping_answers("blue2", "10.0.1.10");
    ping_answers("bpeer1", "10.0.1.10");
    let p = ping("blue1", &["-c", "1", "-W", "2", "10.0.1.11"]);
    assert_eq!(p.received, 1, "{}", p.text);
    let green1 = at_green1.stop();
    assert!(green1.is_empty(), "green1 saw blue's traffic: {green1:#?}");
    let blue1 = at_blue1.stop();
    assert!(
        blue1
            .iter()
            .any(|l| l.contains("10.0.1.11 > 10.0.1.10: ICMP echo request")),
        "blue2's ping reached blue1: {blue1:#?}"
    );
    // green has no 10.0.1.11, and blue's subnets without the peering table reach nothing of
    // green (10.0.20.10 is inside blue's own CIDR, where nothing has that address).
    ping_fails("green1", "10.0.1.11");
    ping_fails("blue1", "10.0.20.10");
    ping_fails("green1", "10.0.10.10");
    // The peered subnets talk, both ways.
    let p = ping_answers("bpeer1", "10.0.20.10");
    assert_eq!(p.ttls, [64], "{}", p.text);
    ping_answers("gpeer1", "10.0.10.10");
    // Ctrl-C ends it as SIGTERM does.
    up.stop_with(libc::SIGINT);
}
