//! The corpus: valid envelopes of every request and response variant, with realistic
//! contents from a test network, and their frame bodies.

use super::*;
use quorum_core::{
    Notification, NotificationEnvelope, NotificationKind, SignedNotification, StreamEvent,
    SubscriptionChange, SubscriptionId, SubscriptionLimit,
};

/// Valid envelopes of every variant, and their frame bodies.
pub(super) struct Corpus {
    pub(super) requests: Vec<Envelope<Request>>,
    pub(super) responses: Vec<Envelope<Response>>,
    pub(super) request_bodies: Vec<Vec<u8>>,
    pub(super) response_bodies: Vec<Vec<u8>>,
}

/// The corpus, built once per test binary.
pub(super) fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (requests, responses) = runtime.block_on(protocol_messages());
        let requests = envelopes(requests);
        let responses = envelopes(responses);
        Corpus {
            request_bodies: requests.iter().map(body).collect(),
            response_bodies: responses.iter().map(body).collect(),
            requests,
            responses,
        }
    })
}

/// Wraps messages in envelopes, with request ids of every byte pattern (`u64::MAX` first).
pub(super) fn envelopes<T>(bodies: Vec<T>) -> Vec<Envelope<T>> {
    bodies
        .into_iter()
        .zip(0u64..)
        .map(|(body, index)| Envelope {
            request_id: match index {
                0 => u64::MAX,
                _ => index.wrapping_mul(0x0101_0101_0101) ^ 0x80,
            },
            body,
        })
        .collect()
}

/// The BCS frame body of `envelope`.
pub(super) fn body<T: Serialize>(envelope: &Envelope<T>) -> Vec<u8> {
    bcs::to_bytes(envelope).unwrap()
}

/// A frame: the length prefix and `body`.
pub(super) fn frame(body: &[u8]) -> Vec<u8> {
    let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// Requests of every variant and responses of every variant (answers and errors), made by a
/// test network of Workers running the protocol.
async fn protocol_messages() -> (Vec<Request>, Vec<Response>) {
    let net = TestNet::new(VALIDATORS, CHAINS, false).await;
    let all: Vec<usize> = (0..VALIDATORS).collect();
    let chain = |c: usize| net.chains[c];

    // The sender's first block sends tokens and emits an event, in two phases by hand.
    let first = net
        .block(
            SENDER,
            vec![
                Operation::Transfer {
                    recipient: chain(RECEIVER),
                    amount: TRANSFER_AMOUNT,
                },
                Operation::EmitEvent {
                    stream: StreamId::user("fuzz"),
                    payload: b"an event payload".to_vec(),
                },
            ],
        )
        .await;
    let first_proposal = net.proposal(SENDER, first, Round::MultiLeader(0));
    let validated = net.validate(&all, &first_proposal).await;
    let confirmed = net.confirm(&all, &validated).await;
    net.deliver(&all, &confirmed).await;
    let second_block = net.block(SENDER, vec![]).await;
    let second = net
        .commit(SENDER, second_block, Round::MultiLeader(0))
        .await;
    // The receiver consumes the transfer.
    let bundle = IncomingBundle {
        origin: chain(SENDER),
        height: BlockHeight(0),
        messages: vec![Message::Credit {
            amount: TRANSFER_AMOUNT,
        }],
    };
    let consuming = net.block_on(0, RECEIVER, vec![], vec![bundle]).await;
    let received = net.commit(RECEIVER, consuming, Round::MultiLeader(0)).await;
    // The admin chain creates a committee (carried as its bytes).
    let next_committee = committee_of(&validator_keys(NEXT_COMMITTEE_SIZE, NEXT_COMMITTEE_SEED));
    let encoded = EncodedCommittee::new(&next_committee);
    let committee_block = net
        .block(ADMIN, vec![Operation::CreateCommittee(encoded.clone())])
        .await;
    let created = net
        .commit(ADMIN, committee_block, Round::MultiLeader(0))
        .await;

    // A signed proposal with every kind of operation (never executed).
    let blobs = sample_blobs();
    let opened = genesis_description(
        CHAINS + 1,
        net.owners[SENDER].public(),
        true,
        quorum_core::ConsensusConfig::default(),
    );
    let every_operation = net
        .block(
            SENDER,
            vec![
                Operation::Transfer {
                    recipient: chain(ADMIN),
                    amount: 1,
                },
                Operation::PublishBlob(blobs[0].id()),
                Operation::ReadBlob(blobs[2].id()),
                Operation::OpenChain(opened),
                Operation::EmitEvent {
                    stream: StreamId::user("fuzz"),
                    payload: vec![0xff; 40],
                },
                Operation::ReadEvent(EventId {
                    chain_id: chain(SENDER),
                    stream: StreamId::user("fuzz"),
                    index: 0,
                }),
                Operation::CreateCommittee(encoded),
                Operation::ProcessNewEpoch(Epoch(1)),
            ],
        )
        .await;
    let every_operation = net.proposal(SENDER, every_operation, Round::SingleLeader(3));
    // A re-proposal carrying its validated certificate.
    let retry = BlockProposal::new_retry(
        Round::SingleLeader(0),
        validated.clone(),
        &net.owners[SENDER],
    );
    // A pending proposal that validator 0 votes for.
    let pending_block = net
        .block(
            SENDER,
            vec![Operation::Transfer {
                recipient: chain(ADMIN),
                amount: 2,
            }],
        )
        .await;
    let pending = net.proposal(SENDER, pending_block, Round::MultiLeader(0));
    let vote = net.propose(&[0], &pending).await.remove(0);
    assert!(vote.is_ok(), "validator 0 votes: {vote:?}");
    // A replayed proposal is refused.
    let refused = net.propose(&[1], &first_proposal).await.remove(0);
    assert!(refused.is_err(), "a replayed proposal is refused");

    // The receiver's round times out.
    net.pass_deadline(RECEIVER).await;
    let timeout = net.timeout(&all, RECEIVER, Round::MultiLeader(0)).await;
    let after_timeout = net.workers[0]
        .handle_timeout_certificate(timeout.clone())
        .await;
    assert!(after_timeout.is_ok(), "{after_timeout:?}");

    // Queries and their answers.
    let full_query = ChainInfoQuery::new(chain(SENDER))
        .with_manager_values()
        .with_timeout(BlockHeight(2), Round::MultiLeader(0))
        .with_certificate_hashes(BlockHeight(0), BlockHeight(2));
    let mut next_height_query = ChainInfoQuery::new(chain(RECEIVER));
    next_height_query.test_next_block_height = Some(BlockHeight(1));
    let manager_info = net.workers[0]
        .handle_chain_info_query(full_query.clone())
        .await;
    let timed_out_info = net.workers[1]
        .handle_chain_info_query(ChainInfoQuery::new(chain(RECEIVER)).with_manager_values())
        .await;
    assert!(manager_info.is_ok() && timed_out_info.is_ok());
    let plain_info = Ok(net.direct_info(2, ADMIN).await);
    let batch = net.workers[0]
        .handle_confirmed_certificates(
            vec![confirmed.clone(), second.clone()],
            CrossChainDelivery::Blocking,
        )
        .await;
    assert!(batch.is_ok(), "{batch:?}");
    let downloaded = net.workers[0]
        .download_certificates_by_heights(chain(SENDER), vec![BlockHeight(1), BlockHeight(0)])
        .await;
    assert_eq!(downloaded.as_ref().map(Vec::len), Ok(2));
    let not_found = net.workers[0]
        .download_certificate(CryptoHash([0x5a; 32]))
        .await
        .map(Box::new);
    assert!(not_found.is_err());

    let requests = vec![
        Request::BlockProposal(Box::new(first_proposal.clone())),
        Request::BlockProposal(Box::new(every_operation)),
        Request::BlockProposal(Box::new(retry)),
        Request::BlockProposal(Box::new(net.empty_proposal(ADMIN).await)),
        Request::LiteCertificate {
            certificate: Box::new(confirmed.lite()),
            delivery: CrossChainDelivery::Blocking,
        },
        Request::LiteCertificate {
            certificate: Box::new(validated.lite()),
            delivery: CrossChainDelivery::NonBlocking,
        },
        Request::LiteCertificate {
            certificate: Box::new(timeout.lite()),
            delivery: CrossChainDelivery::Blocking,
        },
        Request::ConfirmedCertificate {
            certificate: Box::new(confirmed.clone()),
            delivery: CrossChainDelivery::Blocking,
        },
        Request::ConfirmedCertificate {
            certificate: Box::new(created.clone()),
            delivery: CrossChainDelivery::NonBlocking,
        },
        Request::ConfirmedCertificate {
            certificate: Box::new(received.clone()),
            delivery: CrossChainDelivery::Blocking,
        },
        Request::ValidatedCertificate(Box::new(validated.clone())),
        Request::TimeoutCertificate(Box::new(timeout.clone())),
        Request::ConfirmedCertificates {
            certificates: vec![confirmed.clone(), second.clone()],
            delivery: CrossChainDelivery::Blocking,
        },
        Request::ConfirmedCertificates {
            certificates: vec![],
            delivery: CrossChainDelivery::NonBlocking,
        },
        Request::ChainInfoQuery(Box::new(ChainInfoQuery::new(chain(ADMIN)))),
        Request::ChainInfoQuery(Box::new(full_query)),
        Request::ChainInfoQuery(Box::new(next_height_query)),
        Request::UploadBlob(blobs[0].clone()),
        Request::UploadBlob(blobs[2].clone()),
        Request::UploadBlob(blobs[3].clone()),
        Request::UploadBlob(blobs[4].clone()),
        Request::PendingBlob {
            chain_id: chain(SENDER),
            blob: blobs[1].clone(),
        },
        Request::DownloadBlob(blobs[4].id()),
        Request::MissingBlobIds(blobs.iter().map(Blob::id).collect()),
        Request::MissingBlobIds(vec![]),
        Request::DownloadCertificate(confirmed.hash()),
        Request::DownloadCertificatesByHeights {
            chain_id: chain(SENDER),
            heights: vec![BlockHeight(1), BlockHeight(0), BlockHeight(u64::MAX)],
        },
        Request::Subscribe(vec![chain(SENDER), chain(RECEIVER)]),
        Request::Subscribe(vec![]),
        Request::ChangeSubscription {
            id: SubscriptionId(7),
            change: SubscriptionChange {
                add: vec![chain(ADMIN)],
                remove: vec![chain(SENDER)],
            },
        },
        Request::Unsubscribe(SubscriptionId(u64::MAX)),
    ];
    let signed = SignedNotification::new(
        Notification {
            chain_id: chain(RECEIVER),
            kind: NotificationKind::NewIncomingBundle {
                origin: chain(SENDER),
                height: BlockHeight(1),
            },
        },
        &net.secrets[0],
    );

    let info = manager_info.clone().unwrap();
    let errors = every_node_error(&net, &blobs);
    let mut responses = vec![
        Response::BlockProposal(vote),
        Response::BlockProposal(refused),
        Response::LiteCertificate(plain_info.clone()),
        Response::ConfirmedCertificate(timed_out_info.clone()),
        Response::ValidatedCertificate(manager_info.clone()),
        Response::TimeoutCertificate(after_timeout),
        Response::ConfirmedCertificates(batch),
        Response::ConfirmedCertificates(Ok(BatchOutcome {
            processed: 1,
            info: Some(info.clone()),
            error: Some(NodeError::InvalidChaining),
        })),
        Response::ChainInfoQuery(manager_info),
        Response::ChainInfoQuery(timed_out_info),
        Response::UploadBlob(Ok(blobs[3].id())),
        Response::PendingBlob(plain_info),
        Response::DownloadBlob(Ok(blobs[4].clone())),
        Response::DownloadBlob(Ok(blobs[2].clone())),
        Response::MissingBlobIds(Ok(vec![blobs[0].id(), blobs[1].id()])),
        Response::DownloadCertificate(Ok(Box::new(created))),
        Response::DownloadCertificate(not_found),
        Response::DownloadCertificatesByHeights(downloaded),
        Response::DownloadCertificatesByHeights(Ok(vec![received])),
        Response::Subscribe(Ok(SubscriptionId(3))),
        Response::ChangeSubscription(Ok(2)),
        Response::Unsubscribe(Ok(())),
        Response::Notification(NotificationEnvelope {
            sequence: 0,
            event: StreamEvent::Notification(signed),
        }),
        Response::Notification(NotificationEnvelope {
            sequence: u64::MAX,
            event: StreamEvent::Lagged { missed: 12 },
        }),
    ];
    // Every variant answers at least one error; every error is answered by some variant.
    let answered: Vec<Response> = responses.clone();
    for (index, error) in errors.into_iter().enumerate() {
        responses.push(answered[index % answered.len()].with_error(error));
    }
    (requests, responses)
}

/// At least one value of every `NodeError` variant, with realistic payloads.
pub(super) fn every_node_error(net: &TestNet, blobs: &[Blob]) -> Vec<NodeError> {
    let chain = net.chains[SENDER];
    let validator = net.secrets[0].public();
    vec![
        NodeError::WrongRound(Round::SingleLeader(3)),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(4),
            found_block_height: BlockHeight(9),
        },
        NodeError::MissingCrossChainUpdate {
            chain_id: chain,
            origin: net.chains[RECEIVER],
            height: BlockHeight(7),
        },
        NodeError::EventsNotFound(vec![EventId {
            chain_id: net.chains[ADMIN],
            stream: StreamId::epoch(),
            index: 2,
        }]),
        NodeError::BlobsNotFound(blobs.iter().map(Blob::id).collect()),
        NodeError::InactiveChain(chain),
        NodeError::InvalidTimestamp {
            block_timestamp: Timestamp(10),
            local_time: Timestamp(5),
        },
        NodeError::MissingCertificateValue,
        NodeError::InvalidCertificate(CertificateError::ValueMismatch),
        NodeError::InvalidCertificate(CertificateError::UnknownSigner(validator)),
        NodeError::InvalidCertificate(CertificateError::InsufficientWeight {
            weight: 2,
            threshold: 3,
        }),
        NodeError::InvalidCertificate(CertificateError::BadSignatures(vec![validator; 3])),
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
        NodeError::Execution(ExecutionError::SystemStream(StreamId::epoch())),
        NodeError::Execution(ExecutionError::InvalidCommittee(CommitteeError::BadKey {
            key: validator,
            error: CryptoError::WeakKey,
        })),
        NodeError::Execution(ExecutionError::InvalidCommittee(
            CommitteeError::TooManyMembers {
                members: usize::MAX,
                max: 256,
            },
        )),
        NodeError::OutcomeMismatch,
        NodeError::CertificateNotApplicable(CryptoHash([3; 32])),
        NodeError::LimitExceeded(Limit::BatchSize),
        NodeError::UnexpectedBlob(blobs[0].id()),
        NodeError::TimeoutNotDue {
            deadline: Some(Timestamp(u64::MAX)),
        },
        NodeError::NotFound,
        NodeError::ProtocolViolation(Violation::FalseBlobsNotFound),
        NodeError::MalformedResponse,
        NodeError::Transport(TransportErrorKind::Codec),
        NodeError::Timeout,
        NodeError::Storage(quorum_core::StorageErrorKind::Corrupted),
        NodeError::NotificationsUnavailable,
        NodeError::SubscriptionLimit(SubscriptionLimit::ChainsPerAddress),
        NodeError::UnknownSubscription(SubscriptionId(9)),
    ]
}

/// The variant index of a request; a new variant fails to compile here until the corpus
/// covers it.
pub(super) fn request_variant(request: &Request) -> usize {
    match request {
        Request::BlockProposal(_) => 0,
        Request::LiteCertificate { .. } => 1,
        Request::ConfirmedCertificate { .. } => 2,
        Request::ValidatedCertificate(_) => 3,
        Request::TimeoutCertificate(_) => 4,
        Request::ConfirmedCertificates { .. } => 5,
        Request::ChainInfoQuery(_) => 6,
        Request::UploadBlob(_) => 7,
        Request::PendingBlob { .. } => 8,
        Request::DownloadBlob(_) => 9,
        Request::MissingBlobIds(_) => 10,
        Request::DownloadCertificate(_) => 11,
        Request::DownloadCertificatesByHeights { .. } => 12,
        Request::Subscribe(_) => 13,
        Request::ChangeSubscription { .. } => 14,
        Request::Unsubscribe(_) => 15,
    }
}

/// The variant index of a response; a new variant fails to compile here until the corpus
/// covers it.
pub(super) fn response_variant(response: &Response) -> usize {
    match response {
        Response::BlockProposal(_) => 0,
        Response::LiteCertificate(_) => 1,
        Response::ConfirmedCertificate(_) => 2,
        Response::ValidatedCertificate(_) => 3,
        Response::TimeoutCertificate(_) => 4,
        Response::ConfirmedCertificates(_) => 5,
        Response::ChainInfoQuery(_) => 6,
        Response::UploadBlob(_) => 7,
        Response::PendingBlob(_) => 8,
        Response::DownloadBlob(_) => 9,
        Response::MissingBlobIds(_) => 10,
        Response::DownloadCertificate(_) => 11,
        Response::DownloadCertificatesByHeights(_) => 12,
        Response::Subscribe(_) => 13,
        Response::ChangeSubscription(_) => 14,
        Response::Unsubscribe(_) => 15,
        Response::Notification(_) => 16,
    }
}
