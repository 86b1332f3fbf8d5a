//! [`LogLiar`]: a validator that answers honestly except about received logs, which it
//! withholds or pads with entries of its own, signing its answers with its real key.

use std::sync::Arc;

use async_trait::async_trait;

use quorum_core::{
    BatchOutcome, Blob, BlobId, BlockHeight, BlockProposal, ChainId, ChainInfoQuery,
    ChainInfoResponse, ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, LiteCertificate,
    NodeError, ReceivedEntry, TimeoutCertificate, ValidatedBlockCertificate, ValidatorNode,
    ValidatorSecretKey,
};

/// What the liar does to received logs.
pub enum Lie {
    /// Answers every received-log query with an empty log.
    Withhold,
    /// Adds these entries after its honest log (and counts them in its length).
    Invent(Vec<ReceivedEntry>),
    /// Gives its log honestly, but answers every certificate download with nothing.
    HideCertificates,
}

/// A validator whose received logs lie as [`Lie`] says.
pub struct LogLiar {
    pub honest: Arc<dyn ValidatorNode>,
    pub key: ValidatorSecretKey,
    pub lie: Lie,
}

#[async_trait]
impl ValidatorNode for LogLiar {
    async fn handle_chain_info_query(
        &self,
        q: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let from = q.request_received_log_from;
        let response = self.honest.handle_chain_info_query(q).await?;
        let mut info = *response.info;
        match &self.lie {
            Lie::Withhold => {
                info.received_log_len = 0;
                info.requested_received_log.clear();
            }
            Lie::HideCertificates => {}
            Lie::Invent(extra) => {
                let honest_len = info.received_log_len;
                info.received_log_len = honest_len + extra.len() as u64;
                if let Some(from) = from {
                    let skip = from.saturating_sub(honest_len) as usize;
                    info.requested_received_log
                        .extend(extra.iter().skip(skip).copied());
                }
            }
        }
        Ok(ChainInfoResponse::new(info, Some(&self.key)))
    }
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
        if matches!(self.lie, Lie::HideCertificates) {
            return Ok(Vec::new());
        }
        self.honest.download_certificates_by_heights(c, h).await
    }
}
