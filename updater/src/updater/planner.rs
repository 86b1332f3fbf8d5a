//! The recovery planner: what to send a validator next, given what it refused (DESIGN §5.2,
//! §5.3, §5.4.1).
//!
//! Pure, like a sans-I/O protocol state machine: no async, no I/O, no clock. The updater
//! asks the remote, hands each refusal to [`Planner::plan`], carries out the [`Step`] it
//! returns, and asks again. Every recovery runs at most once per distinct cause, every claim
//! is checked against what the block really needs, and all recoveries of one action draw on
//! one [`Budget`], so no sequence of answers keeps a client busy forever.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use quorum_core::{
    BlobId, Block, BlockHeight, ChainId, CrossChainDelivery, Epoch, EventId, NodeError, Round,
    TimeDelta, Timestamp, Violation,
};

use crate::recovery_stats::RecoveryKind;

/// Most times one proposal waits for a validator's clock.
pub(crate) const MAX_TIMESTAMP_WAITS: usize = 2;

/// What was asked of the remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Asked {
    /// A block proposal, for a vote.
    Proposal,
    /// A validated certificate (finalize), for a confirmation vote.
    Validated,
    /// A confirmed certificate (sent lite first when the planner says so).
    Confirmed,
    /// A timeout vote.
    Timeout,
}

/// What the request is about: the facts the planner decides on, read beforehand.
#[derive(Clone, Debug)]
pub(crate) struct Subject {
    /// What was asked.
    pub asked: Asked,
    /// The chain.
    pub chain_id: ChainId,
    /// The height of the block (or of the timeout).
    pub height: BlockHeight,
    /// The round of the proposal, certificate or timeout.
    pub round: Round,
    /// The block's epoch (its certificate is checked against that committee).
    pub epoch: Epoch,
    /// The admin chain, whose system stream announces epochs.
    pub admin_chain: ChainId,
    /// The local node's next height on the chain.
    pub local_next: BlockHeight,
    /// The blobs the block needs (published or read).
    pub blobs: BTreeSet<BlobId>,
    /// The events the block reads.
    pub events: BTreeSet<EventId>,
    /// The bundles the block consumes: (origin, height).
    pub bundles: BTreeSet<(ChainId, BlockHeight)>,
    /// Longest wait for a validator whose clock is behind.
    pub max_clock_skew: TimeDelta,
}

impl Subject {
    /// The subject of a request about `block`.
    pub(crate) fn for_block(
        asked: Asked,
        block: &Block,
        round: Round,
        admin_chain: ChainId,
        local_next: BlockHeight,
        max_clock_skew: TimeDelta,
    ) -> Self {
        Subject {
            asked,
            chain_id: block.chain_id,
            height: block.height,
            round,
            epoch: block.epoch,
            admin_chain,
            local_next,
            blobs: block.required_blob_ids().into_iter().collect(),
            events: block.required_event_ids(admin_chain).into_iter().collect(),
            bundles: block
                .incoming_bundles
                .iter()
                .map(|bundle| (bundle.origin, bundle.height))
                .collect(),
            max_clock_skew,
        }
    }

    /// The subject of a timeout request for `round` at `height`.
    pub(crate) fn for_timeout(
        chain_id: ChainId,
        height: BlockHeight,
        round: Round,
        admin_chain: ChainId,
        local_next: BlockHeight,
    ) -> Self {
        Subject {
            asked: Asked::Timeout,
            chain_id,
            height,
            round,
            epoch: Epoch(0),
            admin_chain,
            local_next,
            blobs: BTreeSet::new(),
            events: BTreeSet::new(),
            bundles: BTreeSet::new(),
            max_clock_skew: TimeDelta(0),
        }
    }
}

/// What to do before asking again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Make the remote's `chain_id` reach `target` (height sync, then round sync).
    SendChainInfo {
        /// The chain.
        chain_id: ChainId,
        /// The next height the remote must reach.
        target: BlockHeight,
        /// How its messages are delivered.
        delivery: CrossChainDelivery,
    },
    /// Send each of these publisher chains up to the local node's next height, concurrently.
    SendPublishers(Vec<ChainId>),
    /// Upload the proposal's (or locking block's) own blobs as pending blobs, and send the
    /// blocks that published the others the remote lacks.
    UploadProposalBlobs,
    /// Read these blobs locally and upload them; the certificate then goes in full.
    UploadBlobs(Vec<BlobId>),
    /// Send the certificate in full: the remote lacks its value.
    SendFull,
    /// Make the remote know the chain (its parent first: one generation up).
    SendDescription,
    /// Bring the local node up to the remote's next height on the chain.
    SyncFromRemote {
        /// The remote's next height.
        target: BlockHeight,
    },
    /// Learn the remote's round evidence (timeout and validated certificates).
    SyncRoundFromRemote,
    /// Wait until our clock reads `until`: the remote's clock then reads the block's time.
    Wait {
        /// On our clock.
        until: Timestamp,
    },
}

/// The planner's answer to a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Carry out `step`, then ask again. `kind` is the recovery counted (none for switching
    /// a lite certificate to a full one, which is no repair).
    Recover {
        /// What is counted.
        kind: Option<RecoveryKind>,
        /// What to do.
        step: Step,
    },
    /// Stop with this error.
    Fail(NodeError),
}

/// Recoveries left for one action, shared by every call made on its behalf (nested calls
/// included, concurrent ones too).
#[derive(Debug)]
pub(crate) struct Budget(AtomicUsize);

impl Budget {
    /// A budget of `recoveries`.
    pub(crate) fn new(recoveries: usize) -> Self {
        Budget(AtomicUsize::new(recoveries))
    }

    /// Takes one recovery; `false` once none is left.
    pub(crate) fn try_spend(&self) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    /// Recoveries left.
    pub(crate) fn left(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// How far our clock is ahead of a remote's: `max(0, our send time − its time)`. Reading our
/// time when the request leaves means latency never looks like skew.
pub(crate) fn clock_skew(sent_at: Timestamp, remote_time: Timestamp) -> TimeDelta {
    sent_at.saturating_since(remote_time)
}

/// What was already tried for one request, per cause.
#[derive(Clone, Debug, Default)]
struct Tried {
    rounds: BTreeSet<Round>,
    height: bool,
    cross_chain: BTreeMap<ChainId, BlockHeight>,
    publishers: BTreeSet<ChainId>,
    blobs: bool,
    waits: usize,
    description: bool,
    full: bool,
    local_sync: bool,
    round_sync: bool,
    remote_sync: bool,
}

/// Decides the recoveries of one request to one validator.
#[derive(Clone, Debug)]
pub(crate) struct Planner {
    subject: Subject,
    tried: Tried,
    lite: bool,
}

fn violation(kind: Violation) -> NodeError {
    NodeError::ProtocolViolation(kind)
}

impl Planner {
    /// A planner for `subject`; `lite` says whether a certificate goes lite first.
    pub(crate) fn new(subject: Subject, lite: bool) -> Self {
        Planner {
            subject,
            tried: Tried::default(),
            lite,
        }
    }

    /// Whether the certificate should be sent lite now.
    pub(crate) fn lite(&self) -> bool {
        self.lite && !self.tried.full
    }

    /// The subject.
    pub(crate) fn subject(&self) -> &Subject {
        &self.subject
    }

    /// Records the local node's next height on the chain as it is now: a local sync moves it.
    pub(crate) fn observe_local_next(&mut self, local_next: BlockHeight) {
        self.subject.local_next = local_next;
    }

    /// What to do about `error`, the remote's answer to a request sent at `sent_at` (our
    /// clock). A recovery draws on `budget`; none left is `RepeatedRecovery`.
    pub(crate) fn plan(
        &mut self,
        error: &NodeError,
        sent_at: Timestamp,
        budget: &Budget,
    ) -> Decision {
        let decision = match self.subject.asked {
            Asked::Proposal => self.plan_proposal(error, sent_at),
            Asked::Validated => self.plan_validated(error),
            Asked::Confirmed => self.plan_confirmed(error),
            Asked::Timeout => self.plan_sync_if_needed(error),
        };
        match decision {
            Decision::Recover { kind: Some(_), .. } if !budget.try_spend() => {
                Decision::Fail(violation(Violation::RepeatedRecovery))
            }
            decision => decision,
        }
    }

    fn recover(kind: RecoveryKind, step: Step) -> Decision {
        Decision::Recover {
            kind: Some(kind),
            step,
        }
    }

    fn send_chain(&self, target: BlockHeight) -> Step {
        Step::SendChainInfo {
            chain_id: self.subject.chain_id,
            target,
            delivery: CrossChainDelivery::NonBlocking,
        }
    }

    fn plan_proposal(&mut self, error: &NodeError, sent_at: Timestamp) -> Decision {
        let subject = &self.subject;
        match error {
            NodeError::WrongRound(round)
                if *round < subject.round && self.tried.rounds.insert(*round) =>
            {
                Self::recover(RecoveryKind::WrongRound, self.send_chain(subject.height))
            }
            NodeError::UnexpectedBlockHeight {
                expected_block_height,
                found_block_height,
            } if expected_block_height < found_block_height
                && *found_block_height == subject.height
                && !self.tried.height =>
            {
                self.tried.height = true;
                Self::recover(
                    RecoveryKind::BlockHeight,
                    self.send_chain(*found_block_height),
                )
            }
            NodeError::MissingCrossChainUpdate { .. } => self.plan_cross_chain(error),
            NodeError::EventsNotFound(ids) => self.plan_events(error, ids),
            NodeError::InactiveChain(chain)
                if *chain == subject.chain_id && !self.tried.description =>
            {
                self.tried.description = true;
                Self::recover(RecoveryKind::InactiveChain, self.send_chain(subject.height))
            }
            NodeError::BlobsNotFound(claimed) if !subject.blobs.is_empty() && !self.tried.blobs => {
                if !claimed.iter().all(|id| subject.blobs.contains(id)) {
                    return Decision::Fail(violation(Violation::FalseBlobsNotFound));
                }
                self.tried.blobs = true;
                Self::recover(RecoveryKind::Blobs, Step::UploadProposalBlobs)
            }
            NodeError::InvalidTimestamp {
                block_timestamp,
                local_time,
            } if self.tried.waits < MAX_TIMESTAMP_WAITS => {
                if block_timestamp.saturating_since(*local_time) > subject.max_clock_skew {
                    return Decision::Fail(error.clone());
                }
                self.tried.waits += 1;
                let skew = clock_skew(sent_at, *local_time);
                Self::recover(
                    RecoveryKind::ClockSkew,
                    Step::Wait {
                        until: block_timestamp.saturating_add(skew),
                    },
                )
            }
            NodeError::BlobsNotFound(claimed)
                if !claimed.iter().all(|id| subject.blobs.contains(id)) =>
            {
                Decision::Fail(violation(Violation::FalseBlobsNotFound))
            }
            other => Decision::Fail(other.clone()),
        }
    }

    fn plan_cross_chain(&mut self, error: &NodeError) -> Decision {
        let NodeError::MissingCrossChainUpdate {
            chain_id,
            origin,
            height,
        } = error
        else {
            return Decision::Fail(error.clone());
        };
        if *chain_id != self.subject.chain_id {
            return Decision::Fail(violation(Violation::WrongChain));
        }
        if !self.subject.bundles.contains(&(*origin, *height)) {
            return Decision::Fail(violation(Violation::FalseCrossChainClaim));
        }
        if self
            .tried
            .cross_chain
            .get(origin)
            .is_some_and(|sent| sent >= height)
        {
            return Decision::Fail(error.clone());
        }
        let Some(target) = height.try_next() else {
            return Decision::Fail(violation(Violation::RepeatedRecovery));
        };
        self.tried.cross_chain.insert(*origin, *height);
        Self::recover(
            RecoveryKind::CrossChain,
            Step::SendChainInfo {
                chain_id: *origin,
                target,
                delivery: CrossChainDelivery::Blocking,
            },
        )
    }

    /// Whether `id` is an event the remote may lack: one the block reads, or an admin-chain
    /// epoch announcement up to the block's epoch, which the remote needs to know the committee
    /// that signed a certificate: the certificate itself, or the validated certificate a
    /// re-proposal carries.
    fn event_needed(&self, id: &EventId) -> bool {
        if self.subject.events.contains(id) {
            return true;
        }
        self.subject.asked != Asked::Timeout
            && self.subject.chain_id != self.subject.admin_chain
            && id.is_epoch_announcement(self.subject.admin_chain)
            && id.index <= self.subject.epoch.0
    }

    fn plan_events(&mut self, error: &NodeError, ids: &[EventId]) -> Decision {
        if !ids.iter().all(|id| self.event_needed(id)) {
            return Decision::Fail(violation(Violation::FalseEventsNotFound));
        }
        let publishers: Vec<ChainId> = ids
            .iter()
            .map(|id| id.chain_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|chain| !self.tried.publishers.contains(chain))
            .collect();
        if publishers.is_empty() {
            return Decision::Fail(error.clone());
        }
        self.tried.publishers.extend(publishers.iter().copied());
        let committee_only = ids
            .iter()
            .all(|id| id.is_epoch_announcement(self.subject.admin_chain));
        let kind = if committee_only && self.subject.asked != Asked::Timeout {
            RecoveryKind::Committee
        } else {
            RecoveryKind::Events
        };
        Self::recover(kind, Step::SendPublishers(publishers))
    }

    /// A certificate's `BlobsNotFound`: the claim must lie within the block's blobs; the
    /// upload (`step`) runs once.
    fn plan_blobs(
        &mut self,
        error: &NodeError,
        claimed: &[BlobId],
        step: impl FnOnce(&[BlobId]) -> Step,
    ) -> Decision {
        if !claimed.iter().all(|id| self.subject.blobs.contains(id)) {
            return Decision::Fail(violation(Violation::FalseBlobsNotFound));
        }
        if self.tried.blobs {
            return Decision::Fail(error.clone());
        }
        self.tried.blobs = true;
        Self::recover(RecoveryKind::Blobs, step(claimed))
    }

    /// The remote lacks the certificate's value: send it in full from now on (no repair, so
    /// not counted).
    fn send_full(&mut self) -> Decision {
        self.tried.full = true;
        Decision::Recover {
            kind: None,
            step: Step::SendFull,
        }
    }

    fn plan_validated(&mut self, error: &NodeError) -> Decision {
        match error {
            NodeError::MissingCertificateValue if self.lite() => self.send_full(),
            NodeError::BlobsNotFound(claimed) => {
                self.plan_blobs(error, claimed, |_| Step::UploadProposalBlobs)
            }
            // The committee of the certificate's epoch: the admin chain is sent.
            NodeError::EventsNotFound(ids) => self.plan_events(error, ids),
            other => self.plan_sync_if_needed(other),
        }
    }

    /// Sync-if-needed (DESIGN §5.2.4): a remote ahead is synchronized from, a remote behind
    /// or without the chain is sent it; each once.
    fn plan_sync_if_needed(&mut self, error: &NodeError) -> Decision {
        let subject = &self.subject;
        match error {
            NodeError::WrongRound(round) if *round > subject.round && !self.tried.round_sync => {
                self.tried.round_sync = true;
                Self::recover(RecoveryKind::LocalSync, Step::SyncRoundFromRemote)
            }
            NodeError::UnexpectedBlockHeight {
                expected_block_height,
                ..
            } if *expected_block_height > subject.local_next && !self.tried.local_sync => {
                self.tried.local_sync = true;
                Self::recover(
                    RecoveryKind::LocalSync,
                    Step::SyncFromRemote {
                        target: *expected_block_height,
                    },
                )
            }
            NodeError::UnexpectedBlockHeight {
                expected_block_height,
                ..
            } if *expected_block_height < subject.local_next && !self.tried.remote_sync => {
                self.tried.remote_sync = true;
                Self::recover(
                    RecoveryKind::BlockHeight,
                    self.send_chain(subject.local_next),
                )
            }
            NodeError::WrongRound(round) if *round > subject.round => Decision::Fail(error.clone()),
            NodeError::WrongRound(_) | NodeError::InactiveChain(_) if !self.tried.remote_sync => {
                self.tried.remote_sync = true;
                let kind = if matches!(error, NodeError::WrongRound(_)) {
                    RecoveryKind::WrongRound
                } else {
                    RecoveryKind::InactiveChain
                };
                Self::recover(
                    kind,
                    self.send_chain(subject.height.max(subject.local_next)),
                )
            }
            other => Decision::Fail(other.clone()),
        }
    }

    fn plan_confirmed(&mut self, error: &NodeError) -> Decision {
        match error {
            NodeError::MissingCertificateValue if self.lite() => self.send_full(),
            NodeError::EventsNotFound(ids) => self.plan_events(error, ids),
            NodeError::BlobsNotFound(claimed) => {
                let decision = self.plan_blobs(error, claimed, |claimed| {
                    Step::UploadBlobs(claimed.to_vec())
                });
                // After the upload the certificate goes in full.
                if matches!(decision, Decision::Recover { .. }) {
                    self.tried.full = true;
                }
                decision
            }
            NodeError::MissingCrossChainUpdate { .. } => self.plan_cross_chain(error),
            NodeError::InactiveChain(chain)
                if *chain == self.subject.chain_id && !self.tried.description =>
            {
                self.tried.description = true;
                Self::recover(RecoveryKind::InactiveChain, Step::SendDescription)
            }
            other => Decision::Fail(other.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
