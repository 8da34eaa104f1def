//! `nicctl status --etcd URLS`: every host of the store and every agent, each agent's applied
//! revision against the revision of the desired state, lagging hosts flagged.
use super::layout::{self, Desired};
use super::{AgentStatus, StoreError};
use etcd_client::GetOptions;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One host's line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLine {
    pub host: String,
    /// Its agent's report; `None` when no agent runs for it.
    pub agent: Option<AgentStatus>,
    /// True when its agent has not applied the desired state yet (or none runs).
    pub lagging: bool,
    /// False for an agent of a host the store does not name.
    pub known: bool,
}

/// The cluster as the store tells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The store's revision now.
    pub revision: i64,
    /// The revision of the last apply, and what it applied.
    pub desired_revision: i64,
    pub desired: Option<Desired>,
    pub hosts: Vec<HostLine>,
}

/// Reads the status from the store.
pub async fn read(client: &mut etcd_client::Client) -> Result<ClusterStatus, StoreError> {
    let desired = client.get(layout::DESIRED, None).await?;
    let revision = desired.header().map_or(0, |h| h.revision());
    let at = || GetOptions::new().with_prefix().with_revision(revision);
    let (desired_revision, desired) = desired
        .kvs()
        .first()
        .map(|kv| {
            (
                kv.mod_revision(),
                serde_json::from_slice::<Desired>(kv.value()).ok(),
            )
        })
        .unwrap_or((0, None));
    let hosts = client
        .get(layout::HOSTS, Some(at().with_keys_only()))
        .await?;
    let agents = client.get(layout::AGENTS, Some(at())).await?;
    let mut lines: BTreeMap<String, HostLine> = BTreeMap::new();
    for kv in hosts.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        if let Some(name) = key.strip_prefix(layout::HOSTS) {
            lines.insert(
                name.to_string(),
                HostLine {
                    host: name.to_string(),
                    agent: None,
                    lagging: true,
                    known: true,
                },
            );
        }
    }
    for kv in agents.kvs() {
        let Ok(status) = serde_json::from_slice::<AgentStatus>(kv.value()) else {
            continue;
        };
        let line = lines
            .entry(status.host.clone())
            .or_insert_with(|| HostLine {
                host: status.host.clone(),
                agent: None,
                lagging: true,
                known: false,
            });
        line.lagging = status.applied_revision < desired_revision || status.health != "ok";
        line.agent = Some(status);
    }
    Ok(ClusterStatus {
        revision,
        desired_revision,
        desired,
        hosts: lines.into_values().collect(),
    })
}

/// The status as text: one line per host.
pub fn text(s: &ClusterStatus) -> String {
    let mut out = match &s.desired {
        Some(d) => format!(
            "store revision {}; desired state: {} ({} records) at revision {}\n",
            s.revision, d.file, d.records, s.desired_revision
        ),
        None => format!(
            "store revision {}; no desired state yet (nicctl apply FILE --etcd URLS)\n",
            s.revision
        ),
    };
    let rows: Vec<[String; 5]> = s
        .hosts
        .iter()
        .map(|h| match &h.agent {
            None => [
                h.host.clone(),
                "-".into(),
                "-".into(),
                "no agent".into(),
                "LAGGING".into(),
            ],
            Some(a) => [
                h.host.clone(),
                format!("pid {} {}", a.pid, a.device),
                a.applied_revision.to_string(),
                if h.known {
                    format!("{}, {} VFs, {} mappings", a.health, a.vfs.len(), a.mappings)
                } else {
                    format!("{} (not a host of the store)", a.health)
                },
                if h.lagging {
                    format!(
                        "LAGGING ({} behind)",
                        s.desired_revision.saturating_sub(a.applied_revision).max(0)
                    )
                } else {
                    "in step".into()
                },
            ],
        })
        .collect();
    let header = ["host", "agent", "applied", "health", ""].map(String::from);
    let mut width = [0usize; 5];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
