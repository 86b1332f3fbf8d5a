//! Following a chain the node learned of only by its id (DESIGN §5.8): its description, whose
//! hash is the id, activates it, and its blocks can then be downloaded and applied.

use std::sync::Arc;

use quorum_core::{
    Batch, ChainDescription, ChainId, ConfirmedBlockCertificate, NodeError, Operation, Storage,
    Violation, Write,
};

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

    /// Keeps the certificate of the block that opened `chain_id`, for a client's local node
    /// that follows the chain without its parent's history: the certificate is checked
    /// against its epoch's committee and must open the chain; the chain is activated from the
    /// description the block publishes, and the certificate is stored without the parent's
    /// block being applied, so that the client can set the chain up on a validator that does
    /// not know it with this block alone (`CertificateNotApplicable` if the block does not
    /// open the chain).
    ///
    /// Not for a validator: a stored certificate answers lite certificates of its value as if
    /// the block were committed.
    pub async fn keep_opening_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        chain_id: ChainId,
    ) -> Result<(), NodeError> {
        let result = self.keep_opening(certificate, chain_id).await;
        self.durable(result).await
    }

    async fn keep_opening(
        &self,
        certificate: ConfirmedBlockCertificate,
        chain_id: ChainId,
    ) -> Result<(), NodeError> {
        let block = certificate.value().block();
        let description = block
            .operations
            .iter()
            .find_map(|operation| match operation {
                Operation::OpenChain(child) if child.id() == chain_id => Some(child.clone()),
                _ => None,
            })
            .ok_or(NodeError::CertificateNotApplicable(certificate.hash()))?;
        self.check_from_elsewhere(&certificate, block.epoch).await?;
        self.activate(chain_id, description).await?;
        let _volatile = self.volatile.lock().await;
        if self
            .store
            .read_certificate(certificate.hash())
            .await?
            .is_none()
        {
            self.store
                .write_batch(Batch {
                    writes: vec![Write::Certificate(Arc::new(certificate))],
                })
                .await?;
        }
        Ok(())
    }
}
