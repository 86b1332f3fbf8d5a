//! Learning the super owner's fast-round proposal from others (DESIGN §4.3): a client's node
//! keeps it so that any owner can re-propose that block in a later round.

use std::sync::Arc;

use quorum_core::{Batch, BlockProposal, ChainManager, NodeError, Storage, Write};

use super::Worker;

impl<S: Storage + 'static> Worker<S> {
    /// Keeps the fast-round proposal that `proposal` is or re-proposes (a validator reports
    /// it as the proposal it voted for) as the chain's fast proposal at its height, if the
    /// node has none yet. Checked: the chain's next height and epoch, the author is the super
    /// owner and signed it in the fast round, and the node holds the blobs the block needs
    /// (`BlobsNotFound` otherwise, after which uploads of those blobs are welcome for a
    /// while). A proposal for a height already committed changes nothing. Returns whether it
    /// was kept.
    ///
    /// No vote is given: this is for a node that learns, not one that votes.
    pub async fn take_in_fast_proposal(&self, proposal: BlockProposal) -> Result<bool, NodeError> {
        let result = self.learn_fast(proposal).await;
        self.durable(result).await
    }

    async fn learn_fast(&self, proposal: BlockProposal) -> Result<bool, NodeError> {
        let mut volatile = self.volatile.lock().await;
        let block = proposal.block();
        let mut state = self.owned_chain_state(block.chain_id).await?;
        let description = state.description()?.clone();
        if state.is_committed(block.height)? || state.manager().fast_proposal().is_some() {
            return Ok(false);
        }
        state.expect_next_height(block.height)?;
        if block.epoch != state.epoch() {
            return Err(NodeError::WrongEpoch {
                expected: state.epoch(),
                found: block.epoch,
            });
        }
        ChainManager::check_fast_original(&description, &proposal)?;
        let missing = self.missing_for_block(&volatile, block).await?;
        if !missing.is_empty() {
            let refusal = Err(NodeError::BlobsNotFound(missing));
            self.note_wanted(&mut volatile, &refusal);
            return refusal;
        }
        if !state.manager_mut().learn_fast_proposal(&proposal) {
            return Ok(false);
        }
        let state = Arc::new(state);
        self.store
            .write_batch(Batch {
                writes: vec![Write::ChainState(state)],
            })
            .await?;
        Ok(true)
    }
}
