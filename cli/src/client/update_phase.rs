//! The final update phase of a `quorum client` command (DESIGN §5.6): once the command has its
//! result, the catch-up workers bring the validators that missed something up to date, for
//! at most a time budget (default 1 s, `--update-budget-ms`). Nothing waits on a suspect
//! validator; what is left when the phase ends, the next client or the validator's own
//! catch-up delivers.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use quorum_core::ValidatorPublicKey;
use quorum_updater::CatchUp;
use quorum_updater::{RemoteNode, SavedHealth};

/// Default of `--update-budget-ms`: the longest the final update phase lasts (1 s).
pub const DEFAULT_UPDATE_BUDGET_MS: u64 = 1_000;
/// How often the phase looks whether the catch-up workers are done (2 ms).
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// Why a validator was not brought fully up to date in the phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Left {
    /// It is suspect (it stopped answering): nothing waited on it.
    Suspect,
    /// It gave no answer within the budget (counted as a failure in its health).
    Unanswered,
    /// It answered, but the budget ran out before it had everything.
    OutOfTime,
}

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Left::Suspect => "it is suspect (stopped answering), so nothing waited on it",
            Left::Unanswered => "no answer within the update budget",
            Left::OutOfTime => "the update budget ran out before it had everything",
        })
    }
}

/// Whether the health record went from `before` to `after` through an answer: a new latency
/// sample, or consecutive failures reset.
fn answered_between(before: &SavedHealth, after: &SavedHealth) -> bool {
    before.samples_micros != after.samples_micros
        || (before.consecutive_failures > 0 && after.consecutive_failures == 0)
}

/// Lets the catch-up workers of `remotes` run until every one is done or its validator is
/// suspect, for at most `budget`. A validator that is not suspect but gave no answer within
/// the budget counts one failure in its health (as a request timing out would). Returns the
/// validators left with work, and why.
pub async fn run(
    catch_up: &CatchUp,
    remotes: &[RemoteNode],
    budget: Duration,
) -> Vec<(ValidatorPublicKey, Left)> {
    let start = Instant::now();
    let before: Vec<SavedHealth> = remotes.iter().map(|remote| remote.health.save()).collect();
    let waited_on = |remote: &RemoteNode| {
        catch_up.is_running(&remote.public_key) && !remote.health.is_suspect()
    };
    loop {
        let elapsed = start.elapsed();
        if elapsed >= budget || !remotes.iter().any(waited_on) {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL.min(budget - elapsed)).await;
    }
    let mut left = Vec::new();
    for (remote, before) in remotes.iter().zip(&before) {
        if !catch_up.is_running(&remote.public_key) {
            continue;
        }
        let why = if remote.health.is_suspect() {
            Left::Suspect
        } else if answered_between(before, &remote.health.save()) {
            Left::OutOfTime
        } else {
            remote.health.record_failure();
            Left::Unanswered
        };
        left.push((remote.public_key, why));
    }
    debug!(elapsed = ?start.elapsed(), left = left.len(), "final update phase done");
    left
}

/// Prints one warning per validator of `left`.
pub fn report(left: &[(ValidatorPublicKey, Left)], budget: Duration) {
    for (validator, why) in left {
        eprintln!(
            "warning: validator {validator} not brought up to date within {} ms: {why}; the next \
             client or the validator's own catch-up will deliver the rest",
            budget.as_millis()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_shows_in_the_record() {
        let quiet = SavedHealth {
            consecutive_failures: 1,
            samples_micros: vec![10, 20],
            ..SavedHealth::default()
        };
        assert!(!answered_between(&quiet, &quiet));
        let sampled = SavedHealth {
            samples_micros: vec![20, 30],
            ..quiet.clone()
        };
        assert!(answered_between(&quiet, &sampled));
        let reset = SavedHealth {
            consecutive_failures: 0,
            ..quiet.clone()
        };
        assert!(answered_between(&quiet, &reset));
    }
}
