//! [`Twisted`]: a validator that delegates to an honest Worker, except where a scenario says
//! otherwise.

use async_trait::async_trait;
use std::sync::Arc;

use quorum_core::{
    BatchOutcome, Blob, BlobId, BlockHeight, BlockProposal, ChainId, ChainInfoQuery,
    ChainInfoResponse, ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, LiteCertificate,
    NodeError, TimeDelta, TimeoutCertificate, ValidatedBlockCertificate, ValidatorNode,
};
use quorum_node::{MemoryStorage, Worker};

/// A validator that delegates to an honest one, except where a test says otherwise.
pub struct Twisted {
    pub honest: Arc<Worker<MemoryStorage>>,
    /// Answers timeout requests with no vote and a deadline a year away.
    pub late_deadline: bool,
    /// Refuses every blob download.
    pub withhold_blobs: bool,
}

#[async_trait]
impl ValidatorNode for Twisted {
    async fn handle_block_proposal(
        &self,
        p: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.honest.handle_block_proposal(p).await
    }
    async fn handle_lite_certificate(
        &self,
        c: LiteCertificate,
        d: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.honest.handle_lite_certificate(c, d).await
    }
    async fn handle_confirmed_certificate(
        &self,
        c: ConfirmedBlockCertificate,
        d: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.honest.handle_confirmed_certificate(c, d).await
    }
    async fn handle_validated_certificate(
        &self,
        c: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.honest.handle_validated_certificate(c).await
    }
    async fn handle_timeout_certificate(
        &self,
        c: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.honest.handle_timeout_certificate(c).await
    }
    async fn handle_confirmed_certificates(
        &self,
        c: Vec<ConfirmedBlockCertificate>,
        d: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError> {
        self.honest.handle_confirmed_certificates(c, d).await
    }
    async fn handle_chain_info_query(
        &self,
        q: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let timeout = q.request_timeout.is_some();
        let mut response = self.honest.handle_chain_info_query(q).await?;
        if timeout && self.late_deadline {
            let year = TimeDelta::from_secs(365 * 24 * 3600);
            response.info.manager.timeout_vote = None;
            response.info.manager.round_timeout =
                Some(self.honest.clock().now().saturating_add(year));
        }
        Ok(response)
    }
    async fn upload_blob(&self, b: Blob) -> Result<BlobId, NodeError> {
        self.honest.upload_blob(b).await
    }
    async fn handle_pending_blob(
        &self,
        c: ChainId,
        b: Blob,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.honest.handle_pending_blob(c, b).await
    }
    async fn download_blob(&self, id: BlobId) -> Result<Blob, NodeError> {
        if self.withhold_blobs {
            return Err(NodeError::BlobsNotFound(vec![id]));
        }
        self.honest.download_blob(id).await
    }
    async fn missing_blob_ids(&self, ids: Vec<BlobId>) -> Result<Vec<BlobId>, NodeError> {
        self.honest.missing_blob_ids(ids).await
    }
    async fn download_certificate(
        &self,
        h: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        self.honest.download_certificate(h).await
    }
    async fn download_certificates_by_heights(
        &self,
        c: ChainId,
        h: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        self.honest.download_certificates_by_heights(c, h).await
    }
}
