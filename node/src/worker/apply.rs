//! Applying a confirmed block: gathering its inputs (held and stored blobs, events), executing
//! it with the pure rules, and writing the whole outcome — the chain, its certificate, blobs,
//! events, committees and the recipients' inboxes — in one batch (DESIGN §4.5).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use quorum_core::{execute_block, ExecutionInputs};
use quorum_core::{
    Batch, BlobState, Block, ChainId, ChainState, ConfirmedBlockCertificate, NodeError,
    OutboxEntry, Storage, Write,
};
use tracing::debug;

use super::{chain_state_in, state_in, Volatile, Worker};

impl<S: Storage + 'static> Worker<S> {
    /// The blobs and events `block` needs, from pending and uploaded blobs and storage. Missing
    /// ones are simply absent: execution reports them.
    pub(super) async fn gather_inputs(
        &self,
        storage: &dyn Storage,
        volatile: &Volatile,
        block: &Block,
    ) -> Result<ExecutionInputs, NodeError> {
        let mut inputs = ExecutionInputs {
            admin_chain: Some(self.config.admin_chain),
            limits: self.config.limits,
            ..ExecutionInputs::default()
        };
        for id in block.required_blob_ids() {
            let held = volatile.held.get(block.chain_id, &id).cloned();
            let blob = match held {
                Some(blob) => Some(blob),
                None => storage.read_blob(id).await?,
            };
            if let Some(blob) = blob {
                inputs.blobs.insert(id, blob);
            }
        }
        for id in block.required_event_ids(self.config.admin_chain) {
            if let Some(payload) = storage.read_event(&id).await? {
                inputs.events.insert(id, payload);
            }
        }
        Ok(inputs)
    }

    /// Applies a confirmed certificate whose signatures were already checked, reading from and
    /// writing to `storage` (the node's storage, or a buffer over it). Returns the chain's state
    /// afterwards (unchanged if the block was already there).
    pub(super) async fn apply_confirmed(
        &self,
        storage: &dyn Storage,
        volatile: &mut Volatile,
        certificate: ConfirmedBlockCertificate,
    ) -> Result<Arc<ChainState>, NodeError> {
        let block = certificate.value().block();
        let chain_id = block.chain_id;
        let height = block.height;
        let state = chain_state_in(storage, chain_id).await?;
        state.description()?;
        if state.is_committed(height)? {
            return Ok(Arc::new(state));
        }
        let inputs = self.gather_inputs(storage, volatile, block).await?;
        let execution = execute_block(&state, block, &inputs)?;
        if execution.outcome != *certificate.value().outcome() {
            return Err(NodeError::OutcomeMismatch);
        }
        let now = self.clock.now();
        let mut new_state = execution.state;
        new_state.seal(certificate.hash(), now);

        let mut batch = Batch::new();
        let mut others: BTreeMap<ChainId, ChainState> = BTreeMap::new();
        // What goes to chains another shard owns: delivered by that shard (DESIGN §7.1).
        let mut outbox = BTreeSet::new();
        let owed = |recipient: ChainId| {
            let place = self.config.shard?;
            let lane = place.lane_of(recipient)?;
            Some(OutboxEntry {
                lane,
                recipient,
                certificate: certificate.hash(),
            })
        };
        for child in execution.opened_chains {
            let child_id = child.id();
            if let Some(entry) = owed(child_id) {
                outbox.insert(entry);
                continue;
            }
            let mut child_state = chain_state_in(storage, child_id).await?;
            child_state.activate(child, now);
            others.insert(child_id, child_state);
        }
        for bundle in &execution.outcome.messages {
            if let Some(entry) = owed(bundle.recipient) {
                outbox.insert(entry);
                continue;
            }
            let recipient = state_in(&mut others, storage, bundle.recipient).await?;
            if let Some((index, entry)) =
                recipient.receive_bundle(chain_id, height, bundle.messages.clone())
            {
                batch.push(Write::ReceivedLog(bundle.recipient, index, entry));
            }
        }
        batch.writes.extend(outbox.into_iter().map(Write::Outbox));
        let mut used_blobs = Vec::new();
        for blob in execution.published_blobs {
            let id = blob.id();
            if storage.read_blob_state(id).await?.is_none() {
                batch.push(Write::BlobState(id, BlobState { chain_id, height }));
            }
            batch.push(Write::Blob(blob));
            used_blobs.push(id);
        }
        for event in execution.events {
            batch.push(Write::Event(event.id, event.payload));
        }
        if let Some((epoch, committee)) = execution.new_committee {
            batch.push(Write::Committee(epoch, committee));
        }
        batch.push(Write::Certificate(Arc::new(certificate)));
        let new_state = Arc::new(new_state);
        batch.push(Write::ChainState(new_state.clone()));
        for (_, other) in others {
            batch.push(Write::ChainState(Arc::new(other)));
        }
        storage.write_batch(batch).await?;
        metrics::counter!("quorum_blocks_committed_total").increment(1);
        volatile
            .held
            .committed(chain_id, &used_blobs.into_iter().collect());
        debug!(?chain_id, ?height, "block committed");
        Ok(new_state)
    }
}
