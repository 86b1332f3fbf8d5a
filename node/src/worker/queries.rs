//! The Worker's queries and data requests (DESIGN §4.2, §4.5.2): chain information (which may
//! sign a timeout vote), blob uploads and pending blobs held in memory, and downloads.

use std::sync::Arc;

use quorum_core::{
    encoded_len, Batch, Blob, BlobId, BlockHeight, ChainId, ChainInfoQuery, ChainInfoResponse,
    ConfirmedBlockCertificate, CryptoHash, Limit, NodeError, Storage, Write,
};

use super::Worker;

impl<S: Storage + 'static> Worker<S> {
    pub(super) async fn do_handle_chain_info_query(
        &self,
        query: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let _volatile = self.volatile.lock().await;
        let mut state = self.owned_chain_state(query.chain_id).await?;
        state.description()?;
        if let Some(height) = query.test_next_block_height {
            state.expect_next_height(height)?;
        }
        if let Some((height, round)) = query.request_timeout {
            // A timeout is for one height: a node at another height says so, so that the
            // client brings it up to date (or catches up itself) and asks again.
            state.expect_next_height(height)?;
            if state.manager().timeout_vote().is_none() {
                let (chain_id, epoch) = (state.chain_id(), state.epoch());
                let vote = state.manager_mut().vote_timeout(
                    chain_id,
                    epoch,
                    round,
                    self.clock.now(),
                    self.key.as_ref(),
                );
                if vote.is_some() {
                    self.store
                        .write_batch(Batch {
                            writes: vec![Write::ChainState(Arc::new(state.clone()))],
                        })
                        .await?;
                }
            }
        }
        let mut info = self.info(&state, query.request_manager_values);
        if let Some((start, end)) = query.request_certificate_hashes {
            let most = self.config.limits.max_certificate_hashes_per_query;
            let end = BlockHeight(
                end.0
                    .min(state.next_height().0)
                    .min(start.0.saturating_add(most)),
            );
            let heights: Vec<BlockHeight> = (start.0..end.0).map(BlockHeight).collect();
            let hashes = self
                .store
                .read_certificate_hashes(state.chain_id(), &heights)
                .await?;
            info.requested_certificate_hashes = hashes.into_iter().map_while(|hash| hash).collect();
        }
        if let Some(from) = query.request_received_log_from {
            // At most one page, and nothing past the log's end (a page is never padded).
            let most = self.config.limits.max_received_log_entries_per_query;
            if from < state.received_log_len() {
                info.requested_received_log = self
                    .store
                    .read_received_log(state.chain_id(), from, most)
                    .await?;
            }
        }
        Ok(ChainInfoResponse::new(info, self.key.as_ref()))
    }

    pub(super) async fn do_upload_blob(&self, blob: Blob) -> Result<BlobId, NodeError> {
        self.check_blob_size(&blob)?;
        let id = blob.id();
        if self.store.read_blob(id).await?.is_some() {
            return Ok(id);
        }
        let mut volatile = self.volatile.lock().await;
        // Only blobs this node asked for, within the byte budget (`held_blobs.rs`).
        let limits = self.config.held_limits();
        volatile.held.upload(blob, self.clock.now(), &limits)?;
        Ok(id)
    }

    /// A pending blob: only one that a proposal an owner of the chain signed was refused for
    /// (`UnexpectedBlob` otherwise), unless `from_owner`.
    pub(super) async fn do_handle_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
        from_owner: bool,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.check_blob_size(&blob)?;
        let mut volatile = self.volatile.lock().await;
        let state = self.chain_state(chain_id).await?;
        state.description()?;
        let limits = self.config.held_limits();
        volatile
            .held
            .add_pending(chain_id, blob, from_owner, self.clock.now(), &limits)?;
        Ok(self.response(&state, false))
    }

    /// Holds `blob` pending for `chain_id` on the node of the owner who is about to propose a
    /// block publishing it (a client and its own local node), without the proposal's
    /// `BlobsNotFound` first; within the same quotas. Never for a blob that came from
    /// elsewhere: over the wire a pending blob is taken only when an owner's proposal asked
    /// for it.
    pub async fn hold_own_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.do_handle_pending_blob(chain_id, blob, true).await
    }

    /// The contents of the blobs `block` publishes, as this node holds them (pending for the
    /// block's chain, uploaded, or stored); those it lacks are left out. How a client sends a
    /// block it did not make itself (a re-proposal, an earlier call's block) with its blobs.
    pub async fn published_blobs(
        &self,
        block: &quorum_core::Block,
    ) -> Result<Vec<Blob>, NodeError> {
        // The same lookup as for executing the block (`apply.rs`), kept to what it publishes.
        let volatile = self.volatile.lock().await;
        let mut inputs = self.gather_inputs(&self.store, &volatile, block).await?;
        Ok(block
            .published_blob_ids()
            .into_iter()
            .filter_map(|id| inputs.blobs.remove(&id))
            .collect())
    }

    /// A stored blob, or one held pending for a chain whose proposal or lock at its current
    /// height publishes it: the blobs travel with the locks, so that any owner can finish a
    /// block another owner left validated (DESIGN §4.3).
    pub(super) async fn do_download_blob(&self, blob_id: BlobId) -> Result<Blob, NodeError> {
        if let Some(blob) = self.store.read_blob(blob_id).await? {
            return Ok(blob);
        }
        let candidates: Vec<(ChainId, Blob)> = {
            let volatile = self.volatile.lock().await;
            volatile
                .held
                .pending_anywhere(&blob_id)
                .map(|(chain_id, blob)| (chain_id, blob.clone()))
                .collect()
        };
        for (chain_id, blob) in candidates {
            let state = self.chain_state(chain_id).await?;
            let manager = state.manager();
            let held_for = manager
                .proposed_block()
                .into_iter()
                .chain(manager.locking_certificate().map(|c| c.value().block()))
                .filter(|block| block.height == state.next_height())
                .any(|block| block.published_blob_ids().contains(&blob_id));
            if held_for {
                return Ok(blob);
            }
        }
        Err(NodeError::BlobsNotFound(vec![blob_id]))
    }

    pub(super) async fn do_missing_blob_ids(
        &self,
        blob_ids: Vec<BlobId>,
    ) -> Result<Vec<BlobId>, NodeError> {
        if blob_ids.len() > self.config.limits.max_certificates_per_batch {
            return Err(NodeError::LimitExceeded(Limit::BatchSize));
        }
        Ok(self.store.missing_blobs(&blob_ids).await?)
    }

    pub(super) async fn do_download_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        self.store
            .read_certificate(hash)
            .await?
            .ok_or(NodeError::NotFound)
    }

    pub(super) async fn do_download_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        if heights.len() > self.config.limits.max_certificates_per_batch {
            return Err(NodeError::LimitExceeded(Limit::BatchSize));
        }
        let certificates = self
            .store
            .read_certificates_by_heights(chain_id, &heights)
            .await?;
        // Up to the byte budget, and at least one: a shorter answer says how far it got.
        let mut bytes = 0usize;
        let mut answer = Vec::new();
        for certificate in certificates.into_iter().flatten() {
            bytes = bytes.saturating_add(encoded_len(&certificate).unwrap_or(usize::MAX));
            if bytes > self.config.limits.max_download_bytes && !answer.is_empty() {
                break;
            }
            answer.push(certificate);
        }
        Ok(answer)
    }
}
