//! Blobs a remote lacks: the proposal's own as pending blobs, the others through the blocks
//! that published them (those blocks alone where the remote takes them), or read from the
//! local node (DESIGN §5.2.1, §5.2.5).

use std::collections::{BTreeMap, BTreeSet};

use tracing::debug;

use quorum_core::{
    Blob, BlobId, BlockHeight, ChainId, CrossChainDelivery, NodeError, Storage, Violation,
};

use super::{violation, ValidatorUpdater};

impl<S: Storage + 'static> ValidatorUpdater<S> {
    /// Uploads the proposal's own blobs (`own`) as pending blobs, then makes sure the remote
    /// has the other blobs of `blob_ids` by sending the blocks that published them.
    pub(super) async fn upload_missing_blobs(
        &self,
        chain_id: ChainId,
        blob_ids: Vec<BlobId>,
        own: &[Blob],
    ) -> Result<(), NodeError> {
        let own_ids: BTreeSet<BlobId> = own.iter().map(Blob::id).collect();
        for blob in own {
            self.call(|| self.remote.node.handle_pending_blob(chain_id, blob.clone()))
                .await?;
        }
        let others: Vec<BlobId> = blob_ids
            .into_iter()
            .filter(|id| !own_ids.contains(id))
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        let missing = self
            .call(|| self.remote.node.missing_blob_ids(others.clone()))
            .await?;
        if !missing.iter().all(|id| others.contains(id)) {
            return Err(violation(Violation::FalseBlobsNotFound));
        }
        // Sparse heights: each publishing block alone. A node behind on that chain takes the
        // blobs a certified block publishes without the blocks before it (it answers that the
        // block itself must wait); one at that height simply executes it.
        let mut publishers: BTreeSet<(ChainId, BlockHeight)> = BTreeSet::new();
        for id in &missing {
            let state = self
                .local
                .storage()
                .read_blob_state(*id)
                .await?
                .ok_or(NodeError::BlobsNotFound(vec![*id]))?;
            publishers.insert((state.chain_id, state.height));
        }
        for (chain, height) in &publishers {
            let certificate = self.local_certificate(*chain, *height).await?;
            match self
                .send_confirmed_certificate(&certificate, CrossChainDelivery::NonBlocking, false)
                .await
            {
                Ok(_) => {}
                Err(NodeError::UnexpectedBlockHeight {
                    expected_block_height,
                    found_block_height,
                }) if expected_block_height < found_block_height => {}
                Err(error) => {
                    debug!(validator = ?self.remote.public_key, %error, ?chain, ?height, "publishing block not taken alone");
                }
            }
        }
        // Whatever is still missing (a node that takes no block ahead of its height, or lacks
        // the committee of the block's epoch) comes with its chain, up to the publishing block.
        let still = self
            .call(|| self.remote.node.missing_blob_ids(missing.clone()))
            .await?;
        if !still.iter().all(|id| missing.contains(id)) {
            return Err(violation(Violation::FalseBlobsNotFound));
        }
        let mut targets: BTreeMap<ChainId, BlockHeight> = BTreeMap::new();
        for id in still {
            let state = self
                .local
                .storage()
                .read_blob_state(id)
                .await?
                .ok_or(NodeError::BlobsNotFound(vec![id]))?;
            let target = targets.entry(state.chain_id).or_default();
            *target = (*target).max(state.height.try_next().unwrap_or(state.height));
        }
        for (chain, target) in targets {
            self.send_chain_information(chain, target, CrossChainDelivery::NonBlocking, 0)
                .await?;
        }
        Ok(())
    }

    /// Reads `ids` from the local node and uploads them; a certificate then goes in full.
    pub(super) async fn upload_local_blobs(&self, ids: Vec<BlobId>) -> Result<(), NodeError> {
        for id in ids {
            let blob = self
                .local
                .storage()
                .read_blob(id)
                .await?
                .ok_or(NodeError::BlobsNotFound(vec![id]))?;
            self.call(|| self.remote.node.upload_blob(blob.clone()))
                .await?;
        }
        Ok(())
    }
}
