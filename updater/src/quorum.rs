//! `communicate_with_quorum`: ask every validator at once, stop at quorum plus a grace period
//! (DESIGN §5.1).

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use tracing::{debug, warn};

use quorum_core::{Committee, NodeError, QuorumTally, ValidatorPublicKey};
use quorum_core::{QuorumValues, TallyError, TallyOutcome};

use crate::options::Options;
use crate::remote::RemoteNode;

/// Stand-in for a deadline too far away to represent.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a quorum call produced no value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// Validators with at least the validity threshold of weight returned this error, so at
    /// least one honest validator did.
    #[error("validators holding at least f+1 of the weight answered: {0}")]
    Trusted(NodeError),
    /// No quorum; the heaviest errors with their weights.
    #[error("no quorum; heaviest errors: {0:?}")]
    Sample(Vec<(NodeError, u64)>),
    /// No errors, but no value reached the threshold.
    #[error("validators disagree: no value reached {threshold}; (weight, validators) per value: {scores:?}")]
    NoConsensus {
        /// The quorum threshold.
        threshold: u64,
        /// `(weight, number of validators)` per distinct value, heaviest first.
        scores: Vec<(u64, usize)>,
    },
}

impl From<TallyError<NodeError>> for QuorumError {
    fn from(error: TallyError<NodeError>) -> Self {
        match error {
            TallyError::Trusted(e) => QuorumError::Trusted(e),
            TallyError::Sample(errors) => QuorumError::Sample(errors),
            TallyError::NoConsensus { threshold, scores } => {
                QuorumError::NoConsensus { threshold, scores }
            }
        }
    }
}

impl QuorumError {
    /// The most significant error: the trusted one, else the heaviest of the sample.
    pub fn main_error(&self) -> Option<&NodeError> {
        match self {
            QuorumError::Trusted(e) => Some(e),
            QuorumError::Sample(errors) => errors.first().map(|(e, _)| e),
            QuorumError::NoConsensus { .. } => None,
        }
    }
}

/// Timing of a successful quorum call, for statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumTiming {
    /// Time from the start to the quorum.
    pub to_quorum: Duration,
    /// Time from the start to the return (quorum plus grace, or all answered).
    pub total: Duration,
}

/// Runs `execute` against every voting validator concurrently and tallies the answers, grouped
/// by `key_of`.
///
/// Stops when no quorum is possible any more, when every validator answered, or when the grace
/// period after the quorum has passed: `options.quorum_grace` × the time the quorum took. The
/// whole call is bounded by `options.deadline`; validators that were asked and have not
/// answered by then count as [`NodeError::Timeout`] (those never asked count as nothing). Zero-weight validators and remotes outside the committee are never
/// asked.
///
/// Calls still running when it returns are not cancelled at once: they go on in a background
/// task for at most `options.background_catch_up`, so slow validators still get what they need
/// (this requires a tokio runtime; with a zero budget they are dropped).
pub async fn communicate_with_quorum<K, V, F, Fut>(
    validators: &[RemoteNode],
    committee: &Committee,
    options: &Options,
    key_of: impl Fn(&V) -> K,
    execute: F,
) -> Result<(QuorumValues<K, V>, QuorumTiming), QuorumError>
where
    K: Clone + Eq,
    V: Send + 'static,
    F: Fn(RemoteNode) -> Fut,
    Fut: Future<Output = Result<V, NodeError>> + Send + 'static,
{
    let start = Instant::now();
    // A deadline too far to represent means no deadline in practice: a year.
    let deadline = start
        .checked_add(options.deadline)
        .unwrap_or_else(|| start + FAR_FUTURE);
    let mut tally: QuorumTally<'_, K, V, NodeError> = QuorumTally::new(committee);
    let mut calls = FuturesUnordered::new();
    let mut asked = BTreeSet::new();
    for remote in validators {
        if committee.weight(&remote.public_key) == 0 || !asked.insert(remote.public_key) {
            continue;
        }
        let key = remote.public_key;
        let call = execute(remote.clone());
        calls.push(async move { (key, call.await) });
    }
    let mut grace_end: Option<Instant> = None;
    let mut to_quorum = Duration::ZERO;
    let (mut answers_before, mut answers_after) = (0u64, 0u64);
    let mut reached = false;
    let mut timed_out = false;
    loop {
        let stop_at = grace_end.map_or(deadline, |end| end.min(deadline));
        tokio::select! {
            next = calls.next() => {
                let Some((validator, answer)) = next else { break };
                if grace_end.is_some() {
                    answers_after += 1;
                } else {
                    answers_before += 1;
                }
                match tally.insert(validator, answer, &key_of) {
                    Ok(TallyOutcome::QuorumReached(_)) => {
                        to_quorum = start.elapsed();
                        reached = true;
                        // A negative, NaN or huge fraction must not panic: it means no grace,
                        // or a grace that the overall deadline cuts short.
                        let grace = Duration::try_from_secs_f64(
                            to_quorum.as_secs_f64() * options.quorum_grace,
                        )
                        .unwrap_or(if options.quorum_grace > 0.0 { options.deadline } else { Duration::ZERO });
                        if grace.is_zero() {
                            break;
                        }
                        grace_end = Some(Instant::now().checked_add(grace).unwrap_or(deadline));
                    }
                    Ok(TallyOutcome::QuorumImpossible) => break,
                    Ok(TallyOutcome::Pending) => {}
                    Err(rejected) => warn!(?validator, %rejected, "answer not counted"),
                }
            }
            () = tokio::time::sleep_until(stop_at) => {
                timed_out = grace_end.is_none();
                break;
            }
        }
    }
    if timed_out {
        // Only validators that were asked and did not answer timed out; those never asked
        // (unreachable, not in the set) are not counted as answering anything.
        let pending: Vec<ValidatorPublicKey> = tally
            .pending_validators()
            .filter(|validator| asked.contains(*validator))
            .copied()
            .collect();
        debug!(count = pending.len(), "deadline reached before a quorum");
        for validator in pending {
            let _ = tally.insert_error(validator, NodeError::Timeout);
        }
    }
    finish_in_background(calls, options.background_catch_up);
    let total = start.elapsed();
    crate::metrics::quorum_call(
        total,
        reached.then_some(to_quorum),
        answers_before,
        answers_after,
    );
    let values = tally.finish()?;
    Ok((values, QuorumTiming { to_quorum, total }))
}

/// Lets calls still running go on for at most `budget` in a background task.
fn finish_in_background<S>(mut calls: S, budget: Duration)
where
    S: futures::Stream + Unpin + Send + 'static,
{
    if budget.is_zero() || tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        let drain = async { while calls.next().await.is_some() {} };
        if tokio::time::timeout(budget, drain).await.is_err() {
            debug!("background catch-up budget exhausted");
        }
    });
}

/// Asks every voting validator at once with `execute` and returns the answers that succeeded,
/// with who gave them: for reads where every answer counts (chain information for a sync)
/// but nothing should wait on the slow. Stops when all answered, when the grace period after
/// validators holding a quorum of the weight answered has passed (`options.quorum_grace` ×
/// the time that took), or after `options.request_timeout`. Unfinished calls are dropped.
pub(crate) async fn gather<V, F, Fut>(
    validators: &[RemoteNode],
    committee: &Committee,
    options: &Options,
    execute: F,
) -> Vec<(RemoteNode, V)>
where
    F: Fn(RemoteNode) -> Fut,
    Fut: Future<Output = Result<V, NodeError>>,
{
    let start = Instant::now();
    let deadline = start
        .checked_add(options.request_timeout)
        .unwrap_or_else(|| start + FAR_FUTURE);
    let mut calls = FuturesUnordered::new();
    let mut asked = BTreeSet::new();
    for remote in validators {
        if committee.weight(&remote.public_key) == 0 || !asked.insert(remote.public_key) {
            continue;
        }
        let call = execute(remote.clone());
        let remote = remote.clone();
        calls.push(async move { (remote, call.await) });
    }
    let mut answers = Vec::new();
    let mut weight = 0u64;
    let mut stop_at = deadline;
    loop {
        tokio::select! {
            next = calls.next() => {
                let Some((remote, answer)) = next else { break };
                let Ok(value) = answer else { continue };
                let reached = weight >= committee.quorum_threshold();
                weight = weight.saturating_add(committee.weight(&remote.public_key));
                answers.push((remote, value));
                if !reached && weight >= committee.quorum_threshold() {
                    let grace = Duration::try_from_secs_f64(
                        start.elapsed().as_secs_f64() * options.quorum_grace,
                    )
                    .unwrap_or(Duration::ZERO);
                    stop_at = Instant::now().checked_add(grace).unwrap_or(deadline).min(deadline);
                }
            }
            () = tokio::time::sleep_until(stop_at) => break,
        }
    }
    answers
}
