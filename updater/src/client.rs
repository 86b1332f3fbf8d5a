//! `ChainClient`: the full life cycle of blocks on one chain (DESIGN §5.5).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use quorum_core::chain::MAX_INCOMING_BUNDLES_PER_BLOCK;
use quorum_core::manager::{leader, round_duration};
use quorum_core::{
    AccountPublicKey, AccountSecretKey, Blob, BlobId, Block, BlockHeight, BlockProposal,
    BlockValue, Certificate, CertificateError, ChainDescription, ChainId, ChainInfoQuery,
    ChainInfoResponse, ChainOrigin, Committee, ConfirmedBlock, ConfirmedBlockCertificate,
    ConsensusConfig, CrossChainDelivery, Epoch, EventId, Hashed, IncomingBundle, LiteVote,
    NodeError, Operation, Round, Storage, StreamId, TimeDelta, Timeout, TimeoutCertificate,
    Timestamp, ValidatedBlock, ValidatedBlockCertificate, ValidatorNode, ValidatorPublicKey,
};
use quorum_node::Worker;

use crate::skew::clock_ahead;

use crate::options::Options;
use crate::quorum::{communicate_with_quorum, QuorumError, QuorumTiming};
use crate::remote::RemoteNode;
use crate::stats::RecoveryStats;
use crate::updater::{CommunicateAction, SkewReport, ValidatorUpdater};

/// Most rounds one block is tried in before the client gives up.
pub const MAX_ROUNDS_PER_BLOCK: u32 = 8;
/// Most times the client waits for validators' round deadlines per round.
pub const MAX_TIMEOUT_WAITS: u32 = 4;
/// How long the client waits before asking for timeout votes again when the answers named no
/// deadline a quorum agrees on (100 ms).
pub const TIMEOUT_RETRY_DELAY: TimeDelta = TimeDelta::from_millis(100);

/// The deadline by which validators holding a quorum of the weight say a round is due: the
/// quorum-th smallest of their deadlines, by weight. Each validator counts once (its earliest
/// deadline). Validators that named no deadline (a quorum call stops as soon as no quorum is
/// possible) may be due any time: their weight counts from the start, so the answer is the
/// earliest instant at which a quorum can be due, never later than the real one. `None` when
/// nobody named a deadline.
pub fn quorum_deadline(
    committee: &Committee,
    deadlines: &[(ValidatorPublicKey, Timestamp)],
) -> Option<Timestamp> {
    let mut earliest: BTreeMap<ValidatorPublicKey, Timestamp> = BTreeMap::new();
    for (validator, deadline) in deadlines {
        let entry = earliest.entry(*validator).or_insert(*deadline);
        *entry = (*entry).min(*deadline);
    }
    let mut sorted: Vec<(Timestamp, u64)> = earliest
        .into_iter()
        .map(|(validator, deadline)| (deadline, committee.weight(&validator)))
        .collect();
    let named = sorted
        .iter()
        .fold(0u64, |sum, (_, weight)| sum.saturating_add(*weight));
    let mut weight = committee.total_votes().saturating_sub(named);
    sorted.sort_unstable();
    for (deadline, validator_weight) in sorted {
        weight = weight.saturating_add(validator_weight);
        if weight >= committee.quorum_threshold() {
            return Some(deadline);
        }
    }
    None
}

/// Why a chain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainClientError {
    /// The validators did not agree.
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// The local node refused (the block is invalid, or something is missing locally).
    #[error("local node: {0}")]
    Local(NodeError),
    /// This client has no owner key for the chain.
    #[error("no owner key for this chain")]
    NotOwner,
    /// The validators did not agree, and those holding at least f+1 of the weight say our
    /// clock is ahead of theirs by more than their timestamp grace: the likely cause, attached
    /// to the real error.
    #[error(
        "our clock is ahead of validators holding f+1 of the weight, by about {skew_micros} µs: {error}"
    )]
    ClockAhead {
        /// The weighted median of the skews reported (one per validator), in microseconds.
        skew_micros: i64,
        /// What the validators answered.
        error: Box<QuorumError>,
    },
    /// The certified value is not the block this client computed.
    #[error("validators certified another value than the one proposed")]
    UnexpectedValue,
    /// The assembled certificate did not check.
    #[error("assembled certificate is invalid: {0}")]
    Certificate(#[from] CertificateError),
    /// Rounds ran out.
    #[error("gave up after {0} rounds")]
    TooManyRounds(u32),
    /// A synchronization stopped short of the height that validators holding f+1 of the
    /// weight have reached.
    #[error("synchronization of {chain_id:?} reached {reached:?}, not {target:?}; last error: {error:?}")]
    SyncIncomplete {
        /// The chain.
        chain_id: ChainId,
        /// The local next height reached.
        reached: BlockHeight,
        /// The next height validators holding f+1 of the weight have.
        target: BlockHeight,
        /// Why the last attempt stopped (e.g. `BlobsNotFound` naming the missing blobs).
        error: Option<Box<NodeError>>,
    },
    /// A committee the client needs has no reachable validators.
    #[error("no validator of {0:?} is reachable")]
    NoValidators(Epoch),
}

impl From<NodeError> for ChainClientError {
    fn from(error: NodeError) -> Self {
        ChainClientError::Local(error)
    }
}

/// The highest next height that validators holding at least the validity threshold (f+1) of
/// the weight report, from signed chain information sorted by height, highest first.
fn trusted_height(committee: &Committee, infos: &[(RemoteNode, ChainInfoResponse)]) -> BlockHeight {
    let mut weight = 0u64;
    for (remote, response) in infos {
        weight = weight.saturating_add(committee.weight(&remote.public_key));
        if weight >= committee.validity_threshold() {
            return response.info.next_block_height;
        }
    }
    BlockHeight(0)
}

/// Every validator the client may talk to, by key, shared by the clients of one process.
#[derive(Clone, Default)]
pub struct ValidatorSet {
    nodes: Arc<RwLock<BTreeMap<ValidatorPublicKey, Arc<dyn ValidatorNode>>>>,
}

impl ValidatorSet {
    /// An empty set.
    pub fn new() -> Self {
        ValidatorSet::default()
    }

    /// Adds (or replaces) how to reach a validator.
    pub fn insert(&self, key: ValidatorPublicKey, node: Arc<dyn ValidatorNode>) {
        if let Ok(mut nodes) = self.nodes.write() {
            nodes.insert(key, node);
        }
    }

    /// The reachable members of `committee`.
    pub fn remotes(&self, committee: &Committee) -> Vec<RemoteNode> {
        let Ok(nodes) = self.nodes.read() else {
            return Vec::new();
        };
        committee
            .voting_members()
            .filter_map(|(key, _)| {
                nodes
                    .get(key)
                    .map(|node| RemoteNode::new(*key, node.clone()))
            })
            .collect()
    }
}

/// Drives blocks of one chain through the committee, bringing validators up to date on the way.
pub struct ChainClient<S> {
    chain_id: ChainId,
    owner: Option<AccountSecretKey>,
    local: Arc<Worker<S>>,
    validators: ValidatorSet,
    options: Arc<Options>,
    stats: Arc<RecoveryStats>,
    latencies: Arc<RwLock<Vec<QuorumTiming>>>,
}

impl<S> Clone for ChainClient<S> {
    fn clone(&self) -> Self {
        ChainClient {
            chain_id: self.chain_id,
            owner: self.owner.clone(),
            local: self.local.clone(),
            validators: self.validators.clone(),
            options: self.options.clone(),
            stats: self.stats.clone(),
            latencies: self.latencies.clone(),
        }
    }
}

impl<S: Storage + 'static> ChainClient<S> {
    /// A client for `chain_id`, owned by `owner` (none: read only), over the local node `local`
    /// (a Worker without key) and the validators in `validators`.
    pub fn new(
        chain_id: ChainId,
        owner: Option<AccountSecretKey>,
        local: Arc<Worker<S>>,
        validators: ValidatorSet,
        options: Options,
    ) -> Self {
        ChainClient {
            chain_id,
            owner,
            local,
            validators,
            options: Arc::new(options),
            stats: Arc::new(RecoveryStats::default()),
            latencies: Arc::new(RwLock::new(Vec::new())),
        }
    }

    /// A client for another chain sharing this one's local node, validators, options and
    /// statistics.
    pub fn for_chain(&self, chain_id: ChainId, owner: Option<AccountSecretKey>) -> Self {
        ChainClient {
            chain_id,
            owner,
            ..self.clone()
        }
    }

    /// The chain.
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// The local node.
    pub fn local(&self) -> &Arc<Worker<S>> {
        &self.local
    }

    /// Repairs performed so far, by kind.
    pub fn stats(&self) -> &Arc<RecoveryStats> {
        &self.stats
    }

    /// Timings of the quorum calls made so far.
    pub fn timings(&self) -> Vec<QuorumTiming> {
        self.latencies.read().map(|l| l.clone()).unwrap_or_default()
    }

    fn admin_chain(&self) -> ChainId {
        self.local.config().admin_chain
    }

    fn updater(&self, remote: RemoteNode) -> ValidatorUpdater<S> {
        ValidatorUpdater::new(
            remote,
            self.local.clone(),
            self.admin_chain(),
            self.options.clone(),
            self.stats.clone(),
        )
    }

    async fn committee_and_remotes(
        &self,
        epoch: Epoch,
    ) -> Result<(Arc<Committee>, Vec<RemoteNode>), ChainClientError> {
        let committee = self.local.committee(epoch).await?;
        let remotes = self.validators.remotes(&committee);
        if remotes.is_empty() {
            return Err(ChainClientError::NoValidators(epoch));
        }
        Ok((committee, remotes))
    }

    fn record(&self, timing: QuorumTiming) {
        if let Ok(mut latencies) = self.latencies.write() {
            latencies.push(timing);
        }
    }

    /// Collects the votes of a quorum for `action`.
    async fn collect_votes(
        &self,
        committee: &Committee,
        remotes: &[RemoteNode],
        action: CommunicateAction,
    ) -> Result<Vec<(ValidatorPublicKey, LiteVote)>, QuorumError> {
        let ((_, votes), timing) = communicate_with_quorum(
            remotes,
            committee,
            &self.options,
            |vote: &LiteVote| (vote.value_hash, vote.kind, vote.round),
            |remote| {
                let updater = self.updater(remote);
                let action = action.clone();
                async move { updater.send_chain_update(action).await }
            },
        )
        .await?;
        self.record(timing);
        Ok(votes)
    }

    /// The block this chain would commit next with `operations`: on top of the local state,
    /// consuming the bundles waiting in the local inbox, at most
    /// [`MAX_INCOMING_BUNDLES_PER_BLOCK`] of them (the rest wait for the next block).
    pub async fn make_block(&self, operations: Vec<Operation>) -> Result<Block, ChainClientError> {
        let owner = self.owner.as_ref().ok_or(ChainClientError::NotOwner)?;
        let state = self.local.chain_state(self.chain_id).await?;
        state.description()?;
        // At most what execution takes in one block; the rest wait for the next block.
        let incoming_bundles: Vec<IncomingBundle> = state
            .inboxes
            .iter()
            .flat_map(|(origin, inbox)| {
                inbox
                    .bundles
                    .iter()
                    .map(move |(height, messages)| IncomingBundle {
                        origin: *origin,
                        height: *height,
                        messages: messages.clone(),
                    })
            })
            .take(MAX_INCOMING_BUNDLES_PER_BLOCK)
            .collect();
        let now = self.local.clock().now();
        Ok(Block {
            chain_id: self.chain_id,
            epoch: state.epoch,
            height: state.next_height,
            timestamp: now.max(state.timestamp),
            previous_block_hash: state.tip_hash,
            authenticated_owner: owner.public(),
            incoming_bundles,
            operations,
        })
    }

    /// Commits a block with `operations` (and the contents of the blobs it publishes), going
    /// through rounds as needed. Returns its confirmed certificate.
    pub async fn execute_operations(
        &self,
        operations: Vec<Operation>,
        blobs: Vec<Blob>,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > MAX_ROUNDS_PER_BLOCK {
                return Err(ChainClientError::TooManyRounds(MAX_ROUNDS_PER_BLOCK));
            }
            let block = self.make_block(operations.clone()).await?;
            let state = self.local.chain_state(self.chain_id).await?;
            // A block validated by a quorum at this height must be re-proposed before ours.
            let locked = state
                .manager
                .locking_certificate
                .as_ref()
                .filter(|certificate| certificate.value().block().height == block.height)
                .map(|certificate| (**certificate).clone());
            let round = state.manager.current_round;
            let owner = self.owner.as_ref().ok_or(ChainClientError::NotOwner)?;
            // In a single-leader round only the leader proposes: another owner waits for the
            // round's timeout and tries the next round (DESIGN §5.4.1).
            if let Round::SingleLeader(_) = round {
                let leader = leader(state.description()?, self.chain_id, block.height, round);
                if leader != Some(owner.public()) {
                    debug!(?round, "not this round's leader: timing the round out");
                    self.time_out_round(round).await?;
                    continue;
                }
            }
            let (proposal, value, own) = match locked {
                Some(certificate) if *certificate.value().block() != block => {
                    let value = certificate.value().inner().0.clone();
                    (
                        BlockProposal::new_retry(round, certificate, owner),
                        value,
                        false,
                    )
                }
                _ => {
                    let value = self.local.stage_block_execution(&block, &blobs).await?;
                    (BlockProposal::new(block, round, owner), value, true)
                }
            };
            match self
                .propose(
                    proposal,
                    value,
                    if own { blobs.clone() } else { Vec::new() },
                )
                .await
            {
                Ok(certificate) => {
                    if own {
                        return Ok(certificate);
                    }
                }
                Err(error) => self.recover_round(round, error).await?,
            }
        }
    }

    /// Runs one proposal through a quorum, to a confirmed certificate processed locally and
    /// broadcast.
    async fn propose(
        &self,
        proposal: BlockProposal,
        value: BlockValue,
        blobs: Vec<Blob>,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        let epoch = proposal.block().epoch;
        let (committee, remotes) = self.committee_and_remotes(epoch).await?;
        let round = proposal.round();
        let blob_ids = proposal.block().required_blob_ids();
        let (skew_sender, mut skew_receiver) = mpsc::unbounded_channel::<SkewReport>();
        // The local node needs the blobs the block publishes to execute it once confirmed.
        for blob in &blobs {
            ValidatorNode::handle_pending_blob(&*self.local, self.chain_id, blob.clone()).await?;
        }
        // The local node records the proposal, as evidence of our round for lagging validators.
        let _ = ValidatorNode::handle_block_proposal(&*self.local, proposal.clone()).await;
        let action = CommunicateAction::SubmitBlock {
            proposal: Box::new(proposal.clone()),
            blob_ids,
            blobs: blobs.clone(),
            skew_reports: Some(skew_sender),
        };
        let result = self.collect_votes(&committee, &remotes, action).await;
        let mut reports = Vec::new();
        while let Ok(report) = skew_receiver.try_recv() {
            self.stats.record_skew(report.1);
            reports.push(report);
        }
        let votes = match result {
            Ok(votes) => votes,
            Err(error) => return Err(self.explain_failure(error, &committee, reports)),
        };
        let signatures: Vec<_> = votes
            .iter()
            .map(|(key, vote)| (*key, vote.signature))
            .collect();
        let confirmed = if round.is_fast() {
            let value = Hashed::new(ConfirmedBlock(value));
            if votes.first().map(|(_, v)| v.value_hash) != Some(value.hash()) {
                return Err(ChainClientError::UnexpectedValue);
            }
            let certificate = Certificate::new(value, round, signatures);
            certificate.check(&committee)?;
            certificate
        } else {
            let value = Hashed::new(ValidatedBlock(value));
            if votes.first().map(|(_, v)| v.value_hash) != Some(value.hash()) {
                return Err(ChainClientError::UnexpectedValue);
            }
            let validated: ValidatedBlockCertificate = Certificate::new(value, round, signatures);
            validated.check(&committee)?;
            let _ =
                ValidatorNode::handle_validated_certificate(&*self.local, validated.clone()).await;
            self.finalize(&committee, &remotes, validated, blobs)
                .await?
        };
        self.local
            .handle_confirmed_certificate(confirmed.clone(), CrossChainDelivery::Blocking)
            .await?;
        self.broadcast(&committee, &remotes, &confirmed).await;
        Ok(confirmed)
    }

    /// Second phase: turns a validated certificate into a confirmed one.
    async fn finalize(
        &self,
        committee: &Committee,
        remotes: &[RemoteNode],
        validated: ValidatedBlockCertificate,
        blobs: Vec<Blob>,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        let round = validated.round();
        let value = Hashed::new(validated.value().to_confirmed());
        let action = CommunicateAction::FinalizeBlock {
            certificate: Box::new(validated),
            blobs,
            delivery: CrossChainDelivery::NonBlocking,
        };
        let votes = self.collect_votes(committee, remotes, action).await?;
        if votes.first().map(|(_, v)| v.value_hash) != Some(value.hash()) {
            return Err(ChainClientError::UnexpectedValue);
        }
        let signatures = votes
            .iter()
            .map(|(key, vote)| (*key, vote.signature))
            .collect();
        let certificate = Certificate::new(value, round, signatures);
        certificate.check(committee)?;
        Ok(certificate)
    }

    /// Makes sure a quorum has the confirmed certificate; the others keep being updated in the
    /// background within the catch-up budget.
    async fn broadcast(
        &self,
        committee: &Committee,
        remotes: &[RemoteNode],
        certificate: &ConfirmedBlockCertificate,
    ) {
        let block = certificate.value().block();
        let (chain_id, target) = (
            block.chain_id,
            block.height.try_next().unwrap_or(block.height),
        );
        // Sending chain information up to the block sends the certificate itself first (lite
        // when the validator voted) and, to a validator that lags, everything it misses.
        let result = communicate_with_quorum(
            remotes,
            committee,
            &self.options,
            |_: &()| (),
            |remote| {
                let updater = self.updater(remote);
                async move {
                    updater
                        .send_chain_information(
                            chain_id,
                            target,
                            CrossChainDelivery::NonBlocking,
                            0,
                        )
                        .await
                }
            },
        )
        .await;
        match result {
            Ok((_, timing)) => self.record(timing),
            Err(error) => warn!(%error, "a quorum did not take the confirmed certificate"),
        }
    }

    fn explain_failure(
        &self,
        error: QuorumError,
        committee: &Committee,
        reports: Vec<SkewReport>,
    ) -> ChainClientError {
        let grace = self.local.config().timestamp_grace;
        match clock_ahead(committee, &reports, grace) {
            Some(skew_micros) => ChainClientError::ClockAhead {
                skew_micros,
                error: Box::new(error),
            },
            None => ChainClientError::Quorum(error),
        }
    }

    /// After a failed round: catch up with validators, and time the round out if it stalled.
    async fn recover_round(
        &self,
        round: Round,
        error: ChainClientError,
    ) -> Result<(), ChainClientError> {
        let retriable = match &error {
            ChainClientError::Quorum(QuorumError::NoConsensus { .. }) => true,
            ChainClientError::Quorum(quorum) => matches!(
                quorum.main_error(),
                Some(
                    NodeError::WrongRound(_)
                        | NodeError::HasLockedBlock
                        | NodeError::AlreadyVoted
                        | NodeError::UnexpectedBlockHeight { .. }
                        | NodeError::Timeout
                        | NodeError::Transport(_)
                        | NodeError::ProtocolViolation(_)
                        | NodeError::InvalidCertificate(_)
                )
            ),
            _ => false,
        };
        if !retriable {
            return Err(error);
        }
        debug!(%error, ?round, "round failed; synchronizing");
        self.synchronize_from_validators().await?;
        let state = self.local.chain_state(self.chain_id).await?;
        if state.manager.current_round > round
            || state.next_height > BlockHeight(0) && self.moved_on(&error)
        {
            return Ok(());
        }
        self.time_out_round(round).await
    }

    fn moved_on(&self, error: &ChainClientError) -> bool {
        matches!(
            error,
            ChainClientError::Quorum(q) if matches!(q.main_error(), Some(NodeError::UnexpectedBlockHeight { .. }))
        )
    }

    /// Obtains a timeout certificate for `round` at the current height and moves every validator
    /// (and the local node) past it.
    ///
    /// While the round is not due, it waits until the deadline by which validators holding a
    /// quorum of the weight agree it is due (the quorum-th smallest deadline by weight), never
    /// for the largest one a single validator names, and never beyond the round's duration
    /// plus [`Options::max_clock_skew`] (DESIGN §5.4.1). Waits go through the node's clock.
    pub async fn time_out_round(&self, round: Round) -> Result<(), ChainClientError> {
        let state = self.local.chain_state(self.chain_id).await?;
        let (committee, remotes) = self.committee_and_remotes(state.epoch).await?;
        let height = state.next_height;
        let duration = round_duration(&state.description()?.consensus, round);
        let allowance =
            TimeDelta(u64::try_from(self.options.max_clock_skew.as_micros()).unwrap_or(u64::MAX));
        let mut waits = 0;
        let votes = loop {
            let action = CommunicateAction::RequestTimeout {
                chain_id: self.chain_id,
                height,
                round,
            };
            let due: Arc<Mutex<Vec<(ValidatorPublicKey, Timestamp)>>> = Arc::default();
            let result = communicate_with_quorum(
                &remotes,
                &committee,
                &self.options,
                |vote: &LiteVote| (vote.value_hash, vote.kind, vote.round),
                |remote| {
                    let updater = self.updater(remote.clone());
                    let action = action.clone();
                    let due = due.clone();
                    let clock = self.local.clock().clone();
                    async move {
                        let answer = updater.send_chain_update(action).await;
                        // When each validator says the round is due: now if it voted.
                        let deadline = match &answer {
                            Ok(_) => Some(clock.now()),
                            Err(NodeError::TimeoutNotDue { deadline }) => *deadline,
                            Err(_) => None,
                        };
                        if let (Some(deadline), Ok(mut due)) = (deadline, due.lock()) {
                            due.push((remote.public_key, deadline));
                        }
                        answer
                    }
                },
            )
            .await;
            match result {
                Ok(((_, votes), timing)) => {
                    self.record(timing);
                    break votes;
                }
                Err(error) => {
                    waits += 1;
                    if waits > MAX_TIMEOUT_WAITS {
                        return Err(error.into());
                    }
                    let now = self.local.clock().now();
                    let cap = now.saturating_add(duration).saturating_add(allowance);
                    let reported = due.lock().map(|due| due.clone()).unwrap_or_default();
                    let until = quorum_deadline(&committee, &reported)
                        .map(|deadline| deadline.min(cap))
                        .unwrap_or(now.saturating_add(TIMEOUT_RETRY_DELAY));
                    debug!(?round, ?until, "waiting for the round deadline");
                    // One millisecond past it, so that a validator's clock has passed it too.
                    self.local
                        .clock()
                        .sleep_until(until.saturating_add(TimeDelta::from_millis(1)))
                        .await;
                }
            }
        };
        let value = Hashed::new(Timeout {
            chain_id: self.chain_id,
            height,
            epoch: state.epoch,
        });
        let signatures = votes
            .iter()
            .map(|(key, vote)| (*key, vote.signature))
            .collect();
        let certificate: TimeoutCertificate = Certificate::new(value, round, signatures);
        certificate.check(&committee)?;
        ValidatorNode::handle_timeout_certificate(&*self.local, certificate.clone()).await?;
        let result = communicate_with_quorum(
            &remotes,
            &committee,
            &self.options,
            |_: &()| (),
            |remote| {
                let certificate = certificate.clone();
                async move {
                    remote
                        .node
                        .handle_timeout_certificate(certificate)
                        .await
                        .map(|_| ())
                }
            },
        )
        .await;
        if let Err(error) = result {
            warn!(%error, "timeout certificate not taken by a quorum");
        }
        info!(chain = ?self.chain_id, ?round, "round timed out");
        Ok(())
    }

    /// Brings the local node up to date with the validators on this chain: the highest height
    /// and the latest round evidence any of them has, every certificate checked.
    pub async fn synchronize_from_validators(&self) -> Result<(), ChainClientError> {
        self.synchronize_chain(self.chain_id).await
    }

    /// Brings the local node up to date on `chain_id` (for example a chain whose blobs or events
    /// this chain will read).
    pub async fn synchronize_chain(&self, chain_id: ChainId) -> Result<(), ChainClientError> {
        let state = self.local.chain_state(chain_id).await?;
        let epoch = state.epoch;
        let (committee, remotes) = self.committee_and_remotes(epoch).await?;
        let query = ChainInfoQuery::new(chain_id).with_manager_values();
        let mut infos = Vec::new();
        for remote in &remotes {
            let answer = tokio::time::timeout(
                self.options.request_timeout,
                remote.node.handle_chain_info_query(query.clone()),
            )
            .await;
            if let Ok(Ok(response)) = answer {
                if response.info.chain_id == chain_id && response.check(&remote.public_key).is_ok()
                {
                    infos.push((remote.clone(), response));
                }
            }
        }
        infos.sort_by_key(|(_, response)| std::cmp::Reverse(response.info.next_block_height));
        // The target: the highest height that validators holding f+1 of the weight (so at
        // least one honest one) have reached. A single validator claiming more is tried, but
        // not reaching its claim is no error.
        let target = trusted_height(&committee, &infos);
        let mut last_error = None;
        for (remote, response) in &infos {
            let local_next = self.local.chain_state(chain_id).await?.next_height;
            if response.info.next_block_height <= local_next {
                break;
            }
            let updater = self.updater(remote.clone());
            if let Err(error) = updater
                .synchronize_chain_from_remote(chain_id, response.info.next_block_height)
                .await
            {
                warn!(validator = ?remote.public_key, %error, "could not synchronize from validator");
                last_error = Some(error);
            }
        }
        let local_next = self.local.chain_state(chain_id).await?.next_height;
        if local_next < target {
            return Err(ChainClientError::SyncIncomplete {
                chain_id,
                reached: local_next,
                target,
                error: last_error.map(Box::new),
            });
        }
        for (_, response) in &infos {
            if response.info.next_block_height != local_next {
                continue;
            }
            let manager = &response.info.manager;
            if let Some(certificate) = &manager.timeout_certificate {
                if certificate.check(&committee).is_ok() {
                    let _ = ValidatorNode::handle_timeout_certificate(
                        &*self.local,
                        (**certificate).clone(),
                    )
                    .await;
                }
            }
            if let Some(certificate) = &manager.requested_locking {
                if certificate.check(&committee).is_ok() {
                    let _ = ValidatorNode::handle_validated_certificate(
                        &*self.local,
                        (**certificate).clone(),
                    )
                    .await;
                }
            }
        }
        Ok(())
    }

    /// Brings every validator of the chain's current committee up to the local node's height on
    /// `chain_id`, concurrently, each within the overall deadline. Returns the validators that
    /// could not be updated, with why.
    pub async fn update_validators(
        &self,
        chain_id: ChainId,
    ) -> Result<Vec<(ValidatorPublicKey, NodeError)>, ChainClientError> {
        let state = self.local.chain_state(chain_id).await?;
        let (_, remotes) = self.committee_and_remotes(state.epoch).await?;
        let target = state.next_height;
        let updates = remotes.into_iter().map(|remote| {
            let updater = self.updater(remote.clone());
            let deadline = self.options.deadline;
            async move {
                let result = tokio::time::timeout(
                    deadline,
                    updater.send_chain_information(
                        chain_id,
                        target,
                        CrossChainDelivery::NonBlocking,
                        0,
                    ),
                )
                .await
                .unwrap_or(Err(NodeError::Timeout));
                result.err().map(|error| (remote.public_key, error))
            }
        });
        Ok(futures::future::join_all(updates)
            .await
            .into_iter()
            .flatten()
            .collect())
    }

    /// Sends tokens to another chain.
    pub async fn transfer(
        &self,
        recipient: ChainId,
        amount: u64,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::Transfer { recipient, amount }], Vec::new())
            .await
    }

    /// Commits a block that only consumes the messages waiting in the inbox.
    pub async fn receive_messages(&self) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(Vec::new(), Vec::new()).await
    }

    /// Publishes a data blob; returns its id and the certificate.
    pub async fn publish_blob(
        &self,
        content: Vec<u8>,
    ) -> Result<(BlobId, ConfirmedBlockCertificate), ChainClientError> {
        let blob = Blob::data(content);
        let id = blob.id();
        let certificate = self
            .execute_operations(vec![Operation::PublishBlob(id)], vec![blob])
            .await?;
        Ok((id, certificate))
    }

    /// Commits a block that reads a blob published earlier (the local node must know it: see
    /// [`ChainClient::synchronize_chain`] for the publisher's chain).
    pub async fn read_blob(
        &self,
        id: BlobId,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::ReadBlob(id)], Vec::new())
            .await
    }

    /// Emits an event.
    pub async fn emit_event(
        &self,
        stream: StreamId,
        payload: Vec<u8>,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::EmitEvent { stream, payload }], Vec::new())
            .await
    }

    /// Commits a block that reads an event emitted earlier.
    pub async fn read_event(
        &self,
        id: EventId,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::ReadEvent(id)], Vec::new())
            .await
    }

    /// Opens a chain owned by `owner`; returns its id and the certificate of the opening block.
    pub async fn open_chain(
        &self,
        owner: AccountPublicKey,
        consensus: ConsensusConfig,
    ) -> Result<(ChainId, ConfirmedBlockCertificate), ChainClientError> {
        let state = self.local.chain_state(self.chain_id).await?;
        let description = ChainDescription {
            origin: ChainOrigin::Child {
                parent: self.chain_id,
                height: state.next_height,
                index: 0,
            },
            owners: BTreeMap::from([(owner, 1)]),
            super_owner: None,
            epoch: state.epoch,
            timestamp: self.local.clock().now().max(state.timestamp),
            consensus,
            balance: 0,
        };
        let chain_id = description.id();
        let certificate = self
            .execute_operations(vec![Operation::OpenChain(description)], Vec::new())
            .await?;
        Ok((chain_id, certificate))
    }

    /// On the admin chain: creates the next committee.
    pub async fn create_committee(
        &self,
        committee: Committee,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::CreateCommittee(committee)], Vec::new())
            .await
    }

    /// Moves this chain to `epoch` (the admin chain must have announced it; the local node must
    /// have processed that announcement).
    pub async fn process_new_epoch(
        &self,
        epoch: Epoch,
    ) -> Result<ConfirmedBlockCertificate, ChainClientError> {
        self.execute_operations(vec![Operation::ProcessNewEpoch(epoch)], Vec::new())
            .await
    }

    /// The chain's balance on the local node.
    pub async fn local_balance(&self) -> Result<u64, ChainClientError> {
        Ok(self.local.chain_state(self.chain_id).await?.balance)
    }

    /// The chain's next height on the local node.
    pub async fn local_next_height(&self) -> Result<BlockHeight, ChainClientError> {
        Ok(self.local.chain_state(self.chain_id).await?.next_height)
    }

    /// The current time on the local node's clock.
    pub fn now(&self) -> Timestamp {
        self.local.clock().now()
    }
}
