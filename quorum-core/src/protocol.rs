//! The requests a validator answers, defined once (DESIGN §2): one [`Request`] variant per
//! [`ValidatorNode`] method and, for each, one [`Response`] variant holding that method's answer
//! as `Result<_, NodeError>`, so the node's refusals cross the wire intact; [`RequestKind`], which
//! request it is without its arguments (for logs, metrics and counts); and [`dispatch`], the one
//! mapping of a request onto a node's method. Every transport uses these: transport-tcp frames
//! requests BCS-encoded, transport-mem carries them in process; both are [`Carrier`]s.
//!
//! Beside request and response, the protocol has one stream form: [`Request::Subscribe`] is
//! answered once with [`Response::Subscribe`], then with any number of
//! [`Response::Notification`]s on the same request, until the subscription closes. A carrier
//! carries it with [`Carrier::carry_subscription`]; [`dispatch_stream`] maps it onto a node.
//!
//! BCS encodes an enum variant by its index: variants are only ever appended, never reordered or
//! removed, so that peers of different versions agree on what they understand (a peer sending a
//! variant the other side does not know gets its connection closed as malformed input).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::block::{
    BlockProposal, ConfirmedBlockCertificate, TimeoutCertificate, ValidatedBlockCertificate,
};
use crate::certificate::LiteCertificate;
use crate::error::NodeError;
use crate::hash::CryptoHash;
use crate::info::{BatchOutcome, ChainInfoQuery, ChainInfoResponse, CrossChainDelivery};
use crate::notification::{
    NotificationEnvelope, NotificationStream, Subscription, SubscriptionChange, SubscriptionId,
};
use crate::ValidatorNode;
use crate::{Blob, BlobId, BlockHeight, ChainId};

/// A call of one [`ValidatorNode`] method, with its arguments.
///
/// Large arguments are boxed to keep the enum small; boxing does not change the encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// [`handle_block_proposal`](crate::ValidatorNode::handle_block_proposal).
    BlockProposal(Box<BlockProposal>),
    /// [`handle_lite_certificate`](crate::ValidatorNode::handle_lite_certificate).
    LiteCertificate {
        /// The certificate without its value.
        certificate: Box<LiteCertificate>,
        /// Whether to answer only after cross-chain delivery.
        delivery: CrossChainDelivery,
    },
    /// [`handle_confirmed_certificate`](crate::ValidatorNode::handle_confirmed_certificate).
    ConfirmedCertificate {
        /// The certificate.
        certificate: Box<ConfirmedBlockCertificate>,
        /// Whether to answer only after cross-chain delivery.
        delivery: CrossChainDelivery,
    },
    /// [`handle_validated_certificate`](crate::ValidatorNode::handle_validated_certificate).
    ValidatedCertificate(Box<ValidatedBlockCertificate>),
    /// [`handle_timeout_certificate`](crate::ValidatorNode::handle_timeout_certificate).
    TimeoutCertificate(Box<TimeoutCertificate>),
    /// [`ValidatorNode::handle_confirmed_certificates`].
    ConfirmedCertificates {
        /// The certificates of one chain, in height order.
        certificates: Vec<ConfirmedBlockCertificate>,
        /// Whether to answer only after cross-chain delivery.
        delivery: CrossChainDelivery,
    },
    /// [`handle_chain_info_query`](crate::ValidatorNode::handle_chain_info_query).
    ChainInfoQuery(Box<ChainInfoQuery>),
    /// [`upload_blob`](crate::ValidatorNode::upload_blob).
    UploadBlob(Blob),
    /// [`handle_pending_blob`](crate::ValidatorNode::handle_pending_blob).
    PendingBlob {
        /// The chain whose pending proposal needs the blob.
        chain_id: ChainId,
        /// The blob.
        blob: Blob,
    },
    /// [`download_blob`](crate::ValidatorNode::download_blob).
    DownloadBlob(BlobId),
    /// [`missing_blob_ids`](crate::ValidatorNode::missing_blob_ids).
    MissingBlobIds(Vec<BlobId>),
    /// [`download_certificate`](crate::ValidatorNode::download_certificate).
    DownloadCertificate(CryptoHash),
    /// [`ValidatorNode::download_certificates_by_heights`].
    DownloadCertificatesByHeights {
        /// The chain.
        chain_id: ChainId,
        /// The heights asked for, in the order the answer should follow.
        heights: Vec<BlockHeight>,
    },
    /// [`subscribe`](crate::ValidatorNode::subscribe): opens a stream.
    Subscribe(Vec<ChainId>),
    /// [`change_subscription`](crate::ValidatorNode::change_subscription).
    ChangeSubscription {
        /// The subscription.
        id: SubscriptionId,
        /// The chains to add and remove.
        change: SubscriptionChange,
    },
    /// [`unsubscribe`](crate::ValidatorNode::unsubscribe).
    Unsubscribe(SubscriptionId),
}

/// The answer to a [`Request`]: the variant of the same name, holding what the node's method
/// returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::BlockProposal`].
    BlockProposal(Result<ChainInfoResponse, NodeError>),
    /// Answer to [`Request::LiteCertificate`].
    LiteCertificate(Result<ChainInfoResponse, NodeError>),
    /// Answer to [`Request::ConfirmedCertificate`].
    ConfirmedCertificate(Result<ChainInfoResponse, NodeError>),
    /// Answer to [`Request::ValidatedCertificate`].
    ValidatedCertificate(Result<ChainInfoResponse, NodeError>),
    /// Answer to [`Request::TimeoutCertificate`].
    TimeoutCertificate(Result<ChainInfoResponse, NodeError>),
    /// Answer to [`Request::ConfirmedCertificates`].
    ConfirmedCertificates(Result<BatchOutcome, NodeError>),
    /// Answer to [`Request::ChainInfoQuery`].
    ChainInfoQuery(Result<ChainInfoResponse, NodeError>),
    /// Answer to [`Request::UploadBlob`].
    UploadBlob(Result<BlobId, NodeError>),
    /// Answer to [`Request::PendingBlob`].
    PendingBlob(Result<ChainInfoResponse, NodeError>),
    /// Answer to [`Request::DownloadBlob`].
    DownloadBlob(Result<Blob, NodeError>),
    /// Answer to [`Request::MissingBlobIds`].
    MissingBlobIds(Result<Vec<BlobId>, NodeError>),
    /// Answer to [`Request::DownloadCertificate`].
    DownloadCertificate(Result<Box<ConfirmedBlockCertificate>, NodeError>),
    /// Answer to [`Request::DownloadCertificatesByHeights`].
    DownloadCertificatesByHeights(Result<Vec<ConfirmedBlockCertificate>, NodeError>),
    /// First answer to [`Request::Subscribe`]: the subscription's id, or why it was refused.
    Subscribe(Result<SubscriptionId, NodeError>),
    /// Answer to [`Request::ChangeSubscription`]: how many chains the subscription follows.
    ChangeSubscription(Result<u64, NodeError>),
    /// Answer to [`Request::Unsubscribe`].
    Unsubscribe(Result<(), NodeError>),
    /// A later answer to [`Request::Subscribe`]: one item of the subscription's stream, pushed
    /// by the node.
    Notification(NotificationEnvelope),
}

/// Declares [`RequestKind`], one line per [`Request`] variant (same name, same order) with the
/// [`ValidatorNode`] method it calls, so that the list, [`RequestKind::ALL`] and the names
/// cannot disagree.
macro_rules! request_kinds {
    ($($variant:ident => $method:ident,)+) => {
        /// Which [`Request`] a request is, without its arguments (and so which [`Response`]
        /// variant answers it): one variant per [`Request`] variant, of the same name and in
        /// the same order. For logs, metric labels and per-request counts.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RequestKind {
            $(
                #[doc = concat!(
                    "[`Request::", stringify!($variant), "`]: [`ValidatorNode::",
                    stringify!($method), "`]."
                )]
                $variant,
            )+
        }

        impl RequestKind {
            /// Every kind, in declaration order: `ALL[kind.index()] == kind`.
            pub const ALL: [RequestKind; [$(RequestKind::$variant),+].len()] =
                [$(RequestKind::$variant),+];

            /// The variant's name (`"BlockProposal"`), the same in [`Request`] and
            /// [`Response`]; what [`Display`](fmt::Display) shows.
            pub fn name(self) -> &'static str {
                match self {
                    $(RequestKind::$variant => stringify!($variant),)+
                }
            }

            /// The name of the [`ValidatorNode`] method the request calls
            /// (`"handle_block_proposal"`).
            pub fn method_name(self) -> &'static str {
                match self {
                    $(RequestKind::$variant => stringify!($method),)+
                }
            }
        }
    };
}

request_kinds! {
    BlockProposal => handle_block_proposal,
    LiteCertificate => handle_lite_certificate,
    ConfirmedCertificate => handle_confirmed_certificate,
    ValidatedCertificate => handle_validated_certificate,
    TimeoutCertificate => handle_timeout_certificate,
    ConfirmedCertificates => handle_confirmed_certificates,
    ChainInfoQuery => handle_chain_info_query,
    UploadBlob => upload_blob,
    PendingBlob => handle_pending_blob,
    DownloadBlob => download_blob,
    MissingBlobIds => missing_blob_ids,
    DownloadCertificate => download_certificate,
    DownloadCertificatesByHeights => download_certificates_by_heights,
    Subscribe => subscribe,
    ChangeSubscription => change_subscription,
    Unsubscribe => unsubscribe,
}

impl RequestKind {
    /// The kind's position in [`RequestKind::ALL`], from 0: an index for per-kind arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Request {
    /// Which request this is (also which [`Response`] variant answers it).
    pub fn kind(&self) -> RequestKind {
        match self {
            Request::BlockProposal(_) => RequestKind::BlockProposal,
            Request::LiteCertificate { .. } => RequestKind::LiteCertificate,
            Request::ConfirmedCertificate { .. } => RequestKind::ConfirmedCertificate,
            Request::ValidatedCertificate(_) => RequestKind::ValidatedCertificate,
            Request::TimeoutCertificate(_) => RequestKind::TimeoutCertificate,
            Request::ConfirmedCertificates { .. } => RequestKind::ConfirmedCertificates,
            Request::ChainInfoQuery(_) => RequestKind::ChainInfoQuery,
            Request::UploadBlob(_) => RequestKind::UploadBlob,
            Request::PendingBlob { .. } => RequestKind::PendingBlob,
            Request::DownloadBlob(_) => RequestKind::DownloadBlob,
            Request::MissingBlobIds(_) => RequestKind::MissingBlobIds,
            Request::DownloadCertificate(_) => RequestKind::DownloadCertificate,
            Request::DownloadCertificatesByHeights { .. } => {
                RequestKind::DownloadCertificatesByHeights
            }
            Request::Subscribe(_) => RequestKind::Subscribe,
            Request::ChangeSubscription { .. } => RequestKind::ChangeSubscription,
            Request::Unsubscribe(_) => RequestKind::Unsubscribe,
        }
    }
}

impl Response {
    /// Which request this answers.
    pub fn kind(&self) -> RequestKind {
        match self {
            Response::BlockProposal(_) => RequestKind::BlockProposal,
            Response::LiteCertificate(_) => RequestKind::LiteCertificate,
            Response::ConfirmedCertificate(_) => RequestKind::ConfirmedCertificate,
            Response::ValidatedCertificate(_) => RequestKind::ValidatedCertificate,
            Response::TimeoutCertificate(_) => RequestKind::TimeoutCertificate,
            Response::ConfirmedCertificates(_) => RequestKind::ConfirmedCertificates,
            Response::ChainInfoQuery(_) => RequestKind::ChainInfoQuery,
            Response::UploadBlob(_) => RequestKind::UploadBlob,
            Response::PendingBlob(_) => RequestKind::PendingBlob,
            Response::DownloadBlob(_) => RequestKind::DownloadBlob,
            Response::MissingBlobIds(_) => RequestKind::MissingBlobIds,
            Response::DownloadCertificate(_) => RequestKind::DownloadCertificate,
            Response::DownloadCertificatesByHeights(_) => {
                RequestKind::DownloadCertificatesByHeights
            }
            Response::Subscribe(_) | Response::Notification(_) => RequestKind::Subscribe,
            Response::ChangeSubscription(_) => RequestKind::ChangeSubscription,
            Response::Unsubscribe(_) => RequestKind::Unsubscribe,
        }
    }

    /// The chain information this answer carries, if any: what a successful answer of the
    /// [`ChainInfoResponse`] kinds holds, and the `info` of a [`BatchOutcome`]. For carriers that
    /// inspect or alter answers (transport-mem's Byzantine faults).
    pub fn info_mut(&mut self) -> Option<&mut ChainInfoResponse> {
        match self {
            Response::BlockProposal(result)
            | Response::LiteCertificate(result)
            | Response::ConfirmedCertificate(result)
            | Response::ValidatedCertificate(result)
            | Response::TimeoutCertificate(result)
            | Response::ChainInfoQuery(result)
            | Response::PendingBlob(result) => result.as_mut().ok(),
            Response::ConfirmedCertificates(result) => result
                .as_mut()
                .ok()
                .and_then(|outcome| outcome.info.as_mut()),
            Response::UploadBlob(_)
            | Response::DownloadBlob(_)
            | Response::MissingBlobIds(_)
            | Response::DownloadCertificate(_)
            | Response::DownloadCertificatesByHeights(_)
            | Response::Subscribe(_)
            | Response::ChangeSubscription(_)
            | Response::Unsubscribe(_)
            | Response::Notification(_) => None,
        }
    }

    /// The same variant, answering `error` instead of what it holds.
    pub fn with_error(&self, error: NodeError) -> Response {
        match self {
            Response::BlockProposal(_) => Response::BlockProposal(Err(error)),
            Response::LiteCertificate(_) => Response::LiteCertificate(Err(error)),
            Response::ConfirmedCertificate(_) => Response::ConfirmedCertificate(Err(error)),
            Response::ValidatedCertificate(_) => Response::ValidatedCertificate(Err(error)),
            Response::TimeoutCertificate(_) => Response::TimeoutCertificate(Err(error)),
            Response::ConfirmedCertificates(_) => Response::ConfirmedCertificates(Err(error)),
            Response::ChainInfoQuery(_) => Response::ChainInfoQuery(Err(error)),
            Response::UploadBlob(_) => Response::UploadBlob(Err(error)),
            Response::PendingBlob(_) => Response::PendingBlob(Err(error)),
            Response::DownloadBlob(_) => Response::DownloadBlob(Err(error)),
            Response::MissingBlobIds(_) => Response::MissingBlobIds(Err(error)),
            Response::DownloadCertificate(_) => Response::DownloadCertificate(Err(error)),
            Response::DownloadCertificatesByHeights(_) => {
                Response::DownloadCertificatesByHeights(Err(error))
            }
            Response::Subscribe(_) | Response::Notification(_) => Response::Subscribe(Err(error)),
            Response::ChangeSubscription(_) => Response::ChangeSubscription(Err(error)),
            Response::Unsubscribe(_) => Response::Unsubscribe(Err(error)),
        }
    }

    /// The error the answer holds, if it is one.
    pub fn error(&self) -> Option<&NodeError> {
        match self {
            Response::BlockProposal(result)
            | Response::LiteCertificate(result)
            | Response::ConfirmedCertificate(result)
            | Response::ValidatedCertificate(result)
            | Response::TimeoutCertificate(result)
            | Response::ChainInfoQuery(result)
            | Response::PendingBlob(result) => result.as_ref().err(),
            Response::ConfirmedCertificates(result) => result.as_ref().err(),
            Response::UploadBlob(result) => result.as_ref().err(),
            Response::DownloadBlob(result) => result.as_ref().err(),
            Response::MissingBlobIds(result) => result.as_ref().err(),
            Response::DownloadCertificate(result) => result.as_ref().err(),
            Response::DownloadCertificatesByHeights(result) => result.as_ref().err(),
            Response::Subscribe(result) => result.as_ref().err(),
            Response::ChangeSubscription(result) => result.as_ref().err(),
            Response::Unsubscribe(result) => result.as_ref().err(),
            Response::Notification(_) => None,
        }
    }
}

/// [`dispatch`] for a carrier that can push: a [`Request::Subscribe`] opens the subscription
/// and its stream comes back beside the first answer (to be carried as
/// [`Response::Notification`]s); every other request is [`dispatch`]ed.
pub async fn dispatch_stream(
    node: &dyn ValidatorNode,
    request: Request,
) -> (Response, Option<NotificationStream>) {
    match request {
        Request::Subscribe(chains) => match node.subscribe(chains).await {
            Ok(Subscription { id, events }) => (Response::Subscribe(Ok(id)), Some(events)),
            Err(error) => (Response::Subscribe(Err(error)), None),
        },
        other => (dispatch(node, other).await, None),
    }
}

/// Calls `node`'s method for `request` and wraps its answer in the [`Response`] variant of the
/// same name: the one place where a request meets a node's method. A [`Request::Subscribe`]
/// is refused with [`NodeError::NotificationsUnavailable`] here, since a single answer cannot
/// carry its stream: carriers that push use [`dispatch_stream`].
pub async fn dispatch(node: &dyn ValidatorNode, request: Request) -> Response {
    match request {
        Request::Subscribe(_) => Response::Subscribe(Err(NodeError::NotificationsUnavailable)),
        Request::ChangeSubscription { id, change } => {
            Response::ChangeSubscription(node.change_subscription(id, change).await)
        }
        Request::Unsubscribe(id) => Response::Unsubscribe(node.unsubscribe(id).await),
        Request::BlockProposal(proposal) => {
            Response::BlockProposal(node.handle_block_proposal(*proposal).await)
        }
        Request::LiteCertificate {
            certificate,
            delivery,
        } => Response::LiteCertificate(node.handle_lite_certificate(*certificate, delivery).await),
        Request::ConfirmedCertificate {
            certificate,
            delivery,
        } => Response::ConfirmedCertificate(
            node.handle_confirmed_certificate(*certificate, delivery)
                .await,
        ),
        Request::ValidatedCertificate(certificate) => {
            Response::ValidatedCertificate(node.handle_validated_certificate(*certificate).await)
        }
        Request::TimeoutCertificate(certificate) => {
            Response::TimeoutCertificate(node.handle_timeout_certificate(*certificate).await)
        }
        Request::ConfirmedCertificates {
            certificates,
            delivery,
        } => Response::ConfirmedCertificates(
            node.handle_confirmed_certificates(certificates, delivery)
                .await,
        ),
        Request::ChainInfoQuery(query) => {
            Response::ChainInfoQuery(node.handle_chain_info_query(*query).await)
        }
        Request::UploadBlob(blob) => Response::UploadBlob(node.upload_blob(blob).await),
        Request::PendingBlob { chain_id, blob } => {
            Response::PendingBlob(node.handle_pending_blob(chain_id, blob).await)
        }
        Request::DownloadBlob(blob_id) => Response::DownloadBlob(node.download_blob(blob_id).await),
        Request::MissingBlobIds(blob_ids) => {
            Response::MissingBlobIds(node.missing_blob_ids(blob_ids).await)
        }
        Request::DownloadCertificate(hash) => {
            Response::DownloadCertificate(node.download_certificate(hash).await.map(Box::new))
        }
        Request::DownloadCertificatesByHeights { chain_id, heights } => {
            Response::DownloadCertificatesByHeights(
                node.download_certificates_by_heights(chain_id, heights)
                    .await,
            )
        }
    }
}

mod bound;
mod carrier;
#[cfg(test)]
mod frame_fit;

pub use carrier::Carrier;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_slot_and_have_distinct_names() {
        for (i, kind) in RequestKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(RequestKind::ALL[kind.index()], *kind);
        }
        for (i, a) in RequestKind::ALL.iter().enumerate() {
            for b in &RequestKind::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(a.method_name(), b.method_name());
            }
        }
        assert_eq!(RequestKind::BlockProposal.name(), "BlockProposal");
        assert_eq!(
            RequestKind::BlockProposal.method_name(),
            "handle_block_proposal"
        );
        assert_eq!(
            alloc::format!("{}", RequestKind::DownloadCertificatesByHeights),
            "DownloadCertificatesByHeights"
        );
    }

    #[test]
    fn a_response_has_the_kind_of_its_request() {
        let request = Request::DownloadBlob(BlobId {
            hash: CryptoHash([7; 32]),
            blob_type: crate::BlobType::Data,
        });
        let mut response = Response::DownloadBlob(Err(NodeError::MalformedResponse));
        assert_eq!(request.kind(), RequestKind::DownloadBlob);
        assert_eq!(response.kind(), request.kind());
        assert!(response.info_mut().is_none());
        let mut refused = Response::ChainInfoQuery(Err(NodeError::MalformedResponse));
        assert!(refused.info_mut().is_none());
        let mut batch = Response::ConfirmedCertificates(Ok(BatchOutcome {
            processed: 0,
            info: None,
            error: None,
        }));
        assert!(batch.info_mut().is_none());
    }
}
