//! [`ValidatorSet`]: how to reach each validator, shared by the clients of one process.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use quorum_core::{Committee, ValidatorNode, ValidatorPublicKey};

use crate::health::{Health, HealthPolicy, SavedHealth};
use crate::remote::RemoteNode;
use crate::shared_reads::SharedReads;

/// Every validator the client may talk to, by key, shared by the clients of one process.
///
/// Each validator is reached through shared reads: identical reads in flight to it share
/// one request, and its answers that never change (certificates, blobs) are kept, at most
/// [`ValidatorSet::with_kept_read_bytes`] bytes per validator (16 MiB by default).
#[derive(Clone)]
pub struct ValidatorSet {
    nodes: Arc<RwLock<BTreeMap<ValidatorPublicKey, Arc<dyn ValidatorNode>>>>,
    health: Arc<RwLock<BTreeMap<ValidatorPublicKey, Arc<Health>>>>,
    policy: HealthPolicy,
    /// Bytes of unchanging answers kept per validator.
    kept_read_bytes: usize,
}

impl Default for ValidatorSet {
    fn default() -> Self {
        ValidatorSet {
            nodes: Arc::default(),
            health: Arc::default(),
            policy: HealthPolicy::default(),
            kept_read_bytes: 16 << 20,
        }
    }
}

impl ValidatorSet {
    /// An empty set.
    pub fn new() -> Self {
        ValidatorSet::default()
    }

    /// An empty set whose health records follow `policy`.
    pub fn with_policy(policy: HealthPolicy) -> Self {
        ValidatorSet {
            policy,
            ..ValidatorSet::default()
        }
    }

    /// The same set, keeping at most `bytes` of unchanging answers per validator inserted
    /// from now on (zero: reads in flight are still shared, nothing is kept).
    pub fn with_kept_read_bytes(mut self, bytes: usize) -> Self {
        self.kept_read_bytes = bytes;
        self
    }

    /// The health record of `key`, created healthy on first use.
    pub fn health(&self, key: &ValidatorPublicKey) -> Arc<Health> {
        if let Some(health) = self
            .health
            .read()
            .ok()
            .and_then(|map| map.get(key).cloned())
        {
            return health;
        }
        match self.health.write() {
            Ok(mut map) => map
                .entry(*key)
                .or_insert_with(|| Arc::new(Health::new(self.policy)))
                .clone(),
            Err(_) => Arc::new(Health::new(self.policy)),
        }
    }

    /// Adds (or replaces) how to reach a validator, through shared reads.
    pub fn insert(&self, key: ValidatorPublicKey, node: Arc<dyn ValidatorNode>) {
        let shared: Arc<dyn ValidatorNode> = Arc::new(SharedReads::new(node, self.kept_read_bytes));
        if let Ok(mut nodes) = self.nodes.write() {
            nodes.insert(key, shared);
        }
    }

    /// Every health record, as a short-lived process saves them between runs.
    pub fn save_health(&self) -> Vec<(ValidatorPublicKey, SavedHealth)> {
        self.health
            .read()
            .map(|map| {
                map.iter()
                    .map(|(key, health)| (*key, health.save()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Restores health records saved `elapsed` ago (by [`ValidatorSet::save_health`]).
    pub fn restore_health(&self, saved: &[(ValidatorPublicKey, SavedHealth)], elapsed: Duration) {
        for (key, record) in saved {
            self.health(key).restore(record, elapsed);
        }
    }

    /// The reachable members of `committee`.
    pub fn remotes(&self, committee: &Committee) -> Vec<RemoteNode> {
        let Ok(nodes) = self.nodes.read() else {
            return Vec::new();
        };
        committee
            .voting_members()
            .filter_map(|(key, _)| {
                let node = nodes.get(key)?;
                let remote = RemoteNode::with_health(*key, node.clone(), self.health(key));
                Some(match committee.prepared_key(key) {
                    Some(prepared) => remote.with_prepared_key(*prepared),
                    None => remote,
                })
            })
            .collect()
    }
}
