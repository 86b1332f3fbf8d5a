//! `ValidatorUpdater`: brings one validator up to date while asking it for a vote
//! (DESIGN §5.2, §5.3).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{try_join_all, BoxFuture};
use futures::FutureExt;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use quorum_core::node::MAX_CERTIFICATES_PER_BATCH;
use quorum_core::{
    Blob, BlobId, BlockHeight, BlockProposal, ChainId, ChainInfoQuery, ChainInfoResponse,
    ChainOrigin, ConfirmedBlockCertificate, CrossChainDelivery, EventId, LiteVote, NodeError,
    Round, Storage, StreamId, TransportErrorKind, ValidatedBlockCertificate, ValidatorPublicKey,
    Violation, VoteKind,
};
use quorum_node::Worker;

use crate::options::Options;
use crate::remote::RemoteNode;
use crate::stats::{RecoveryKind, RecoveryStats};

/// A clock-skew report: the validator, and how far our clock is ahead of its clock, in
/// microseconds: `max(0, our send time − its time)`, so never negative.
pub type SkewReport = (ValidatorPublicKey, i64);

/// What to obtain from a validator.
#[derive(Clone, Debug)]
pub enum CommunicateAction {
    /// Propose a block and get its (validated or, in the fast round, confirmed) vote.
    SubmitBlock {
        /// The proposal.
        proposal: Box<BlockProposal>,
        /// Every blob the block needs (published or read).
        blob_ids: Vec<BlobId>,
        /// The contents of the blobs the block itself publishes.
        blobs: Vec<Blob>,
        /// Where to report clock skew observed on the way.
        skew_reports: Option<mpsc::UnboundedSender<SkewReport>>,
    },
    /// Send a validated certificate and get the confirmation vote.
    FinalizeBlock {
        /// The certificate.
        certificate: Box<ValidatedBlockCertificate>,
        /// The contents of the blobs the block publishes.
        blobs: Vec<Blob>,
        /// How messages are delivered once confirmed.
        delivery: CrossChainDelivery,
    },
    /// Get a timeout vote for a round.
    RequestTimeout {
        /// The chain.
        chain_id: ChainId,
        /// The height.
        height: BlockHeight,
        /// The round.
        round: Round,
    },
}

impl CommunicateAction {
    /// The round the action is about: the proposal's, the certificate's, or the timeout's.
    pub fn round(&self) -> Round {
        match self {
            CommunicateAction::SubmitBlock { proposal, .. } => proposal.round(),
            CommunicateAction::FinalizeBlock { certificate, .. } => certificate.round(),
            CommunicateAction::RequestTimeout { round, .. } => *round,
        }
    }
}

/// Brings one remote validator up to date from the client's local node while obtaining what an
/// action needs. Every recovery runs at most once per distinct cause, so a Byzantine validator
/// cannot keep the client busy forever.
pub struct ValidatorUpdater<S> {
    /// The validator.
    pub remote: RemoteNode,
    /// The client's local node, the source of everything sent.
    pub local: Arc<Worker<S>>,
    /// The admin chain.
    pub admin_chain: ChainId,
    /// Policies.
    pub options: Arc<Options>,
    /// Where repairs are counted.
    pub stats: Arc<RecoveryStats>,
    /// Recoveries left for this action, nested calls included; shared by clones, so every
    /// call made on behalf of one action draws on one budget (DESIGN §5.4.1).
    budget: Arc<Budget>,
}

impl<S> Clone for ValidatorUpdater<S> {
    fn clone(&self) -> Self {
        ValidatorUpdater {
            remote: self.remote.clone(),
            local: self.local.clone(),
            admin_chain: self.admin_chain,
            options: self.options.clone(),
            stats: self.stats.clone(),
            budget: self.budget.clone(),
        }
    }
}

use crate::planner::{Budget, MAX_TIMESTAMP_WAITS};
/// Most repairs within one call to one validator, whatever their causes: a Byzantine validator
/// that invents a new cause each time still runs out.
pub const MAX_RECOVERIES_PER_CALL: usize = 16;

fn violation(kind: Violation) -> NodeError {
    NodeError::ProtocolViolation(kind)
}

fn is_retryable(error: &NodeError) -> bool {
    matches!(error, NodeError::Transport(_) | NodeError::Timeout)
}

/// A `MissingCrossChainUpdate` claim must name a bundle the block consumes.
fn check_bundle_claim(
    block: &quorum_core::Block,
    origin: ChainId,
    height: BlockHeight,
) -> Result<(), NodeError> {
    let consumed = block
        .incoming_bundles
        .iter()
        .any(|bundle| bundle.origin == origin && bundle.height == height);
    if consumed {
        Ok(())
    } else {
        Err(violation(Violation::FalseCrossChainClaim))
    }
}

/// Whether a batch was refused for its size: too many certificates, or a frame too large.
fn is_batch_too_large(error: &NodeError) -> bool {
    matches!(
        error,
        NodeError::LimitExceeded(_) | NodeError::Transport(TransportErrorKind::FrameTooLarge)
    )
}

/// Certificates per upload or download batch: the option, but never more than a node takes
/// ([`MAX_CERTIFICATES_PER_BATCH`]) nor less than one.
pub(crate) fn upload_batch_size(options: &Options) -> usize {
    options
        .certificate_upload_batch_size
        .clamp(1, MAX_CERTIFICATES_PER_BATCH)
}

impl<S: Storage + 'static> ValidatorUpdater<S> {
    /// An updater for `remote`.
    pub fn new(
        remote: RemoteNode,
        local: Arc<Worker<S>>,
        admin_chain: ChainId,
        options: Arc<Options>,
        stats: Arc<RecoveryStats>,
    ) -> Self {
        let budget = Arc::new(Budget::new(options.recovery_budget));
        ValidatorUpdater {
            remote,
            local,
            admin_chain,
            options,
            stats,
            budget,
        }
    }

    /// Draws one recovery of `kind` from the action's budget and counts it; fails with
    /// `RepeatedRecovery` once the budget is spent.
    fn recover(&self, kind: RecoveryKind) -> Result<(), NodeError> {
        if !self.budget.try_spend() {
            warn!(validator = ?self.remote.public_key, ?kind, "recovery budget of this action spent");
            return Err(violation(Violation::RepeatedRecovery));
        }
        self.stats.record(kind);
        Ok(())
    }

    /// Recoveries left in this action's budget.
    pub fn budget_left(&self) -> usize {
        self.budget.left()
    }

    /// Calls the remote with the per-request timeout, retrying transport failures per the
    /// retry policy.
    async fn call<T, F, Fut>(&self, request: F) -> Result<T, NodeError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, NodeError>>,
    {
        // Jitter is seeded from the validator's key: retries stay reproducible in tests.
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&self.remote.public_key.as_bytes()[..8]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from_le_bytes(seed));
        let mut attempt = 1;
        loop {
            let result = match tokio::time::timeout(self.options.request_timeout, request()).await {
                Ok(result) => result,
                Err(_) => Err(NodeError::Timeout),
            };
            match result {
                Err(error) if is_retryable(&error) && self.options.retry.may_retry(attempt) => {
                    let delay = self.options.retry.delay(attempt, &mut rng);
                    debug!(validator = ?self.remote.public_key, %error, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn check_response(
        &self,
        response: &ChainInfoResponse,
        chain_id: ChainId,
    ) -> Result<(), NodeError> {
        if response.info.chain_id != chain_id {
            return Err(violation(Violation::WrongChain));
        }
        Ok(())
    }

    fn check_vote(&self, vote: Option<&LiteVote>, kind: VoteKind) -> Result<LiteVote, NodeError> {
        let vote = vote.ok_or(violation(Violation::WrongVote))?;
        if vote.kind != kind {
            return Err(violation(Violation::WrongVote));
        }
        vote.check(&self.remote.public_key)
            .map_err(|_| violation(Violation::WrongVote))?;
        Ok(vote.clone())
    }

    /// Performs `action` and returns the remote's vote, checked against its key.
    pub async fn send_chain_update(
        &self,
        action: CommunicateAction,
    ) -> Result<LiteVote, NodeError> {
        match action {
            CommunicateAction::SubmitBlock {
                proposal,
                blob_ids,
                blobs,
                skew_reports,
            } => {
                let kind = if proposal.round().is_fast() {
                    VoteKind::Confirmed
                } else {
                    VoteKind::Validated
                };
                let response = self
                    .send_block_proposal(&proposal, blob_ids, &blobs, skew_reports.as_ref())
                    .await?;
                let vote = self.check_vote(response.info.manager.pending.as_ref(), kind)?;
                if vote.round != proposal.round() {
                    return Err(violation(Violation::WrongVote));
                }
                Ok(vote)
            }
            CommunicateAction::FinalizeBlock {
                certificate,
                blobs,
                delivery,
            } => {
                let response = self
                    .send_validated_certificate(&certificate, &blobs, delivery)
                    .await?;
                let vote =
                    self.check_vote(response.info.manager.pending.as_ref(), VoteKind::Confirmed)?;
                if vote.round != certificate.round() {
                    return Err(violation(Violation::WrongVote));
                }
                Ok(vote)
            }
            CommunicateAction::RequestTimeout {
                chain_id,
                height,
                round,
            } => {
                let response = self.request_timeout(chain_id, height, round).await?;
                if response.info.manager.timeout_vote.is_none() {
                    return Err(NodeError::TimeoutNotDue {
                        deadline: response.info.manager.round_timeout,
                    });
                }
                let vote = self.check_vote(
                    response.info.manager.timeout_vote.as_ref(),
                    VoteKind::Timeout,
                )?;
                if vote.round != round {
                    return Err(violation(Violation::WrongVote));
                }
                Ok(vote)
            }
        }
    }

    /// Proposes a block, repairing what the remote says it lacks (DESIGN §5.2.1).
    pub async fn send_block_proposal(
        &self,
        proposal: &BlockProposal,
        blob_ids: Vec<BlobId>,
        blobs: &[Blob],
        skew_reports: Option<&mpsc::UnboundedSender<SkewReport>>,
    ) -> Result<ChainInfoResponse, NodeError> {
        let block = proposal.block();
        let chain_id = block.chain_id;
        let height = block.height;
        let mut blob_ids = blob_ids;
        let mut rounds_synced = BTreeSet::new();
        let mut height_synced = false;
        let mut inactive_synced = false;
        let mut cross_chain_sent: BTreeMap<ChainId, BlockHeight> = BTreeMap::new();
        let mut event_chains_sent: BTreeSet<ChainId> = BTreeSet::new();
        let mut timestamp_waits = 0;
        for _ in 0..MAX_RECOVERIES_PER_CALL {
            // Our time when the request leaves: the remote reads its clock after that, so a
            // slow answer never looks like a clock behind ours.
            let sent_at = self.local.clock().now();
            let result = self
                .call(|| self.remote.node.handle_block_proposal(proposal.clone()))
                .await;
            match result {
                Ok(response) => {
                    self.check_response(&response, chain_id)?;
                    return Ok(response);
                }
                Err(NodeError::WrongRound(round))
                    if round < proposal.round() && rounds_synced.insert(round) =>
                {
                    self.recover(RecoveryKind::WrongRound)?;
                    self.send_chain_information(
                        chain_id,
                        height,
                        CrossChainDelivery::NonBlocking,
                        0,
                    )
                    .await?;
                }
                Err(NodeError::UnexpectedBlockHeight {
                    expected_block_height,
                    found_block_height,
                }) if expected_block_height < found_block_height
                    && found_block_height == height
                    && !height_synced =>
                {
                    height_synced = true;
                    self.recover(RecoveryKind::BlockHeight)?;
                    self.send_chain_information(
                        chain_id,
                        found_block_height,
                        CrossChainDelivery::NonBlocking,
                        0,
                    )
                    .await?;
                }
                Err(NodeError::MissingCrossChainUpdate {
                    chain_id: receiver,
                    origin,
                    height: origin_height,
                }) if receiver == chain_id
                    && cross_chain_sent
                        .get(&origin)
                        .is_none_or(|sent| *sent < origin_height) =>
                {
                    check_bundle_claim(block, origin, origin_height)?;
                    cross_chain_sent.insert(origin, origin_height);
                    self.recover(RecoveryKind::CrossChain)?;
                    let target = origin_height
                        .try_next()
                        .ok_or(NodeError::ProtocolViolation(Violation::RepeatedRecovery))?;
                    self.send_chain_information(origin, target, CrossChainDelivery::Blocking, 0)
                        .await?;
                }
                Err(NodeError::EventsNotFound(ids)) => {
                    let required: BTreeSet<EventId> = block
                        .required_event_ids(self.admin_chain)
                        .into_iter()
                        .collect();
                    if !ids.iter().all(|id| required.contains(id)) {
                        return Err(violation(Violation::FalseEventsNotFound));
                    }
                    let chains: BTreeSet<ChainId> = ids
                        .iter()
                        .map(|id| id.chain_id)
                        .filter(|chain| !event_chains_sent.contains(chain))
                        .collect();
                    if chains.is_empty() {
                        return Err(NodeError::EventsNotFound(ids));
                    }
                    event_chains_sent.extend(chains.iter().copied());
                    self.recover(RecoveryKind::Events)?;
                    let sends = chains.into_iter().map(|publisher| async move {
                        let target = self.local.chain_state(publisher).await?.next_height;
                        self.send_chain_information(
                            publisher,
                            target,
                            CrossChainDelivery::NonBlocking,
                            0,
                        )
                        .await
                    });
                    try_join_all(sends).await?;
                }
                Err(NodeError::InactiveChain(inactive))
                    if inactive == chain_id && !inactive_synced =>
                {
                    inactive_synced = true;
                    self.recover(RecoveryKind::InactiveChain)?;
                    self.send_chain_information(
                        chain_id,
                        height,
                        CrossChainDelivery::NonBlocking,
                        0,
                    )
                    .await?;
                }
                Err(NodeError::BlobsNotFound(claimed)) if !blob_ids.is_empty() => {
                    let required: BTreeSet<BlobId> =
                        block.required_blob_ids().into_iter().collect();
                    if !claimed.iter().all(|id| required.contains(id)) {
                        return Err(violation(Violation::FalseBlobsNotFound));
                    }
                    let ids = std::mem::take(&mut blob_ids);
                    self.recover(RecoveryKind::Blobs)?;
                    self.upload_missing_blobs(chain_id, ids, blobs).await?;
                }
                Err(NodeError::InvalidTimestamp {
                    block_timestamp,
                    local_time,
                }) if timestamp_waits < MAX_TIMESTAMP_WAITS => {
                    timestamp_waits += 1;
                    self.recover(RecoveryKind::ClockSkew)?;
                    // skew = max(0, our send time − the remote's time) (DESIGN §5.4.1).
                    let skew = sent_at.saturating_since(local_time);
                    if let Some(reports) = skew_reports {
                        let micros = i64::try_from(skew.as_micros()).unwrap_or(i64::MAX);
                        let _ = reports.send((self.remote.public_key, micros));
                    }
                    let wait = Duration::from_micros(
                        block_timestamp.saturating_since(local_time).as_micros(),
                    );
                    if wait > self.options.max_clock_skew {
                        warn!(validator = ?self.remote.public_key, ?wait, "validator clock too far behind");
                        return Err(NodeError::InvalidTimestamp {
                            block_timestamp,
                            local_time,
                        });
                    }
                    // The remote's clock reads the block's timestamp when ours reads it plus
                    // the skew; the wait goes through the node's clock.
                    self.local
                        .clock()
                        .sleep_until(block_timestamp.saturating_add(skew))
                        .await;
                }
                Err(error) => {
                    if is_retryable(&error) {
                        // Unreachable or slow validators are routine; the quorum absorbs them.
                        debug!(validator = ?self.remote.public_key, %error, "proposal not delivered");
                    } else if !error.is_expected() {
                        warn!(validator = ?self.remote.public_key, %error, "proposal refused");
                    }
                    return Err(error);
                }
            }
        }
        Err(violation(Violation::RepeatedRecovery))
    }

    /// Uploads the proposal's own blobs as pending blobs, then makes sure the remote has the
    /// other required blobs by sending the blocks that published them.
    async fn upload_missing_blobs(
        &self,
        chain_id: ChainId,
        blob_ids: Vec<BlobId>,
        own: &[Blob],
    ) -> Result<(), NodeError> {
        let own_ids: BTreeSet<BlobId> = own.iter().map(Blob::id).collect();
        for blob in own {
            self.call(|| self.remote.node.handle_pending_blob(chain_id, blob.clone()))
                .await?;
        }
        let others: Vec<BlobId> = blob_ids
            .into_iter()
            .filter(|id| !own_ids.contains(id))
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        let missing = self
            .call(|| self.remote.node.missing_blob_ids(others.clone()))
            .await?;
        if !missing.iter().all(|id| others.contains(id)) {
            return Err(violation(Violation::FalseBlobsNotFound));
        }
        // The highest publishing height per chain: sending up to it covers the others.
        let mut targets: BTreeMap<ChainId, BlockHeight> = BTreeMap::new();
        for id in missing {
            let state = self
                .local
                .storage()
                .read_blob_state(id)
                .await?
                .ok_or(NodeError::BlobsNotFound(vec![id]))?;
            let target = targets.entry(state.chain_id).or_default();
            *target = (*target).max(state.height.try_next().unwrap_or(state.height));
        }
        for (chain, target) in targets {
            self.send_chain_information(chain, target, CrossChainDelivery::NonBlocking, 0)
                .await?;
        }
        Ok(())
    }

    /// Sends a validated certificate, lite first (DESIGN §5.2.2).
    async fn send_validated_certificate(
        &self,
        certificate: &ValidatedBlockCertificate,
        blobs: &[Blob],
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let block = certificate.value().block();
        let chain_id = block.chain_id;
        let send = || async {
            match self
                .call(|| {
                    self.remote
                        .node
                        .handle_lite_certificate(certificate.lite(), delivery)
                })
                .await
            {
                Err(NodeError::MissingCertificateValue) => {
                    self.call(|| {
                        self.remote
                            .node
                            .handle_validated_certificate(certificate.clone())
                    })
                    .await
                }
                other => other,
            }
        };
        let error = match send().await {
            Ok(response) => {
                self.check_response(&response, chain_id)?;
                return Ok(response);
            }
            Err(error) => error,
        };
        match &error {
            NodeError::BlobsNotFound(claimed) => {
                let required: BTreeSet<BlobId> = block.required_blob_ids().into_iter().collect();
                if !claimed.iter().all(|id| required.contains(id)) {
                    return Err(violation(Violation::FalseBlobsNotFound));
                }
                self.recover(RecoveryKind::Blobs)?;
                self.upload_missing_blobs(chain_id, claimed.clone(), blobs)
                    .await?;
            }
            error => {
                self.sync_if_needed(chain_id, block.height, certificate.round(), error)
                    .await?
            }
        }
        let response = send().await?;
        self.check_response(&response, chain_id)?;
        Ok(response)
    }

    /// Asks for a timeout vote (DESIGN §5.2.3).
    async fn request_timeout(
        &self,
        chain_id: ChainId,
        height: BlockHeight,
        round: Round,
    ) -> Result<ChainInfoResponse, NodeError> {
        let query = ChainInfoQuery::new(chain_id).with_timeout(height, round);
        let response = match self
            .call(|| self.remote.node.handle_chain_info_query(query.clone()))
            .await
        {
            Ok(response) => response,
            Err(error) => {
                self.sync_if_needed(chain_id, height, round, &error).await?;
                self.call(|| self.remote.node.handle_chain_info_query(query.clone()))
                    .await?
            }
        };
        self.check_response(&response, chain_id)?;
        Ok(response)
    }

    /// Given an error about `chain_id` at `height`/`round`: if the remote is ahead, brings the
    /// local node up to date from it; if it is behind or lacks the chain, sends it the chain
    /// (DESIGN §5.2.4). Other errors are returned as they are.
    pub async fn sync_if_needed(
        &self,
        chain_id: ChainId,
        height: BlockHeight,
        round: Round,
        error: &NodeError,
    ) -> Result<(), NodeError> {
        let local_next = self.local.chain_state(chain_id).await?.next_height;
        match error {
            NodeError::WrongRound(remote_round) if *remote_round > round => {
                self.synchronize_round_from_remote(chain_id).await
            }
            NodeError::UnexpectedBlockHeight {
                expected_block_height,
                ..
            } if *expected_block_height > local_next => {
                self.synchronize_chain_from_remote(chain_id, *expected_block_height)
                    .await
            }
            NodeError::UnexpectedBlockHeight {
                expected_block_height,
                ..
            } if *expected_block_height < local_next => {
                self.send_chain_information(
                    chain_id,
                    local_next,
                    CrossChainDelivery::NonBlocking,
                    0,
                )
                .await
            }
            NodeError::WrongRound(_) | NodeError::InactiveChain(_) => {
                self.send_chain_information(
                    chain_id,
                    height.max(local_next),
                    CrossChainDelivery::NonBlocking,
                    0,
                )
                .await
            }
            other => Err(other.clone()),
        }
    }

    /// Downloads, checks and processes locally the remote's certificates of `chain_id` up to
    /// (excluding) `target`.
    pub async fn synchronize_chain_from_remote(
        &self,
        chain_id: ChainId,
        target: BlockHeight,
    ) -> Result<(), NodeError> {
        let batch_size = upload_batch_size(&self.options) as u64;
        loop {
            let next = self.local.chain_state(chain_id).await?.next_height;
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
            if self.local.chain_state(chain_id).await?.next_height <= next {
                return Err(violation(Violation::BadCertificate));
            }
        }
    }

    /// Processes a downloaded certificate on the local node, which checks its signatures
    /// against the right committee first. Blobs the block needs and the local node lacks are
    /// downloaded from the remote with it (each checked against its id), once.
    async fn process_downloaded(
        &self,
        certificate: ConfirmedBlockCertificate,
    ) -> Result<(), NodeError> {
        let process = |certificate: ConfirmedBlockCertificate| async move {
            quorum_core::ValidatorNode::handle_confirmed_certificate(
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
        match process(certificate.clone()).await {
            Err(NodeError::BlobsNotFound(missing)) => {
                let required: BTreeSet<BlobId> = certificate
                    .value()
                    .block()
                    .required_blob_ids()
                    .into_iter()
                    .collect();
                if !missing.iter().all(|id| required.contains(id)) {
                    // The local node asks only for what the block needs; anything else is ours.
                    return Err(NodeError::BlobsNotFound(missing));
                }
                self.recover(RecoveryKind::Blobs)?;
                for id in missing {
                    let blob = self.call(|| self.remote.node.download_blob(id)).await?;
                    if blob.id() != id {
                        return Err(violation(Violation::BadCertificate));
                    }
                    quorum_core::ValidatorNode::upload_blob(&*self.local, blob).await?;
                }
                process(certificate).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// Learns the remote's round evidence (timeout and validated certificates) and processes it
    /// locally.
    async fn synchronize_round_from_remote(&self, chain_id: ChainId) -> Result<(), NodeError> {
        let query = ChainInfoQuery::new(chain_id).with_manager_values();
        let response = self
            .call(|| self.remote.node.handle_chain_info_query(query.clone()))
            .await?;
        self.check_response(&response, chain_id)?;
        let local_next = self.local.chain_state(chain_id).await?.next_height;
        if response.info.next_block_height > local_next {
            self.synchronize_chain_from_remote(chain_id, response.info.next_block_height)
                .await?;
        }
        let manager = &response.info.manager;
        if let Some(certificate) = &manager.timeout_certificate {
            let _ = quorum_core::ValidatorNode::handle_timeout_certificate(
                &*self.local,
                (**certificate).clone(),
            )
            .await;
        }
        if let Some(certificate) = &manager.requested_locking {
            let _ = quorum_core::ValidatorNode::handle_validated_certificate(
                &*self.local,
                (**certificate).clone(),
            )
            .await;
        }
        Ok(())
    }

    /// Sends a confirmed certificate, lite first when `try_lite`, repairing missing admin-chain
    /// epochs, blobs, cross-chain updates and chain descriptions (DESIGN §5.2.5).
    pub async fn send_confirmed_certificate(
        &self,
        certificate: &ConfirmedBlockCertificate,
        delivery: CrossChainDelivery,
        try_lite: bool,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.send_confirmed_certificate_at(certificate, delivery, try_lite, 0)
            .await
    }

    fn send_confirmed_certificate_at<'a>(
        &'a self,
        certificate: &'a ConfirmedBlockCertificate,
        delivery: CrossChainDelivery,
        try_lite: bool,
        depth: usize,
    ) -> BoxFuture<'a, Result<ChainInfoResponse, NodeError>> {
        async move {
            let block = certificate.value().block();
            let chain_id = block.chain_id;
            let mut use_lite = try_lite;
            let mut admin_updated = false;
            let mut blobs_uploaded = false;
            let mut description_sent = false;
            let mut cross_chain_sent: BTreeMap<ChainId, BlockHeight> = BTreeMap::new();
            for _ in 0..MAX_RECOVERIES_PER_CALL {
                let result = if use_lite {
                    self.call(|| {
                        self.remote
                            .node
                            .handle_lite_certificate(certificate.lite(), delivery)
                    })
                    .await
                } else {
                    self.call(|| {
                        self.remote
                            .node
                            .handle_confirmed_certificate(certificate.clone(), delivery)
                    })
                    .await
                };
                match result {
                    Ok(response) => {
                        self.check_response(&response, chain_id)?;
                        return Ok(response);
                    }
                    Err(NodeError::MissingCertificateValue) if use_lite => use_lite = false,
                    Err(NodeError::EventsNotFound(ids))
                        if !admin_updated
                            && chain_id != self.admin_chain
                            && ids.iter().all(|id| {
                                id.chain_id == self.admin_chain && id.stream == StreamId::epoch()
                            }) =>
                    {
                        admin_updated = true;
                        self.recover(RecoveryKind::Committee)?;
                        let target = self.local.chain_state(self.admin_chain).await?.next_height;
                        self.send_chain_information(
                            self.admin_chain,
                            target,
                            CrossChainDelivery::NonBlocking,
                            depth,
                        )
                        .await?;
                    }
                    Err(NodeError::BlobsNotFound(claimed)) if !blobs_uploaded => {
                        blobs_uploaded = true;
                        self.recover(RecoveryKind::Blobs)?;
                        let required: BTreeSet<BlobId> =
                            block.required_blob_ids().into_iter().collect();
                        if !claimed.iter().all(|id| required.contains(id)) {
                            return Err(violation(Violation::FalseBlobsNotFound));
                        }
                        for id in claimed {
                            let blob = self
                                .local
                                .storage()
                                .read_blob(id)
                                .await?
                                .ok_or(NodeError::BlobsNotFound(vec![id]))?;
                            self.call(|| self.remote.node.upload_blob(blob.clone()))
                                .await?;
                        }
                        use_lite = false;
                    }
                    Err(NodeError::MissingCrossChainUpdate {
                        chain_id: receiver,
                        origin,
                        height,
                    }) if receiver == chain_id
                        && cross_chain_sent
                            .get(&origin)
                            .is_none_or(|sent| *sent < height) =>
                    {
                        check_bundle_claim(block, origin, height)?;
                        cross_chain_sent.insert(origin, height);
                        self.recover(RecoveryKind::CrossChain)?;
                        let target = height
                            .try_next()
                            .ok_or(violation(Violation::RepeatedRecovery))?;
                        self.send_chain_information(
                            origin,
                            target,
                            CrossChainDelivery::Blocking,
                            depth,
                        )
                        .await?;
                    }
                    Err(NodeError::InactiveChain(inactive))
                        if inactive == chain_id && !description_sent =>
                    {
                        description_sent = true;
                        self.recover(RecoveryKind::InactiveChain)?;
                        self.send_chain_description(chain_id, depth).await?;
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(violation(Violation::RepeatedRecovery))
        }
        .boxed()
    }

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

    async fn local_certificate(
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

    /// Round sync, once the remote is at our height (DESIGN §5.2.6). Best effort: failures are
    /// only logged.
    ///
    /// * If the remote is in an earlier round: the locking validated certificate when its round
    ///   is ahead of the remote's (it moves the remote to that round and locks it, the strongest
    ///   evidence), then the timeout certificate if the remote is still behind (it moves the
    ///   remote past that round).
    /// * If the remote is in our round but has not voted in it: our proposal of that round, so
    ///   it holds the value (lite certificates then work) and votes.
    ///
    /// DESIGN lists the proposal first; but a proposal of a later round is refused with
    /// `WrongRound` by a remote in an earlier one, so it only helps once the rounds match.
    async fn sync_round(&self, chain_id: ChainId, remote_info: Option<ChainInfoResponse>) {
        let Ok(local) = self.local.chain_state(chain_id).await else {
            return;
        };
        let mut remote = match remote_info {
            Some(info) => info,
            None => match self.query(chain_id).await {
                Some(info) => info,
                None => return,
            },
        };
        if remote.info.next_block_height != local.next_height {
            return;
        }
        let manager = &local.manager;
        if let Some(certificate) = &manager.locking_certificate {
            if certificate.round() > remote.info.manager.current_round {
                let sent = self
                    .call(|| {
                        self.remote
                            .node
                            .handle_validated_certificate((**certificate).clone())
                    })
                    .await;
                match sent {
                    Ok(response) => remote = response,
                    Err(error) => {
                        debug!(validator = ?self.remote.public_key, %error, "round sync: locking block refused")
                    }
                }
            }
        }
        if let Some(certificate) = &manager.timeout_certificate {
            if certificate.round() >= remote.info.manager.current_round {
                let sent = self
                    .call(|| {
                        self.remote
                            .node
                            .handle_timeout_certificate((**certificate).clone())
                    })
                    .await;
                match sent {
                    Ok(response) => remote = response,
                    Err(error) => {
                        debug!(validator = ?self.remote.public_key, %error, "round sync: timeout certificate refused")
                    }
                }
            }
        }
        if let Some(proposal) = &manager.proposed {
            let same_round = proposal.round() == remote.info.manager.current_round;
            // No vote in this round: none at all, or one left from an earlier round.
            let voted_here = remote
                .info
                .manager
                .pending
                .as_ref()
                .is_some_and(|vote| vote.round >= proposal.round());
            if same_round && !voted_here {
                let sent = self
                    .call(|| self.remote.node.handle_block_proposal((**proposal).clone()))
                    .await;
                if let Err(error) = sent {
                    debug!(validator = ?self.remote.public_key, %error, "round sync: proposal refused");
                }
            }
        }
    }

    async fn query(&self, chain_id: ChainId) -> Option<ChainInfoResponse> {
        let query = ChainInfoQuery::new(chain_id);
        match self
            .call(|| self.remote.node.handle_chain_info_query(query.clone()))
            .await
        {
            Ok(info) if info.info.chain_id == chain_id => Some(info),
            Ok(_) => None,
            Err(error) => {
                debug!(%error, "round sync: query failed");
                None
            }
        }
    }
}
