//! Byzantine hygiene (DESIGN §5.3) and bounded recovery loops (§5.2.7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use quorum_core::protocol::RequestKind;
use quorum_core::{
    BatchOutcome, Blob, BlobId, BlockHeight, BlockProposal, ChainId, ChainInfoQuery,
    ChainInfoResponse, ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, EventId,
    LiteCertificate, NodeError, Operation, Round, StreamId, TimeoutCertificate, Timestamp,
    ValidatedBlockCertificate, ValidatorNode, Violation,
};
use quorum_testkit::TokioTestNet;
use quorum_transport_mem::Fault;
use quorum_updater::{CommunicateAction, RemoteNode, ValidatorUpdater};

fn updater(
    net: &TokioTestNet,
    v: usize,
    node: Arc<dyn ValidatorNode>,
) -> ValidatorUpdater<quorum_node::MemoryStorage> {
    ValidatorUpdater::new(
        RemoteNode::new(net.secrets[v].public(), node),
        net.local.clone(),
        net.chains[0],
        Arc::new(quorum_testkit::test_options()),
        Arc::default(),
    )
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
            skew_reports: None,
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
                skew_reports: None,
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
    honest: Arc<dyn ValidatorNode>,
    proposals: AtomicU64,
    chains: Vec<ChainId>,
    /// If set, every certificate download answers this (old) certificate.
    stale: Option<ConfirmedBlockCertificate>,
    /// If set, every batch of certificates is answered with this outcome.
    batch: Option<BatchOutcome>,
}

#[async_trait]
impl ValidatorNode for Adversary {
    async fn handle_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        let n = self.proposals.fetch_add(1, Ordering::SeqCst);
        let block = proposal.block();
        Err(match n % 6 {
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
        })
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
        match &self.batch {
            Some(outcome) => Ok(outcome.clone()),
            None => self.honest.handle_confirmed_certificates(c, d).await,
        }
    }
    async fn handle_chain_info_query(
        &self,
        q: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.honest.handle_chain_info_query(q).await
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
        match &self.stale {
            Some(certificate) => Ok(vec![certificate.clone()]),
            None => self.honest.download_certificates_by_heights(c, h).await,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_validator_answering_every_recoverable_error_cannot_loop_the_client() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    client.transfer(net.chains[0], 1).await.unwrap();
    let adversary = Arc::new(Adversary {
        honest: net.workers[3].clone(),
        proposals: AtomicU64::new(0),
        chains: net.chains.clone(),
        stale: None,
        batch: None,
    });
    let block = client.make_block(vec![]).await.unwrap();
    let proposal = BlockProposal::new(block, Round::MultiLeader(0), &net.owners[1]);
    let start = tokio::time::Instant::now();
    let result = updater(&net, 3, adversary.clone())
        .send_chain_update(CommunicateAction::SubmitBlock {
            proposal: Box::new(proposal),
            blobs: vec![],
            skew_reports: None,
        })
        .await;
    assert!(result.is_err());
    let asked = adversary.proposals.load(Ordering::SeqCst);
    assert!(
        asked <= quorum_updater::MAX_RECOVERIES_PER_CALL as u64,
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
    let adversary = Arc::new(Adversary {
        honest: net.workers[3].clone(),
        proposals: AtomicU64::new(0),
        chains: net.chains.clone(),
        stale: Some(old),
        batch: None,
    });
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
        let adversary = Arc::new(Adversary {
            honest: net.workers[3].clone(),
            proposals: AtomicU64::new(0),
            chains: net.chains.clone(),
            stale: None,
            batch: Some(lie.clone()),
        });
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
