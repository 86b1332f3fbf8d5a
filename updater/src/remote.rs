//! A validator as the client reaches it.

use std::fmt;
use std::sync::Arc;

use quorum_core::{
    ChainInfoResponse, CryptoError, LiteVote, PreparedKey, ValidatorNode, ValidatorPublicKey,
    VoteError,
};

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
    /// Its key as the committee decoded it, to check its votes without decoding it again
    /// (`None`: votes are checked with `public_key`, decoded for each).
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
            prepared: None,
        }
    }

    /// The same node, its votes checked with `key`: the committee's decoded copy of
    /// [`RemoteNode::public_key`] ([`Committee::prepared_key`]). A key of another validator is
    /// ignored.
    ///
    /// [`Committee::prepared_key`]: quorum_core::Committee::prepared_key
    pub fn with_prepared_key(mut self, key: PreparedKey) -> Self {
        if key.public() == self.public_key {
            self.prepared = Some(key);
        }
        self
    }

    /// Checks `vote`'s signature and that this validator made it (with the prepared key if it
    /// has one).
    pub fn check_vote(&self, vote: &LiteVote) -> Result<(), VoteError> {
        match &self.prepared {
            Some(key) => vote.check_prepared(key),
            None => vote.check(&self.public_key),
        }
    }
}

impl RemoteNode {
    /// Checks that this validator signed `response` (with the prepared key if it has one).
    pub fn check_info(&self, response: &ChainInfoResponse) -> Result<(), CryptoError> {
        match &self.prepared {
            Some(key) => response.check_prepared(key),
            None => response.check(&self.public_key),
        }
    }
}

impl fmt::Debug for RemoteNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteNode({:?})", self.public_key)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use quorum_core::{CryptoHash, LiteVote, PreparedKey, Round, ValidatorNode, VoteKind};
    use quorum_testkit::TestNet;

    use super::RemoteNode;

    #[tokio::test]
    async fn votes_are_checked_against_the_node_s_own_key_prepared_or_not() {
        let net = TestNet::new(2, 1, false).await;
        let (alice, bob) = (&net.secrets[0], &net.secrets[1]);
        let node: Arc<dyn ValidatorNode> = net.workers[0].clone();
        let prepared = |key: &quorum_core::ValidatorSecretKey| {
            PreparedKey::decode(key.public().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
        };
        let hash = CryptoHash([3; 32]);
        let by_alice = LiteVote::new(hash, VoteKind::Validated, Round::Fast, alice);
        let by_bob = LiteVote::new(hash, VoteKind::Validated, Round::Fast, bob);

        let plain = RemoteNode::new(alice.public(), node.clone());
        let fast = plain.clone().with_prepared_key(prepared(alice));
        // Bob's key offered for Alice's node is ignored: her votes still need her key.
        let misled = plain.clone().with_prepared_key(prepared(bob));
        for remote in [&plain, &fast, &misled] {
            assert_eq!(remote.check_vote(&by_alice), Ok(()));
            assert!(remote.check_vote(&by_bob).is_err());
        }
    }
}
