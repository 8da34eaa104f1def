//! `nicctl agent --etcd URLS --host NAME`: one host's NIC kept at the desired state in etcd.
//!
//! It reads everything the host serves at one revision (hosts, gateways, the VPCs listed
//! under `serves/<host>/`), reconciles the NIC, then watches all of it from the next
//! revision and reconciles after each change, once all of it has arrived
//! ([`super::arrival`]). The NIC is read back before every reconcile
//! and only the difference is made, so a restarted agent, or one that missed changes,
//! repairs exactly what differs. A compaction past the watched revision, or a change of the
//! VPCs the host serves, ends the watch and the agent reads everything again. After a lost
//! connection it watches on from the last revision it saw (as a Kubernetes reflector
//! resumes from its resourceVersion), and reads everything again if etcd has compacted
//! that revision away. Meanwhile the NIC keeps forwarding with what it holds: the data
//! plane never waits for the control plane.
//!
//! Its status ([`AgentStatus`]) lives under a lease at `/vpcnic/v1/agents/<host>`, renewed
//! every second: an agent that dies disappears from `nicctl status` by itself.
use super::arrival::{Arrivals, Arrived};
use super::layout::{self, Refusal};
use super::{AgentStatus, StoreError};
use crate::config::{self, Config, Limits, Plan};
use crate::nics::Local;
use etcd_client::{EventType, GetOptions, WatchOptions};
use host_driver::reconcile;
use host_driver::PfDriver;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// How long an agent's status outlives it.
pub const LEASE_TTL_SECS: i64 = 5;
/// How often it renews its lease and retries a failed reconcile.
const TICK: Duration = Duration::from_secs(1);
/// Longest wait between attempts to reach etcd.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long part of a revision waits for the rest before the agent reconciles what came
/// (records written behind `nicctl apply`'s back say nothing of what is to come).
const ARRIVAL_LIMIT: Duration = Duration::from_secs(3);

/// What the agent drives and where the store is.
pub struct AgentOptions {
    pub urls: String,
    pub host: String,
    /// The NIC's name, for the status.
    pub device: String,
}

/// What the agent has made of the store so far.
pub struct Agent {
    opts: AgentOptions,
    driver: Arc<PfDriver>,
    limits: Limits,
    /// Every record read or watched: key to value.
    store: BTreeMap<String, Vec<u8>>,
    /// The VPCs the host serves, as last read.
    served: BTreeSet<String>,
    /// What the NIC was last brought to.
    config: Option<Config>,
    plan: Option<Plan>,
    /// The store revision the NIC is at (every relevant change up to it is applied).
    applied: i64,
    /// The revision read or watched last (every record up to it is in `store`).
    seen: i64,
    /// Revisions received in part, not yet reconciled.
    arrivals: Arrivals,
    health: String,
    refused: Vec<Refusal>,
    /// The status last written, and the lease it was written under.
    published: Option<(i64, AgentStatus)>,
    /// Bytes of keys and values received from etcd, and those of VPCs it does not serve.
    received: u64,
    foreign: u64,
    /// Told of every reconcile (the agent's control socket).
    on_change: Option<Box<dyn FnMut(Local) + Send>>,
}

impl Agent {
    pub fn new(opts: AgentOptions, driver: Arc<PfDriver>) -> Agent {
        let mut limits = Limits::from_info(driver.info());
        // Other hosts' instances are not this NIC's VFs; its own are checked by the NIC.
        limits.vfs = u32::MAX;
        Agent {
            arrivals: Arrivals::new(&opts.host),
            opts,
            driver,
            limits,
            store: BTreeMap::new(),
            served: BTreeSet::new(),
            config: None,
            plan: None,
            applied: 0,
            seen: 0,
            health: "starting".into(),
            refused: Vec::new(),
            published: None,
            received: 0,
            foreign: 0,
            on_change: None,
        }
    }

    /// Calls `f` with the NIC's view after every reconcile.
    pub fn on_change(&mut self, f: impl FnMut(Local) + Send + 'static) {
        self.on_change = Some(Box::new(f));
    }

    /// Runs until `stop` resolves: sessions one after another, reconnecting with backoff.
    pub async fn run(&mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = Duration::from_millis(100);
        loop {
            let session = self.session();
            tokio::select! {
                end = session => match end {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        warn!(
                            revision = self.applied,
                            error = %e,
                            "etcd unreachable; the NIC keeps forwarding what it holds; retrying"
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = &mut stop => return,
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                },
                _ = &mut stop => return,
            }
        }
    }

    /// One connection: read, reconcile, watch; read again on a compaction or a change of
    /// the served VPCs; returns only when the connection fails.
    async fn session(&mut self) -> Result<(), StoreError> {
        let mut client = super::connect(&self.opts.urls).await?;
        let lease = client.lease_grant(LEASE_TTL_SECS, None).await?.id();
        let (mut keeper, mut keepalive) = client.lease_keep_alive(lease).await?;
        self.published = None;
        // After a lost connection, first try to go on from what was seen: etcd sends what
        // was missed, unless it has compacted it, and then everything is read again.
        let mut resume = self.seen > 0;
        loop {
            // Whatever arrived in part is sent again, or read again.
            self.arrivals.clear();
            let revision = if resume {
                resume = false;
                info!(
                    revision = self.seen,
                    "reconnected; watching from the next revision"
                );
                self.publish(&mut client, lease).await?;
                self.seen
            } else {
                let revision = self.read_all(&mut client).await?;
                info!(
                    revision,
                    vpcs = self.served.len(),
                    records = self.store.len(),
                    "read the store"
                );
                self.reconcile(revision);
                self.publish(&mut client, lease).await?;
                revision
            };
            let from = revision + 1;
            let opts = || WatchOptions::new().with_prefix().with_start_revision(from);
            let (mut watcher, mut stream) = client.watch(layout::HOSTS, Some(opts())).await?;
            let mut prefixes = vec![
                layout::GATEWAYS.to_string(),
                layout::DESIRED.to_string(),
                layout::serves_prefix(&self.opts.host),
            ];
            prefixes.extend(self.served.iter().map(|v| layout::vpc_prefix(v)));
            for p in prefixes {
                watcher.watch(p, Some(opts())).await?;
            }
            let mut tick = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    message = stream.message() => {
                        let Some(response) = message? else {
                            return Err(StoreError::Refused("the watch stream ended".into()));
                        };
                        if response.compact_revision() > 0 {
                            info!(
                                revision = self.applied,
                                compacted = response.compact_revision(),
                                "the store was compacted past what this agent watched; reading again"
                            );
                            break;
                        }
                        if response.canceled() {
                            info!(revision = self.applied, reason = response.cancel_reason(), "watch canceled; reading again");
                            break;
                        }
                        if response.events().is_empty() {
                            // A watch created, or a progress notice: nothing to apply. (The
                            // applied revision moves with events only: every apply writes
                            // the desired-state key this agent watches, and etcd 3.4 sends
                            // progress for watches not caught up yet.)
                            continue;
                        }
                        let now = Instant::now();
                        let serves = layout::serves_prefix(&self.opts.host);
                        let mut serves_changed = false;
                        for event in response.events() {
                            let Some(kv) = event.kv() else { continue };
                            let key = String::from_utf8_lossy(kv.key()).into_owned();
                            self.count(&key, kv.value().len());
                            if key.starts_with(&serves) {
                                serves_changed = true;
                            }
                            self.arrivals.note(kv.mod_revision(), &key, kv.value(), now);
                            match event.event_type() {
                                EventType::Put => {
                                    self.store.insert(key, kv.value().to_vec());
                                }
                                EventType::Delete => {
                                    self.store.remove(&key);
                                }
                            }
                        }
                        if serves_changed {
                            info!("the VPCs this host serves changed; reading again");
                            break;
                        }
                        if let Some(arrived) = self.arrivals.take_complete() {
                            self.settle(arrived);
                        }
                        self.publish(&mut client, lease).await?;
                    }
                    _ = tick.tick() => {
                        keeper.keep_alive().await?;
                        if self.arrivals.overdue(Instant::now(), ARRIVAL_LIMIT) {
                            if let Some(arrived) = self.arrivals.take_all() {
                                warn!(
                                    revision = arrived.revision,
                                    "records arrived without the rest of an apply (written \
                                     behind nicctl apply's back?); reconciling what came"
                                );
                                self.settle(arrived);
                                self.publish(&mut client, lease).await?;
                            }
                        }
                        if self.health != "ok" && self.seen > 0 && self.arrivals.is_empty() {
                            let at = self.seen;
                            self.reconcile(at);
                            self.publish(&mut client, lease).await?;
                        }
                    }
                    renewed = keepalive.message() => {
                        if renewed?.is_none() {
                            return Err(StoreError::Refused("the lease keep-alive stream ended".into()));
                        }
                    }
                }
            }
        }
    }

    /// Reads everything the host serves at one revision; returns it.
    async fn read_all(&mut self, client: &mut etcd_client::Client) -> Result<i64, StoreError> {
        let hosts = client
            .get(layout::HOSTS, Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = hosts.header().map_or(0, |h| h.revision());
        let at = || GetOptions::new().with_prefix().with_revision(revision);
        let mut store = BTreeMap::new();
        let mut take = |r: &etcd_client::GetResponse| {
            for kv in r.kvs() {
                store.insert(
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    kv.value().to_vec(),
                );
            }
        };

        take(&hosts);
        take(&client.get(layout::GATEWAYS, Some(at())).await?);
        let serves_prefix = layout::serves_prefix(&self.opts.host);
        let serves = client.get(serves_prefix.as_str(), Some(at())).await?;
        let served: BTreeSet<String> = serves
            .kvs()
            .iter()
            .filter_map(|kv| {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                key.strip_prefix(&serves_prefix).map(String::from)
            })
            .collect();
        for v in &served {
            take(&client.get(layout::vpc_prefix(v), Some(at())).await?);
        }
        self.served = served;
        let received: Vec<(String, usize)> = store
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .chain(serves.kvs().iter().map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    kv.value().len(),
                )
            }))
            .collect();
        for (k, len) in received {
            self.count(&k, len);
        }
        self.store = store;
        self.seen = revision;
        Ok(revision)
    }

    /// Counts a record received from etcd.
    fn count(&mut self, key: &str, value_len: usize) {
        let bytes = (key.len() + value_len) as u64;
        self.received += bytes;
        if let Some(rest) = key.strip_prefix(layout::VPCS) {
            let vpc = rest.split('/').next().unwrap_or("");
            if !self.served.contains(vpc) {
                self.foreign += bytes;
            }
        }
    }

    /// Takes what `arrived` names as wholly arrived: reconciles if it brought records (or
    /// the NIC is not at the last state), else only moves the revisions on.
    fn settle(&mut self, arrived: Arrived) {
        if arrived.records || self.health != "ok" {
            self.reconcile(arrived.revision);
        } else {
            self.applied = arrived.revision;
            self.seen = arrived.revision;
        }
    }

    /// Brings the NIC to the records held, as of store revision `revision`.
    fn reconcile(&mut self, revision: i64) {
        self.seen = revision;
        let read = layout::read(&self.store, &self.limits);
        for r in &read.refused {
            if !self.refused.contains(r) {
                warn!(revision, key = %r.key, reason = %r.reason, "record refused");
            }
        }
        self.refused = read.refused;
        let host = self.opts.host.clone();
        if read.config.host_index(&host).is_none() {
            let health = format!("host {host} is not in the store: waiting for it");
            if self.health != health {
                warn!(revision, "{health}");
            }
            self.health = health;
            return;
        }
        match self.bring(&read.config) {
            Ok((plan, changes)) => {
                if !changes.is_empty() || self.health != "ok" {
                    info!(revision, changes = changes.len(), "NIC reconciled");
                }
                self.health = "ok".into();
                self.applied = revision;
                self.config = Some(read.config);
                self.plan = Some(plan);
                self.changed();
            }
            Err(e) => {
                let health = e.to_string();
                if self.health != health {
                    warn!(revision, error = %e, "the NIC refused a change; retrying every second");
                }
                self.health = health;
            }
        }
    }

    fn bring(&self, config: &Config) -> Result<(Plan, Vec<reconcile::Change>), config::ApplyError> {
        let (plan, changes) = config::plan::plan_nic(&self.driver, config, &self.opts.host)?;
        config::plan::make(&self.driver, &changes, |_, _| {})?;
        Ok((plan, changes))
    }

    fn changed(&mut self) {
        let (Some(config), Some(plan)) = (&self.config, &self.plan) else {
            return;
        };
        let local = Local::programmed(config.clone(), vec![(plan.clone(), self.driver.clone())]);
        if let Some(f) = self.on_change.as_mut() {
            f(local);
        }
    }

    /// The status as it stands.
    pub fn status(&self) -> AgentStatus {
        let mappings = self.plan.as_ref().map_or(0, |p| p.desired().mappings.len());
        AgentStatus {
            host: self.opts.host.clone(),
            pid: std::process::id(),
            device: self.opts.device.clone(),
            applied_revision: self.applied,
            health: self.health.clone(),
            vpcs: self.served.iter().cloned().collect(),
            vfs: self
                .plan
                .as_ref()
                .map(|p| p.vfs.clone())
                .unwrap_or_default(),
            mappings,
            refused: self.refused.clone(),
            received_bytes: self.received,
            received_foreign: self.foreign,
        }
    }

    /// Writes the status under `lease` if it changed.
    async fn publish(
        &mut self,
        client: &mut etcd_client::Client,
        lease: i64,
    ) -> Result<(), StoreError> {
        let status = self.status();
        if self.published.as_ref() == Some(&(lease, status.clone())) {
            return Ok(());
        }
        let value = serde_json::to_vec(&status).unwrap_or_default();
        client
            .put(
                layout::agent_key(&self.opts.host),
                value,
                Some(etcd_client::PutOptions::new().with_lease(lease)),
            )
            .await?;
        self.published = Some((lease, status));
        Ok(())
    }
}
