//! The device watchdog of `nicctl up`: a host's simulated NIC whose firmware hangs, or dies
//! with STATUS.FATAL, while two instances ping each other across hosts, is found, reset,
//! reprogrammed and its VMs' VFs started again by `up` itself. The outage is measured in
//! lost pings; afterwards the NIC holds what a fresh NIC programmed from the file holds.
mod common;
use common::{example, ping_answers, ping_loss, Bg, Up};
use host_driver::table_read::NicTables;
use std::time::Duration;

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: network namespaces and TAP devices (CI runs it as root)"
)]
fn a_hung_or_dead_nic_is_reset_and_reprogrammed_by_up_itself() {
    let up = Up::start(&example("two-hosts.toml"), &[]);
    ping_answers("a1", "10.0.2.10");
    for kind in ["hang", "fatal"] {
        // a1 on h1 pings b1 on h2 every 2 ms while h2's firmware fails.
        let mut pings = Bg::spawn(
            Some("a1"),
            &["ping", "-n", "-q", "-i", "0.002", "-c", "1500", "10.0.2.10"],
        );
        std::thread::sleep(Duration::from_millis(800));
        up.nicctl(&["fault", "--host", "h2", kind]).expect_ok();
        assert!(
            pings.wait(Duration::from_secs(30)).is_some(),
            "ping did not end"
        );
        let summary = pings.stdout();
        let (_, lost, ms) = ping_loss(&summary);
        let rtt = summary.lines().last().unwrap_or("").trim().to_string();
        let status = up.nicctl(&["status"]).expect_ok();
        let reset = status
            .lines()
            .rfind(|l| l.starts_with("reset: host h2: "))
            .unwrap_or_else(|| panic!("no reset shown: {status}"))
            .to_string();
        // Frames the hung NIC held arrive late rather than never: the rtt max tells the
        // outage too.
        println!(
            "firmware {kind} on h2: {lost} pings lost at 2 ms ({ms:.0} ms of traffic), {rtt}; \
             {reset}"
        );
        let cause = if kind == "hang" {
            "firmware hung"
        } else {
            "firmware fatal error"
        };
        assert!(
            reset.contains(cause) && !reset.contains("failed"),
            "{reset}"
        );
        assert!(ms < 1000.0, "the {kind} cost {ms:.0} ms of traffic");
        ping_answers("a1", "10.0.2.10");
        ping_answers("b1", "10.0.1.11"); // h2's own VMs too
    }
    // What h2's NIC holds is what a fresh NIC programmed from the file holds.
    let out = up.nicctl(&["show", "--host", "h2", "--json"]).expect_ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let now: NicTables = serde_json::from_value(v["hosts"][0]["tables"].clone()).unwrap();
    let config =
        nicctl::config::load(&example("two-hosts.toml"), &nicctl::config::Limits::vfs(64)).unwrap();
    let backend =
        host_driver::backend::sim::SimBackend::start(hw_sim::SimConfig::cloud_scale(64)).unwrap();
    let fresh_nic = host_driver::PfDriver::open(Box::new(backend)).unwrap();
    let plan = nicctl::config::plan(&config, "h2").unwrap();
    nicctl::config::apply(&fresh_nic, &plan, |_, _| {}).unwrap();
    let fresh = fresh_nic.read_tables().unwrap();
    let mut a = now.canonical();
    let mut b = fresh.canonical();
    // Link state is the VMs' (a fresh NIC has none plugged in).
    a.retain(|l| !l.starts_with("vf "));
    b.retain(|l| !l.starts_with("vf "));
    assert_eq!(a, b);
    assert_eq!(now.vfs.len(), fresh.vfs.len());
    up.stop();
}
