//! What defines a chain (DESIGN §4.1): its id, origin, owners and consensus settings.

use alloc::collections::BTreeMap;
use serde::{Deserialize, Serialize};

use crate::chain_id::ChainId;
use crate::{AccountPublicKey, Blob, BlobType, BlockHeight, Epoch, TimeDelta, Timestamp};

/// Where a chain comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChainOrigin {
    /// Created at genesis, with its index among the genesis chains.
    Genesis(u32),
    /// Opened by a block of another chain.
    Child {
        /// The chain whose block opened this one.
        parent: ChainId,
        /// The height of that block.
        height: BlockHeight,
        /// The index of the opening operation within that block.
        index: u32,
    },
}

/// How a chain runs consensus.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsensusConfig {
    /// Number of multi-leader rounds before single-leader rounds begin.
    pub multi_leader_rounds: u32,
    /// How long the fast round lasts before validators may vote to time it out.
    pub fast_round_duration: TimeDelta,
    /// Timeout of the first non-fast round.
    pub base_timeout: TimeDelta,
    /// How much longer each later round's timeout is.
    pub timeout_increment: TimeDelta,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            multi_leader_rounds: 2,
            fast_round_duration: TimeDelta::from_secs(5),
            base_timeout: TimeDelta::from_secs(10),
            timeout_increment: TimeDelta::from_secs(1),
        }
    }
}

/// Everything that defines a chain; its hash is the [`ChainId`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainDescription {
    /// Where the chain comes from.
    pub origin: ChainOrigin,
    /// The owners that may propose blocks, with their weights (used to pick leaders).
    pub owners: BTreeMap<AccountPublicKey, u64>,
    /// The owner allowed to propose in the fast round; `None` means the chain has no fast round.
    pub super_owner: Option<AccountPublicKey>,
    /// The epoch the chain starts in.
    pub epoch: Epoch,
    /// When the chain was created.
    pub timestamp: Timestamp,
    /// The chain's consensus settings.
    pub consensus: ConsensusConfig,
    /// The chain's starting balance (only genesis chains may start with one).
    pub balance: u64,
}

impl ChainDescription {
    /// The description's blob.
    pub fn to_blob(&self) -> Blob {
        // Encoding a description cannot fail: it holds integers, keys, maps and options.
        let content = crate::encoding::to_bytes(self).unwrap_or_default();
        Blob::new(BlobType::ChainDescription, content)
    }

    /// The chain's identity: the hash of its description blob.
    pub fn id(&self) -> ChainId {
        ChainId(self.to_blob().id().hash)
    }
}
