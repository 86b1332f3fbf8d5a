//! A validator as the client reaches it.

use std::fmt;
use std::sync::Arc;

use quorum_core::{LiteVote, PreparedKey, ValidatorNode, ValidatorPublicKey, VoteError};

use crate::health::Health;

/// One validator: its key (what its votes must be signed with), a way to reach it, and its
/// health record (shared with every other client of the process that reaches it through the
/// same [`ValidatorSet`](crate::ValidatorSet)).
#[derive(Clone)]
pub struct RemoteNode {
    /// The validator's key.
    pub public_key: ValidatorPublicKey,
    /// The transport to it.
    pub node: Arc<dyn ValidatorNode>,
    /// What is known of its health.
    pub health: Arc<Health>,
    /// Its key decoded once, to check its votes (`None` for a key that cannot be prepared: a
    /// malformed or weak one, whose votes are checked the slow way and fail).
    prepared: Option<PreparedKey>,
}

impl RemoteNode {
    /// A remote node with a health record of its own.
    pub fn new(public_key: ValidatorPublicKey, node: Arc<dyn ValidatorNode>) -> Self {
        Self::with_health(public_key, node, Arc::new(Health::default()))
    }

    /// A remote node sharing `health`.
    pub fn with_health(
        public_key: ValidatorPublicKey,
        node: Arc<dyn ValidatorNode>,
        health: Arc<Health>,
    ) -> Self {
        RemoteNode {
            public_key,
            node,
            health,
            prepared: PreparedKey::decode(public_key.as_bytes()).ok(),
        }
    }

    /// Checks `vote`'s signature and that this validator made it, with the key decoded once.
    pub fn check_vote(&self, vote: &LiteVote) -> Result<(), VoteError> {
        match &self.prepared {
            Some(key) => vote.check_prepared(key),
            None => vote.check(&self.public_key),
        }
    }
}

impl fmt::Debug for RemoteNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteNode({:?})", self.public_key)
    }
}
