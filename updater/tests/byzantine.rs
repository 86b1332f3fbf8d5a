//! Byzantine hygiene (DESIGN §5.3) and bounded recovery loops (§5.2.7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quorum_core::protocol::{Request, RequestKind, Response};
use quorum_core::{
    BatchOutcome, Block, BlockHeight, BlockProposal, ChainId, ConfirmedBlockCertificate,
    CrossChainDelivery, CryptoHash, EventId, NodeError, Operation, Round, StreamId, Timestamp,
    ValidatorNode, Violation,
};
use quorum_testkit::{Intercepted, Interceptor, TokioTestNet};
use quorum_transport_mem::Fault;
use quorum_updater::{CommunicateAction, RemoteNode, ValidatorUpdater};

fn updater(
    net: &TokioTestNet,
    v: usize,
    node: Arc<dyn ValidatorNode>,
) -> ValidatorUpdater<quorum_node::MemoryStorage> {
    // A client of its own: the updater counts its repairs apart from every other.
    net.client(0)
        .updater(RemoteNode::new(net.secrets[v].public(), node))
}

#[tokio::test(start_paused = true)]
async fn false_blobs_not_found_is_a_protocol_violation_and_uploads_nothing() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    net.set_fault(3, Fault::FalseBlobsNotFound);
    // The block needs a blob, so the updater has blobs it could upload.
    let (blob_id, certificate) = client.publish_blob(b"data".to_vec()).await.unwrap();
    certificate.check(&net.committee).unwrap();
    net.settle().await;
    let stats = net.nodes[3].stats();
    assert_eq!(stats.calls(RequestKind::UploadBlob), 0);
    assert_eq!(stats.calls(RequestKind::PendingBlob), 0);
    assert_eq!(stats.calls(RequestKind::MissingBlobIds), 0);
    // Directly: the updater names the violation.
    let block = client
        .make_block(vec![Operation::ReadBlob(blob_id)])
        .await
        .unwrap();
    let proposal = BlockProposal::new(block, Round::MultiLeader(0), &net.owners[1]);
    let node: Arc<dyn ValidatorNode> = Arc::new(
        quorum_transport_mem::MemoryNode::new(
            net.workers[3].clone(),
            Some(net.secrets[3].clone()),
            1,
        )
        .with_fault(Fault::FalseBlobsNotFound),
    );
    let result = updater(&net, 3, node)
        .send_chain_update(CommunicateAction::SubmitBlock {
            proposal: Box::new(proposal),
            blobs: vec![],
        })
        .await;
    assert_eq!(
        result.unwrap_err(),
        NodeError::ProtocolViolation(Violation::FalseBlobsNotFound)
    );
}

#[tokio::test(start_paused = true)]
async fn votes_signed_by_another_key_are_refused() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    let block = client.make_block(vec![]).await.unwrap();
    let proposal = BlockProposal::new(block, Round::MultiLeader(0), &net.owners[1]);
    for fault in [
        Fault::WrongKey,
        Fault::BadSignature,
        Fault::DontSendValidateVote,
    ] {
        let node: Arc<dyn ValidatorNode> = Arc::new(
            quorum_transport_mem::MemoryNode::new(
                net.workers[3].clone(),
                Some(net.secrets[3].clone()),
                2,
            )
            .with_fault(fault),
        );
        let result = updater(&net, 3, node)
            .send_chain_update(CommunicateAction::SubmitBlock {
                proposal: Box::new(proposal.clone()),
                blobs: vec![],
            })
            .await;
        assert_eq!(
            result.unwrap_err(),
            NodeError::ProtocolViolation(Violation::WrongVote),
            "{fault:?}"
        );
    }
    // The committee still certifies with the three honest validators.
    net.set_fault(3, Fault::WrongKey);
    let certificate = client.transfer(net.chains[0], 1).await.unwrap();
    certificate.check(&net.committee).unwrap();
    assert!(!certificate
        .signatures()
        .iter()
        .any(|(k, _)| *k == net.secrets[3].public()));
}

/// A validator that answers every proposal with a recoverable error whose cause is new each
/// time, and serves everything else honestly (so every repair "succeeds").
struct Adversary {
    proposals: AtomicU64,
    chains: Vec<ChainId>,
    /// If set, every certificate download answers this (old) certificate.
    stale: Option<ConfirmedBlockCertificate>,
    /// If set, every batch of certificates is answered with this outcome.
    batch: Option<BatchOutcome>,
}

impl Adversary {
    /// The adversary in front of `net`'s validator `v`.
    fn in_front_of(
        net: &TokioTestNet,
        v: usize,
        stale: Option<ConfirmedBlockCertificate>,
        batch: Option<BatchOutcome>,
    ) -> Arc<Intercepted<Adversary>> {
        Arc::new(Intercepted::new(
            net.workers[v].clone(),
            Adversary {
                proposals: AtomicU64::new(0),
                chains: net.chains.clone(),
                stale,
                batch,
            },
        ))
    }

    /// The next recoverable error, with a new cause each time.
    fn refusal(&self, block: &Block) -> NodeError {
        let n = self.proposals.fetch_add(1, Ordering::SeqCst);
        match n % 6 {
            0 => NodeError::WrongRound(Round::Fast),
            1 => NodeError::MissingCrossChainUpdate {
                chain_id: block.chain_id,
                origin: self.chains[0],
                height: BlockHeight(n),
            },
            2 => NodeError::EventsNotFound(vec![EventId {
                chain_id: ChainId(CryptoHash([n as u8; 32])),
                stream: StreamId::user("x"),
                index: 0,
            }]),
            3 => NodeError::InvalidTimestamp {
                block_timestamp: block.timestamp,
                local_time: block.timestamp,
            },
            4 => NodeError::InactiveChain(block.chain_id),
            _ => NodeError::UnexpectedBlockHeight {
                expected_block_height: BlockHeight(0),
                found_block_height: block.height,
            },
        }
    }
}

impl Interceptor for Adversary {
    fn answer(&self, request: &Request) -> Option<Response> {
        match request {
            Request::BlockProposal(proposal) => {
                Some(Response::BlockProposal(Err(self.refusal(proposal.block()))))
            }
            Request::ConfirmedCertificates { .. } => self
                .batch
                .clone()
                .map(|outcome| Response::ConfirmedCertificates(Ok(outcome))),
            Request::DownloadCertificatesByHeights { .. } => self
                .stale
                .clone()
                .map(|certificate| Response::DownloadCertificatesByHeights(Ok(vec![certificate]))),
            _ => None,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_validator_answering_every_recoverable_error_cannot_loop_the_client() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    client.transfer(net.chains[0], 1).await.unwrap();
    let adversary = Adversary::in_front_of(&net, 3, None, None);
    let block = client.make_block(vec![]).await.unwrap();
    let proposal = BlockProposal::new(block, Round::MultiLeader(0), &net.owners[1]);
    let start = tokio::time::Instant::now();
    let result = updater(&net, 3, adversary.clone())
        .send_chain_update(CommunicateAction::SubmitBlock {
            proposal: Box::new(proposal),
            blobs: vec![],
        })
        .await;
    assert!(result.is_err());
    let asked = adversary.interceptor().proposals.load(Ordering::SeqCst);
    assert!(
        asked <= quorum_testkit::test_options().max_recoveries_per_call as u64,
        "asked {asked} times"
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    // The whole client still commits with the honest three, in bounded time.
    net.validators
        .insert(net.secrets[3].public(), adversary.clone());
    let certificate = client.transfer(net.chains[0], 1).await.unwrap();
    certificate.check(&net.committee).unwrap();
    let _ = Timestamp(0);
}

#[tokio::test(start_paused = true)]
async fn a_validator_claiming_more_blocks_than_it_serves_cannot_loop_the_local_sync() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    let old = client.transfer(net.chains[0], 1).await.unwrap();
    let adversary = Adversary::in_front_of(&net, 3, Some(old), None);
    let start = tokio::time::Instant::now();
    // It claims the chain is at height 1,000,000 but only ever serves block 0.
    let result = updater(&net, 3, adversary)
        .synchronize_chain_from_remote(net.chains[1], BlockHeight(1_000_000))
        .await;
    assert_eq!(
        result.unwrap_err(),
        NodeError::ProtocolViolation(Violation::BadCertificate)
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(
        net.local
            .chain_state(net.chains[1])
            .await
            .unwrap()
            .next_height(),
        BlockHeight(1)
    );
}

#[tokio::test(start_paused = true)]
async fn lying_batch_outcomes_end_in_errors_not_panics_or_loops() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    net.set_fault(3, quorum_transport_mem::Fault::Offline);
    for _ in 0..3 {
        client.transfer(net.chains[0], 1).await.unwrap();
    }
    let lies = [
        // Stops at once without saying why.
        BatchOutcome {
            processed: 0,
            info: None,
            error: None,
        },
        // Claims more than was sent, with an error.
        BatchOutcome {
            processed: 50,
            info: None,
            error: Some(NodeError::NotFound),
        },
    ];
    for lie in lies {
        let adversary = Adversary::in_front_of(&net, 3, None, Some(lie.clone()));
        let result = updater(&net, 3, adversary)
            .send_chain_information(
                net.chains[1],
                BlockHeight(3),
                CrossChainDelivery::NonBlocking,
                0,
            )
            .await;
        if lie.processed == 0 {
            assert_eq!(
                result.unwrap_err(),
                NodeError::ProtocolViolation(Violation::RepeatedRecovery)
            );
        } else {
            // Taken at its word, the remote has everything; the updater moves on without panicking.
            assert!(result.is_ok());
        }
    }
}
