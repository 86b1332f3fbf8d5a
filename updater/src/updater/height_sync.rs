//! Height sync: making a remote's chain reach a height, by the last certificate alone when it
//! takes it, else by batches from its own height (in an order its cross-chain messages allow,
//! see `ordered_sync`), its parent chains first (DESIGN §5.2.6).

use futures::future::BoxFuture;
use futures::FutureExt;

use quorum_core::{
    BlockHeight, ChainId, ChainInfoQuery, ChainOrigin, ConfirmedBlockCertificate,
    CrossChainDelivery, NodeError, Storage, Violation,
};

use super::{violation, ValidatorUpdater};

impl<S: Storage + 'static> ValidatorUpdater<S> {
    /// Makes the remote's chain `chain_id` reach at least `target` (DESIGN §5.2.6): height sync,
    /// then round sync.
    pub async fn send_chain_information(
        &self,
        chain_id: ChainId,
        target: BlockHeight,
        delivery: CrossChainDelivery,
        depth: usize,
    ) -> Result<(), NodeError> {
        self.send_chain_information_boxed(chain_id, target, delivery, depth)
            .await
    }

    fn send_chain_information_boxed(
        &self,
        chain_id: ChainId,
        target: BlockHeight,
        delivery: CrossChainDelivery,
        depth: usize,
    ) -> BoxFuture<'_, Result<(), NodeError>> {
        async move {
            if depth > self.options.max_recovery_depth {
                return Err(violation(Violation::RepeatedRecovery));
            }
            let local = self.local.chain_state(chain_id).await?;
            let target = target.min(local.next_height());
            let mut remote_info = None;
            if target == BlockHeight(0) {
                self.send_chain_description(chain_id, depth).await?;
            } else {
                let last = BlockHeight(target.0 - 1);
                let certificate = self.local_certificate(chain_id, last).await?;
                // A validator that signed the certificate holds its value: lite suffices.
                let try_lite = certificate
                    .signatures()
                    .iter()
                    .any(|(signer, _)| *signer == self.remote.public_key);
                match self
                    .send_confirmed_certificate_at(&certificate, delivery, try_lite, depth)
                    .await
                {
                    Ok(response) if response.info.next_block_height >= target => {
                        remote_info = Some(response);
                    }
                    _ => {
                        let remote_next = self.remote_next_height(chain_id, depth).await?;
                        remote_info = self
                            .send_heights(chain_id, remote_next, target, delivery, depth)
                            .await?;
                    }
                }
            }
            if target == local.next_height() {
                self.sync_round(chain_id, remote_info).await;
            }
            Ok(())
        }
        .boxed()
    }

    /// Sends the certificate of the block of `parent` at `height` that opened `chain_id`, if
    /// the local node has it; whether the remote knows the chain afterwards.
    async fn send_opening_block(
        &self,
        chain_id: ChainId,
        parent: ChainId,
        height: BlockHeight,
    ) -> bool {
        let Ok(certificate) = self.local_certificate(parent, height).await else {
            return false;
        };
        let sent = self
            .call(|| {
                self.remote
                    .node
                    .handle_confirmed_certificate(certificate.clone(), CrossChainDelivery::Blocking)
            })
            .await;
        // Behind on the parent, the remote answers `UnexpectedBlockHeight` but takes the chain.
        if !matches!(sent, Ok(_) | Err(NodeError::UnexpectedBlockHeight { .. })) {
            return false;
        }
        let query = ChainInfoQuery::new(chain_id);
        matches!(
            self.call(|| self.remote.node.handle_chain_info_query(query.clone())).await,
            Ok(response) if response.info.chain_id == chain_id
        )
    }

    pub(super) async fn local_certificate(
        &self,
        chain_id: ChainId,
        height: BlockHeight,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        self.local
            .storage()
            .read_certificates_by_heights(chain_id, &[height])
            .await?
            .into_iter()
            .next()
            .flatten()
            .ok_or(NodeError::NotFound)
    }

    /// The remote's next height for `chain_id`, activating the chain there first if needed.
    pub(super) async fn remote_next_height(
        &self,
        chain_id: ChainId,
        depth: usize,
    ) -> Result<BlockHeight, NodeError> {
        let query = ChainInfoQuery::new(chain_id);
        match self
            .call(|| self.remote.node.handle_chain_info_query(query.clone()))
            .await
        {
            Ok(response) => {
                self.check_response(&response, chain_id)?;
                Ok(response.info.next_block_height)
            }
            Err(NodeError::InactiveChain(_)) => {
                self.send_chain_description(chain_id, depth).await?;
                Ok(BlockHeight(0))
            }
            Err(error) => Err(error),
        }
    }

    /// Makes the remote know the chain: first the block that opened it alone (a validator
    /// takes the chains a certified block opens even while it lags on the parent), and only if
    /// that did not do, the parent up to the opening block; then checks the chain is active.
    pub async fn send_chain_description(
        &self,
        chain_id: ChainId,
        depth: usize,
    ) -> Result<(), NodeError> {
        let local = self.local.chain_state(chain_id).await?;
        let description = local.description()?.clone();
        if let ChainOrigin::Child { parent, height, .. } = description.origin {
            if self.send_opening_block(chain_id, parent, height).await {
                return Ok(());
            }
            let target = height
                .try_next()
                .ok_or(violation(Violation::RepeatedRecovery))?;
            self.send_chain_information_boxed(
                parent,
                target,
                CrossChainDelivery::Blocking,
                depth + 1,
            )
            .await?;
        }
        let query = ChainInfoQuery::new(chain_id);
        let response = self
            .call(|| self.remote.node.handle_chain_info_query(query.clone()))
            .await?;
        self.check_response(&response, chain_id)
    }
}
