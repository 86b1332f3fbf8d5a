//! The validator protocol carried by the generic layer: one [`Request`] variant per
//! [`ValidatorNode`](quorum_core::ValidatorNode) method and, for each, one [`Response`] variant
//! holding that method's answer as `Result<_, NodeError>`, so the node's refusals cross the wire
//! intact.
//!
//! Both enums travel as the `body` of an [`Envelope`](crate::Envelope), BCS-encoded. BCS encodes
//! an enum variant by its index: variants are only ever appended, never reordered or removed, so
//! that peers of different versions agree on what they understand (a peer sending a variant the
//! other side does not know gets its connection closed as malformed input).

use quorum_core::{
    BatchOutcome, Blob, BlobId, BlockHeight, BlockProposal, ChainId, ChainInfoQuery,
    ChainInfoResponse, ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, LiteCertificate,
    NodeError, TimeoutCertificate, ValidatedBlockCertificate,
};
use serde::{Deserialize, Serialize};

/// A call of one [`ValidatorNode`](quorum_core::ValidatorNode) method, with its arguments.
///
/// Large arguments are boxed to keep the enum small; boxing does not change the encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// [`handle_block_proposal`](quorum_core::ValidatorNode::handle_block_proposal).
    BlockProposal(Box<BlockProposal>),
    /// [`handle_lite_certificate`](quorum_core::ValidatorNode::handle_lite_certificate).
    LiteCertificate {
        /// The certificate without its value.
        certificate: Box<LiteCertificate>,
        /// Whether to answer only after cross-chain delivery.
        delivery: CrossChainDelivery,
    },
    /// [`handle_confirmed_certificate`](quorum_core::ValidatorNode::handle_confirmed_certificate).
    ConfirmedCertificate {
        /// The certificate.
        certificate: Box<ConfirmedBlockCertificate>,
        /// Whether to answer only after cross-chain delivery.
        delivery: CrossChainDelivery,
    },
    /// [`handle_validated_certificate`](quorum_core::ValidatorNode::handle_validated_certificate).
    ValidatedCertificate(Box<ValidatedBlockCertificate>),
    /// [`handle_timeout_certificate`](quorum_core::ValidatorNode::handle_timeout_certificate).
    TimeoutCertificate(Box<TimeoutCertificate>),
    /// [`ValidatorNode::handle_confirmed_certificates`](quorum_core::ValidatorNode).
    ConfirmedCertificates {
        /// The certificates of one chain, in height order.
        certificates: Vec<ConfirmedBlockCertificate>,
        /// Whether to answer only after cross-chain delivery.
        delivery: CrossChainDelivery,
    },
    /// [`handle_chain_info_query`](quorum_core::ValidatorNode::handle_chain_info_query).
    ChainInfoQuery(Box<ChainInfoQuery>),
    /// [`upload_blob`](quorum_core::ValidatorNode::upload_blob).
    UploadBlob(Blob),
    /// [`handle_pending_blob`](quorum_core::ValidatorNode::handle_pending_blob).
    PendingBlob {
        /// The chain whose pending proposal needs the blob.
        chain_id: ChainId,
        /// The blob.
        blob: Blob,
    },
    /// [`download_blob`](quorum_core::ValidatorNode::download_blob).
    DownloadBlob(BlobId),
    /// [`missing_blob_ids`](quorum_core::ValidatorNode::missing_blob_ids).
    MissingBlobIds(Vec<BlobId>),
    /// [`download_certificate`](quorum_core::ValidatorNode::download_certificate).
    DownloadCertificate(CryptoHash),
    /// [`ValidatorNode::download_certificates_by_heights`](quorum_core::ValidatorNode).
    DownloadCertificatesByHeights {
        /// The chain.
        chain_id: ChainId,
        /// The heights asked for, in the order the answer should follow.
        heights: Vec<BlockHeight>,
    },
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
}

impl Request {
    /// The variant's name, for logs (also the name of the [`Response`] variant that answers it).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::BlockProposal(_) => "BlockProposal",
            Request::LiteCertificate { .. } => "LiteCertificate",
            Request::ConfirmedCertificate { .. } => "ConfirmedCertificate",
            Request::ValidatedCertificate(_) => "ValidatedCertificate",
            Request::TimeoutCertificate(_) => "TimeoutCertificate",
            Request::ConfirmedCertificates { .. } => "ConfirmedCertificates",
            Request::ChainInfoQuery(_) => "ChainInfoQuery",
            Request::UploadBlob(_) => "UploadBlob",
            Request::PendingBlob { .. } => "PendingBlob",
            Request::DownloadBlob(_) => "DownloadBlob",
            Request::MissingBlobIds(_) => "MissingBlobIds",
            Request::DownloadCertificate(_) => "DownloadCertificate",
            Request::DownloadCertificatesByHeights { .. } => "DownloadCertificatesByHeights",
        }
    }
}

impl Response {
    /// The variant's name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Response::BlockProposal(_) => "BlockProposal",
            Response::LiteCertificate(_) => "LiteCertificate",
            Response::ConfirmedCertificate(_) => "ConfirmedCertificate",
            Response::ValidatedCertificate(_) => "ValidatedCertificate",
            Response::TimeoutCertificate(_) => "TimeoutCertificate",
            Response::ConfirmedCertificates(_) => "ConfirmedCertificates",
            Response::ChainInfoQuery(_) => "ChainInfoQuery",
            Response::UploadBlob(_) => "UploadBlob",
            Response::PendingBlob(_) => "PendingBlob",
            Response::DownloadBlob(_) => "DownloadBlob",
            Response::MissingBlobIds(_) => "MissingBlobIds",
            Response::DownloadCertificate(_) => "DownloadCertificate",
            Response::DownloadCertificatesByHeights(_) => "DownloadCertificatesByHeights",
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_core::{
        CertificateError, CryptoError, Epoch, EventId, ExecutionError, Limit, Round, StreamId,
        Timestamp, TransportErrorKind, Violation,
    };

    fn hash(byte: u8) -> CryptoHash {
        CryptoHash([byte; 32])
    }

    /// At least one value of every `NodeError` variant, with distinct payloads.
    fn every_node_error() -> Vec<NodeError> {
        let chain = ChainId(hash(1));
        let blob = Blob::data(vec![1, 2, 3]).id();
        vec![
            NodeError::WrongRound(Round::SingleLeader(3)),
            NodeError::UnexpectedBlockHeight {
                expected_block_height: BlockHeight(4),
                found_block_height: BlockHeight(9),
            },
            NodeError::MissingCrossChainUpdate {
                chain_id: chain,
                origin: ChainId(hash(2)),
                height: BlockHeight(7),
            },
            NodeError::EventsNotFound(vec![EventId {
                chain_id: chain,
                stream: StreamId::user("epoch"),
                index: 2,
            }]),
            NodeError::BlobsNotFound(vec![blob, Blob::data(vec![]).id()]),
            NodeError::InactiveChain(chain),
            NodeError::InvalidTimestamp {
                block_timestamp: Timestamp(10),
                local_time: Timestamp(5),
            },
            NodeError::MissingCertificateValue,
            NodeError::InvalidCertificate(CertificateError::ValueMismatch),
            NodeError::InvalidSignature(CryptoError::InvalidSignature),
            NodeError::WrongEpoch {
                expected: Epoch(1),
                found: Epoch(2),
            },
            NodeError::UnauthorizedOwner,
            NodeError::InvalidChaining,
            NodeError::TimestampGoesBackwards,
            NodeError::HasLockedBlock,
            NodeError::AlreadyVoted,
            NodeError::Execution(ExecutionError::InsufficientBalance {
                balance: 1,
                amount: 2,
            }),
            NodeError::OutcomeMismatch,
            NodeError::CertificateNotApplicable(hash(3)),
            NodeError::LimitExceeded(Limit::BatchSize),
            NodeError::UnexpectedBlob(blob),
            NodeError::NotFound,
            NodeError::ProtocolViolation(Violation::FalseBlobsNotFound),
            NodeError::MalformedResponse,
            NodeError::Transport(TransportErrorKind::Codec),
            NodeError::Timeout,
            NodeError::Storage(quorum_core::error::StorageErrorKind::Corrupted),
        ]
    }

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        bcs::from_bytes(&bcs::to_bytes(value).unwrap()).unwrap()
    }

    #[test]
    fn every_node_error_crosses_the_wire_intact() {
        for error in every_node_error() {
            let sample = Response::ChainInfoQuery(Ok(quorum_core::ChainInfoResponse {
                info: Box::new(quorum_core::ChainInfo {
                    chain_id: ChainId(hash(9)),
                    epoch: None,
                    description: None,
                    next_block_height: BlockHeight(0),
                    block_hash: None,
                    timestamp: Timestamp(0),
                    state_hash: None,
                    balance: 0,
                    manager: quorum_core::info::ManagerInfo {
                        current_round: Round::Fast,
                        round_timeout: None,
                        pending: None,
                        timeout_vote: None,
                        requested_proposed: None,
                        requested_locking: None,
                        timeout_certificate: None,
                    },
                    requested_certificate_hashes: vec![hash(4)],
                }),
                signature: None,
            }));
            for response in [
                sample.with_error(error.clone()),
                Response::DownloadBlob(Err(error.clone())),
                Response::ConfirmedCertificates(Err(error.clone())),
            ] {
                let decoded = round_trip(&response);
                assert_eq!(decoded, response);
                assert_eq!(decoded.error(), Some(&error));
                assert_eq!(decoded.kind(), response.kind());
            }
        }
    }

    #[test]
    fn with_error_keeps_the_variant() {
        let responses = [
            Response::BlockProposal(Err(NodeError::NotFound)),
            Response::LiteCertificate(Err(NodeError::NotFound)),
            Response::ConfirmedCertificate(Err(NodeError::NotFound)),
            Response::ValidatedCertificate(Err(NodeError::NotFound)),
            Response::TimeoutCertificate(Err(NodeError::NotFound)),
            Response::ConfirmedCertificates(Ok(BatchOutcome {
                processed: 0,
                info: None,
                error: None,
            })),
            Response::ChainInfoQuery(Err(NodeError::NotFound)),
            Response::UploadBlob(Ok(Blob::data(vec![]).id())),
            Response::PendingBlob(Err(NodeError::NotFound)),
            Response::DownloadBlob(Ok(Blob::data(vec![5]))),
            Response::MissingBlobIds(Ok(vec![])),
            Response::DownloadCertificate(Err(NodeError::NotFound)),
            Response::DownloadCertificatesByHeights(Ok(vec![])),
        ];
        for response in &responses {
            let error = NodeError::Timeout;
            let replaced = response.with_error(error.clone());
            assert_eq!(replaced.kind(), response.kind());
            assert_eq!(replaced.error(), Some(&error));
        }
        // Variant names are distinct.
        let mut kinds: Vec<_> = responses.iter().map(Response::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), responses.len());
    }

    #[test]
    fn requests_round_trip() {
        let chain = ChainId(hash(5));
        let requests = [
            Request::UploadBlob(Blob::data(vec![1; 100])),
            Request::PendingBlob {
                chain_id: chain,
                blob: Blob::data(vec![2]),
            },
            Request::DownloadBlob(Blob::data(vec![3]).id()),
            Request::MissingBlobIds(vec![Blob::data(vec![4]).id()]),
            Request::DownloadCertificate(hash(6)),
            Request::DownloadCertificatesByHeights {
                chain_id: chain,
                heights: vec![BlockHeight(3), BlockHeight(1)],
            },
            Request::ChainInfoQuery(Box::new(
                ChainInfoQuery::new(chain)
                    .with_manager_values()
                    .with_timeout(BlockHeight(2), Round::MultiLeader(1))
                    .with_certificate_hashes(BlockHeight(0), BlockHeight(5)),
            )),
            Request::ConfirmedCertificates {
                certificates: vec![],
                delivery: CrossChainDelivery::Blocking,
            },
        ];
        for request in &requests {
            assert_eq!(&round_trip(request), request, "{}", request.kind());
        }
    }
}
