//! Bringing the local node and the validators up to date on a chain (DESIGN §5.2.4, §5.5).

use tracing::warn;

use quorum_core::{
    BlockHeight, ChainId, ChainInfoQuery, ChainInfoResponse, Committee, CrossChainDelivery,
    NodeError, Storage, ValidatorNode, ValidatorPublicKey,
};

use crate::remote::RemoteNode;

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
        let epoch = state.epoch;
        let (committee, remotes) = self.committee_and_remotes(epoch).await?;
        let query = ChainInfoQuery::new(chain_id).with_manager_values();
        let mut infos = Vec::new();
        for remote in &remotes {
            let answer = tokio::time::timeout(
                self.options.request_timeout,
                remote.node.handle_chain_info_query(query.clone()),
            )
            .await;
            if let Ok(Ok(response)) = answer {
                if response.info.chain_id == chain_id && response.check(&remote.public_key).is_ok()
                {
                    infos.push((remote.clone(), response));
                }
            }
        }
        infos.sort_by_key(|(_, response)| std::cmp::Reverse(response.info.next_block_height));
        // The target: the highest height that validators holding f+1 of the weight (so at
        // least one honest one) have reached. A single validator claiming more is tried, but
        // not reaching its claim is no error.
        let target = trusted_height(&committee, &infos);
        let mut last_error = None;
        for (remote, response) in &infos {
            let local_next = self.local.chain_state(chain_id).await?.next_height;
            if response.info.next_block_height <= local_next {
                break;
            }
            let updater = self.updater(remote.clone());
            if let Err(error) = updater
                .synchronize_chain_from_remote(chain_id, response.info.next_block_height)
                .await
            {
                warn!(validator = ?remote.public_key, %error, "could not synchronize from validator");
                last_error = Some(error);
            }
        }
        let local_next = self.local.chain_state(chain_id).await?.next_height;
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

    /// Brings every validator of the chain's current committee up to the local node's height on
    /// `chain_id`, concurrently, each within the overall deadline. Returns the validators that
    /// could not be updated, with why.
    pub async fn update_validators(
        &self,
        chain_id: ChainId,
    ) -> Result<Vec<(ValidatorPublicKey, NodeError)>, ChainClientError> {
        let state = self.local.chain_state(chain_id).await?;
        let (_, remotes) = self.committee_and_remotes(state.epoch).await?;
        let target = state.next_height;
        let updates = remotes.into_iter().map(|remote| {
            let updater = self.updater(remote.clone());
            let deadline = self.options.deadline;
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
