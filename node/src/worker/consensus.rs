//! The Worker's consensus requests (DESIGN §4.3, §4.5): proposals, certificates (full, lite and
//! in batches) and timeouts. Each computes its change under the worker-wide lock and queues its
//! writes; the `ValidatorNode` implementation (`worker.rs`) answers once they are durable.

use std::sync::Arc;

use tracing::instrument;

use quorum_core::{
    check_block_bounds, execute_block, Batch, BatchOutcome, BlockProposal, BlockValue, ChainId,
    ChainInfoResponse, ConfirmedBlock, ConfirmedBlockCertificate, CrossChainDelivery, CryptoError,
    Hashed, Limit, LiteCertificate, NodeError, PendingSignatures, ProposalDecision, Storage,
    Timeout, TimeoutCertificate, ValidatedBlock, ValidatedBlockCertificate, VoteKind, Write,
};

use super::{Signatures, Worker};
use crate::overlay::Overlay;

impl<S: Storage + 'static> Worker<S> {
    #[instrument(level = "debug", skip_all, fields(chain = ?proposal.block().chain_id, height = ?proposal.block().height, round = ?proposal.round()))]
    /// A proposal, with the outcome of its signature check (`signature`), which the caller
    /// makes before the worker-wide lock is taken.
    pub(super) async fn do_handle_block_proposal(
        &self,
        proposal: BlockProposal,
        signature: Result<(), CryptoError>,
    ) -> Result<ChainInfoResponse, NodeError> {
        // Bounds that need no state first: an oversize block is looked at no further.
        check_block_bounds(proposal.block(), &self.config.limits)?;
        if let Some(certificate) = &proposal.validated_block_certificate {
            self.check_from_elsewhere(certificate, certificate.value().block().epoch)
                .await?;
        }
        let mut volatile = self.volatile.lock().await;
        let block = proposal.block().clone();
        let mut state = self.owned_chain_state(block.chain_id).await?;
        let description = state.description()?.clone();
        state.expect_next_height(block.height)?;
        if block.epoch != state.epoch() {
            return Err(NodeError::WrongEpoch {
                expected: state.epoch(),
                found: block.epoch,
            });
        }
        if state
            .manager()
            .check_verified_proposal(&description, &proposal, signature)?
            == ProposalDecision::AlreadyVotedForThis
        {
            return Ok(self.response(&state, false));
        }
        let now = self.clock.now();
        if block.timestamp > now.saturating_add(self.config.timestamp_grace) {
            return Err(NodeError::InvalidTimestamp {
                block_timestamp: block.timestamp,
                local_time: now,
            });
        }
        // The proposer's signature and right to propose are checked: the blobs its block
        // publishes and this node lacks may now be uploaded as pending blobs of the chain,
        // and only those (`held_blobs.rs`). (Blobs it reads come with the blocks that
        // published them.)
        let missing = self.missing_for_block(&volatile, &block).await?;
        if !missing.is_empty() {
            self.want_published(&mut volatile, &block, &missing);
            return Err(NodeError::BlobsNotFound(missing));
        }
        let inputs = self.gather_inputs(&self.store, &volatile, &block).await?;
        let execution = execute_block(&state, &block, &inputs)?;
        let value = BlockValue {
            block,
            outcome: execution.outcome,
        };
        state
            .manager_mut()
            .vote_for_proposal(proposal, value, self.key.as_ref());
        let state = Arc::new(state);
        self.store
            .write_batch(Batch {
                writes: vec![Write::ChainState(state.clone())],
            })
            .await?;
        Ok(self.response(&state, false))
    }

    pub(super) async fn do_handle_lite_certificate(
        &self,
        certificate: LiteCertificate,
        _delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let state = self.chain_state(certificate.chain_id).await?;
        state.description()?;
        match certificate.kind {
            VoteKind::Confirmed => {
                // The value of a block not committed yet is in the manager (the common case:
                // no storage read); a block committed already is answered as it stands.
                let Some(value) = state
                    .manager()
                    .value_for(VoteKind::Confirmed, certificate.value_hash)
                else {
                    if self
                        .store
                        .read_certificate(certificate.value_hash)
                        .await?
                        .is_some()
                    {
                        return Ok(self.response(&state, false));
                    }
                    return Err(NodeError::MissingCertificateValue);
                };
                let full = certificate.with_value(Hashed::new(ConfirmedBlock(value)))?;
                let own = state.manager().pending_vote().cloned();
                self.confirmed_certificate(full, Signatures::Unchecked { own })
                    .await
            }
            VoteKind::Validated => {
                let value = state
                    .manager()
                    .value_for(VoteKind::Validated, certificate.value_hash)
                    .ok_or(NodeError::MissingCertificateValue)?;
                let full = certificate.with_value(Hashed::new(ValidatedBlock(value)))?;
                let own = state.manager().pending_vote().cloned();
                self.validated_certificate(full, Signatures::Unchecked { own })
                    .await
            }
            VoteKind::Timeout => {
                let value = Hashed::new(Timeout {
                    chain_id: state.chain_id(),
                    height: state.next_height(),
                    epoch: state.epoch(),
                });
                if value.hash() != certificate.value_hash {
                    return Err(NodeError::MissingCertificateValue);
                }
                let full = certificate.with_value(value)?;
                self.do_handle_timeout_certificate(full).await
            }
        }
    }

    /// A confirmed certificate. Delivery to recipients' inboxes is part of the block's own write
    /// batch, so it is always complete when this returns: Blocking and NonBlocking delivery
    /// behave alike, and none is asked for.
    #[instrument(level = "debug", skip_all, fields(chain = ?certificate.value().block().chain_id, height = ?certificate.value().block().height))]
    pub(super) async fn confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        signatures: Signatures,
    ) -> Result<ChainInfoResponse, NodeError> {
        if !self.check_confirmed(&certificate, signatures).await? {
            let state = self
                .chain_state(certificate.value().block().chain_id)
                .await?;
            return Ok(self.response(&state, false));
        }
        let mut volatile = self.volatile.lock().await;
        let block = certificate.value().block();
        let current = self.chain_state(block.chain_id).await?;
        let result = if block.height > current.next_height() {
            // Ahead: the block waits; the blobs it publishes and the chains it opens are taken
            // now (`ahead.rs`).
            let taken = match self.take_published_blobs(&mut volatile, &certificate).await {
                Ok(()) => self.open_chains_ahead(&certificate).await,
                Err(error) => Err(error),
            };
            taken.and(Err(NodeError::UnexpectedBlockHeight {
                expected_block_height: current.next_height(),
                found_block_height: block.height,
            }))
        } else {
            let started = std::time::Instant::now();
            let applied = self
                .apply_confirmed(&self.store, &mut volatile, certificate)
                .await;
            metrics::histogram!("quorum_block_apply_seconds")
                .record(started.elapsed().as_secs_f64());
            applied
        };
        self.note_wanted(&mut volatile, &result);
        let state = result?;
        Ok(self.response(&state, false))
    }

    pub(super) async fn validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
        signatures: Signatures,
    ) -> Result<ChainInfoResponse, NodeError> {
        let block = certificate.value().block().clone();
        let committee = self.committee(block.epoch).await?;
        self.check_certificate(&certificate, &committee, signatures)
            .await?;
        let mut volatile = self.volatile.lock().await;
        let mut state = self.owned_chain_state(block.chain_id).await?;
        let description = state.description()?.clone();
        if state.is_committed(block.height)? {
            return Ok(self.response(&state, false));
        }
        let missing = self.missing_for_block(&volatile, &block).await?;
        if !missing.is_empty() {
            // A quorum validated the block: the blobs it publishes are welcome as pending
            // blobs of its chain too (how its owners send them).
            self.want_published(&mut volatile, &block, &missing);
            let refusal = Err(NodeError::BlobsNotFound(missing));
            self.note_wanted(&mut volatile, &refusal);
            return refusal;
        }
        let now = self.clock.now();
        state.manager_mut().handle_validated_certificate(
            &description,
            &certificate,
            now,
            self.key.as_ref(),
        )?;
        let state = Arc::new(state);
        self.store
            .write_batch(Batch {
                writes: vec![Write::ChainState(state.clone())],
            })
            .await?;
        Ok(self.response(&state, false))
    }

    pub(super) async fn do_handle_timeout_certificate(
        &self,
        certificate: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        let timeout = certificate.value().inner().clone();
        self.check_from_elsewhere(&certificate, timeout.epoch)
            .await?;
        let _volatile = self.volatile.lock().await;
        let mut state = self.owned_chain_state(timeout.chain_id).await?;
        let description = state.description()?.clone();
        if state.is_committed(timeout.height)? {
            return Ok(self.response(&state, false));
        }
        if timeout.epoch != state.epoch() {
            return Err(NodeError::WrongEpoch {
                expected: state.epoch(),
                found: timeout.epoch,
            });
        }
        state.manager_mut().handle_timeout_certificate(
            &description,
            &certificate,
            self.clock.now(),
        );
        let state = Arc::new(state);
        self.store
            .write_batch(Batch {
                writes: vec![Write::ChainState(state.clone())],
            })
            .await?;
        Ok(self.response(&state, false))
    }

    pub(super) async fn do_handle_confirmed_certificates(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        _delivery: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError> {
        if certificates.len() > self.config.limits.max_certificates_per_batch {
            return Err(NodeError::LimitExceeded(Limit::BatchSize));
        }
        let Some(first) = certificates.first() else {
            return Ok(BatchOutcome {
                processed: 0,
                info: None,
                error: None,
            });
        };
        let chain_id = first.value().block().chain_id;
        // First, without any lock: every certificate must be about this chain and carry a
        // quorum of its epoch's committee. The batch is cut at the first one that does not.
        let (checked, mut error) = self.check_batch(chain_id, certificates).await;
        // Then apply them in order through a buffer, and commit the buffer in one batch: one
        // storage transaction for the whole upload instead of one per block.
        let mut volatile = self.volatile.lock().await;
        let overlay = Overlay::new(&self.store);
        let mut processed = 0;
        let mut last_state = None;
        for certificate in checked {
            match self
                .apply_confirmed(&overlay, &mut volatile, certificate)
                .await
            {
                Ok(state) => {
                    processed += 1;
                    last_state = Some(state);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let batch = overlay.into_batch();
        // Queued for the next group commit (`store.rs`), which the answer waits for.
        self.store.write_batch(batch).await?;
        if let Some(stop) = &error {
            self.note_wanted(&mut volatile, &Err::<(), _>(stop.clone()));
        }
        drop(volatile);
        let info = last_state.map(|state| self.response(&state, false));
        Ok(BatchOutcome {
            processed,
            info,
            error,
        })
    }

    /// The certificates of a batch that pass, in order up to the first that does not, and why
    /// that one does not. Their signatures are verified together (the Verifier splits them
    /// into batches of its size), not one certificate at a time.
    async fn check_batch(
        &self,
        chain_id: ChainId,
        certificates: Vec<ConfirmedBlockCertificate>,
    ) -> (Vec<ConfirmedBlockCertificate>, Option<NodeError>) {
        // First the checks of each certificate but its signatures, cut at the first failure;
        // each passing certificate's signatures from `offset` on in `all`.
        let mut pending = Vec::with_capacity(certificates.len());
        let mut all = Vec::new();
        let mut stop = None;
        for certificate in certificates {
            match self.pending_for_batch(chain_id, &certificate).await {
                Ok(signatures) => {
                    let offset = all.len();
                    let signatures = signatures.map(|mut signatures| {
                        all.extend(signatures.take_checks());
                        signatures
                    });
                    pending.push((certificate, signatures, offset));
                }
                Err(error) => {
                    stop = Some(error);
                    break;
                }
            }
        }
        // Then the signatures of all that passed; a bad one cuts the batch there, before any
        // later failure.
        let bad = self.verifier.verify(all).await.err().unwrap_or_default();
        let mut checked = Vec::with_capacity(pending.len());
        for (certificate, signatures, offset) in pending {
            let verdict = signatures.map_or(Ok(()), |signatures| {
                signatures.finish_in_batch(offset, &bad)
            });
            if let Err(error) = verdict {
                return (checked, Some(error.into()));
            }
            checked.push(certificate);
        }
        (checked, stop)
    }

    /// A certificate of a batch checked but for its signatures, which it returns to verify
    /// (none for a block the node has already).
    async fn pending_for_batch(
        &self,
        chain_id: ChainId,
        certificate: &ConfirmedBlockCertificate,
    ) -> Result<Option<PendingSignatures>, NodeError> {
        if certificate.value().block().chain_id != chain_id {
            return Err(NodeError::ProtocolViolation(
                quorum_core::Violation::WrongChain,
            ));
        }
        let Some(committee) = self.committee_if_new(certificate).await? else {
            return Ok(None);
        };
        Ok(Some(certificate.pending_signatures(&committee, None)?))
    }
}
