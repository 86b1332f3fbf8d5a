//! Bringing the local node and the validators up to date on a chain (DESIGN §5.2.4, §5.5).

use tracing::warn;

use quorum_core::{
    BlockHeight, ChainDescription, ChainId, ChainInfoQuery, ChainInfoResponse, ChainOrigin,
    Committee, CrossChainDelivery, EventId, NodeError, Storage, ValidatorNode, ValidatorPublicKey,
    Violation,
};

use crate::hedge::{by_health, hedged};
use crate::quorum::gather;
use crate::recovery_stats::RecoveryKind;
use crate::remote::RemoteNode;
use crate::updater::upload_batch_size;

use super::{ChainClient, ChainClientError};

/// Logs why the local node refused a validator's round evidence: at debug level when the
/// protocol expects it (an older round, a block another lock holds), else as a warning.
fn report_evidence(remote: &RemoteNode, what: &str, taken: Result<(), NodeError>) {
    match taken {
        Ok(()) => {}
        Err(error) if error.is_expected() || matches!(error, NodeError::HasLockedBlock) => {
            tracing::debug!(validator = ?remote.public_key, what, %error, "round evidence not taken");
        }
        Err(error) => {
            warn!(validator = ?remote.public_key, what, %error, "round evidence refused");
        }
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

impl<S: Storage + 'static> ChainClient<S> {
    /// Brings the local node up to date with the validators on this chain (DESIGN §5.8): the
    /// chain's own blocks ([`ChainClient::synchronize_chain`]), then everything sent to it
    /// that the validators' received logs name ([`ChainClient::synchronize_received_log`]),
    /// whoever sent it. Entries that could not be settled this time are read again next time.
    pub async fn synchronize_from_validators(&self) -> Result<(), ChainClientError> {
        self.synchronize_chain(self.chain_id).await?;
        self.synchronize_received_log(self.chain_id).await?;
        Ok(())
    }

    /// Brings the local node up to date on `chain_id` (for example a chain whose blobs or events
    /// this chain will read): the highest height validators have, every certificate checked,
    /// and, for this client's own chain when it has an owner, the latest round evidence
    /// (timeout certificates, locks, the super owner's fast proposal). Other chains are
    /// synchronized for their height only: their pending values are never downloaded.
    ///
    /// A chain the local node does not know yet is followed from its description, which a
    /// validator gives and whose hash must be the chain's id (`UnknownChain` if no validator
    /// asked knows it). Blocks of an epoch the local node does not know make it bring the
    /// admin chain up to date first (its committees and epoch announcements), then try again.
    pub async fn synchronize_chain(&self, chain_id: ChainId) -> Result<(), ChainClientError> {
        match self.synchronize_chain_once(chain_id).await {
            Err(ChainClientError::SyncIncomplete {
                error: Some(error), ..
            }) if chain_id != self.admin_chain()
                && matches!(&*error, NodeError::EventsNotFound(ids) if self.is_admin_epoch_claim(ids)) =>
            {
                self.stats.record(RecoveryKind::LocalSync);
                self.synchronize_chain_once(self.admin_chain()).await?;
                self.synchronize_chain_once(chain_id).await
            }
            other => other,
        }
    }

    /// Whether `ids` are all announcements of epochs on the admin chain.
    pub(super) fn is_admin_epoch_claim(&self, ids: &[EventId]) -> bool {
        !ids.is_empty()
            && ids
                .iter()
                .all(|id| id.is_epoch_announcement(self.admin_chain()))
    }

    /// One pass of [`ChainClient::synchronize_chain`].
    pub(super) async fn synchronize_chain_once(
        &self,
        chain_id: ChainId,
    ) -> Result<(), ChainClientError> {
        let state = self.local.chain_state(chain_id).await?;
        let epoch = state.epoch();
        let (committee, remotes) = self.committee_and_remotes(epoch).await?;
        // Two syncs (DESIGN §5.2.4): the owner sync of this client's own chain also takes in
        // the round's evidence, asking for the pending values (proposals, locks) of the
        // validators that voted at the height; any other chain (a sender, the admin chain, a
        // chain whose blobs it reads) is synchronized for its height only, and a huge
        // pending proposal there costs this client nothing.
        let owner_sync = chain_id == self.chain_id && self.owner.is_some();
        let query = ChainInfoQuery::new(chain_id);
        // Everyone at once; nothing waits on the slow beyond a quorum and its grace.
        let answers = gather(&remotes, &committee, &self.options, |remote| {
            let query = query.clone();
            async move {
                let updater = self.updater(remote.clone());
                let response = updater
                    .call_remote(|| remote.node.handle_chain_info_query(query.clone()))
                    .await?;
                if response.info.chain_id != chain_id || remote.check_info(&response).is_err() {
                    return Err(NodeError::ProtocolViolation(Violation::WrongVote));
                }
                Ok(response)
            }
        })
        .await;
        let mut infos: Vec<(RemoteNode, ChainInfoResponse)> = answers;
        if !state.is_active() {
            self.follow(chain_id, &infos).await?;
        }
        infos.sort_by_key(|(_, response)| std::cmp::Reverse(response.info.next_block_height));
        // The target: the highest height that validators holding f+1 of the weight (so at
        // least one honest one) have reached. A single validator claiming more is tried, but
        // not reaching its claim is no error.
        let target = trusted_height(&committee, &infos);
        let last_error = self.download_hedged(chain_id, &infos).await?;
        let local_next = self.local.chain_state(chain_id).await?.next_height();
        if local_next < target {
            return Err(ChainClientError::SyncIncomplete {
                chain_id,
                reached: local_next,
                target,
                error: last_error.map(Box::new),
            });
        }
        // The round evidence of the validators at our height: their timeout certificates,
        // and from those that voted at the height, their locking blocks and the super
        // owner's fast proposal they voted for (with the blobs the block publishes, from the
        // validator that holds it), each checked by the local node. What it refuses is
        // reported, not evidence. Other proposals bind no validator (DESIGN §4.3) and are not
        // taken in.
        if owner_sync {
            let at_height = infos
                .iter()
                .filter(|(_, response)| response.info.next_block_height == local_next);
            let mut voted = Vec::new();
            for (remote, response) in at_height {
                let manager = &response.info.manager;
                if let Some(certificate) = &manager.timeout_certificate {
                    let taken = ValidatorNode::handle_timeout_certificate(
                        &*self.local,
                        (**certificate).clone(),
                    )
                    .await;
                    report_evidence(remote, "timeout certificate", taken.map(|_| ()));
                }
                if manager.pending.is_some() {
                    voted.push(remote.clone());
                }
            }
            futures::future::join_all(
                voted
                    .into_iter()
                    .map(|remote| self.take_in_round_values(remote, chain_id, local_next)),
            )
            .await;
            self.note_synced(chain_id, local_next);
        }
        Ok(())
    }

    /// Asks `remote`, which voted at `height` of `chain_id`, for the round's pending values
    /// and has the local node take in its locking block and the fast proposal it voted for.
    async fn take_in_round_values(
        &self,
        remote: RemoteNode,
        chain_id: ChainId,
        height: BlockHeight,
    ) {
        let updater = self.updater(remote.clone());
        let query = ChainInfoQuery::new(chain_id).with_manager_values();
        let answer = updater
            .call_remote(|| remote.node.handle_chain_info_query(query.clone()))
            .await;
        let response = match answer {
            Ok(response)
                if response.info.chain_id == chain_id && remote.check_info(&response).is_ok() =>
            {
                response
            }
            Ok(_) => {
                report_evidence(
                    &remote,
                    "pending values",
                    Err(NodeError::ProtocolViolation(Violation::WrongVote)),
                );
                return;
            }
            Err(error) => {
                report_evidence(&remote, "pending values", Err(error));
                return;
            }
        };
        if response.info.next_block_height != height {
            return;
        }
        let manager = &response.info.manager;
        if let Some(certificate) = &manager.requested_locking {
            let taken = updater.take_in_locking_block((**certificate).clone()).await;
            report_evidence(&remote, "locking block", taken);
        }
        if let Some(proposal) = &manager.requested_proposed {
            let taken = updater.take_in_fast_proposal(proposal).await;
            report_evidence(&remote, "fast proposal", taken);
        }
    }

    /// Notes that the local node holds what the validators reported for `chain_id` at
    /// `height` (see `synced_heights`).
    pub(super) fn note_synced(&self, chain_id: ChainId, height: BlockHeight) {
        if let Ok(mut heights) = self.synced_heights.lock() {
            heights.insert(chain_id, height);
        }
    }

    /// Whether the local node is known to hold what the validators reported for `chain_id`
    /// at `height`.
    pub(super) fn is_synced_at(&self, chain_id: ChainId, height: BlockHeight) -> bool {
        self.synced_heights
            .lock()
            .is_ok_and(|heights| heights.get(&chain_id) == Some(&height))
    }

    /// Activates `chain_id` on the local node from the first description among `infos` that
    /// hashes to its id; a validator whose description does not is refuted in its health
    /// record.
    async fn follow(
        &self,
        chain_id: ChainId,
        infos: &[(RemoteNode, ChainInfoResponse)],
    ) -> Result<(), ChainClientError> {
        for (remote, response) in infos {
            let Some(description) = &response.info.description else {
                continue;
            };
            match self.local.follow_chain(chain_id, description.clone()).await {
                Ok(()) => {
                    self.keep_opening_certificate(chain_id, description, infos)
                        .await;
                    return Ok(());
                }
                Err(NodeError::ProtocolViolation(violation)) => {
                    warn!(validator = ?remote.public_key, ?violation, "gave a description of another chain");
                    remote.health.record_violation();
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ChainClientError::UnknownChain(chain_id))
    }

    /// For a chain opened by another chain: downloads the certificate of the block that
    /// opened it (best validator first, hedged) and has the local node keep it, so that the
    /// client can set the chain up on a validator that does not know it with that block
    /// alone. Without it the chain is still followed; a failure is only logged.
    async fn keep_opening_certificate(
        &self,
        chain_id: ChainId,
        description: &ChainDescription,
        infos: &[(RemoteNode, ChainInfoResponse)],
    ) {
        let ChainOrigin::Child { parent, height, .. } = description.origin else {
            return;
        };
        let candidates = by_health(infos.iter().map(|(remote, _)| remote.clone()).collect());
        let kept = hedged(
            &candidates,
            self.options.max_hedge_fanout,
            |remote| async move {
                let updater = self.updater(remote.clone());
                let mut certificates = updater
                    .call_remote(|| {
                        remote
                            .node
                            .download_certificates_by_heights(parent, vec![height])
                    })
                    .await?;
                if certificates.len() != 1 {
                    return Err(NodeError::NotFound);
                }
                self.local
                    .keep_opening_certificate(certificates.remove(0), chain_id)
                    .await
            },
        )
        .await;
        if let Err(error) = kept {
            warn!(?chain_id, %error, "the block that opened the chain could not be kept");
        }
    }

    /// Downloads the chain from the validators that claim more than the local node has, batch
    /// by batch, each batch a hedged read (best validator first, the next after its hedge
    /// delay). A validator whose certificates do not check, or that serves nothing new, is
    /// dropped; every round either makes progress or drops one, so this ends. Returns the
    /// last error seen.
    async fn download_hedged(
        &self,
        chain_id: ChainId,
        infos: &[(RemoteNode, ChainInfoResponse)],
    ) -> Result<Option<NodeError>, ChainClientError> {
        let batch = upload_batch_size(&self.options, &self.local.config().limits) as u64;
        let mut sources: Vec<(RemoteNode, BlockHeight)> = infos
            .iter()
            .map(|(remote, response)| (remote.clone(), response.info.next_block_height))
            .collect();
        let mut last_error = None;
        loop {
            let local_next = self.local.chain_state(chain_id).await?.next_height();
            sources.retain(|(_, claimed)| *claimed > local_next);
            let Some(goal) = sources.iter().map(|(_, claimed)| *claimed).max() else {
                return Ok(last_error);
            };
            let end = goal.0.min(local_next.0.saturating_add(batch));
            let heights: Vec<BlockHeight> = (local_next.0..end).map(BlockHeight).collect();
            let candidates = by_health(sources.iter().map(|(remote, _)| remote.clone()).collect());
            let read = hedged(&candidates, self.options.max_hedge_fanout, |remote| {
                let heights = heights.clone();
                async move {
                    let updater = self.updater(remote.clone());
                    let certificates = updater
                        .call_remote(|| {
                            remote
                                .node
                                .download_certificates_by_heights(chain_id, heights.clone())
                        })
                        .await?;
                    if certificates.is_empty() {
                        return Err(NodeError::NotFound);
                    }
                    Ok(certificates)
                }
            })
            .await;
            let (source, certificates) = match read {
                Ok(answer) => answer,
                Err(error) => {
                    // Nobody asked could serve this batch: none of them is asked again.
                    let asked = self.options.max_hedge_fanout.max(1);
                    let dropped: Vec<_> = candidates
                        .iter()
                        .take(asked)
                        .map(|r| r.public_key)
                        .collect();
                    sources.retain(|(remote, _)| !dropped.contains(&remote.public_key));
                    last_error = Some(error);
                    continue;
                }
            };
            self.stats.record(RecoveryKind::LocalSync);
            let updater = self.updater(source.clone());
            let mut outcome = Ok(());
            if certificates.len() > heights.len() {
                outcome = Err(NodeError::ProtocolViolation(Violation::BadCertificate));
            }
            for certificate in certificates {
                if outcome.is_err() {
                    break;
                }
                outcome = if certificate.value().block().chain_id != chain_id {
                    Err(NodeError::ProtocolViolation(Violation::WrongChain))
                } else {
                    // Each certificate is an action of its own, with its own recovery budget:
                    // its repairs are bounded by its bundles, and a batch of blocks that each
                    // consume a bundle must not run one budget dry.
                    updater.fresh().process_downloaded(certificate).await
                };
            }
            let progressed = self.local.chain_state(chain_id).await?.next_height() > local_next;
            if let Err(error) = outcome {
                warn!(validator = ?source.public_key, %error, "could not synchronize from validator");
                last_error = Some(error);
            }
            if !progressed {
                sources.retain(|(remote, _)| remote.public_key != source.public_key);
            }
        }
    }

    /// Brings every validator of the chain's current committee up to the local node's height on
    /// `chain_id`, concurrently, each within the overall deadline (a validator in its cooldown
    /// within the probe timeout: nothing waits long on a suspect). Returns the validators that
    /// could not be updated, with why.
    pub async fn update_validators(
        &self,
        chain_id: ChainId,
    ) -> Result<Vec<(ValidatorPublicKey, NodeError)>, ChainClientError> {
        let state = self.local.chain_state(chain_id).await?;
        let (_, remotes) = self.committee_and_remotes(state.epoch()).await?;
        let target = state.next_height();
        let updates = remotes.into_iter().map(|remote| {
            let updater = self.updater(remote.clone());
            let deadline = if remote.health.in_cooldown() {
                self.options.probe_timeout.min(self.options.deadline)
            } else {
                self.options.deadline
            };
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
}
