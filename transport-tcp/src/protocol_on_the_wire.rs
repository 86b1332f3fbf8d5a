//! Tests of the validator protocol on the wire ([`quorum_core::protocol`]): every request and
//! answer, refusals included, survives a BCS round trip.

#[cfg(test)]
mod tests {
    use quorum_core::protocol::{Request, Response};
    use quorum_core::*;
    use quorum_core::{
        CertificateError, CryptoError, Epoch, EventId, ExecutionError, Limit, Round, StreamId,
        Timestamp, TransportErrorKind, Violation,
    };
    use serde::Serialize;

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
            NodeError::Storage(quorum_core::StorageErrorKind::Corrupted),
            NodeError::NotificationsUnavailable,
            NodeError::SubscriptionLimit(quorum_core::SubscriptionLimit::SubscriptionsPerAddress),
            NodeError::UnknownSubscription(quorum_core::SubscriptionId(4)),
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
                    manager: quorum_core::ManagerInfo {
                        current_round: Round::Fast,
                        round_timeout: None,
                        pending: None,
                        timeout_vote: None,
                        requested_proposed: None,
                        requested_locking: None,
                        timeout_certificate: None,
                    },
                    requested_certificate_hashes: vec![hash(4)],
                    requested_received_log: vec![quorum_core::ReceivedEntry {
                        origin: ChainId(hash(5)),
                        height: BlockHeight(6),
                    }],
                    received_log_len: 1,
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
            Response::Subscribe(Ok(quorum_core::SubscriptionId(1))),
            Response::ChangeSubscription(Ok(3)),
            Response::Unsubscribe(Err(NodeError::NotFound)),
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
