//! A chain's state on a node (DESIGN §4.1): balance, tip, inboxes, event counts and consensus.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::block::Message;
use crate::committee::Epoch;
use crate::error::NodeError;
use crate::hash::{BcsHashable, CryptoHash};
use crate::manager::ChainManager;
use crate::{BlockHeight, ChainDescription, ChainId, StreamId, Timestamp};

/// Bundles received from one origin chain and not consumed yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbox {
    /// Received bundles by the sending block's height.
    pub bundles: BTreeMap<BlockHeight, Vec<Message>>,
    /// Every bundle below this height was consumed.
    pub next_height_to_consume: BlockHeight,
}

/// Everything a node keeps about one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// The chain.
    pub chain_id: ChainId,
    /// Its description; `None` while the chain is not active on this node (it may still have
    /// received messages).
    pub description: Option<ChainDescription>,
    /// The epoch the chain is in.
    pub epoch: Epoch,
    /// Its balance.
    pub balance: u64,
    /// The next height to commit.
    pub next_height: BlockHeight,
    /// Hash of the latest confirmed block.
    pub tip_hash: Option<CryptoHash>,
    /// Timestamp of the latest block (or the chain's creation).
    pub timestamp: Timestamp,
    /// Hash of the execution state after the latest block.
    pub state_hash: Option<CryptoHash>,
    /// Received, unconsumed bundles per origin.
    pub inboxes: BTreeMap<ChainId, Inbox>,
    /// Number of events emitted per stream.
    pub event_counts: BTreeMap<StreamId, u32>,
    /// Consensus at the current height.
    pub manager: ChainManager,
}

/// The part of the state that block outcomes commit to.
#[derive(Serialize)]
struct ExecutionState<'a> {
    chain_id: ChainId,
    epoch: Epoch,
    balance: u64,
    next_height: BlockHeight,
    event_counts: &'a BTreeMap<StreamId, u32>,
}

impl BcsHashable for ExecutionState<'_> {
    const DOMAIN: &'static str = "ExecutionState";
}

impl ChainState {
    /// A chain not active on this node (known only as a recipient of messages).
    pub fn inactive(chain_id: ChainId) -> Self {
        ChainState {
            chain_id,
            description: None,
            epoch: Epoch(0),
            balance: 0,
            next_height: BlockHeight(0),
            tip_hash: None,
            timestamp: Timestamp(0),
            state_hash: None,
            inboxes: BTreeMap::new(),
            event_counts: BTreeMap::new(),
            manager: ChainManager::inactive(),
        }
    }

    /// Activates the chain with its description (at creation, or when this node learns of it),
    /// keeping any messages it already received. `now` starts the first round's clock.
    pub fn activate(&mut self, description: ChainDescription, now: Timestamp) {
        if self.description.is_some() {
            return;
        }
        self.epoch = description.epoch;
        self.balance = description.balance;
        self.timestamp = description.timestamp;
        self.manager = ChainManager::new(&description, BlockHeight(0), now);
        self.description = Some(description);
        self.state_hash = Some(self.execution_state_hash());
    }

    /// The chain's description, or `InactiveChain`.
    pub fn description(&self) -> Result<&ChainDescription, NodeError> {
        self.description
            .as_ref()
            .ok_or(NodeError::InactiveChain(self.chain_id))
    }

    /// Requires `found` to be the chain's next height, else `UnexpectedBlockHeight`.
    pub fn expect_next_height(&self, found: BlockHeight) -> Result<(), NodeError> {
        if found != self.next_height {
            return Err(NodeError::UnexpectedBlockHeight {
                expected_block_height: self.next_height,
                found_block_height: found,
            });
        }
        Ok(())
    }

    /// For something at height `found`: `Ok(true)` if that height is already committed (there
    /// is nothing to do), `Ok(false)` if it is the next height, `UnexpectedBlockHeight` if it
    /// is beyond.
    pub fn is_committed(&self, found: BlockHeight) -> Result<bool, NodeError> {
        if found < self.next_height {
            return Ok(true);
        }
        self.expect_next_height(found)?;
        Ok(false)
    }

    /// Whether the chain is active here.
    pub fn is_active(&self) -> bool {
        self.description.is_some()
    }

    pub(crate) fn execution_state_hash(&self) -> CryptoHash {
        CryptoHash::new(&ExecutionState {
            chain_id: self.chain_id,
            epoch: self.epoch,
            balance: self.balance,
            next_height: self.next_height,
            event_counts: &self.event_counts,
        })
    }

    /// Records a bundle sent to this chain. Idempotent: a bundle already received or consumed
    /// is ignored.
    pub fn receive_bundle(&mut self, origin: ChainId, height: BlockHeight, messages: Vec<Message>) {
        let inbox = self.inboxes.entry(origin).or_default();
        if height < inbox.next_height_to_consume {
            return;
        }
        inbox.bundles.entry(height).or_insert(messages);
    }
}
