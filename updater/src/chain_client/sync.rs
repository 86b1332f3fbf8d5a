//! Bringing the local node and the validators up to date on a chain (DESIGN §5.2.4, §5.5).

use tracing::warn;

use quorum_core::{
    BlockHeight, ChainId, ChainInfoQuery, ChainInfoResponse, Committee, CrossChainDelivery,
    NodeError, Storage, ValidatorNode, ValidatorPublicKey, Violation,
};

use crate::hedge::{by_health, hedged};
use crate::quorum::gather;
use crate::remote::RemoteNode;
use crate::stats::RecoveryKind;
use crate::updater::upload_batch_size;

use super::{ChainClient, ChainClientError};

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
    /// Brings the local node up to date with the validators on this chain: the highest height
    /// and the latest round evidence any of them has, every certificate checked.
    pub async fn synchronize_from_validators(&self) -> Result<(), ChainClientError> {
        self.synchronize_chain(self.chain_id).await
    }

    /// Brings the local node up to date on `chain_id` (for example a chain whose blobs or events
    /// this chain will read).
    pub async fn synchronize_chain(&self, chain_id: ChainId) -> Result<(), ChainClientError> {
        let state = self.local.chain_state(chain_id).await?;
        let epoch = state.epoch();
        let (committee, remotes) = self.committee_and_remotes(epoch).await?;
        let query = ChainInfoQuery::new(chain_id).with_manager_values();
        // Everyone at once; nothing waits on the slow beyond a quorum and its grace.
        let answers = gather(&remotes, &committee, &self.options, |remote| {
            let query = query.clone();
            async move {
                let updater = self.updater(remote.clone());
                let response = updater
                    .call_remote(|| remote.node.handle_chain_info_query(query.clone()))
                    .await?;
                if response.info.chain_id != chain_id || response.check(&remote.public_key).is_err()
                {
                    return Err(NodeError::ProtocolViolation(Violation::WrongVote));
                }
                Ok(response)
            }
        })
        .await;
        let mut infos: Vec<(RemoteNode, ChainInfoResponse)> = answers;
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
                    updater.process_downloaded(certificate).await
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
