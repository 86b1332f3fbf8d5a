//! One request to one validator, driven by the [`Planner`]: send, hand the refusal to the
//! planner, carry out the [`Step`] it names, send again (DESIGN §5.2, §5.4.1).

use std::future::Future;

use futures::future::try_join_all;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use quorum_core::{
    Blob, BlobId, ChainInfoResponse, CrossChainDelivery, NodeError, Storage, Violation,
};

use super::action::SkewReport;
use super::planner::{clock_skew, Decision, Planner, Step};
use super::{is_retryable, violation, ValidatorUpdater};

/// What a request carries besides its subject: what its steps may need.
#[derive(Clone, Copy, Default)]
pub(super) struct Context<'a> {
    /// Generations of parent chains above this request (DESIGN §5.4.1).
    pub depth: usize,
    /// The contents of the blobs the block itself publishes.
    pub blobs: &'a [Blob],
    /// Where clock skew seen in `InvalidTimestamp` answers is reported.
    pub skew_reports: Option<&'a mpsc::UnboundedSender<SkewReport>>,
}

impl<S: Storage + 'static> ValidatorUpdater<S> {
    /// Sends with `send` (its argument: whether to send the certificate lite) until the
    /// remote accepts, or the planner gives up. The loop ends: each step is taken at most once
    /// per cause and every counted one draws on the action's budget.
    pub(super) async fn drive<F, Fut>(
        &self,
        mut planner: Planner,
        context: Context<'_>,
        send: F,
    ) -> Result<ChainInfoResponse, NodeError>
    where
        F: Fn(bool) -> Fut,
        Fut: Future<Output = Result<ChainInfoResponse, NodeError>>,
    {
        let chain_id = planner.subject().chain_id;
        for _ in 0..=self.options.max_recoveries_per_call {
            // Our time when the request leaves: the remote reads its clock after that, so a
            // slow answer never looks like a clock behind ours.
            let sent_at = self.local.clock().now();
            let error = match send(planner.lite()).await {
                Ok(response) => {
                    self.check_response(&response, chain_id)?;
                    return Ok(response);
                }
                Err(error) => error,
            };
            if let NodeError::InvalidTimestamp { local_time, .. } = &error {
                let skew = clock_skew(sent_at, *local_time);
                let micros = i64::try_from(skew.as_micros()).unwrap_or(i64::MAX);
                self.stats.record_skew(micros);
                if let Some(reports) = context.skew_reports {
                    let _ = reports.send((self.remote.public_key, micros));
                }
            }
            if let Ok(state) = self.local.chain_state(chain_id).await {
                planner.observe_local_next(state.next_height());
            }
            match planner.plan(&error, sent_at, &self.budget) {
                Decision::Fail(error) => {
                    if is_retryable(&error) {
                        // Unreachable or slow validators are routine; the quorum absorbs them.
                        debug!(validator = ?self.remote.public_key, %error, "request not delivered");
                    } else if !error.is_expected() {
                        warn!(validator = ?self.remote.public_key, %error, "request refused");
                    }
                    return Err(error);
                }
                Decision::Recover { kind, step } => {
                    if let Some(kind) = kind {
                        self.stats.record(kind);
                    }
                    debug!(validator = ?self.remote.public_key, ?kind, ?step, "recovering");
                    self.execute(&planner, step, context).await?;
                }
            }
        }
        Err(violation(Violation::RepeatedRecovery))
    }

    /// Carries out one step of the planner.
    async fn execute(
        &self,
        planner: &Planner,
        step: Step,
        context: Context<'_>,
    ) -> Result<(), NodeError> {
        let subject = planner.subject();
        match step {
            Step::SendChainInfo {
                chain_id,
                target,
                delivery,
            } => {
                self.send_chain_information(chain_id, target, delivery, context.depth)
                    .await
            }
            Step::SendPublishers(chains) => {
                let sends = chains.into_iter().map(|publisher| async move {
                    let target = self.local.chain_state(publisher).await?.next_height();
                    self.send_chain_information(
                        publisher,
                        target,
                        CrossChainDelivery::NonBlocking,
                        context.depth,
                    )
                    .await
                });
                try_join_all(sends).await.map(|_| ())
            }
            Step::UploadProposalBlobs => {
                let ids: Vec<BlobId> = subject.blobs.iter().copied().collect();
                self.upload_missing_blobs(subject.chain_id, ids, context.blobs)
                    .await
            }
            Step::UploadBlobs(ids) => self.upload_local_blobs(ids).await,
            // The next send goes in full: the planner says so through `lite()`.
            Step::SendFull => Ok(()),
            Step::SendDescription => {
                self.send_chain_description(subject.chain_id, context.depth)
                    .await
            }
            Step::SyncFromRemote { target } => {
                self.synchronize_chain_from_remote(subject.chain_id, target)
                    .await
            }
            Step::SyncRoundFromRemote => self.synchronize_round_from_remote(subject.chain_id).await,
            Step::Wait { until } => {
                // The remote's clock reads the block's timestamp when ours reads `until`.
                self.local.clock().sleep_until(until).await;
                Ok(())
            }
        }
    }
}
