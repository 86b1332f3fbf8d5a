//! [`Carrier`]: how a transport carries the protocol, and the one implementation of
//! [`ValidatorNode`] for every carrier.

use alloc::boxed::Box;
use alloc::vec::Vec;

use async_trait::async_trait;

use super::{Request, RequestKind, Response};
use crate::block::{
    BlockProposal, ConfirmedBlockCertificate, TimeoutCertificate, ValidatedBlockCertificate,
};
use crate::certificate::LiteCertificate;
use crate::error::NodeError;
use crate::hash::CryptoHash;
use crate::info::{BatchOutcome, ChainInfoQuery, ChainInfoResponse, CrossChainDelivery};
use crate::notification::{Subscription, SubscriptionChange, SubscriptionId};
use crate::ValidatorNode;
use crate::{Blob, BlobId, BlockHeight, ChainId};

/// A transport's half of the protocol: it carries a [`Request`] to a node and brings the node's
/// [`Response`] back. Every carrier is a [`ValidatorNode`]: each method is one request, its
/// answer taken out of the response variant of the same name (an answer of another kind is
/// [`Carrier::malformed`]).
#[async_trait]
pub trait Carrier: Send + Sync {
    /// Carries `request` to the node and returns its answer; a failure on the way is a
    /// [`NodeError`] (a transport error, a timeout).
    async fn carry(&self, request: Request) -> Result<Response, NodeError>;

    /// What an answer of another kind than the `expected` one becomes:
    /// [`NodeError::MalformedResponse`]. A carrier may override it to log `found` first.
    fn malformed(&self, expected: RequestKind, found: &Response) -> NodeError {
        let _ = (expected, found);
        NodeError::MalformedResponse
    }

    /// Carries a [`Request::Subscribe`] for `chains` and returns the subscription: its id from
    /// the first answer, and the stream of the [`Response::Notification`]s that follow. The
    /// default refuses with [`NodeError::NotificationsUnavailable`] (a carrier that cannot
    /// push).
    async fn carry_subscription(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        let _ = chains;
        Err(NodeError::NotificationsUnavailable)
    }
}

/// Carries a request and takes the answer out of the response variant `$variant`.
macro_rules! call {
    ($node:ident, $request:expr, $variant:ident) => {{
        let request = $request;
        let expected = request.kind();
        match $node.carry(request).await? {
            Response::$variant(result) => result,
            other => Err($node.malformed(expected, &other)),
        }
    }};
}

#[async_trait]
impl<C: Carrier + ?Sized> ValidatorNode for C {
    async fn handle_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        call!(
            self,
            Request::BlockProposal(Box::new(proposal)),
            BlockProposal
        )
    }

    async fn handle_lite_certificate(
        &self,
        certificate: LiteCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let request = Request::LiteCertificate {
            certificate: Box::new(certificate),
            delivery,
        };
        call!(self, request, LiteCertificate)
    }

    async fn handle_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let request = Request::ConfirmedCertificate {
            certificate: Box::new(certificate),
            delivery,
        };
        call!(self, request, ConfirmedCertificate)
    }

    async fn handle_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        let request = Request::ValidatedCertificate(Box::new(certificate));
        call!(self, request, ValidatedCertificate)
    }

    async fn handle_timeout_certificate(
        &self,
        certificate: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        let request = Request::TimeoutCertificate(Box::new(certificate));
        call!(self, request, TimeoutCertificate)
    }

    async fn handle_confirmed_certificates(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        delivery: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError> {
        let request = Request::ConfirmedCertificates {
            certificates,
            delivery,
        };
        call!(self, request, ConfirmedCertificates)
    }

    async fn handle_chain_info_query(
        &self,
        query: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        call!(
            self,
            Request::ChainInfoQuery(Box::new(query)),
            ChainInfoQuery
        )
    }

    async fn upload_blob(&self, blob: Blob) -> Result<BlobId, NodeError> {
        call!(self, Request::UploadBlob(blob), UploadBlob)
    }

    async fn handle_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
    ) -> Result<ChainInfoResponse, NodeError> {
        call!(self, Request::PendingBlob { chain_id, blob }, PendingBlob)
    }

    async fn download_blob(&self, blob_id: BlobId) -> Result<Blob, NodeError> {
        call!(self, Request::DownloadBlob(blob_id), DownloadBlob)
    }

    async fn missing_blob_ids(&self, blob_ids: Vec<BlobId>) -> Result<Vec<BlobId>, NodeError> {
        call!(self, Request::MissingBlobIds(blob_ids), MissingBlobIds)
    }

    async fn download_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        call!(
            self,
            Request::DownloadCertificate(hash),
            DownloadCertificate
        )
        .map(|c| *c)
    }

    async fn download_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        let request = Request::DownloadCertificatesByHeights { chain_id, heights };
        call!(self, request, DownloadCertificatesByHeights)
    }

    async fn subscribe(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        self.carry_subscription(chains).await
    }

    async fn change_subscription(
        &self,
        id: SubscriptionId,
        change: SubscriptionChange,
    ) -> Result<u64, NodeError> {
        let request = Request::ChangeSubscription { id, change };
        call!(self, request, ChangeSubscription)
    }

    async fn unsubscribe(&self, id: SubscriptionId) -> Result<(), NodeError> {
        call!(self, Request::Unsubscribe(id), Unsubscribe)
    }
}
