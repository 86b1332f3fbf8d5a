//! Taking in what other chains sent to a chain, without following them (DESIGN §4.2.1, §5.8):
//! from a confirmed certificate of any chain, a node keeps only the bundle its block sent to
//! one recipient, so that a wallet finds a payment without downloading the sender's history.

use std::sync::Arc;

use quorum_core::{
    Batch, ChainId, ConfirmedBlockCertificate, NodeError, ReceivedEntry, Storage, Write,
};

use super::Worker;

impl<S: Storage + 'static> Worker<S> {
    /// Takes in the bundle that `certificate`'s block sent to `recipient`: the certificate is
    /// checked against its epoch's committee (its signatures verified), then the bundle goes
    /// to `recipient`'s inbox with its received-log entry, and the certificate is stored (so
    /// the node can hand it on to a validator that lacks it). The sending chain's own state
    /// is not touched: its earlier blocks are not needed.
    ///
    /// Returns the new received-log entry, or `None` if the bundle was already received or
    /// consumed. `CertificateNotApplicable` if the block sent nothing to `recipient`;
    /// `EventsNotFound` for the admin chain's announcement of an epoch the node does not know.
    pub async fn handle_certificate_for_recipient(
        &self,
        certificate: ConfirmedBlockCertificate,
        recipient: ChainId,
    ) -> Result<Option<ReceivedEntry>, NodeError> {
        let result = self.take_in_bundle(certificate, recipient).await;
        self.durable(result).await
    }

    async fn take_in_bundle(
        &self,
        certificate: ConfirmedBlockCertificate,
        recipient: ChainId,
    ) -> Result<Option<ReceivedEntry>, NodeError> {
        let block = certificate.value().block();
        let (origin, height) = (block.chain_id, block.height);
        let Some(bundle) = certificate
            .value()
            .outcome()
            .messages
            .iter()
            .find(|bundle| bundle.recipient == recipient)
        else {
            return Err(NodeError::CertificateNotApplicable(certificate.hash()));
        };
        let messages = bundle.messages.clone();
        self.check_from_elsewhere(&certificate, block.epoch).await?;
        let _volatile = self.volatile.lock().await;
        let mut state = self.owned_chain_state(recipient).await?;
        let Some((index, entry)) = state.receive_bundle(origin, height, messages) else {
            return Ok(None);
        };
        let mut batch = Batch::new();
        batch.push(Write::ChainState(Arc::new(state)));
        batch.push(Write::ReceivedLog(recipient, index, entry));
        if self
            .store
            .read_certificate(certificate.hash())
            .await?
            .is_none()
        {
            batch.push(Write::Certificate(Arc::new(certificate)));
        }
        self.store.write_batch(batch).await?;
        Ok(Some(entry))
    }

    /// Whether `recipient`'s inbox already holds, or has consumed, the bundle of `entry`.
    pub async fn has_received(
        &self,
        recipient: ChainId,
        entry: &ReceivedEntry,
    ) -> Result<bool, NodeError> {
        let state = self.chain_state(recipient).await?;
        Ok(state.inboxes().get(&entry.origin).is_some_and(|inbox| {
            entry.height < inbox.next_height_to_consume()
                || inbox.bundles().contains_key(&entry.height)
        }))
    }
}
