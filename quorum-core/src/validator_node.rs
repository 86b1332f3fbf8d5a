//! The `ValidatorNode` trait: what a client can ask of one validator (DESIGN §4.7).

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::block::{
    BlockProposal, ConfirmedBlockCertificate, TimeoutCertificate, ValidatedBlockCertificate,
};
use crate::certificate::LiteCertificate;
use crate::error::NodeError;
use crate::hash::CryptoHash;
use crate::info::{BatchOutcome, ChainInfoQuery, ChainInfoResponse, CrossChainDelivery};
use crate::notification::{Subscription, SubscriptionChange, SubscriptionId};
use crate::{Blob, BlobId, BlockHeight, ChainId};

/// One validator, as a client sees it. Implemented by the Worker (in process) and by every
/// transport's client. Object safe: use it as `dyn ValidatorNode`.
#[async_trait::async_trait]
pub trait ValidatorNode: Send + Sync {
    /// Proposes a block; answers with the node's vote in `info.manager.pending`.
    async fn handle_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError>;

    /// Sends a certificate without its value; the node must hold the value already, else it
    /// answers [`NodeError::MissingCertificateValue`].
    async fn handle_lite_certificate(
        &self,
        certificate: LiteCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError>;

    /// Sends a confirmed block certificate.
    async fn handle_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError>;

    /// Sends a validated block certificate; answers with the node's confirmation vote.
    async fn handle_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError>;

    /// Sends a timeout certificate, moving the node to the next round.
    async fn handle_timeout_certificate(
        &self,
        certificate: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError>;

    /// Sends confirmed certificates of one chain in height order (at most the
    /// [`Limits`](crate::Limits)' `max_certificates_per_batch`); they are processed in order
    /// and the batch stops at the first error, saying how far it got.
    async fn handle_confirmed_certificates(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        delivery: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError>;

    /// Asks about a chain.
    async fn handle_chain_info_query(
        &self,
        query: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError>;

    /// Uploads a blob that a certificate the node will process needs.
    async fn upload_blob(&self, blob: Blob) -> Result<BlobId, NodeError>;

    /// Uploads a blob for a chain's pending proposal.
    async fn handle_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
    ) -> Result<ChainInfoResponse, NodeError>;

    /// Downloads a blob the node knows.
    async fn download_blob(&self, blob_id: BlobId) -> Result<Blob, NodeError>;

    /// Which of `blob_ids` the node does not know.
    async fn missing_blob_ids(&self, blob_ids: Vec<BlobId>) -> Result<Vec<BlobId>, NodeError>;

    /// Downloads a confirmed certificate by its value's hash.
    async fn download_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError>;

    /// Downloads a chain's confirmed certificates at the given heights (those it has, in the
    /// order asked, at most the [`Limits`](crate::Limits)' `max_certificates_per_batch`).
    async fn download_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError>;

    /// Opens a subscription to the notifications of `chains` (DESIGN §4.7.1): the node pushes
    /// a signed notification for each block committed, bundle received and round changed on
    /// them, in envelopes numbered per subscription. The default refuses with
    /// [`NodeError::NotificationsUnavailable`].
    async fn subscribe(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        let _ = chains;
        Err(NodeError::NotificationsUnavailable)
    }

    /// Adds chains to, and removes chains from, the open subscription `id`; answers how many
    /// chains it follows now. The default
    /// refuses with [`NodeError::NotificationsUnavailable`].
    async fn change_subscription(
        &self,
        id: SubscriptionId,
        change: SubscriptionChange,
    ) -> Result<u64, NodeError> {
        let _ = (id, change);
        Err(NodeError::NotificationsUnavailable)
    }

    /// Closes the subscription `id`: its stream ends. The default refuses with
    /// [`NodeError::NotificationsUnavailable`].
    async fn unsubscribe(&self, id: SubscriptionId) -> Result<(), NodeError> {
        let _ = id;
        Err(NodeError::NotificationsUnavailable)
    }
}
