//! A validator as the client reaches it.

use std::fmt;
use std::sync::Arc;

use quorum_core::{ValidatorNode, ValidatorPublicKey};

/// One validator: its key (what its votes must be signed with) and a way to reach it.
#[derive(Clone)]
pub struct RemoteNode {
    /// The validator's key.
    pub public_key: ValidatorPublicKey,
    /// The transport to it.
    pub node: Arc<dyn ValidatorNode>,
}

impl RemoteNode {
    /// A remote node.
    pub fn new(public_key: ValidatorPublicKey, node: Arc<dyn ValidatorNode>) -> Self {
        RemoteNode { public_key, node }
    }
}

impl fmt::Debug for RemoteNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteNode({:?})", self.public_key)
    }
}
