//! `nicctl apply FILE --etcd URLS`: the validated file written into etcd as records, in one
//! transaction that puts only what changed and deletes what went, guarded by the revision
//! of [`layout::DESIRED`] it read (so two applies at once cannot interleave: the second is
//! refused and says to apply again).
use super::layout::{self, Desired, WatchCounts};
use super::StoreError;
use crate::config::Config;
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use serde_json::Value;
use std::collections::BTreeMap;

/// What an apply changed in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Keys written: new or changed.
    pub put: Vec<String>,
    pub deleted: Vec<String>,
    /// The store's revision after the transaction (before it, when nothing changed).
    pub revision: i64,
    /// When the transaction was sent (after the store was read and compared).
    pub written_at: Option<std::time::Instant>,
}

/// The keys an apply owns: everything under [`layout::ROOT`] but the agents' status.
fn owned(key: &str) -> bool {
    key.starts_with(layout::ROOT) && !key.starts_with(layout::AGENTS) && key != layout::DESIRED
}

/// Writes `config` (validated) as the desired state; `file` names it in [`Desired`].
pub async fn publish(
    client: &mut etcd_client::Client,
    config: &Config,
    file: &str,
) -> Result<Published, StoreError> {
    let wanted: BTreeMap<String, Vec<u8>> = layout::records_of(config)
        .into_iter()
        .map(|(k, v)| (k, compact(&v)))
        .collect();
    let current = client
        .get(layout::ROOT, Some(GetOptions::new().with_prefix()))
        .await?;
    let read_revision = current.header().map_or(0, |h| h.revision());
    let mut desired_mod = 0;
    let mut held: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for kv in current.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        if key == layout::DESIRED {
            desired_mod = kv.mod_revision();
        } else if owned(&key) {
            held.insert(key, kv.value().to_vec());
        }
    }
    let put: Vec<String> = wanted
        .iter()
        .filter(|(k, v)| held.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    let deleted: Vec<String> = held
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .cloned()
        .collect();
    if put.is_empty() && deleted.is_empty() {
        return Ok(Published {
            revision: read_revision,
            ..Published::default()
        });
    }
    let desired = Desired {
        file: file.to_string(),
        records: wanted.len(),
        watches: Some(WatchCounts::of(
            put.iter().chain(&deleted).map(String::as_str),
            held.keys().map(String::as_str),
        )),
    };
    let mut ops: Vec<TxnOp> = Vec::with_capacity(put.len() + deleted.len() + 1);
    // Deletions first: an instance moving from one VPC's key to another's is never in two.
    for k in &deleted {
        ops.push(TxnOp::delete(k.as_str(), None));
    }
    for k in &put {
        ops.push(TxnOp::put(k.as_str(), wanted[k].clone(), None));
    }
    ops.push(TxnOp::put(
        layout::DESIRED,
        serde_json::to_vec(&desired).unwrap_or_default(),
        None,
    ));
    // Unchanged since our read (0: it did not exist then).
    let guard = Compare::mod_revision(layout::DESIRED, CompareOp::Equal, desired_mod);
    let txn = Txn::new().when(vec![guard]).and_then(ops);
    let written_at = Some(std::time::Instant::now());
    let response = client.txn(txn).await.map_err(|e| match e {
        etcd_client::Error::GRpcStatus(s) if s.message().contains("too many operations") => {
            StoreError::Refused(format!(
                "{} (this apply has {} operations: start etcd with a larger \
                 --max-txn-ops, and --max-request-bytes for big files)",
                s.message(),
                put.len() + deleted.len() + 1
            ))
        }
        other => StoreError::Etcd(other),
    })?;
    if !response.succeeded() {
        return Err(StoreError::Raced);
    }
    Ok(Published {
        put,
        deleted,
        revision: response.header().map_or(0, |h| h.revision()),
        written_at,
    })
}

/// A JSON value as compact text: the same record is always the same bytes.
fn compact(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
