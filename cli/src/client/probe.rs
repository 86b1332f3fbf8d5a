//! Probes at the start of a `quorum client` command: one chain information query to every
//! validator not in its cooldown, sent before the command's own work and never waited for.
//!
//! A command lasts a few tens of milliseconds, and its quorum calls stop listening at the
//! quorum and its grace, so by itself it rarely sees a validator answer or time out. The
//! probes give each command an observation of every validator to record in its health: a
//! validator that stopped answering times out (with the request timeout, or the short probe
//! timeout once suspect) and becomes suspect within the first command that meets it; a
//! suspect that came back answers within milliseconds and is healthy again before the
//! command's final update phase, which then brings it up to date. A probe still running when
//! the command ends is dropped with the process.

use std::time::Duration;

use tokio::time::Instant;

use quorum_core::{ChainId, ChainInfoQuery, NodeError};
use quorum_updater::{Options, RemoteNode};

/// Whether `error` means the validator did not answer (a timeout or a transport failure, as
/// the updater counts them in health), rather than an answer that refuses.
pub fn is_unanswered(error: &NodeError) -> bool {
    matches!(error, NodeError::Transport(_) | NodeError::Timeout)
}

/// How long to wait for `remote`: the probe timeout for a suspect, else the request timeout.
pub fn timeout_for(remote: &RemoteNode, options: &Options) -> Duration {
    if remote.health.is_suspect() {
        options.probe_timeout.min(options.request_timeout)
    } else {
        options.request_timeout
    }
}

/// Records in `remote`'s health the outcome of a call that started at `started`.
pub fn record<T>(remote: &RemoteNode, started: Instant, outcome: &Result<T, NodeError>) {
    match outcome {
        Err(error) if is_unanswered(error) => remote.health.record_failure(),
        _ => remote.health.record_success(started.elapsed()),
    }
}

/// Asks `remote` about `chain_id` within [`timeout_for`], recording the outcome in its health.
pub async fn query(
    remote: &RemoteNode,
    chain_id: ChainId,
    options: &Options,
) -> Result<quorum_core::ChainInfoResponse, NodeError> {
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        timeout_for(remote, options),
        remote
            .node
            .handle_chain_info_query(ChainInfoQuery::new(chain_id)),
    )
    .await
    .unwrap_or(Err(NodeError::Timeout));
    record(remote, started, &outcome);
    outcome
}

/// Starts a probe of every validator of `remotes` that is not in its cooldown (about
/// `chain_id`, any chain they all know), in the background.
pub fn spawn(remotes: &[RemoteNode], chain_id: ChainId, options: &Options) {
    for remote in remotes {
        if remote.health.in_cooldown() {
            continue;
        }
        let remote = remote.clone();
        let options = options.clone();
        tokio::spawn(async move {
            let _ = query(&remote, chain_id, &options).await;
        });
    }
}
