//! [`ChainId`]: the identity of a chain.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::CryptoHash;

/// The identity of a chain: the hash of its [`ChainDescription`](crate::ChainDescription), which is also the hash of the
/// description's blob.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChainId(pub CryptoHash);

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chain:{:?}", self.0)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
