//! The cluster: the desired state in etcd, an agent on every host.
//!
//! `nicctl apply FILE --etcd URLS` validates the file and writes it into etcd in one
//! transaction as typed records ([`layout`]); `nicctl agent --etcd URLS --host NAME` reads
//! what its host serves at one revision, reconciles its NIC with the reconciler every
//! command uses, then watches from the next revision and reconciles each change
//! ([`agent`]); `nicctl status --etcd URLS` compares each agent's applied revision with
//! the store's ([`status`]). Without `--etcd` nothing here runs: the single machine needs
//! no server.
pub mod agent;
pub mod arrival;
pub mod layout;
pub mod publish;
pub mod status;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("etcd at {urls}: {reason}")]
    Unreachable { urls: String, reason: String },
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// Another apply changed the store between our read and our write.
    #[error("etcd: another apply changed the desired state meanwhile; apply again")]
    Raced,
    #[error("etcd: {0}")]
    Refused(String),
}

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `URLS` as given to `--etcd`: comma-separated endpoints (`http://127.0.0.1:2379`).
pub fn endpoints(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect()
}

/// Connects to etcd at `urls`.
pub async fn connect(urls: &str) -> Result<etcd_client::Client, StoreError> {
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(Duration::from_secs(10))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
    let unreachable = |reason: String| StoreError::Unreachable {
        urls: urls.to_string(),
        reason,
    };
    let mut client = etcd_client::Client::connect(endpoints(urls), Some(options))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    // Connecting is lazy: ask for something so that a dead endpoint says so now.
    client
        .status()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(client)
}

/// A runtime for one command's calls to etcd (the rest of nicctl is not async).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// What an agent reports under its lease at `/vpcnic/v1/agents/<host>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub host: String,
    pub pid: u32,
    /// The NIC it drives.
    pub device: String,
    /// Every change of the store up to this revision that concerns the host is in its NIC.
    pub applied_revision: i64,
    /// `ok`, or why the NIC is not at the applied revision's state.
    pub health: String,
    /// The VPCs it serves.
    pub vpcs: Vec<String>,
    /// (instance, VF) of its instances.
    pub vfs: Vec<(String, u16)>,
    /// Mappings its NIC holds.
    pub mappings: usize,
    /// Records it refused, with the reason.
    pub refused: Vec<layout::Refusal>,
    /// Bytes of keys and values it has received from etcd (reads and watch events).
    #[serde(default)]
    pub received_bytes: u64,
    /// Of those, records of VPCs it does not serve (0: etcd sends it only its VPCs).
    #[serde(default)]
    pub received_foreign: u64,
}
