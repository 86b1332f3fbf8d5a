//! `ValidatorUpdater`: brings one validator up to date while asking it for a vote
//! (DESIGN §5.2, §5.3).
//!
//! Each request ([`ValidatorUpdater::send_chain_update`] and the certificate uploads) is
//! driven by the pure [`Planner`]: this module sends, the planner
//! decides what a refusal calls for, and the modules below carry it out.
//!
//! * `action`: what is obtained ([`CommunicateAction`]).
//! * `drive`: the send / plan / repair loop and the execution of each step.
//! * `height_sync`: making a remote's chain reach a height.
//! * `ordered_sync`: sending many heights of several chains in an order their messages allow.
//! * `round_sync`: moving a remote at our height to our round.
//! * `local_sync`: bringing the local node up to a remote that is ahead.
//! * `blobs`: uploading the blobs a remote lacks.

mod action;
mod blobs;
mod drive;
mod height_sync;
mod local_sync;
mod ordered_sync;
mod planner;
mod round_sync;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tracing::debug;

use quorum_core::{
    Blob, Block, BlockHeight, BlockProposal, ChainId, ChainInfoQuery, ChainInfoResponse,
    ConfirmedBlockCertificate, CrossChainDelivery, Limits, LiteVote, NodeError, Round, Storage,
    TimeDelta, ValidatedBlockCertificate, Violation, VoteKind,
};
use quorum_node::Worker;

pub use action::CommunicateAction;
pub(crate) use action::SkewReport;

use crate::options::Options;
use crate::recovery_stats::{RecoveryKind, RecoveryStats};
use crate::remote::RemoteNode;
use drive::Context;
use planner::{Asked, Budget, Planner, Subject};

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
    /// Where a proposal reports the clock skew it observes (the chain client's proposals).
    skew_reports: Option<mpsc::UnboundedSender<SkewReport>>,
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
            skew_reports: self.skew_reports.clone(),
        }
    }
}

fn violation(kind: Violation) -> NodeError {
    NodeError::ProtocolViolation(kind)
}

fn is_retryable(error: &NodeError) -> bool {
    matches!(error, NodeError::Transport(_) | NodeError::Timeout)
}

/// Certificates per upload or download batch: the option, but never more than a node takes
/// (the committee's [`Limits::max_certificates_per_batch`], as the local node has them) nor
/// less than one.
pub(crate) fn upload_batch_size(options: &Options, limits: &Limits) -> usize {
    options
        .certificate_upload_batch_size
        .clamp(1, limits.max_certificates_per_batch.max(1))
}

/// `duration` in the protocol's microseconds, saturating.
pub(crate) fn time_delta(duration: Duration) -> TimeDelta {
    TimeDelta(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
}

impl<S: Storage + 'static> ValidatorUpdater<S> {
    /// An updater for `remote` (made by [`ChainClient::updater`](crate::ChainClient::updater)).
    pub(crate) fn new(
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
            skew_reports: None,
        }
    }

    /// The same updater, its proposals reporting the clock skew they observe to `reports`.
    pub(crate) fn reporting_skew(mut self, reports: mpsc::UnboundedSender<SkewReport>) -> Self {
        self.skew_reports = Some(reports);
        self
    }

    /// An updater for the same validator with a recovery budget of its own (a new action).
    pub fn fresh(&self) -> Self {
        Self::new(
            self.remote.clone(),
            self.local.clone(),
            self.admin_chain,
            self.options.clone(),
            self.stats.clone(),
        )
    }

    /// Draws one recovery of `kind` from the action's budget and counts it; fails with
    /// `RepeatedRecovery` once the budget is spent.
    fn recover(&self, kind: RecoveryKind) -> Result<(), NodeError> {
        if !self.budget.try_spend() {
            tracing::warn!(validator = ?self.remote.public_key, ?kind, "recovery budget of this action spent");
            return Err(violation(Violation::RepeatedRecovery));
        }
        self.stats.record(kind);
        Ok(())
    }

    /// Recoveries left in this action's budget.
    pub fn budget_left(&self) -> usize {
        self.budget.left()
    }

    /// [`Self::call`] for callers outside the updater (reads by the chain client).
    pub(crate) async fn call_remote<T, F, Fut>(&self, request: F) -> Result<T, NodeError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, NodeError>>,
    {
        self.call(request).await
    }

    /// Calls the remote with the per-request timeout (the short probe timeout for a suspect),
    /// retrying transport failures per the retry policy (never a suspect's), and records the
    /// outcome in the validator's health.
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
            // A suspect is probed briefly and not retried: nothing waits long on it.
            let suspect = self.remote.health.is_suspect();
            let timeout = if suspect {
                self.options.probe_timeout.min(self.options.request_timeout)
            } else {
                self.options.request_timeout
            };
            let started = tokio::time::Instant::now();
            let result = match tokio::time::timeout(timeout, request()).await {
                Ok(result) => result,
                Err(_) => Err(NodeError::Timeout),
            };
            match &result {
                Err(error) if is_retryable(error) => self.remote.health.record_failure(),
                _ => self.remote.health.record_success(started.elapsed()),
            }
            if let Err(error) = &result {
                crate::metrics::validator_error(&self.remote.public_key, error);
            }
            crate::metrics::suspect(&self.remote.public_key, self.remote.health.is_suspect());
            match result {
                Err(error)
                    if is_retryable(&error)
                        && !suspect
                        && self.options.retry.may_retry(attempt) =>
                {
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

    fn check_vote(
        &self,
        vote: Option<&LiteVote>,
        kind: VoteKind,
        round: Round,
    ) -> Result<LiteVote, NodeError> {
        let vote = vote.ok_or(violation(Violation::WrongVote))?;
        if vote.kind != kind || vote.round != round {
            return Err(violation(Violation::WrongVote));
        }
        self.remote
            .check_vote(vote)
            .map_err(|_| violation(Violation::WrongVote))?;
        Ok(vote.clone())
    }

    /// The planner of what is `asked` about `block` in `round`.
    async fn planner_for(
        &self,
        asked: Asked,
        block: &Block,
        round: Round,
        lite: bool,
    ) -> Result<Planner, NodeError> {
        let local_next = self.local.chain_state(block.chain_id).await?.next_height();
        let subject = Subject::for_block(
            asked,
            block,
            round,
            self.admin_chain,
            local_next,
            time_delta(self.options.max_clock_skew),
        );
        Ok(Planner::new(subject, lite))
    }

    /// Performs `action` and returns the remote's vote, checked against its key, kind and
    /// round.
    pub async fn send_chain_update(
        &self,
        action: CommunicateAction,
    ) -> Result<LiteVote, NodeError> {
        let round = action.round();
        match action {
            CommunicateAction::SubmitBlock { proposal, blobs } => {
                let kind = if round.is_fast() {
                    VoteKind::Confirmed
                } else {
                    VoteKind::Validated
                };
                let response = self.send_block_proposal(&proposal, &blobs).await?;
                self.check_vote(response.info.manager.pending.as_ref(), kind, round)
            }
            CommunicateAction::FinalizeBlock {
                certificate,
                blobs,
                delivery,
            } => {
                let response = self
                    .send_validated_certificate(&certificate, &blobs, delivery)
                    .await?;
                let pending = response.info.manager.pending.as_ref();
                self.check_vote(pending, VoteKind::Confirmed, round)
            }
            CommunicateAction::RequestTimeout {
                chain_id,
                height,
                round,
            } => {
                // A vote of an earlier round, which the node may still hold, is no answer.
                let voted = |response: &ChainInfoResponse| {
                    response
                        .info
                        .manager
                        .timeout_vote
                        .as_ref()
                        .is_some_and(|vote| vote.round == round)
                };
                let mut response = self.request_timeout(chain_id, height, round).await?;
                let manager = &response.info.manager;
                if !voted(&response) && manager.current_round < round {
                    // Still in an earlier round: our round's evidence moves it to this one,
                    // where it can vote once the round is due. Asked again once.
                    self.recover(RecoveryKind::WrongRound)?;
                    self.sync_round(chain_id, Some(response)).await;
                    response = self.request_timeout(chain_id, height, round).await?;
                }
                let manager = &response.info.manager;
                if manager.current_round > round {
                    // Past this round already: the client learns the later one.
                    return Err(NodeError::WrongRound(manager.current_round));
                }
                if !voted(&response) {
                    return Err(NodeError::TimeoutNotDue {
                        deadline: manager.round_timeout,
                    });
                }
                self.check_vote(manager.timeout_vote.as_ref(), VoteKind::Timeout, round)
            }
        }
    }

    /// Proposes a block, repairing what the remote says it lacks (DESIGN §5.2.1). `blobs`
    /// are the ones the block itself publishes.
    pub async fn send_block_proposal(
        &self,
        proposal: &BlockProposal,
        blobs: &[Blob],
    ) -> Result<ChainInfoResponse, NodeError> {
        let planner = self
            .planner_for(Asked::Proposal, proposal.block(), proposal.round(), false)
            .await?;
        let context = Context {
            depth: 0,
            blobs,
            skew_reports: self.skew_reports.as_ref(),
        };
        self.drive(planner, context, |_| {
            self.call(|| self.remote.node.handle_block_proposal(proposal.clone()))
        })
        .await
    }

    /// Sends a validated certificate, lite first (DESIGN §5.2.2).
    async fn send_validated_certificate(
        &self,
        certificate: &ValidatedBlockCertificate,
        blobs: &[Blob],
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let block = certificate.value().block();
        let planner = self
            .planner_for(Asked::Validated, block, certificate.round(), true)
            .await?;
        let context = Context {
            depth: 0,
            blobs,
            skew_reports: None,
        };
        self.drive(planner, context, |lite| async move {
            if lite {
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
                        .handle_validated_certificate(certificate.clone())
                })
                .await
            }
        })
        .await
    }

    /// Asks for a timeout vote for `round` at `height` (DESIGN §5.2.3).
    async fn request_timeout(
        &self,
        chain_id: ChainId,
        height: BlockHeight,
        round: Round,
    ) -> Result<ChainInfoResponse, NodeError> {
        let local_next = self.local.chain_state(chain_id).await?.next_height();
        let subject = Subject::for_timeout(chain_id, height, round, self.admin_chain, local_next);
        let query = ChainInfoQuery::new(chain_id).with_timeout(height, round);
        self.drive(Planner::new(subject, false), Context::default(), |_| {
            self.call(|| self.remote.node.handle_chain_info_query(query.clone()))
        })
        .await
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

    /// [`Self::send_confirmed_certificate`], `depth` generations of parent chains down.
    fn send_confirmed_certificate_at<'a>(
        &'a self,
        certificate: &'a ConfirmedBlockCertificate,
        delivery: CrossChainDelivery,
        try_lite: bool,
        depth: usize,
    ) -> BoxFuture<'a, Result<ChainInfoResponse, NodeError>> {
        async move {
            let block = certificate.value().block();
            let planner = self
                .planner_for(Asked::Confirmed, block, certificate.round(), try_lite)
                .await?;
            let context = Context {
                depth,
                blobs: &[],
                skew_reports: None,
            };
            self.drive(planner, context, |lite| async move {
                if lite {
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
                }
            })
            .await
        }
        .boxed()
    }
}
