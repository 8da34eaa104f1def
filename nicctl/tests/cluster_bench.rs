//! The cluster's convergence benchmark, on one machine: a real etcd, 50 `nicctl agent`
//! processes each with a small simulated NIC (`--device sim-small`, 256 VFs), and a VPC
//! file of 10,000 instances (100 VPCs of 100 instances, each VPC on 5 hosts, so each host
//! serves 10 VPCs and runs 200 instances).
//!
//! It measures the time from an apply's write to each agent that serves the changed VPC
//! reporting it applied (its status under `/vpcnic/v1/agents/`, watched here), for single
//! changes (an instance added or removed) and for 1,000-instance batches; and the bytes
//! each agent received from etcd against the size of the whole store, and how many of them
//! belong to VPCs it does not serve.
//!
//! ```sh
//! cargo test --release -p nicctl --test cluster_bench -- --ignored --nocapture
//! ```
mod common;
use common::cluster::{AgentProc, Etcd};
use common::TempFile;
use etcd_client::{GetOptions, WatchOptions};
use nicctl::cluster::{layout, AgentStatus};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const HOSTS: usize = 50;
const VPCS: usize = 100;
const PER_VPC: usize = 100;
const HOSTS_PER_VPC: usize = 5;
const SINGLE_CHANGES: usize = 40;
const BATCHES: usize = 4;
const BATCH: usize = 1_000;

fn host(h: usize) -> String {
    format!("b{h:02}")
}

/// The hosts VPC `v` runs on.
fn hosts_of(v: usize) -> Vec<usize> {
    (0..HOSTS_PER_VPC)
        .map(|k| (v * HOSTS_PER_VPC + k) % HOSTS)
        .collect()
}

/// The file: VPCs `v000` ... with `instances(v)` instances each (`extra` more in VPC `v`
/// for the VPCs listed).
fn file(extra: &BTreeMap<usize, usize>) -> String {
    let mut f = String::new();
    for v in 0..VPCS {
        let _ = write!(
            f,
            "[vpc.v{v:03}]\nvni = {}\ncidr = \"10.{v}.0.0/16\"\n\n\
             [subnet.s{v:03}]\nvpc = \"v{v:03}\"\ncidr = \"10.{v}.0.0/20\"\n\n",
            1000 + v
        );
        let hosts = hosts_of(v);
        let n = PER_VPC + extra.get(&v).copied().unwrap_or(0);
        for i in 0..n {
            let _ = write!(
                f,
                "[instance.i{v:03}-{i:04}]\nsubnet = \"s{v:03}\"\nip = \"10.{v}.{}.{}\"\nhost = \"{}\"\n\n",
                1 + i / 250,
                1 + i % 250,
                host(hosts[i % HOSTS_PER_VPC])
            );
        }
    }
    for h in 0..HOSTS {
        let _ = writeln!(f, "[host.{}]", host(h));
    }
    f
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Applies `text` and waits until every agent of `relevant` reports a revision at least
/// the write's; returns each one's delay from the write (the transaction sent, after the
/// apply has read the store and compared).
fn timed_apply(
    etcd: &Etcd,
    rt: &tokio::runtime::Runtime,
    statuses: &mut tokio::sync::mpsc::UnboundedReceiver<(Instant, AgentStatus)>,
    text: &str,
    relevant: &[String],
) -> Vec<Duration> {
    let config = nicctl::config::parse(text, &nicctl::config::Limits::vfs(256)).unwrap();
    let url = etcd.url();
    let published = rt.block_on(async {
        let mut c = nicctl::cluster::connect(&url).await.unwrap();
        nicctl::cluster::publish::publish(&mut c, &config, "bench.toml")
            .await
            .unwrap()
    });
    let started = published.written_at.expect("the apply wrote");
    let mut pending: BTreeMap<String, ()> = relevant.iter().map(|h| (h.clone(), ())).collect();
    let mut delays = Vec::new();
    let deadline = started + Duration::from_secs(120);
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "agents {:?} never applied", pending.keys());
        let Some((at, s)) = rt.block_on(async {
            tokio::time::timeout(left, statuses.recv())
                .await
                .ok()
                .flatten()
        }) else {
            continue;
        };
        if s.applied_revision >= published.revision
            && s.health == "ok"
            && pending.remove(&s.host).is_some()
        {
            delays.push(at - started);
        }
    }
    delays
}

#[test]
#[ignore = "a benchmark of 50 agent processes (a few minutes): cargo test --release -p nicctl \
            --test cluster_bench -- --ignored --nocapture"]
fn convergence_of_50_agents_and_10000_instances() {
    let etcd = Etcd::start();
    let rt = nicctl::cluster::runtime().unwrap();
    // Every status an agent writes, as it arrives.
    let (tx, mut statuses) = tokio::sync::mpsc::unbounded_channel();
    let url = etcd.url();
    let watcher = rt.block_on(async {
        let mut c = nicctl::cluster::connect(&url).await.unwrap();
        let (w, mut stream) = c
            .watch(layout::AGENTS, Some(WatchOptions::new().with_prefix()))
            .await
            .unwrap();
        tokio::spawn(async move {
            while let Ok(Some(r)) = stream.message().await {
                let at = Instant::now();
                for e in r.events() {
                    if let Some(s) = e
                        .kv()
                        .and_then(|kv| serde_json::from_slice::<AgentStatus>(kv.value()).ok())
                    {
                        let _ = tx.send((at, s));
                    }
                }
            }
        });
        (c, w)
    });
    let names: Vec<String> = (0..HOSTS).map(host).collect();
    let agents: Vec<AgentProc> = names
        .iter()
        .map(|h| AgentProc::start_with(&etcd, h, "sim-small", 256))
        .collect();

    // The whole file.
    let base = file(&BTreeMap::new());
    let all = timed_apply(&etcd, &rt, &mut statuses, &base, &names);
    let first = all.iter().max().copied().unwrap_or_default();

    // Single changes: an instance added to a VPC, then removed again.
    let mut each = Vec::new();
    let mut every = Vec::new();
    for n in 0..SINGLE_CHANGES {
        let v = (n * 37) % VPCS;
        let extra = if n % 2 == 0 {
            BTreeMap::from([(v, 1)])
        } else {
            BTreeMap::new()
        };
        let v = if n % 2 == 0 { v } else { ((n - 1) * 37) % VPCS };
        let relevant: Vec<String> = hosts_of(v).into_iter().map(host).collect();
        let d = timed_apply(&etcd, &rt, &mut statuses, &file(&extra), &relevant);
        every.push(d.iter().max().copied().unwrap_or_default());
        each.extend(d);
    }
    // Batches of 1,000 instances: 100 more in each of 10 VPCs, then gone again.
    let mut batch_every = Vec::new();
    for n in 0..BATCHES {
        let vpcs: Vec<usize> = (0..10).map(|k| (n * 10 + k * 7) % VPCS).collect();
        let extra: BTreeMap<usize, usize> = vpcs.iter().map(|&v| (v, BATCH / 10)).collect();
        let mut relevant: Vec<String> = vpcs.iter().flat_map(|&v| hosts_of(v)).map(host).collect();
        relevant.sort();
        relevant.dedup();
        let d = timed_apply(&etcd, &rt, &mut statuses, &file(&extra), &relevant);
        batch_every.push(d.iter().max().copied().unwrap_or_default());
        let d = timed_apply(&etcd, &rt, &mut statuses, &base, &relevant);
        batch_every.push(d.iter().max().copied().unwrap_or_default());
    }

    // What each agent received, against the whole store.
    let store_bytes: u64 = rt.block_on(async {
        let mut c = nicctl::cluster::connect(&url).await.unwrap();
        let r = c
            .get(layout::ROOT, Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        r.kvs()
            .iter()
            .filter(|kv| !kv.key().starts_with(layout::AGENTS.as_bytes()))
            .map(|kv| (kv.key().len() + kv.value().len()) as u64)
            .sum()
    });
    let status = etcd.status();
    let mut received: Vec<u64> = Vec::new();
    let mut foreign = 0;
    for line in &status.hosts {
        let a = line.agent.as_ref().expect("an agent per host");
        received.push(a.received_bytes);
        foreign += a.received_foreign;
        assert_eq!(a.vpcs.len(), VPCS * HOSTS_PER_VPC / HOSTS, "{line:?}");
    }
    received.sort_unstable();
    drop(watcher);
    drop(agents);

    each.sort();
    every.sort();
    batch_every.sort();
    println!("cluster convergence: {HOSTS} agents, {VPCS} VPCs x {PER_VPC} instances, each VPC on {HOSTS_PER_VPC} hosts");
    println!(
        "  whole file (10,000 instances) on every NIC: {}",
        ms(first)
    );
    println!(
        "  single change, each serving agent ({} samples): p50 {}, p99 {}",
        each.len(),
        ms(percentile(&each, 0.5)),
        ms(percentile(&each, 0.99))
    );
    println!(
        "  single change, all serving agents ({} changes): p50 {}, p99 {}",
        every.len(),
        ms(percentile(&every, 0.5)),
        ms(percentile(&every, 0.99))
    );
    println!(
        "  1,000-instance batch, all serving agents ({} batches): p50 {}, p99 {}",
        batch_every.len(),
        ms(percentile(&batch_every, 0.5)),
        ms(percentile(&batch_every, 0.99))
    );
    println!(
        "  bytes received per agent since start: min {}, median {}, max {}; the store holds {} \
         (10 of 100 VPCs served each); bytes of VPCs not served: {foreign}",
        received[0],
        received[received.len() / 2],
        received[received.len() - 1],
        store_bytes
    );
    assert_eq!(
        foreign, 0,
        "an agent received records of a VPC it does not serve"
    );
}

#[test]
fn the_benchmark_file_is_valid_and_spreads_as_described() {
    let text = file(&BTreeMap::new());
    let config = nicctl::config::parse(&text, &nicctl::config::Limits::vfs(256)).unwrap();
    assert_eq!(config.instances.len(), VPCS * PER_VPC);
    assert_eq!(config.hosts.len(), HOSTS);
    for h in 0..HOSTS {
        assert_eq!(
            layout::served(&config, h).len(),
            VPCS * HOSTS_PER_VPC / HOSTS
        );
        let on = config.instances.iter().filter(|i| i.host == h).count();
        assert_eq!(on, VPCS * PER_VPC / HOSTS);
    }
    let _ = TempFile::with("cb-check", "toml", &text);
}
