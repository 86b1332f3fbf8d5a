//! Hedged reads (DESIGN §5.6): a read that any one validator can answer goes to the best
//! validator first, and to the next one as well when the first has not answered within its
//! hedge delay (its p95 latency, at least 20 ms), up to a fan-out cap; the first answer wins.
//! A failed answer moves on to the next validator at once. Suspects come last.

use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

use quorum_core::NodeError;

use crate::remote::RemoteNode;

/// `remotes` best first: healthy before suspect, then by average latency. The order among
/// equals is kept (callers put their preference first).
pub(crate) fn by_health(mut remotes: Vec<RemoteNode>) -> Vec<RemoteNode> {
    remotes.sort_by_key(|remote| remote.health.rank());
    remotes
}

/// Reads with `read` from `candidates` (best first), hedging as described above, asking at
/// most `fanout` of them. The first success wins and names who gave it; when all asked fail,
/// the last error (`NodeError::NotFound` when there was nobody to ask).
pub(crate) async fn hedged<T, F, Fut>(
    candidates: &[RemoteNode],
    fanout: usize,
    read: F,
) -> Result<(RemoteNode, T), NodeError>
where
    F: Fn(RemoteNode) -> Fut,
    Fut: Future<Output = Result<T, NodeError>>,
{
    let limit = fanout.max(1).min(candidates.len());
    let mut running = FuturesUnordered::new();
    let mut started = 0;
    let mut last_error = NodeError::NotFound;
    let launch = |remote: &RemoteNode| {
        let remote = remote.clone();
        let call = read(remote.clone());
        async move { (remote, call.await) }
    };
    loop {
        if running.is_empty() {
            let Some(remote) = candidates.get(started).filter(|_| started < limit) else {
                return Err(last_error);
            };
            running.push(launch(remote));
            started += 1;
        }
        let hedge = candidates
            .get(started.saturating_sub(1))
            .map(|remote| remote.health.hedge_delay())
            .unwrap_or_default();
        tokio::select! {
            Some((remote, answer)) = running.next() => match answer {
                Ok(value) => return Ok((remote, value)),
                Err(error) => {
                    last_error = error;
                    if let Some(next) = candidates.get(started).filter(|_| started < limit) {
                        running.push(launch(next));
                        started += 1;
                    }
                }
            },
            () = tokio::time::sleep(hedge), if started < limit => {
                if let Some(next) = candidates.get(started) {
                    running.push(launch(next));
                    started += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use quorum_testkit::TestNet;
    use tokio::time::Instant;

    use crate::health::UNKNOWN_HEDGE_DELAY;

    async fn remotes(n: usize) -> Vec<RemoteNode> {
        let net = TestNet::new(n, 1, false).await;
        net.secrets
            .iter()
            .zip(&net.workers)
            .map(|(secret, worker)| {
                let node: Arc<dyn quorum_core::ValidatorNode> = worker.clone();
                RemoteNode::new(secret.public(), node)
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_first_choice_costs_one_hedge_delay() {
        let remotes = remotes(3).await;
        let hung = remotes[0].public_key;
        let asked = AtomicUsize::new(0);
        let start = Instant::now();
        let (who, value) = hedged(&remotes, 3, |remote| {
            asked.fetch_add(1, Ordering::SeqCst);
            async move {
                if remote.public_key == hung {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, NodeError>(7)
            }
        })
        .await
        .unwrap();
        assert_eq!((who.public_key, value), (remotes[1].public_key, 7));
        assert_eq!(
            start.elapsed(),
            UNKNOWN_HEDGE_DELAY + Duration::from_millis(5)
        );
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_move_on_at_once_and_the_fanout_is_capped() {
        let remotes = remotes(4).await;
        let asked = AtomicUsize::new(0);
        let start = Instant::now();
        let answer = hedged(&remotes, 2, |_| {
            asked.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(NodeError::Timeout) }
        })
        .await;
        assert_eq!(answer.unwrap_err(), NodeError::Timeout);
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        assert_eq!(start.elapsed(), Duration::ZERO);
        let none = hedged(&[], 3, |_| async { Ok::<_, NodeError>(()) }).await;
        assert_eq!(none.unwrap_err(), NodeError::NotFound);
    }
}
