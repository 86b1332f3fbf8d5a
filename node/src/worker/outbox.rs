//! A shard taking in what other shards of its validator owe its chains (DESIGN §7.1): the
//! durable outbox entries of its lane, each the opening of a chain or a bundle of messages
//! named by the sending block's certificate. The certificate is in the shared storage (it was
//! written in the same batch as the entry) and was checked by the shard that committed it, so
//! nothing is verified again. Each entry is marked done in the batch that delivers it, so a
//! shard killed mid-delivery delivers it again after its restart, and the chain's inbox
//! refuses a bundle it already holds: nothing is lost and nothing is applied twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quorum_core::{
    Batch, Block, ChainId, ChainState, ConfirmedBlockCertificate, NodeError, Operation,
    OutboxEntry, ReceivedEntry, Storage, Write,
};
use tracing::{debug, error, warn};

use super::{state_in, Worker};

/// Most outbox batches a shard takes in before a block that lacks a bundle: a backlog beyond
/// `OWED_PASSES × outbox_batch` entries is left to the background delivery.
const OWED_PASSES: usize = 16;

impl<S: Storage + 'static> Worker<S> {
    /// Delivers up to [`WorkerConfig::outbox_batch`](super::WorkerConfig::outbox_batch)
    /// entries owed to this shard's chains, in one batch, and returns how many (0 for a Worker
    /// that is not a shard). Returns once the batch is durable.
    pub async fn deliver_outbox(&self) -> Result<usize, NodeError> {
        let result = self.queue_outbox().await;
        self.durable(result).await
    }

    /// [`Worker::deliver_outbox`] without waiting for the commit: the deliveries are queued
    /// for the next group commit (and visible to this node's reads at once).
    async fn queue_outbox(&self) -> Result<usize, NodeError> {
        let Some(place) = self.config.shard else {
            return Ok(0);
        };
        let entries = self
            .store
            .read_outbox(place.index(), self.config.outbox_batch)
            .await?;
        if entries.is_empty() {
            return Ok(0);
        }
        self.take_in_entries(&entries).await?;
        debug!(entries = entries.len(), "outbox entries delivered");
        Ok(entries.len())
    }

    /// For a shard about to run `blocks`: if one consumes a bundle its chain's inbox lacks,
    /// takes in what the outbox owes first (it may hold it: the sender's block is durable at
    /// this validator before its deliveries are made). The deliveries are queued, not
    /// flushed: they land in the commit that holds the block's own writes, which its handler
    /// waits for. Failures are left to the block's own run, which reports the missing
    /// bundle.
    pub(super) async fn take_in_owed_for<'a>(&self, blocks: impl IntoIterator<Item = &'a Block>) {
        if self.config.shard.is_none() {
            return;
        }
        let blocks: Vec<&Block> = blocks.into_iter().collect();
        // A lane holding more than one batch is read a batch at a time, in key order, until
        // the bundles are in or the lane is read through (at most `OWED_PASSES` batches).
        for _ in 0..OWED_PASSES {
            if !self.lacks_a_bundle(&blocks).await {
                return;
            }
            match self.queue_outbox().await {
                Ok(delivered) if delivered >= self.config.outbox_batch.max(1) => {}
                Ok(_) => return,
                Err(error) => {
                    warn!(%error, "outbox delivery before a block failed");
                    return;
                }
            }
        }
    }

    /// Whether one of `blocks` consumes a bundle its chain's inbox neither holds nor consumed.
    async fn lacks_a_bundle(&self, blocks: &[&Block]) -> bool {
        for block in blocks {
            for bundle in &block.incoming_bundles {
                let entry = ReceivedEntry {
                    origin: bundle.origin,
                    height: bundle.height,
                };
                if let Ok(false) = self.has_received(block.chain_id, &entry).await {
                    return true;
                }
            }
        }
        false
    }

    /// [`Worker::take_in_owed_for`] the blocks `chain` holds at its height (its proposal and
    /// its locking block), which a lite certificate confirms.
    pub(super) async fn take_in_owed_for_pending(&self, chain: ChainId) {
        if self.config.shard.is_none() {
            return;
        }
        let Ok(state) = self.chain_state(chain).await else {
            return;
        };
        let manager = state.manager();
        let locked = manager.locking_certificate().map(|c| c.value().block());
        let pending: Vec<&Block> = manager.proposed_block().into_iter().chain(locked).collect();
        self.take_in_owed_for(pending).await;
    }

    async fn take_in_entries(&self, entries: &[OutboxEntry]) -> Result<(), NodeError> {
        let _volatile = self.volatile.lock().await;
        let now = self.clock.now();
        let mut batch = Batch::new();
        let mut states: BTreeMap<ChainId, ChainState> = BTreeMap::new();
        for entry in entries {
            batch.push(Write::OutboxDone(*entry));
            let Some(certificate) = self.store.read_certificate(entry.certificate).await? else {
                // Written in the same batch as the entry: a storage that lost it is damaged.
                // Kept owed, so that nothing is dropped silently.
                error!(
                    ?entry,
                    "an outbox entry names a certificate the storage lacks"
                );
                batch.writes.pop();
                continue;
            };
            let state = state_in(&mut states, &self.store, entry.recipient).await?;
            deliver(state, &certificate, now, &mut batch);
        }
        for state in states.into_values() {
            batch.push(Write::ChainState(Arc::new(state)));
        }
        self.store.write_batch(batch).await?;
        Ok(())
    }

    /// Delivers the outbox until the task is dropped: at once while entries are waiting;
    /// when none are, it looks again after `busy`, and after twice as long each time it finds
    /// none, up to `idle` (an idle shard costs the database a read per `idle`). A block that
    /// needs a bundle not delivered yet does not wait for it: the shard takes in what it is
    /// owed first. Failures are logged and tried again after `idle`.
    pub async fn deliver_outbox_forever(&self, busy: Duration, idle: Duration) {
        let busy = busy.max(Duration::from_millis(1));
        let idle = idle.max(busy);
        let mut pause = busy;
        loop {
            pause = match self.deliver_outbox().await {
                Ok(delivered) if delivered >= self.config.outbox_batch.max(1) => continue,
                Ok(0) => (pause * 2).min(idle),
                Ok(_) => busy,
                Err(error) => {
                    warn!(%error, "outbox delivery failed; trying again");
                    idle
                }
            };
            tokio::time::sleep(pause).await;
        }
    }
}

/// What `certificate`'s block sent `state`'s chain, applied to `state`: the chain's opening
/// and its bundle, each if the block holds one. A bundle the inbox holds or consumed already
/// is left alone.
fn deliver(
    state: &mut ChainState,
    certificate: &ConfirmedBlockCertificate,
    now: quorum_core::Timestamp,
    batch: &mut Batch,
) {
    let recipient = state.chain_id();
    let block = certificate.value().block();
    for operation in &block.operations {
        if let Operation::OpenChain(child) = operation {
            if child.id() == recipient {
                state.activate(child.clone(), now);
            }
        }
    }
    let bundle = certificate
        .value()
        .outcome()
        .messages
        .iter()
        .find(|bundle| bundle.recipient == recipient);
    if let Some(bundle) = bundle {
        if let Some((index, entry)) =
            state.receive_bundle(block.chain_id, block.height, bundle.messages.clone())
        {
            batch.push(Write::ReceivedLog(recipient, index, entry));
        }
    }
}
