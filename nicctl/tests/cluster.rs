//! The cluster on one machine: a real etcd, `nicctl apply --etcd`, and `nicctl agent`
//! processes each driving a simulated NIC. After every change each agent's NIC holds
//! exactly its host's part of the file (the same entries as a fresh NIC programmed with
//! it); faults (an agent killed, a compaction) end the same way. No root needed.
mod common;
use common::cluster::{assert_holds, AgentProc, Etcd};
use common::{data, TempFile};
use nicctl::config::{self, Config, Limits};
use std::path::Path;
use std::time::Duration;

fn load(path: &Path) -> Config {
    config::load(path, &Limits::vfs(64)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn three_hosts() -> String {
    std::fs::read_to_string(data("three-hosts.toml")).unwrap()
}

/// three-hosts.toml with w4 added on h3, w3 moved from h2 to h3, and w2 removed, as far
/// as `step` goes (0: none of it).
fn changed(step: usize) -> String {
    let mut text = three_hosts();
    if step >= 1 {
        text += "\n[instance.w4]\nsubnet = \"web\"\nip = \"10.30.1.13\"\nhost = \"h3\"\n";
    }
    if step >= 2 {
        text = text.replace(
            "ip = \"10.30.1.12\"\nhost = \"h2\"",
            "ip = \"10.30.1.12\"\nhost = \"h3\"",
        );
    }
    if step >= 3 {
        text = text.replace(
            "[instance.w2]\nsubnet = \"web\"\nip = \"10.30.1.11\"\nhost = \"h2\"\n",
            "",
        );
    }
    text
}

#[test]
fn three_agents_follow_every_change_and_serve_only_their_vpcs() {
    let etcd = Etcd::start();
    let agents: Vec<AgentProc> = ["h1", "h2", "h3"]
        .iter()
        .map(|h| AgentProc::start(&etcd, h, "sim"))
        .collect();
    let hosts = ["h1", "h2", "h3"];
    for step in 0..=3 {
        let file = TempFile::with(&format!("cl-step{step}"), "toml", &changed(step));
        let out = etcd.apply(file.path());
        assert!(out.contains("store revision"), "{out}");
        let took = etcd.wait_in_step(&hosts);
        let config = load(file.path());
        for a in &agents {
            assert_holds(a, &config, &format!("step {step}"));
        }
        println!("step {step}: every agent in step {took:?} after the apply");
    }
    // An agent's own socket says what it is.
    let said =
        common::nicctl(&["--socket", agents[0].socket().to_str().unwrap(), "status"]).expect_ok();
    assert!(
        said.contains("keeps its NIC at the desired state in etcd at http://127.0.0.1:"),
        "{said}"
    );
    // w4 (added on h3) is mapped on h1 toward h3; w2 (removed) is on no NIC.
    let h1 = agents[0].tables();
    let w4 = h1
        .mappings
        .iter()
        .find(|m| m.ip.to_string() == "10.30.1.13")
        .expect("w4 mapped on h1");
    assert!(format!("{:?}", w4.place).contains("192.0.2.3"), "{w4:?}");
    for a in &agents {
        assert!(
            !a.tables()
                .mappings
                .iter()
                .any(|m| m.ip.to_string() == "10.30.1.11"),
            "w2's mapping left on {}",
            a.host
        );
    }
    // Lab's records never reached h2 or h3, and h2, with no instance left, serves nothing.
    let status = etcd.status();
    for line in &status.hosts {
        let agent = line.agent.as_ref().expect("an agent per host");
        let expected: &[&str] = match line.host.as_str() {
            "h1" => &["lab", "prod"],
            "h2" => &[],
            _ => &["prod"],
        };
        assert_eq!(agent.vpcs, expected, "{line:?}");
    }
    // The same file again changes nothing in the store.
    let file = TempFile::with("cl-again", "toml", &changed(3));
    let out = etcd.apply(file.path());
    assert!(out.starts_with("no change"), "{out}");

    // A record that fails validation, written behind apply's back, is refused with its
    // reason; the rest of its VPC still reaches the NICs.
    let bad_key = format!(
        "{}instances/w9",
        nicctl::cluster::layout::vpc_prefix("prod")
    );
    let good_key = format!(
        "{}instances/w8",
        nicctl::cluster::layout::vpc_prefix("prod")
    );
    etcd.with_client(async |c| {
        let bad = r#"{"subnet":"web","ip":"10.99.1.1","secondary_ips":[],"mac":"02:2c:0a:63:01:01","src_dst_check":true,"host":"h3"}"#;
        let good = r#"{"subnet":"web","ip":"10.30.1.20","secondary_ips":[],"mac":"02:2c:0a:1e:01:14","src_dst_check":true,"host":"h3"}"#;
        c.put(bad_key.as_str(), bad, None).await.expect("put");
        c.put(good_key.as_str(), good, None).await.expect("put");
    });
    assert!(
        common::eventually(Duration::from_secs(10), || {
            agents[2]
                .tables()
                .mappings
                .iter()
                .any(|m| m.ip.to_string() == "10.30.1.20")
        }),
        "the good record never reached h3"
    );
    let status = etcd.status();
    let h3 = status.hosts.iter().find(|l| l.host == "h3").unwrap();
    let refused = &h3.agent.as_ref().unwrap().refused;
    assert!(
        refused
            .iter()
            .any(|r| r.key == bad_key && r.reason.starts_with("instance.w9.ip: ")),
        "{refused:?}"
    );
    assert!(
        agents[2].logs("record refused", Duration::from_secs(5)),
        "{}",
        agents[2].log()
    );

    // An agent for a host the store does not name waits and says so.
    let stray = AgentProc::start(&etcd, "h9", "sim");
    assert!(
        common::eventually(Duration::from_secs(10), || {
            etcd.status().hosts.iter().any(|l| {
                l.host == "h9"
                    && !l.known
                    && l.agent
                        .as_ref()
                        .is_some_and(|a| a.health.contains("not in the store"))
            })
        }),
        "{:?}",
        etcd.status()
    );
    drop(stray);
}

/// An apply is one etcd transaction, but an agent receives it through several watches (the
/// hosts, its served VPCs, the desired-state key), each in a response of its own. An agent
/// that reported the transaction's revision on the first of them told `nicctl status` it
/// was in step while its NIC still held the old state (CI saw a NIC missing its VPC after
/// `wait_in_step`). Every status the agent writes is recorded here: each one that claims a
/// revision must describe the same NIC as the last one claiming it.
#[test]
fn an_agent_reports_a_revision_only_once_all_of_its_transaction_is_in() {
    let etcd = Etcd::start();
    let log = etcd.record_statuses("h3");
    let agent = AgentProc::start(&etcd, "h3", "sim");
    // Each step changes what h3 holds: w4 comes, w3 moves in, w2 goes, and back.
    for (n, step) in [1, 2, 3, 2, 1, 3, 0, 1, 2].into_iter().enumerate() {
        let file = TempFile::with(&format!("cl-r{n}"), "toml", &changed(step));
        etcd.apply(file.path());
        etcd.wait_in_step(&["h3"]);
        assert_holds(
            &agent,
            &load(file.path()),
            &format!("change {n} (step {step})"),
        );
    }
    // The last status is written after the last reconcile; wait for the log to have it.
    let last = etcd.status().desired_revision;
    assert!(
        common::eventually(Duration::from_secs(10), || log
            .statuses()
            .iter()
            .any(|s| s.applied_revision >= last)),
        "{:#?}",
        log.statuses()
    );
    let statuses = log.statuses();
    let nic = |s: &nicctl::cluster::AgentStatus| (s.vpcs.clone(), s.vfs.clone(), s.mappings);
    for s in statuses.iter().filter(|s| s.health == "ok") {
        let final_word = statuses
            .iter()
            .rev()
            .find(|t| t.health == "ok" && t.applied_revision == s.applied_revision)
            .expect("itself at least");
        assert_eq!(
            nic(s),
            nic(final_word),
            "two statuses claim revision {} with different NICs: the first was written \
             before all of its transaction had arrived",
            s.applied_revision
        );
    }
}

#[test]
fn an_agent_killed_and_restarted_converges_without_duplicates() {
    let etcd = Etcd::start();
    let sim = tests::vfio_user::NicSim::start(hw_sim::SimConfig {
        num_vfs: 16,
        ..hw_sim::SimConfig::default()
    })
    .expect("nic-sim comes up");
    let device = format!("vfio-user:{}", sim.socket().display());
    let mut agent = AgentProc::start(&etcd, "h3", &device);
    let first = TempFile::with("cl-k0", "toml", &changed(1));
    etcd.apply(first.path());
    etcd.wait_in_step(&["h3"]);
    assert_holds(&agent, &load(first.path()), "before the kill");
    agent.kill();
    // Its status goes with its lease: status flags the host.
    assert!(
        common::eventually(Duration::from_secs(15), || {
            let s = etcd.status();
            s.hosts
                .iter()
                .any(|l| l.host == "h3" && l.agent.is_none() && l.lagging)
        }),
        "a dead agent still shows: {:?}",
        etcd.status()
    );
    let text = common::nicctl(&["--etcd", &etcd.url(), "status"]).expect_ok();
    assert!(
        text.lines()
            .any(|l| l.starts_with("h3") && l.contains("no agent") && l.contains("LAGGING")),
        "{text}"
    );
    // Meanwhile w3 moves to h3 and w2 goes: the NIC (its own process) keeps what it had.
    let second = TempFile::with("cl-k1", "toml", &changed(3));
    etcd.apply(second.path());
    agent.restart();
    etcd.wait_in_step(&["h3"]);
    assert_holds(&agent, &load(second.path()), "after the restart");
    assert!(
        agent.logs("NIC reconciled", Duration::from_secs(5)),
        "{}",
        agent.log()
    );
}

#[test]
fn a_compaction_past_an_agent_forces_a_read_that_converges() {
    let mut etcd = Etcd::start();
    let agent = AgentProc::start(&etcd, "h2", "sim");
    let first = TempFile::with("cl-c0", "toml", &changed(0));
    etcd.apply(first.path());
    etcd.wait_in_step(&["h2"]);
    // The agent stops reading; two changes, a compaction past them, and a new etcd process
    // on the same data: the agent must go on from a revision that is gone.
    agent.signal(libc::SIGSTOP);
    // Changes that keep h2 serving its VPC: a change to what it serves would make it read
    // the whole store afresh as soon as it runs again (from events its socket buffered
    // while it was stopped), and it would never meet the compaction (CI saw that).
    let mid = TempFile::with("cl-c1", "toml", &changed(1));
    etcd.apply(mid.path());
    let last = TempFile::with("cl-c2", "toml", &changed(2));
    etcd.apply(last.path());
    // Two writes the agent does not watch: the compaction then lies past the revision after
    // the last one it can have seen, even if it reads the changes before its connection
    // breaks.
    etcd.with_client(async |c| {
        c.put("/vpcnic-test/poke", "1", None).await.expect("put");
        c.put("/vpcnic-test/poke", "2", None).await.expect("put");
    });
    let compacted = etcd.compact();
    etcd.stop();
    etcd.resume();
    agent.signal(libc::SIGCONT);
    etcd.wait_in_step(&["h2"]);
    assert_holds(&agent, &load(last.path()), "after the compaction");
    assert!(
        agent.logs(
            "compacted past what this agent watched",
            Duration::from_secs(5)
        ),
        "compacted at {compacted}: {}",
        agent.log()
    );
    assert!(agent.log().contains("reconnected"), "{}", agent.log());
}
