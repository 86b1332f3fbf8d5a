//! A chain's state on a node (DESIGN §4.1): balance, tip, inboxes, event counts and consensus.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::block::Message;
use crate::committee::Epoch;
use crate::error::NodeError;
use crate::hash::{BcsHashable, CryptoHash};
use crate::manager::ChainManager;
use crate::received_log::ReceivedEntry;
use crate::{BlockHeight, ChainDescription, ChainId, StreamId, Timestamp};

/// Bundles received from one origin chain and not consumed yet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbox {
    /// Received bundles by the sending block's height.
    pub(crate) bundles: BTreeMap<BlockHeight, Vec<Message>>,
    /// Every bundle below this height was consumed.
    pub(crate) next_height_to_consume: BlockHeight,
}

/// Everything a node keeps about one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// The chain.
    pub(crate) chain_id: ChainId,
    /// Its description; `None` while the chain is not active on this node (it may still have
    /// received messages).
    pub(crate) description: Option<ChainDescription>,
    /// The epoch the chain is in.
    pub(crate) epoch: Epoch,
    /// Its balance.
    pub(crate) balance: u64,
    /// The next height to commit.
    pub(crate) next_height: BlockHeight,
    /// Hash of the latest confirmed block.
    pub(crate) tip_hash: Option<CryptoHash>,
    /// Timestamp of the latest block (or the chain's creation).
    pub(crate) timestamp: Timestamp,
    /// Hash of the execution state after the latest block.
    pub(crate) state_hash: Option<CryptoHash>,
    /// Received, unconsumed bundles per origin.
    pub(crate) inboxes: BTreeMap<ChainId, Inbox>,
    /// Number of events emitted per stream.
    pub(crate) event_counts: BTreeMap<StreamId, u32>,
    /// Consensus at the current height.
    pub(crate) manager: ChainManager,
    /// Entries in the chain's received log (DESIGN §4.2.1), the entries themselves being
    /// stored apart ([`Write::ReceivedLog`](crate::Write::ReceivedLog)).
    pub(crate) received_log_len: u64,
    /// Whether a `CloseChain` operation closed the chain: it then accepts only blocks that
    /// return what it receives.
    pub(crate) closed: bool,
}

/// The part of the state that block outcomes commit to.
#[derive(Serialize)]
struct ExecutionState<'a> {
    chain_id: ChainId,
    epoch: Epoch,
    balance: u64,
    next_height: BlockHeight,
    event_counts: &'a BTreeMap<StreamId, u32>,
    closed: bool,
}

impl BcsHashable for ExecutionState<'_> {
    const DOMAIN: &'static str = "ExecutionState";
}

impl Inbox {
    /// Received bundles by the sending block's height.
    pub fn bundles(&self) -> &BTreeMap<BlockHeight, Vec<Message>> {
        &self.bundles
    }

    /// Every bundle below this height was consumed.
    pub fn next_height_to_consume(&self) -> BlockHeight {
        self.next_height_to_consume
    }
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
            received_log_len: 0,
            closed: false,
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

    /// The chain.
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// Its description, `None` while the chain is not active on this node (see
    /// [`ChainState::description`] for the same as a `Result`).
    pub fn known_description(&self) -> Option<&ChainDescription> {
        self.description.as_ref()
    }

    /// The epoch the chain is in.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Its balance.
    pub fn balance(&self) -> u64 {
        self.balance
    }

    /// The next height to commit.
    pub fn next_height(&self) -> BlockHeight {
        self.next_height
    }

    /// Hash of the latest confirmed block (`None` before the first).
    pub fn tip_hash(&self) -> Option<CryptoHash> {
        self.tip_hash
    }

    /// Timestamp of the latest block (or the chain's creation).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// Hash of the execution state after the latest block.
    pub fn state_hash(&self) -> Option<CryptoHash> {
        self.state_hash
    }

    /// Received, unconsumed bundles per origin.
    pub fn inboxes(&self) -> &BTreeMap<ChainId, Inbox> {
        &self.inboxes
    }

    /// Number of events emitted per stream.
    pub fn event_counts(&self) -> &BTreeMap<StreamId, u32> {
        &self.event_counts
    }

    /// Entries in the chain's received log on this node (DESIGN §4.2.1).
    pub fn received_log_len(&self) -> u64 {
        self.received_log_len
    }

    /// Whether the chain was closed (`CloseChain`).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Consensus at the current height.
    pub fn manager(&self) -> &ChainManager {
        &self.manager
    }

    /// Consensus at the current height, to move it on with its own methods (votes,
    /// certificates, timeouts).
    pub fn manager_mut(&mut self) -> &mut ChainManager {
        &mut self.manager
    }

    /// Seals the block just executed into this state as committed: `tip` is its certificate's
    /// hash, and consensus starts afresh at the next height, its first round's clock at `now`.
    /// Does nothing to a chain that is not active.
    pub fn seal(&mut self, tip: CryptoHash, now: Timestamp) {
        let Some(description) = &self.description else {
            return;
        };
        self.tip_hash = Some(tip);
        self.manager = ChainManager::new(description, self.next_height, now);
    }

    pub(crate) fn execution_state_hash(&self) -> CryptoHash {
        CryptoHash::new(&ExecutionState {
            chain_id: self.chain_id,
            epoch: self.epoch,
            balance: self.balance,
            next_height: self.next_height,
            event_counts: &self.event_counts,
            closed: self.closed,
        })
    }

    /// Records a bundle sent to this chain. Idempotent: a bundle already received or consumed
    /// is ignored. Returns the received-log entry to append for a new bundle, with its index
    /// in the log (the log's length is counted here; the entry itself is the caller's to
    /// store).
    pub fn receive_bundle(
        &mut self,
        origin: ChainId,
        height: BlockHeight,
        messages: Vec<Message>,
    ) -> Option<(u64, ReceivedEntry)> {
        let inbox = self.inboxes.entry(origin).or_default();
        if height < inbox.next_height_to_consume {
            return None;
        }
        match inbox.bundles.entry(height) {
            alloc::collections::btree_map::Entry::Occupied(_) => None,
            alloc::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(messages);
                let index = self.received_log_len;
                self.received_log_len = index.saturating_add(1);
                Some((index, ReceivedEntry { origin, height }))
            }
        }
    }
}
