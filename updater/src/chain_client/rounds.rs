//! Rounds that stall: catching up, and timing a round out at the deadline a quorum names (DESIGN §5.4.1, §5.5).

use std::sync::{Arc, Mutex};

use tracing::{debug, info, warn};

use quorum_core::{
    round_duration, BlockHeight, Certificate, Committee, Hashed, LiteVote, NodeError, Round,
    Storage, TimeDelta, Timeout, TimeoutCertificate, Timestamp, ValidatorNode, ValidatorPublicKey,
};

use super::deadline::{quorum_deadline, Silent};
use crate::quorum::{communicate_with_quorum, QuorumError};
use crate::updater::{time_delta, CommunicateAction};
use crate::RemoteNode;

use super::signatures::quorum_signatures;
use super::{ChainClient, ChainClientError};

/// Whether a failed proposal is worth another round: some validators answered what a round
/// that stalled answers (another round or height, a lock, a vote already given, no answer in
/// time, a peer that misbehaved). Every answer counts, not only the heaviest: a minority's
/// `InactiveChain` (validators that do not know the chain yet, which the updater brings up to
/// date) must not hide the majority's round information when their weights tie.
fn is_round_failure(error: &ChainClientError) -> bool {
    let stalled = |error: &NodeError| {
        matches!(
            error,
            NodeError::WrongRound(_)
                | NodeError::HasLockedBlock
                | NodeError::AlreadyVoted
                | NodeError::UnexpectedBlockHeight { .. }
                | NodeError::Timeout
                | NodeError::Transport(_)
                | NodeError::ProtocolViolation(_)
                | NodeError::InvalidCertificate(_)
        )
    };
    match error {
        ChainClientError::Quorum(QuorumError::NoConsensus { .. }) => true,
        ChainClientError::Quorum(QuorumError::Trusted(error)) => stalled(error),
        ChainClientError::Quorum(QuorumError::Sample(errors)) => {
            errors.iter().any(|(error, _)| stalled(error))
        }
        _ => false,
    }
}

impl<S: Storage + 'static> ChainClient<S> {
    /// After a failed round: catch up with validators, and time the round out if it stalled.
    pub(super) async fn recover_round(
        &self,
        round: Round,
        error: ChainClientError,
    ) -> Result<(), ChainClientError> {
        let retriable = is_round_failure(&error);
        if !retriable {
            return Err(error);
        }
        debug!(%error, ?round, "round failed; synchronizing");
        self.synchronize_from_validators().await?;
        let state = self.local.chain_state(self.chain_id).await?;
        if state.manager().current_round() > round
            || state.next_height() > BlockHeight(0) && self.moved_on(&error)
        {
            return Ok(());
        }
        self.time_out_or_catch_up(round).await
    }

    /// Times `round` out; when that fails because validators are past it (another owner's
    /// block was committed at this height, or they moved to a later round), catches up with
    /// them instead, to go on there.
    pub(super) async fn time_out_or_catch_up(&self, round: Round) -> Result<(), ChainClientError> {
        match self.time_out_round(round).await {
            Err(error) if self.moved_on(&error) || is_round_failure(&error) => {
                debug!(%error, "the validators moved on while timing the round out");
                self.synchronize_from_validators().await
            }
            other => other,
        }
    }

    pub(super) fn moved_on(&self, error: &ChainClientError) -> bool {
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
    /// plus [`Options::max_clock_skew`](crate::Options::max_clock_skew) (DESIGN §5.4.1). Waits go through the node's clock.
    pub async fn time_out_round(&self, round: Round) -> Result<(), ChainClientError> {
        let state = self.local.chain_state(self.chain_id).await?;
        let (committee, remotes) = self.committee_and_remotes(state.epoch()).await?;
        let height = state.next_height();
        let duration = round_duration(&state.description()?.consensus, round);
        let allowance = time_delta(self.options.max_clock_skew);
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
                &self.quorum_options,
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
                    if waits > self.options.max_timeout_waits {
                        return Err(error.into());
                    }
                    let now = self.local.clock().now();
                    let cap = now.saturating_add(duration).saturating_add(allowance);
                    let reported = due.lock().map(|due| due.clone()).unwrap_or_default();
                    let retry = time_delta(self.options.timeout_retry_delay);
                    let until = round_due(&committee, &reported, now, cap, retry);
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
            epoch: state.epoch(),
        });
        let signatures = quorum_signatures(&committee, &votes);
        let certificate: TimeoutCertificate = Certificate::new(value, round, signatures);
        certificate.check(&committee)?;
        ValidatorNode::handle_timeout_certificate(&*self.local, certificate.clone()).await?;
        self.share_timeout_certificate(&remotes, &committee, certificate, height)
            .await;
        info!(chain = ?self.chain_id, ?round, "round timed out");
        Ok(())
    }

    /// Sends `certificate` to the validators; those a quorum call leaves out get it by round
    /// sync, from their catch-up workers.
    async fn share_timeout_certificate(
        &self,
        remotes: &[RemoteNode],
        committee: &Committee,
        certificate: TimeoutCertificate,
        height: BlockHeight,
    ) {
        let result = communicate_with_quorum(
            remotes,
            committee,
            &self.quorum_options,
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
        let answered = match result {
            Ok(((_, answers), _)) => answers.into_iter().map(|(key, ())| key).collect(),
            Err(error) => {
                warn!(%error, "timeout certificate not taken by a quorum");
                Vec::new()
            }
        };
        self.catch_up_stragglers(remotes, &answered, self.chain_id, height);
    }
}

/// When to ask again for timeout votes, at `now`, given the deadlines validators `reported`
/// (never later than `cap`): counting the silent validators as due gives the earliest instant a
/// quorum can be due; once that has passed in vain, the quorum of those that named a deadline;
/// with neither ahead, after `retry` (`Options::timeout_retry_delay`).
fn round_due(
    committee: &Committee,
    reported: &[(ValidatorPublicKey, Timestamp)],
    now: Timestamp,
    cap: Timestamp,
    retry: TimeDelta,
) -> Timestamp {
    match quorum_deadline(committee, reported, Silent::MayBeDue) {
        Some(deadline) if deadline > now => Some(deadline),
        _ => {
            quorum_deadline(committee, reported, Silent::NotDue).filter(|deadline| *deadline > now)
        }
    }
    .map(|deadline| deadline.min(cap))
    .unwrap_or(now.saturating_add(retry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::{ChainId, CryptoHash};

    #[test]
    fn a_minority_error_does_not_hide_the_round_information_of_a_tie() {
        let inactive = NodeError::InactiveChain(ChainId(CryptoHash([1; 32])));
        let not_due = NodeError::TimeoutNotDue { deadline: None };
        let wrong_round = NodeError::WrongRound(Round::MultiLeader(1));
        let tie = |first: NodeError, second: NodeError| {
            ChainClientError::Quorum(QuorumError::Sample(vec![(first, 2), (second, 2)]))
        };
        assert!(is_round_failure(&tie(
            inactive.clone(),
            wrong_round.clone()
        )));
        assert!(is_round_failure(&tie(wrong_round, inactive.clone())));
        assert!(!is_round_failure(&tie(inactive.clone(), not_due)));
        assert!(!is_round_failure(&ChainClientError::Quorum(
            QuorumError::Trusted(inactive)
        )));
        assert!(is_round_failure(&ChainClientError::Quorum(
            QuorumError::NoConsensus {
                threshold: 3,
                scores: vec![(2, 2), (2, 2)],
            }
        )));
    }
}
