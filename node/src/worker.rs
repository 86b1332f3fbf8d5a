//! The Worker: the reference validator's state machine driver (DESIGN §4.5).
//!
//! It loads chain state from a [`Storage`], applies the pure rules of `quorum-core`
//! ([`execute_block`], [`ChainManager`](quorum_core::manager::ChainManager)), persists every change in one atomic batch, and signs
//! votes when it holds a validator key. Without a key it is a client's local node: it executes
//! and stores certified blocks but never votes.
//!
//! Concurrency: certificate signatures are checked before any lock is taken; every state change
//! then runs under one worker-wide lock, which also makes cross-chain delivery (writing the
//! recipients' inboxes) atomic with the sender's block. The lock covers computing the change
//! and queueing its writes, not the commit: writes queued while a commit is in flight share
//! the next one (group commit, `worker/store.rs`), and each answer waits for the commit that
//! holds its writes.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use tokio::sync::Mutex;
use tracing::instrument;

use quorum_core::block::epoch_event_id;
use quorum_core::chain::execute_block;
use quorum_core::encoding::encoded_len;
use quorum_core::error::Limit;
use quorum_core::info::{BatchOutcome, MAX_CERTIFICATE_HASHES_PER_QUERY};
use quorum_core::manager::ProposalDecision;
use quorum_core::node::MAX_CERTIFICATES_PER_BATCH;
use quorum_core::{
    Batch, Blob, BlobId, Block, BlockHeight, BlockProposal, BlockValue, ChainId, ChainInfo,
    ChainInfoQuery, ChainInfoResponse, ChainState, Committee, ConfirmedBlock,
    ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, Epoch, Hashed, LiteCertificate,
    NodeError, Storage, Timeout, TimeoutCertificate, ValidatedBlock, ValidatedBlockCertificate,
    ValidatorNode, ValidatorPublicKey, ValidatorSecretKey, VoteKind, Write,
};

mod ahead;
mod apply;
mod held_blobs;
mod store;

use held_blobs::HeldBlobs;
use store::Store;

use crate::clock::Clock;
use crate::overlay::Overlay;

mod config;

pub use config::*;

/// What the Worker holds in memory only.
#[derive(Default)]
struct Volatile {
    /// Blobs held until a block needs them.
    held: HeldBlobs,
}

/// A validator (with a key) or a client's local node (without), over storage `S`.
pub struct Worker<S> {
    /// The storage, with the writes queued for the next group commit.
    store: Store<S>,
    key: Option<ValidatorSecretKey>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    volatile: Mutex<Volatile>,
    committees: RwLock<BTreeMap<Epoch, Arc<Committee>>>,
}

impl<S> std::fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field(
                "validator",
                &self.key.as_ref().map(ValidatorSecretKey::public),
            )
            .field("admin_chain", &self.config.admin_chain)
            .finish_non_exhaustive()
    }
}

impl<S: Storage + 'static> Worker<S> {
    /// A worker over `storage`; it signs votes if `key` is given.
    pub fn new(
        storage: S,
        key: Option<ValidatorSecretKey>,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
    ) -> Self {
        Worker {
            store: Store::new(storage),
            key,
            clock,
            config,
            volatile: Mutex::new(Volatile::default()),
            committees: RwLock::new(BTreeMap::new()),
        }
    }

    /// What the node stores, as the node itself reads it: what is committed, and over it the
    /// writes queued for the next group commit (every answer of the node waits until its own
    /// writes are committed). A write through it is queued the same way.
    pub fn storage(&self) -> &dyn Storage {
        &self.store
    }

    /// The storage itself: only what is committed.
    pub fn committed_storage(&self) -> &S {
        self.store.storage()
    }

    /// Waits until what `result`'s handler wrote is durable, then hands `result` on: nothing
    /// is acknowledged, and no vote leaves the node, before its writes are committed.
    async fn durable<T>(&self, result: Result<T, NodeError>) -> Result<T, NodeError> {
        self.store.flush().await?;
        result
    }

    /// The validator's public key, if this worker votes.
    pub fn public_key(&self) -> Option<ValidatorPublicKey> {
        self.key.as_ref().map(ValidatorSecretKey::public)
    }

    /// The settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A chain's state, or an inactive placeholder.
    pub async fn chain_state(&self, chain_id: ChainId) -> Result<ChainState, NodeError> {
        chain_state_in(&self.store, chain_id).await
    }

    /// The committee of `epoch`; `EventsNotFound` for the admin chain's announcement of it if
    /// this node does not know it yet.
    pub async fn committee(&self, epoch: Epoch) -> Result<Arc<Committee>, NodeError> {
        if let Ok(cache) = self.committees.read() {
            if let Some(committee) = cache.get(&epoch) {
                return Ok(committee.clone());
            }
        }
        let committee = self.store.read_committee(epoch).await?.ok_or_else(|| {
            NodeError::EventsNotFound(vec![epoch_event_id(self.config.admin_chain, epoch)])
        })?;
        let committee = Arc::new(committee);
        if let Ok(mut cache) = self.committees.write() {
            cache.insert(epoch, committee.clone());
        }
        Ok(committee)
    }

    /// Executes `block` without voting or storing anything, with `extra_blobs` available besides
    /// what the node knows: how a client computes the outcome of the block it proposes.
    pub async fn stage_block_execution(
        &self,
        block: &Block,
        extra_blobs: &[Blob],
    ) -> Result<BlockValue, NodeError> {
        let volatile = self.volatile.lock().await;
        let state = self.chain_state(block.chain_id).await?;
        let mut inputs = self.gather_inputs(&self.store, &volatile, block).await?;
        for blob in extra_blobs {
            inputs
                .blobs
                .entry(blob.id())
                .or_insert_with(|| blob.clone());
        }
        let execution = execute_block(&state, block, &inputs)?;
        Ok(BlockValue {
            block: block.clone(),
            outcome: execution.outcome,
        })
    }

    fn response(&self, state: &ChainState, with_values: bool) -> ChainInfoResponse {
        ChainInfoResponse::new(self.info(state, with_values), self.key.as_ref())
    }

    fn info(&self, state: &ChainState, with_values: bool) -> ChainInfo {
        ChainInfo {
            chain_id: state.chain_id,
            epoch: state.description.as_ref().map(|_| state.epoch),
            description: state.description.clone(),
            next_block_height: state.next_height,
            block_hash: state.tip_hash,
            timestamp: state.timestamp,
            state_hash: state.state_hash,
            balance: state.balance,
            manager: state.manager.info(with_values),
            requested_certificate_hashes: Vec::new(),
        }
    }

    /// Checks a confirmed certificate against its epoch's committee, unless the node already
    /// has a block at that height (then there is nothing to do).
    async fn check_confirmed(
        &self,
        certificate: &ConfirmedBlockCertificate,
        signatures: Signatures,
    ) -> Result<bool, NodeError> {
        let block = certificate.value().block();
        let state = self.chain_state(block.chain_id).await?;
        state.description()?;
        if block.height < state.next_height {
            return Ok(false);
        }
        let committee = self.committee(block.epoch).await?;
        match signatures {
            Signatures::Unchecked => certificate.check(&committee)?,
            Signatures::CheckedByCaller => certificate.check_signers(&committee)?,
        }
        Ok(true)
    }

    /// Processes a confirmed certificate the caller assembled from votes it checked one by
    /// one as they arrived (a client and its own local node): the signers and their weight are
    /// checked, the signatures are not verified a second time (DESIGN §4.5.1, verify once).
    /// Never for a certificate that came from elsewhere.
    pub async fn handle_assembled_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(
            self.confirmed_certificate(certificate, Signatures::CheckedByCaller)
                .await,
        )
        .await
    }

    /// Records a validated certificate the caller assembled from votes it checked one by one
    /// (see [`Worker::handle_assembled_confirmed_certificate`]).
    pub async fn handle_assembled_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(
            self.validated_certificate(certificate, Signatures::CheckedByCaller)
                .await,
        )
        .await
    }

    /// After a certificate was answered with `BlobsNotFound`: uploads of those blobs are now
    /// welcome (for a while); no other blob may be uploaded.
    fn note_wanted<T>(&self, volatile: &mut Volatile, result: &Result<T, NodeError>) {
        if let Err(NodeError::BlobsNotFound(ids)) = result {
            let limits = self.config.held_limits();
            volatile.held.want(ids, self.clock.now(), &limits);
        }
    }

    fn check_blob_size(&self, blob: &Blob) -> Result<(), NodeError> {
        if blob.content.len() > self.config.max_blob_bytes {
            return Err(NodeError::LimitExceeded(Limit::BlobSize));
        }
        Ok(())
    }

    async fn missing_for_block(
        &self,
        volatile: &Volatile,
        block: &Block,
    ) -> Result<Vec<BlobId>, NodeError> {
        let inputs = self.gather_inputs(&self.store, volatile, block).await?;
        Ok(block
            .required_blob_ids()
            .into_iter()
            .filter(|id| !inputs.blobs.contains_key(id))
            .collect())
    }
}

/// Whether a certificate's signatures are still to be verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signatures {
    /// They came with the certificate: verify them.
    Unchecked,
    /// The caller verified each as a vote: check only the signers and their weight.
    CheckedByCaller,
}

/// A chain's state in `storage`, or an inactive placeholder.
async fn chain_state_in(storage: &dyn Storage, chain_id: ChainId) -> Result<ChainState, NodeError> {
    Ok(storage
        .read_chain_state(chain_id)
        .await?
        .unwrap_or_else(|| ChainState::inactive(chain_id)))
}

/// The handlers, under the Worker's rules; writes are queued (see `store.rs`).
impl<S: Storage + 'static> Worker<S> {
    #[instrument(level = "debug", skip_all, fields(chain = ?proposal.block().chain_id, height = ?proposal.block().height, round = ?proposal.round()))]
    async fn do_handle_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        if let Some(certificate) = &proposal.validated_block_certificate {
            let committee = self.committee(certificate.value().block().epoch).await?;
            certificate.check(&committee)?;
        }
        let volatile = self.volatile.lock().await;
        let block = proposal.block().clone();
        let mut state = self.chain_state(block.chain_id).await?;
        let description = state.description()?.clone();
        state.expect_next_height(block.height)?;
        if block.epoch != state.epoch {
            return Err(NodeError::WrongEpoch {
                expected: state.epoch,
                found: block.epoch,
            });
        }
        if state.manager.check_proposal(&description, &proposal)?
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
        let inputs = self.gather_inputs(&self.store, &volatile, &block).await?;
        let execution = execute_block(&state, &block, &inputs)?;
        let value = BlockValue {
            block,
            outcome: execution.outcome,
        };
        state
            .manager
            .vote_for_proposal(proposal, value, self.key.as_ref());
        self.store
            .write_batch(Batch {
                writes: vec![Write::ChainState(Box::new(state.clone()))],
            })
            .await?;
        Ok(self.response(&state, false))
    }

    async fn do_handle_lite_certificate(
        &self,
        certificate: LiteCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let state = self.chain_state(certificate.chain_id).await?;
        state.description()?;
        match certificate.kind {
            VoteKind::Confirmed => {
                if self
                    .store
                    .read_certificate(certificate.value_hash)
                    .await?
                    .is_some()
                {
                    return Ok(self.response(&state, false));
                }
                let value = state
                    .manager
                    .value_for(VoteKind::Confirmed, certificate.value_hash)
                    .ok_or(NodeError::MissingCertificateValue)?;
                let full = certificate.with_value(Hashed::new(ConfirmedBlock(value)))?;
                self.do_handle_confirmed_certificate(full, delivery).await
            }
            VoteKind::Validated => {
                let value = state
                    .manager
                    .value_for(VoteKind::Validated, certificate.value_hash)
                    .ok_or(NodeError::MissingCertificateValue)?;
                let full = certificate.with_value(Hashed::new(ValidatedBlock(value)))?;
                self.do_handle_validated_certificate(full).await
            }
            VoteKind::Timeout => {
                let value = Hashed::new(Timeout {
                    chain_id: state.chain_id,
                    height: state.next_height,
                    epoch: state.epoch,
                });
                if value.hash() != certificate.value_hash {
                    return Err(NodeError::MissingCertificateValue);
                }
                let full = certificate.with_value(value)?;
                self.do_handle_timeout_certificate(full).await
            }
        }
    }

    #[instrument(level = "debug", skip_all, fields(chain = ?certificate.value().block().chain_id, height = ?certificate.value().block().height))]
    async fn do_handle_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        _delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        // Delivery to recipients' inboxes is part of the block's own write batch, so it is
        // always complete when this returns: Blocking and NonBlocking behave alike.
        self.confirmed_certificate(certificate, Signatures::Unchecked)
            .await
    }

    async fn confirmed_certificate(
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
        let result = if block.height > current.next_height {
            // Ahead: the block waits, the blobs it publishes are taken now (`ahead.rs`).
            self.take_published_blobs(&mut volatile, &certificate)
                .await
                .and(Err(NodeError::UnexpectedBlockHeight {
                    expected_block_height: current.next_height,
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
        Ok(self.response(&result?, false))
    }

    async fn do_handle_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.validated_certificate(certificate, Signatures::Unchecked)
            .await
    }

    async fn validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
        signatures: Signatures,
    ) -> Result<ChainInfoResponse, NodeError> {
        let block = certificate.value().block().clone();
        let committee = self.committee(block.epoch).await?;
        match signatures {
            Signatures::Unchecked => certificate.check(&committee)?,
            Signatures::CheckedByCaller => certificate.check_signers(&committee)?,
        }
        let mut volatile = self.volatile.lock().await;
        let mut state = self.chain_state(block.chain_id).await?;
        let description = state.description()?.clone();
        if state.is_committed(block.height)? {
            return Ok(self.response(&state, false));
        }
        let missing = self.missing_for_block(&volatile, &block).await?;
        if !missing.is_empty() {
            let refusal = Err(NodeError::BlobsNotFound(missing));
            self.note_wanted(&mut volatile, &refusal);
            return refusal;
        }
        let now = self.clock.now();
        state.manager.handle_validated_certificate(
            &description,
            &certificate,
            now,
            self.key.as_ref(),
        )?;
        self.store
            .write_batch(Batch {
                writes: vec![Write::ChainState(Box::new(state.clone()))],
            })
            .await?;
        Ok(self.response(&state, false))
    }

    async fn do_handle_timeout_certificate(
        &self,
        certificate: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        let timeout = certificate.value().inner().clone();
        let committee = self.committee(timeout.epoch).await?;
        certificate.check(&committee)?;
        let _volatile = self.volatile.lock().await;
        let mut state = self.chain_state(timeout.chain_id).await?;
        let description = state.description()?.clone();
        if state.is_committed(timeout.height)? {
            return Ok(self.response(&state, false));
        }
        if timeout.epoch != state.epoch {
            return Err(NodeError::WrongEpoch {
                expected: state.epoch,
                found: timeout.epoch,
            });
        }
        state
            .manager
            .handle_timeout_certificate(&description, &certificate, self.clock.now());
        self.store
            .write_batch(Batch {
                writes: vec![Write::ChainState(Box::new(state.clone()))],
            })
            .await?;
        Ok(self.response(&state, false))
    }

    async fn do_handle_confirmed_certificates(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        _delivery: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError> {
        if certificates.len() > MAX_CERTIFICATES_PER_BATCH {
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
        let mut error = None;
        let mut checked = Vec::with_capacity(certificates.len());
        for certificate in certificates {
            let check = if certificate.value().block().chain_id != chain_id {
                Err(NodeError::ProtocolViolation(
                    quorum_core::Violation::WrongChain,
                ))
            } else {
                self.check_confirmed(&certificate, Signatures::Unchecked)
                    .await
                    .map(|_| ())
            };
            match check {
                Ok(()) => checked.push(certificate),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
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

    async fn do_handle_chain_info_query(
        &self,
        query: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let _volatile = self.volatile.lock().await;
        let mut state = self.chain_state(query.chain_id).await?;
        state.description()?;
        if let Some(height) = query.test_next_block_height {
            state.expect_next_height(height)?;
        }
        if let Some((height, round)) = query.request_timeout {
            // A timeout is for one height: a node at another height says so, so that the
            // client brings it up to date (or catches up itself) and asks again.
            state.expect_next_height(height)?;
            if state.manager.timeout_vote.is_none() {
                let vote = state.manager.vote_timeout(
                    state.chain_id,
                    state.epoch,
                    round,
                    self.clock.now(),
                    self.key.as_ref(),
                );
                if vote.is_some() {
                    self.store
                        .write_batch(Batch {
                            writes: vec![Write::ChainState(Box::new(state.clone()))],
                        })
                        .await?;
                }
            }
        }
        let mut info = self.info(&state, query.request_manager_values);
        if let Some((start, end)) = query.request_certificate_hashes {
            let end = BlockHeight(
                end.0
                    .min(state.next_height.0)
                    .min(start.0.saturating_add(MAX_CERTIFICATE_HASHES_PER_QUERY)),
            );
            let heights: Vec<BlockHeight> = (start.0..end.0).map(BlockHeight).collect();
            let hashes = self
                .store
                .read_certificate_hashes(state.chain_id, &heights)
                .await?;
            info.requested_certificate_hashes = hashes.into_iter().map_while(|hash| hash).collect();
        }
        Ok(ChainInfoResponse::new(info, self.key.as_ref()))
    }

    async fn do_upload_blob(&self, blob: Blob) -> Result<BlobId, NodeError> {
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

    async fn do_handle_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.check_blob_size(&blob)?;
        let mut volatile = self.volatile.lock().await;
        let state = self.chain_state(chain_id).await?;
        state.description()?;
        let limits = self.config.held_limits();
        volatile
            .held
            .add_pending(chain_id, blob, self.clock.now(), &limits)?;
        Ok(self.response(&state, false))
    }

    async fn do_download_blob(&self, blob_id: BlobId) -> Result<Blob, NodeError> {
        self.store
            .read_blob(blob_id)
            .await?
            .ok_or_else(|| NodeError::BlobsNotFound(vec![blob_id]))
    }

    async fn do_missing_blob_ids(&self, blob_ids: Vec<BlobId>) -> Result<Vec<BlobId>, NodeError> {
        if blob_ids.len() > MAX_CERTIFICATES_PER_BATCH {
            return Err(NodeError::LimitExceeded(Limit::BatchSize));
        }
        Ok(self.store.missing_blobs(&blob_ids).await?)
    }

    async fn do_download_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        self.store
            .read_certificate(hash)
            .await?
            .ok_or(NodeError::NotFound)
    }

    async fn do_download_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        if heights.len() > MAX_CERTIFICATES_PER_BATCH {
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
            if bytes > self.config.max_download_bytes && !answer.is_empty() {
                break;
            }
            answer.push(certificate);
        }
        Ok(answer)
    }
}

/// Every handler that may write answers only once what it wrote is durable.
#[async_trait]
impl<S: Storage + 'static> ValidatorNode for Worker<S> {
    async fn handle_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(self.do_handle_block_proposal(proposal).await)
            .await
    }

    async fn handle_lite_certificate(
        &self,
        certificate: LiteCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(self.do_handle_lite_certificate(certificate, delivery).await)
            .await
    }

    async fn handle_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        _delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(
            self.do_handle_confirmed_certificate(certificate, _delivery)
                .await,
        )
        .await
    }

    async fn handle_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(self.do_handle_validated_certificate(certificate).await)
            .await
    }

    async fn handle_timeout_certificate(
        &self,
        certificate: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(self.do_handle_timeout_certificate(certificate).await)
            .await
    }

    async fn handle_confirmed_certificates(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        _delivery: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError> {
        self.durable(
            self.do_handle_confirmed_certificates(certificates, _delivery)
                .await,
        )
        .await
    }

    async fn handle_chain_info_query(
        &self,
        query: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(self.do_handle_chain_info_query(query).await)
            .await
    }

    async fn upload_blob(&self, blob: Blob) -> Result<BlobId, NodeError> {
        self.do_upload_blob(blob).await
    }

    async fn handle_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.do_handle_pending_blob(chain_id, blob).await
    }

    async fn download_blob(&self, blob_id: BlobId) -> Result<Blob, NodeError> {
        self.do_download_blob(blob_id).await
    }

    async fn missing_blob_ids(&self, blob_ids: Vec<BlobId>) -> Result<Vec<BlobId>, NodeError> {
        self.do_missing_blob_ids(blob_ids).await
    }

    async fn download_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        self.do_download_certificate(hash).await
    }

    async fn download_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        self.do_download_certificates_by_heights(chain_id, heights)
            .await
    }
}
