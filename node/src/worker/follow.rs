//! Following a chain the node learned of only by its id (DESIGN §5.8): its description, whose
//! hash is the id, activates it, and its blocks can then be downloaded and applied.

use std::sync::Arc;

use quorum_core::{Batch, ChainDescription, ChainId, NodeError, Storage, Violation, Write};

use super::Worker;

impl<S: Storage + 'static> Worker<S> {
    /// Activates `chain_id` with `description`, which must hash to that id (anything else is a
    /// `ProtocolViolation(WrongChain)`: whoever handed it over lied). The description blob is
    /// stored with the chain's state; messages the chain already received are kept. A chain
    /// already active is left as it is.
    pub async fn follow_chain(
        &self,
        chain_id: ChainId,
        description: ChainDescription,
    ) -> Result<(), NodeError> {
        if description.id() != chain_id {
            return Err(NodeError::ProtocolViolation(Violation::WrongChain));
        }
        let result = self.activate(chain_id, description).await;
        self.durable(result).await
    }

    async fn activate(
        &self,
        chain_id: ChainId,
        description: ChainDescription,
    ) -> Result<(), NodeError> {
        let _volatile = self.volatile.lock().await;
        let mut state = self.owned_chain_state(chain_id).await?;
        if state.is_active() {
            return Ok(());
        }
        let blob = description.to_blob();
        state.activate(description, self.clock.now());
        let mut batch = Batch::new();
        batch.push(Write::Blob(blob));
        batch.push(Write::ChainState(Arc::new(state)));
        self.store.write_batch(batch).await?;
        Ok(())
    }
}
