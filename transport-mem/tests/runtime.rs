//! Switching faults at run time, determinism under a seed, and the BCS round trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use quorum_core::protocol::RequestKind;
use quorum_core::{
    Blob, BlockHeight, ChainInfoQuery, CrossChainDelivery, NodeError, Round, TransportErrorKind,
    ValidatorNode,
};
use quorum_testkit::TestNet;
use quorum_transport_mem::{Fault, MemoryNode};
use tokio::time::Instant;

/// Which of `calls` queries succeed on `node` under its fault.
async fn pattern(node: &MemoryNode, query: &ChainInfoQuery, calls: usize) -> Vec<bool> {
    let mut pattern = Vec::with_capacity(calls);
    for _ in 0..calls {
        pattern.push(node.handle_chain_info_query(query.clone()).await.is_ok());
    }
    pattern
}

#[tokio::test]
async fn faults_switch_at_run_time_through_a_cloned_handle() {
    let net = TestNet::new(4, 2, false).await;
    let node: Arc<dyn ValidatorNode> = Arc::new(net.nodes[0].clone());
    let handle = net.nodes[0].handle();
    let query = ChainInfoQuery::new(net.chains[1]);

    node.handle_chain_info_query(query.clone()).await.unwrap();
    handle.set_fault(Fault::Offline);
    assert_eq!(
        node.handle_chain_info_query(query.clone())
            .await
            .unwrap_err(),
        NodeError::Transport(TransportErrorKind::Unavailable)
    );
    // Another task brings it back.
    let remote = handle.clone();
    tokio::spawn(async move { remote.set_fault(Fault::Honest) })
        .await
        .unwrap();
    assert_eq!(net.nodes[0].fault(), Fault::Honest);
    node.handle_chain_info_query(query.clone()).await.unwrap();

    // The same handle switches to a Byzantine fault and back.
    handle.set_fault(Fault::DontSendValidateVote);
    let answer = node
        .handle_block_proposal(net.empty_proposal(1).await)
        .await
        .unwrap();
    assert_eq!(answer.info.manager.pending, None);
    handle.set_fault(Fault::Honest);
    let answer = node.handle_chain_info_query(query).await.unwrap();
    assert!(answer.info.manager.pending.is_some());

    let stats = handle.stats();
    assert_eq!(stats.calls(RequestKind::ChainInfoQuery), 4);
    assert_eq!(stats.calls(RequestKind::BlockProposal), 1);
    assert_eq!(stats.failed, 1);
    assert!(handle.same_node(&net.nodes[0].handle()));
}

#[tokio::test(start_paused = true)]
async fn a_call_keeps_the_fault_it_started_under() {
    let net = TestNet::new(4, 2, false).await;
    let node = net.nodes[0].clone();
    let query = ChainInfoQuery::new(net.chains[1]);
    node.set_fault(Fault::Slow(Duration::from_secs(10)));
    let start = Instant::now();
    let slow = tokio::spawn({
        let node = node.clone();
        let query = query.clone();
        async move { node.handle_chain_info_query(query).await }
    });
    tokio::task::yield_now().await;
    node.set_fault(Fault::Honest);
    node.handle_chain_info_query(query).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    slow.await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test]
async fn the_same_seed_gives_the_same_flaky_pattern() {
    let net = TestNet::new(1, 2, false).await;
    let query = ChainInfoQuery::new(net.chains[1]);
    let node = |seed| {
        MemoryNode::new(net.workers[0].clone(), Some(net.secrets[0].clone()), seed)
            .with_fault(Fault::Flaky(0.5))
    };
    let first = pattern(&node(7), &query, 64).await;
    let again = pattern(&node(7), &query, 64).await;
    let other = pattern(&node(8), &query, 64).await;
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert!(first.contains(&true) && first.contains(&false));

    // Switching to another fault and back does not reset the sequence: it goes on the same
    // way for the same seed.
    let mut runs = Vec::new();
    for _ in 0..2 {
        let node = node(11);
        let mut run = pattern(&node, &query, 10).await;
        node.set_fault(Fault::Honest);
        pattern(&node, &query, 5).await;
        node.set_fault(Fault::Flaky(0.5));
        run.extend(pattern(&node, &query, 10).await);
        runs.push(run);
    }
    assert_eq!(runs[0], runs[1]);

    // The false blob ids are drawn from the same generator: same seed, same claims.
    let proposal = net.empty_proposal(1).await;
    let mut claims = Vec::new();
    for _ in 0..2 {
        let node = node(3).with_fault(Fault::FalseBlobsNotFound);
        claims.push((
            node.handle_block_proposal(proposal.clone()).await,
            node.handle_block_proposal(proposal.clone()).await,
        ));
    }
    assert_eq!(claims[0], claims[1]);
    assert_ne!(claims[0].0, claims[0].1);
    // The default wrong key is derived from the seed too.
    assert_eq!(node(3).wrong_public_key(), node(3).wrong_public_key());
    assert_ne!(node(3).wrong_public_key(), node(4).wrong_public_key());
}

#[tokio::test]
async fn bcs_round_trip_preserves_responses_and_errors() {
    let net = TestNet::new(4, 3, false).await;
    let node =
        MemoryNode::new(net.workers[0].clone(), Some(net.secrets[0].clone()), 0).with_bcs(true);
    assert!(node.bcs());
    let worker = &net.workers[0];

    // A proposal: the answer through BCS is the worker's own (a repeated proposal answers the
    // same state and the signatures are deterministic).
    let proposal = net.empty_proposal(1).await;
    let through = node.handle_block_proposal(proposal.clone()).await.unwrap();
    let direct = worker
        .handle_block_proposal(proposal.clone())
        .await
        .unwrap();
    assert_eq!(through, direct);
    through
        .info
        .manager
        .pending
        .unwrap()
        .check(&net.secrets[0].public())
        .unwrap();

    // Errors.
    let block = net.block(2, vec![]).await;
    let wrong_round = net.proposal(2, block, Round::MultiLeader(3));
    let through = node.handle_block_proposal(wrong_round.clone()).await;
    assert_eq!(through, Err(NodeError::WrongRound(Round::MultiLeader(0))));
    assert_eq!(through, worker.handle_block_proposal(wrong_round).await);
    let query = ChainInfoQuery::new(net.chains[1]);
    let mut stale = query.clone();
    stale.test_next_block_height = Some(BlockHeight(5));
    assert_eq!(
        node.handle_chain_info_query(stale.clone()).await,
        worker.handle_chain_info_query(stale).await
    );

    // Queries with manager values (proposal, locking certificate, timeout certificate).
    let validated = net.validate(&[1, 2, 3], &proposal).await;
    let answer = node
        .handle_validated_certificate(validated.clone())
        .await
        .unwrap();
    assert_eq!(
        answer,
        worker
            .handle_validated_certificate(validated.clone())
            .await
            .unwrap()
    );
    let rich = query.clone().with_manager_values();
    let answer = node.handle_chain_info_query(rich.clone()).await.unwrap();
    assert!(answer.info.manager.requested_proposed.is_some());
    assert!(answer.info.manager.requested_locking.is_some());
    assert_eq!(answer, worker.handle_chain_info_query(rich).await.unwrap());

    // Certificates and batches.
    let confirmed = net.confirm(&[0, 1, 2, 3], &validated).await;
    let outcome = node
        .handle_confirmed_certificates(vec![confirmed.clone()], CrossChainDelivery::Blocking)
        .await
        .unwrap();
    assert_eq!(outcome.processed, 1);
    assert_eq!(outcome.error, None);
    assert_eq!(
        outcome,
        worker
            .handle_confirmed_certificates(vec![confirmed.clone()], CrossChainDelivery::Blocking)
            .await
            .unwrap()
    );
    assert_eq!(
        node.download_certificate(confirmed.hash()).await.unwrap(),
        confirmed
    );
    assert_eq!(
        node.download_certificates_by_heights(net.chains[1], vec![BlockHeight(0)])
            .await
            .unwrap(),
        vec![confirmed.clone()]
    );
    assert_eq!(
        node.handle_lite_certificate(confirmed.lite(), CrossChainDelivery::NonBlocking)
            .await,
        worker
            .handle_lite_certificate(confirmed.lite(), CrossChainDelivery::NonBlocking)
            .await
    );
    assert_eq!(
        node.download_certificate(proposal.block().chain_id.0).await,
        Err(NodeError::NotFound)
    );

    // Blobs.
    let blob = Blob::data(vec![7; 100]);
    // Nobody asked for it: the refusal survives the round trip.
    assert_eq!(
        node.upload_blob(blob.clone()).await,
        Err(NodeError::UnexpectedBlob(blob.id()))
    );
    assert_eq!(
        node.missing_blob_ids(vec![blob.id()]).await.unwrap(),
        vec![blob.id()]
    );
    assert_eq!(
        node.download_blob(blob.id()).await,
        Err(NodeError::BlobsNotFound(vec![blob.id()]))
    );
    assert_eq!(
        node.handle_pending_blob(net.chains[2], blob.clone()).await,
        worker.handle_pending_blob(net.chains[2], blob).await
    );

    // Timeout certificates.
    net.pass_deadline(2).await;
    let timeout = net.timeout(&[1, 2, 3], 2, Round::MultiLeader(0)).await;
    let answer = node
        .handle_timeout_certificate(timeout.clone())
        .await
        .unwrap();
    assert_eq!(answer.info.manager.current_round, Round::MultiLeader(1));
    assert_eq!(
        answer,
        worker.handle_timeout_certificate(timeout).await.unwrap()
    );

    assert_eq!(node.stats().failed, 0);
}

#[tokio::test]
async fn byzantine_answers_survive_the_bcs_round_trip() {
    let net = TestNet::new(4, 2, false).await;
    let public = net.secrets[0].public();
    let node = MemoryNode::new(net.workers[0].clone(), Some(net.secrets[0].clone()), 0)
        .with_bcs(true)
        .with_fault(Fault::BadSignature);
    let answer = node
        .handle_block_proposal(net.empty_proposal(1).await)
        .await
        .unwrap();
    assert!(answer.info.manager.pending.unwrap().check(&public).is_err());
    node.set_fault(Fault::Equivocate);
    let answer = node
        .handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
        .await
        .unwrap();
    let vote = answer.info.manager.pending.unwrap();
    vote.check(&public).unwrap();
    assert_ne!(
        vote.value_hash,
        net.direct_vote(0, 1).await.unwrap().value_hash
    );
}
