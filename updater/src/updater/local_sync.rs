//! Bringing the local node up to a remote that is ahead: its certificates, its blobs and its
//! round evidence, each checked by the local node before use (DESIGN §5.2.4).

use std::collections::BTreeSet;

use quorum_core::{
    BlobId, Block, BlockHeight, BlockProposal, ChainId, ChainInfoQuery, ConfirmedBlockCertificate,
    CrossChainDelivery, NodeError, Storage, ValidatedBlockCertificate, ValidatorNode, Violation,
};

use super::{upload_batch_size, violation, ValidatorUpdater};
use crate::recovery_stats::RecoveryKind;

impl<S: Storage + 'static> ValidatorUpdater<S> {
    /// Downloads, checks and processes locally the remote's certificates of `chain_id` up to
    /// (excluding) `target`.
    pub async fn synchronize_chain_from_remote(
        &self,
        chain_id: ChainId,
        target: BlockHeight,
    ) -> Result<(), NodeError> {
        let batch_size = upload_batch_size(&self.options, &self.local.config().limits) as u64;
        loop {
            let next = self.local.chain_state(chain_id).await?.next_height();
            if next >= target {
                return Ok(());
            }
            let end = target.0.min(next.0.saturating_add(batch_size));
            let heights: Vec<BlockHeight> = (next.0..end).map(BlockHeight).collect();
            let certificates = self
                .call(|| {
                    self.remote
                        .node
                        .download_certificates_by_heights(chain_id, heights.clone())
                })
                .await?;
            if certificates.is_empty() {
                return Err(NodeError::NotFound);
            }
            if certificates.len() > heights.len() {
                return Err(violation(Violation::BadCertificate));
            }
            self.recover(RecoveryKind::LocalSync)?;
            for certificate in certificates {
                if certificate.value().block().chain_id != chain_id {
                    return Err(violation(Violation::WrongChain));
                }
                self.process_downloaded(certificate).await?;
            }
            // A remote that serves only what we already have (while claiming more) would keep
            // this loop going forever: no progress is an error.
            if self.local.chain_state(chain_id).await?.next_height() <= next {
                return Err(violation(Violation::BadCertificate));
            }
        }
    }

    /// Processes a downloaded certificate on the local node, which checks its signatures
    /// against the right committee first. What the block needs and the local node lacks is
    /// fetched from the remote with it, each checked, once per cause:
    ///
    /// * blobs (each checked against its id);
    /// * bundles it consumes from chains the local node does not follow, or has not
    ///   synchronized that far (`MissingCrossChainUpdate`): the sending block's certificate,
    ///   whose bundle for this chain the local node takes in without the sender's history.
    pub(crate) async fn process_downloaded(
        &self,
        certificate: ConfirmedBlockCertificate,
    ) -> Result<(), NodeError> {
        let process = |certificate: ConfirmedBlockCertificate| async move {
            ValidatorNode::handle_confirmed_certificate(
                &*self.local,
                certificate,
                CrossChainDelivery::NonBlocking,
            )
            .await
            .map_err(|error| match error {
                NodeError::InvalidCertificate(_) => violation(Violation::BadCertificate),
                other => other,
            })
        };
        let block = certificate.value().block();
        // Each missing bundle and the blobs once: every repair makes progress or fails.
        let mut repairs = block.incoming_bundles.len().saturating_add(1);
        let mut blobs_fetched = false;
        loop {
            match process(certificate.clone()).await {
                Err(NodeError::BlobsNotFound(missing)) if !blobs_fetched => {
                    blobs_fetched = true;
                    self.fetch_blobs(block, missing).await?;
                }
                Err(NodeError::MissingCrossChainUpdate {
                    chain_id,
                    origin,
                    height,
                }) if repairs > 0 && chain_id == block.chain_id => {
                    repairs -= 1;
                    let consumed = block
                        .incoming_bundles
                        .iter()
                        .any(|bundle| bundle.origin == origin && bundle.height == height);
                    if !consumed {
                        // The local node asks only for what the block consumes.
                        return Err(NodeError::MissingCrossChainUpdate {
                            chain_id,
                            origin,
                            height,
                        });
                    }
                    self.fetch_bundle(chain_id, origin, height).await?;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// Downloads from the remote the blobs `block` needs and the local node lacks (`missing`,
    /// as the local node named them), each checked against its id, and hands them to the
    /// local node. A claim beyond what the block needs is the local node's own error.
    async fn fetch_blobs(&self, block: &Block, missing: Vec<BlobId>) -> Result<(), NodeError> {
        let required: BTreeSet<BlobId> = block.required_blob_ids().into_iter().collect();
        if !missing.iter().all(|id| required.contains(id)) {
            return Err(NodeError::BlobsNotFound(missing));
        }
        self.recover(RecoveryKind::Blobs)?;
        for id in missing {
            let blob = self.call(|| self.remote.node.download_blob(id)).await?;
            if blob.id() != id {
                return Err(violation(Violation::BadCertificate));
            }
            ValidatorNode::upload_blob(&*self.local, blob).await?;
        }
        Ok(())
    }

    /// Downloads from the remote the certificate of `origin`'s block at `height` and has the
    /// local node take in its bundle for `chain_id` (verified, without `origin`'s history).
    async fn fetch_bundle(
        &self,
        chain_id: ChainId,
        origin: ChainId,
        height: BlockHeight,
    ) -> Result<(), NodeError> {
        self.recover(RecoveryKind::CrossChain)?;
        let mut certificates = self
            .call(|| {
                self.remote
                    .node
                    .download_certificates_by_heights(origin, vec![height])
            })
            .await?;
        if certificates.len() != 1 {
            return Err(NodeError::NotFound);
        }
        let sender = certificates.remove(0);
        let block = sender.value().block();
        if block.chain_id != origin || block.height != height {
            return Err(violation(Violation::WrongChain));
        }
        self.local
            .handle_certificate_for_recipient(sender, chain_id)
            .await
            .map_err(|error| match error {
                NodeError::InvalidCertificate(_) | NodeError::CertificateNotApplicable(_) => {
                    violation(Violation::BadCertificate)
                }
                other => other,
            })?;
        Ok(())
    }

    /// Has the local node take in a locking block (validated certificate) the remote
    /// reported: when the local node lacks blobs the block publishes or reads, they are
    /// downloaded from the remote (which serves the blobs of the lock it holds, pending or
    /// stored), each checked against its id, and the certificate is taken in again, once.
    pub(crate) async fn take_in_locking_block(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<(), NodeError> {
        let take = |certificate: ValidatedBlockCertificate| async move {
            ValidatorNode::handle_validated_certificate(&*self.local, certificate).await
        };
        match take(certificate.clone()).await {
            Err(NodeError::BlobsNotFound(missing)) => {
                self.fetch_blobs(certificate.value().block(), missing)
                    .await?;
                take(certificate).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// Has the local node keep the super owner's fast-round proposal that the remote reports
    /// as the proposal it voted for (the proposal itself, or a re-proposal carrying its
    /// fast-round signature), so that any owner can re-propose that block (DESIGN §4.3).
    /// Blobs the block needs and the local node lacks are downloaded from the remote (which
    /// serves the blobs of the proposal it holds), each checked against its id, and the
    /// proposal is taken in again, once. `Ok` without effect when `proposal` has no fast
    /// original or the local node already keeps one.
    pub(crate) async fn take_in_fast_proposal(
        &self,
        proposal: &BlockProposal,
    ) -> Result<(), NodeError> {
        let Some(original) = proposal.fast_original() else {
            return Ok(());
        };
        match self.local.take_in_fast_proposal(original.clone()).await {
            Err(NodeError::BlobsNotFound(missing)) => {
                self.fetch_blobs(original.block(), missing).await?;
                self.local.take_in_fast_proposal(original).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// Learns the remote's round evidence (timeout and validated certificates) and processes it
    /// locally, after its blocks if it is ahead.
    pub(super) async fn synchronize_round_from_remote(
        &self,
        chain_id: ChainId,
    ) -> Result<(), NodeError> {
        let query = ChainInfoQuery::new(chain_id).with_manager_values();
        let response = self
            .call(|| self.remote.node.handle_chain_info_query(query.clone()))
            .await?;
        self.check_response(&response, chain_id)?;
        let local_next = self.local.chain_state(chain_id).await?.next_height();
        if response.info.next_block_height > local_next {
            self.synchronize_chain_from_remote(chain_id, response.info.next_block_height)
                .await?;
        }
        // The local node checks each certificate; one it refuses is simply not evidence.
        let manager = &response.info.manager;
        if let Some(certificate) = &manager.timeout_certificate {
            let _ =
                ValidatorNode::handle_timeout_certificate(&*self.local, (**certificate).clone())
                    .await;
        }
        if let Some(certificate) = &manager.requested_locking {
            if let Err(error) = self.take_in_locking_block((**certificate).clone()).await {
                tracing::debug!(validator = ?self.remote.public_key, %error, "locking block not taken");
            }
        }
        if let Some(proposal) = &manager.requested_proposed {
            if let Err(error) = self.take_in_fast_proposal(proposal).await {
                tracing::debug!(validator = ?self.remote.public_key, %error, "fast proposal not taken");
            }
        }
        Ok(())
    }
}
