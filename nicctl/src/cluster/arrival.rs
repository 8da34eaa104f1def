//! Knowing when an apply has wholly arrived at an agent.
//!
//! An apply is one etcd transaction, but an agent receives it through several watches
//! (hosts, gateways, `serves/<host>/`, each VPC it serves, the desired-state key), each
//! in a response of its own and in no set order: etcd 3.4 sends one watch's events while
//! another's are still to come (a watch that is catching up is sent to later, and its
//! progress notices may overtake events). An agent that reconciled on the first of them
//! reported the transaction's revision with part of it missing. So the apply writes, in
//! the desired-state key of the same transaction, how many of each agent's watches it
//! wrote to ([`WatchCounts`]), and an agent reconciles a revision only once that many of
//! its watches, and the desired-state key, have brought it ([`Arrivals`]).
use super::layout::{self, Desired, DESIRED, GATEWAYS, HOSTS, SERVES};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How many of the agents' watches one transaction wrote to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCounts {
    /// Of the watches every agent has (hosts, gateways).
    pub every_agent: usize,
    /// Per host, of its own: `serves/<host>/`, and `vpcs/<vpc>/` of each VPC it served
    /// before the transaction (a change of what it serves makes it read everything
    /// again). Hosts with none are left out.
    pub hosts: BTreeMap<String, usize>,
}

impl WatchCounts {
    /// The counts of a transaction that writes (puts or deletes) the keys `changed` in a
    /// store that held the keys `before`.
    pub fn of<'a>(
        changed: impl IntoIterator<Item = &'a str>,
        before: impl IntoIterator<Item = &'a str>,
    ) -> WatchCounts {
        let touched: BTreeSet<&str> = changed.into_iter().filter_map(layout::watch_of).collect();
        let mut counts = WatchCounts {
            every_agent: [HOSTS, GATEWAYS]
                .iter()
                .filter(|p| touched.contains(*p))
                .count(),
            hosts: BTreeMap::new(),
        };
        for w in &touched {
            if let Some(host) = w.strip_prefix(SERVES).and_then(|r| r.strip_suffix('/')) {
                *counts.hosts.entry(host.to_string()).or_default() += 1;
            }
        }
        for key in before {
            let Some((host, vpc)) = key.strip_prefix(SERVES).and_then(|r| r.split_once('/')) else {
                continue;
            };
            if touched.contains(layout::vpc_prefix(vpc).as_str()) {
                *counts.hosts.entry(host.to_string()).or_default() += 1;
            }
        }
        counts
    }

    /// How many of host `host`'s agent's watches (besides the desired-state key) bring
    /// the transaction.
    pub fn for_host(&self, host: &str) -> usize {
        self.every_agent + self.hosts.get(host).copied().unwrap_or(0)
    }
}

/// What has arrived of one revision.
#[derive(Debug)]
struct Arrival {
    /// Watches (besides the desired-state key's) to wait for: known once that key came.
    expected: Option<usize>,
    /// Watches that brought records of this revision.
    watches: BTreeSet<String>,
    /// When the first of it arrived.
    since: Instant,
}

impl Arrival {
    fn complete(&self) -> bool {
        self.expected.is_some_and(|n| self.watches.len() >= n)
    }
}

/// Revisions that have wholly arrived, taken together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrived {
    /// The last of them.
    pub revision: i64,
    /// False when they brought the desired-state key only (another host's change).
    pub records: bool,
}

/// The revisions an agent has received part of and not yet reconciled.
#[derive(Debug)]
pub struct Arrivals {
    host: String,
    pending: BTreeMap<i64, Arrival>,
}

impl Arrivals {
    pub fn new(host: &str) -> Arrivals {
        Arrivals {
            host: host.to_string(),
            pending: BTreeMap::new(),
        }
    }

    /// Notes a watched key put or deleted at `revision` (`value`: what was put).
    pub fn note(&mut self, revision: i64, key: &str, value: &[u8], now: Instant) {
        let a = self.pending.entry(revision).or_insert_with(|| Arrival {
            expected: None,
            watches: BTreeSet::new(),
            since: now,
        });
        if key == DESIRED {
            // A desired-state key that does not say: take what came, as before it did.
            a.expected = Some(
                serde_json::from_slice::<Desired>(value)
                    .ok()
                    .and_then(|d| d.watches)
                    .map_or(0, |w| w.for_host(&self.host)),
            );
        } else if let Some(w) = layout::watch_of(key) {
            a.watches.insert(w.to_string());
        }
    }

    /// Everything noted, once every revision of it has wholly arrived.
    pub fn take_complete(&mut self) -> Option<Arrived> {
        if self.pending.values().all(Arrival::complete) {
            self.take_all()
        } else {
            None
        }
    }

    /// True when part of a revision has waited longer than `limit` for the rest: records
    /// written behind `nicctl apply`'s back (no desired-state key with them), or a watch
    /// that never delivers.
    pub fn overdue(&self, now: Instant, limit: Duration) -> bool {
        self.pending
            .values()
            .any(|a| now.saturating_duration_since(a.since) > limit)
    }

    /// Everything noted, complete or not.
    pub fn take_all(&mut self) -> Option<Arrived> {
        let revision = *self.pending.keys().next_back()?;
        let records = self.pending.values().any(|a| !a.watches.is_empty());
        self.pending.clear();
        Some(Arrived { revision, records })
    }

    /// Forgets everything noted (the agent reads the store again).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::layout::vpc_prefix;

    fn desired(counts: &WatchCounts) -> Vec<u8> {
        serde_json::to_vec(&Desired {
            file: "f.toml".into(),
            records: 1,
            watches: Some(counts.clone()),
        })
        .unwrap()
    }

    #[test]
    fn counts_name_the_watches_each_host_receives_the_transaction_through() {
        let before = [
            "/vpcnic/v1/serves/h1/prod",
            "/vpcnic/v1/serves/h1/lab",
            "/vpcnic/v1/serves/h2/prod",
            "/vpcnic/v1/serves/h3/lab",
        ];
        let changed = [
            "/vpcnic/v1/hosts/h4",
            "/vpcnic/v1/vpcs/prod/instances/a",
            "/vpcnic/v1/vpcs/prod/instances/b",
            "/vpcnic/v1/vpcs/prod/vpc",
            "/vpcnic/v1/serves/h4/prod",
        ];
        let c = WatchCounts::of(changed, before);
        assert_eq!(c.every_agent, 1, "hosts/ only: gateways untouched");
        // h1 and h2 get prod's changes, h4 its serves; h3 serves lab only.
        assert_eq!(c.for_host("h1"), 2);
        assert_eq!(c.for_host("h2"), 2);
        assert_eq!(c.for_host("h3"), 1);
        assert_eq!(c.for_host("h4"), 2);
        assert_eq!(
            c.for_host("h9"),
            1,
            "a host the store does not name watches hosts/"
        );
    }

    #[test]
    fn a_revision_is_taken_only_once_every_watch_and_the_desired_key_brought_it() {
        let t = Instant::now();
        let counts = WatchCounts {
            every_agent: 1,
            hosts: [("h1".to_string(), 1)].into(),
        };
        let mut a = Arrivals::new("h1");
        a.note(7, "/vpcnic/v1/hosts/h1", b"{}", t);
        assert_eq!(a.take_complete(), None, "no desired-state key yet");
        a.note(7, DESIRED, &desired(&counts), t);
        assert_eq!(a.take_complete(), None, "prod's watch has not brought it");
        a.note(7, &format!("{}vpc", vpc_prefix("prod")), b"{}", t);
        assert_eq!(
            a.take_complete(),
            Some(Arrived {
                revision: 7,
                records: true
            })
        );
        assert!(a.is_empty());
    }

    #[test]
    fn the_desired_key_alone_is_another_hosts_change() {
        let t = Instant::now();
        let counts = WatchCounts {
            every_agent: 0,
            hosts: [("h2".to_string(), 1)].into(),
        };
        let mut a = Arrivals::new("h1");
        a.note(9, DESIRED, &desired(&counts), t);
        assert_eq!(
            a.take_complete(),
            Some(Arrived {
                revision: 9,
                records: false
            })
        );
    }

    #[test]
    fn a_later_revision_waits_for_an_earlier_one_still_arriving() {
        let t = Instant::now();
        let one = WatchCounts {
            every_agent: 1,
            hosts: BTreeMap::new(),
        };
        let mut a = Arrivals::new("h1");
        a.note(5, DESIRED, &desired(&one), t);
        a.note(6, DESIRED, &desired(&WatchCounts::default()), t);
        assert_eq!(a.take_complete(), None);
        a.note(5, "/vpcnic/v1/gateways/igw", b"{}", t);
        assert_eq!(
            a.take_complete(),
            Some(Arrived {
                revision: 6,
                records: true
            })
        );
    }

    #[test]
    fn records_written_behind_applys_back_are_taken_once_overdue() {
        let t = Instant::now();
        let mut a = Arrivals::new("h1");
        a.note(3, "/vpcnic/v1/vpcs/prod/instances/w8", b"{}", t);
        assert_eq!(a.take_complete(), None);
        let limit = Duration::from_secs(3);
        assert!(!a.overdue(t + Duration::from_secs(1), limit));
        assert!(a.overdue(t + Duration::from_secs(4), limit));
        assert_eq!(
            a.take_all(),
            Some(Arrived {
                revision: 3,
                records: true
            })
        );
    }

    #[test]
    fn a_desired_key_without_counts_takes_what_came() {
        let t = Instant::now();
        let mut a = Arrivals::new("h1");
        a.note(4, "/vpcnic/v1/hosts/h1", b"{}", t);
        let old = br#"{"file":"f.toml","records":3}"#;
        a.note(4, DESIRED, old, t);
        assert_eq!(
            a.take_complete(),
            Some(Arrived {
                revision: 4,
                records: true
            })
        );
    }
}
