//! Height sync: making a remote's chain reach a height, by the last certificate alone when it
//! takes it, else by batches from its own height, its parent chains first (DESIGN §5.2.6).

use futures::future::BoxFuture;
use futures::FutureExt;
use tracing::debug;

use quorum_core::{
    BlockHeight, ChainId, ChainInfoQuery, ChainInfoResponse, ChainOrigin,
    ConfirmedBlockCertificate, CrossChainDelivery, NodeError, Storage, TransportErrorKind,
    Violation,
};

use super::{upload_batch_size, violation, ValidatorUpdater};
use crate::stats::RecoveryKind;

/// Whether a batch was refused for its size: too many certificates, or a frame too large.
fn is_batch_too_large(error: &NodeError) -> bool {
    matches!(
        error,
        NodeError::LimitExceeded(_) | NodeError::Transport(TransportErrorKind::FrameTooLarge)
    )
}

impl<S: Storage + 'static> ValidatorUpdater<S> {
    /// Makes the remote's chain `chain_id` reach at least `target` (DESIGN §5.2.6): height sync,
    /// then round sync.
    pub async fn send_chain_information(
        &self,
        chain_id: ChainId,
        target: BlockHeight,
        delivery: CrossChainDelivery,
        depth: usize,
    ) -> Result<(), NodeError> {
        self.send_chain_information_boxed(chain_id, target, delivery, depth)
            .await
    }

    fn send_chain_information_boxed(
        &self,
        chain_id: ChainId,
        target: BlockHeight,
        delivery: CrossChainDelivery,
        depth: usize,
    ) -> BoxFuture<'_, Result<(), NodeError>> {
        async move {
            if depth > self.options.max_recovery_depth {
                return Err(violation(Violation::RepeatedRecovery));
            }
            let local = self.local.chain_state(chain_id).await?;
            let target = target.min(local.next_height);
            let mut remote_info = None;
            if target == BlockHeight(0) {
                self.send_chain_description(chain_id, depth).await?;
            } else {
                let last = BlockHeight(target.0 - 1);
                let certificate = self.local_certificate(chain_id, last).await?;
                // A validator that signed the certificate holds its value: lite suffices.
                let try_lite = certificate
                    .signatures()
                    .iter()
                    .any(|(signer, _)| *signer == self.remote.public_key);
                match self
                    .send_confirmed_certificate_at(&certificate, delivery, try_lite, depth)
                    .await
                {
                    Ok(response) if response.info.next_block_height >= target => {
                        remote_info = Some(response);
                    }
                    _ => {
                        let remote_next = self.remote_next_height(chain_id, depth).await?;
                        remote_info = self
                            .send_heights(chain_id, remote_next, target, delivery, depth)
                            .await?;
                    }
                }
            }
            if target == local.next_height {
                self.sync_round(chain_id, remote_info).await;
            }
            Ok(())
        }
        .boxed()
    }

    pub(super) async fn local_certificate(
        &self,
        chain_id: ChainId,
        height: BlockHeight,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        self.local
            .storage()
            .read_certificates_by_heights(chain_id, &[height])
            .await?
            .into_iter()
            .next()
            .flatten()
            .ok_or(NodeError::NotFound)
    }

    /// The remote's next height for `chain_id`, activating the chain there first if needed.
    async fn remote_next_height(
        &self,
        chain_id: ChainId,
        depth: usize,
    ) -> Result<BlockHeight, NodeError> {
        let query = ChainInfoQuery::new(chain_id);
        match self
            .call(|| self.remote.node.handle_chain_info_query(query.clone()))
            .await
        {
            Ok(response) => {
                self.check_response(&response, chain_id)?;
                Ok(response.info.next_block_height)
            }
            Err(NodeError::InactiveChain(_)) => {
                self.send_chain_description(chain_id, depth).await?;
                Ok(BlockHeight(0))
            }
            Err(error) => Err(error),
        }
    }

    /// Sends the certificates at heights `from..to` in batches, in order.
    async fn send_heights(
        &self,
        chain_id: ChainId,
        from: BlockHeight,
        to: BlockHeight,
        delivery: CrossChainDelivery,
        depth: usize,
    ) -> Result<Option<ChainInfoResponse>, NodeError> {
        // Never more than a node takes in one batch, whatever the option says.
        let mut batch_size = upload_batch_size(&self.options) as u64;
        let mut next = from;
        let mut last = None;
        while next < to {
            let end = to.0.min(next.0.saturating_add(batch_size));
            let heights: Vec<BlockHeight> = (next.0..end).map(BlockHeight).collect();
            let certificates: Vec<ConfirmedBlockCertificate> = self
                .local
                .storage()
                .read_certificates_by_heights(chain_id, &heights)
                .await?
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or(NodeError::NotFound)?;
            let outcome = match self
                .call(|| {
                    self.remote
                        .node
                        .handle_confirmed_certificates(certificates.clone(), delivery)
                })
                .await
            {
                Ok(outcome) => outcome,
                // A batch refused as too large (by count or by frame size) is halved.
                Err(error) if is_batch_too_large(&error) && batch_size > 1 => {
                    batch_size /= 2;
                    debug!(validator = ?self.remote.public_key, batch_size, "batch too large: halved");
                    continue;
                }
                Err(error) => return Err(error),
            };
            self.stats
                .add(RecoveryKind::CertificatesSent, outcome.processed as u64);
            if let Some(info) = outcome.info {
                self.check_response(&info, chain_id)?;
                last = Some(info);
            }
            let processed = outcome.processed.min(certificates.len());
            next = BlockHeight(next.0 + processed as u64);
            if let Some(stuck) = certificates.get(processed) {
                if outcome.error.is_none() {
                    // A batch that stops early must say why; otherwise this would never end.
                    return Err(violation(Violation::RepeatedRecovery));
                }
                // Repair what stopped the batch through the single-certificate path, then go on.
                let response = self
                    .send_confirmed_certificate_at(stuck, delivery, false, depth)
                    .await?;
                last = Some(response);
                next = BlockHeight(next.0 + 1);
            }
        }
        Ok(last)
    }

    /// Makes the remote know the chain: sends the chains its description depends on (the parent,
    /// up to the opening block), then checks the chain is active.
    pub async fn send_chain_description(
        &self,
        chain_id: ChainId,
        depth: usize,
    ) -> Result<(), NodeError> {
        let local = self.local.chain_state(chain_id).await?;
        let description = local.description()?.clone();
        if let ChainOrigin::Child { parent, height, .. } = description.origin {
            let target = height
                .try_next()
                .ok_or(violation(Violation::RepeatedRecovery))?;
            self.send_chain_information_boxed(
                parent,
                target,
                CrossChainDelivery::Blocking,
                depth + 1,
            )
            .await?;
        }
        let query = ChainInfoQuery::new(chain_id);
        let response = self
            .call(|| self.remote.node.handle_chain_info_query(query.clone()))
            .await?;
        self.check_response(&response, chain_id)
    }
}
