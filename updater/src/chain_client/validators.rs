//! [`ValidatorSet`]: how to reach each validator, shared by the clients of one process.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use quorum_core::{Committee, ValidatorNode, ValidatorPublicKey};

use crate::health::{Health, HealthPolicy, SavedHealth};
use crate::remote::RemoteNode;

/// Every validator the client may talk to, by key, shared by the clients of one process.
#[derive(Clone, Default)]
pub struct ValidatorSet {
    nodes: Arc<RwLock<BTreeMap<ValidatorPublicKey, Arc<dyn ValidatorNode>>>>,
    health: Arc<RwLock<BTreeMap<ValidatorPublicKey, Arc<Health>>>>,
    policy: HealthPolicy,
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

    /// Adds (or replaces) how to reach a validator.
    pub fn insert(&self, key: ValidatorPublicKey, node: Arc<dyn ValidatorNode>) {
        if let Ok(mut nodes) = self.nodes.write() {
            nodes.insert(key, node);
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
