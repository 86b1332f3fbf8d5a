//! [`ValidatorSet`]: how to reach each validator, shared by the clients of one process.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use quorum_core::{Committee, ValidatorNode, ValidatorPublicKey};

use crate::remote::RemoteNode;

/// Every validator the client may talk to, by key, shared by the clients of one process.
#[derive(Clone, Default)]
pub struct ValidatorSet {
    nodes: Arc<RwLock<BTreeMap<ValidatorPublicKey, Arc<dyn ValidatorNode>>>>,
}

impl ValidatorSet {
    /// An empty set.
    pub fn new() -> Self {
        ValidatorSet::default()
    }

    /// Adds (or replaces) how to reach a validator.
    pub fn insert(&self, key: ValidatorPublicKey, node: Arc<dyn ValidatorNode>) {
        if let Ok(mut nodes) = self.nodes.write() {
            nodes.insert(key, node);
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
                nodes
                    .get(key)
                    .map(|node| RemoteNode::new(*key, node.clone()))
            })
            .collect()
    }
}
