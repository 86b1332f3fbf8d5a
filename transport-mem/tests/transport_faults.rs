//! The transport faults against a real Worker: Honest, Offline, Slow, Hang, Flaky, CrashAfter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use quorum_core::protocol::RequestKind;
use quorum_core::{Blob, ChainInfoQuery, NodeError, TransportErrorKind, ValidatorNode, VoteKind};
use quorum_testkit::TestNet;
use quorum_transport_mem::{Fault, MemoryNode};
use tokio::time::Instant;

const UNAVAILABLE: NodeError = NodeError::Transport(TransportErrorKind::Unavailable);
const IO: NodeError = NodeError::Transport(TransportErrorKind::Io);

#[tokio::test]
async fn honest_forwards_and_counts_every_method() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    let public = net.secrets[0].public();

    let answer = node
        .handle_block_proposal(net.empty_proposal(1).await)
        .await
        .unwrap();
    let vote = answer.info.manager.pending.clone().unwrap();
    vote.check(&public).unwrap();
    assert_eq!(vote.kind, VoteKind::Validated);
    assert_eq!(Some(vote), net.direct_vote(0, 1).await);

    node.handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
        .await
        .unwrap();
    node.handle_chain_info_query(ChainInfoQuery::new(net.chains[0]))
        .await
        .unwrap();
    let blob = Blob::data(b"hello".to_vec());
    assert_eq!(
        node.upload_blob(blob.clone()).await,
        Err(NodeError::UnexpectedBlob(blob.id()))
    );
    assert_eq!(
        node.missing_blob_ids(vec![blob.id()]).await.unwrap(),
        vec![blob.id()]
    );

    let stats = node.stats();
    assert_eq!(stats.calls(RequestKind::BlockProposal), 1);
    assert_eq!(stats.calls(RequestKind::ChainInfoQuery), 2);
    assert_eq!(stats.calls(RequestKind::UploadBlob), 1);
    assert_eq!(stats.calls(RequestKind::MissingBlobIds), 1);
    assert_eq!(stats.calls(RequestKind::DownloadBlob), 0);
    assert_eq!(stats.total(), 5);
    assert_eq!((stats.failed, stats.hung), (0, 0));
    node.handle().reset_stats();
    assert_eq!(node.stats().total(), 0);
}

#[tokio::test]
async fn offline_fails_every_call_at_once_and_the_worker_is_never_asked() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    node.set_fault(Fault::Offline);
    let proposal = net.empty_proposal(1).await;
    assert_eq!(
        node.handle_block_proposal(proposal).await.unwrap_err(),
        UNAVAILABLE
    );
    assert_eq!(
        node.handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
            .await
            .unwrap_err(),
        UNAVAILABLE
    );
    let blob = Blob::data(b"x".to_vec());
    assert_eq!(
        node.upload_blob(blob.clone()).await.unwrap_err(),
        UNAVAILABLE
    );
    assert_eq!(
        node.download_blob(blob.id()).await.unwrap_err(),
        UNAVAILABLE
    );
    // The worker did not vote: the proposal never reached it.
    assert_eq!(net.direct_vote(0, 1).await, None);
    let stats = node.stats();
    assert_eq!(stats.total(), 4);
    assert_eq!(stats.failed, 4);
    assert_eq!(stats.calls(RequestKind::BlockProposal), 1);
}

#[tokio::test(start_paused = true)]
async fn slow_waits_its_delay_in_tokio_time_then_answers() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    let delay = Duration::from_secs(3);
    node.set_fault(Fault::Slow(delay));

    let start = Instant::now();
    node.handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), delay);

    // A caller that gives up before the delay gets nothing, and the worker was not asked.
    let proposal = net.empty_proposal(1).await;
    let early = tokio::time::timeout(
        Duration::from_secs(2),
        node.handle_block_proposal(proposal.clone()),
    )
    .await;
    assert!(early.is_err());
    assert_eq!(net.direct_vote(0, 1).await, None);

    // A patient one gets the vote.
    let start = Instant::now();
    let answer = node.handle_block_proposal(proposal).await.unwrap();
    assert_eq!(start.elapsed(), delay);
    answer
        .info
        .manager
        .pending
        .unwrap()
        .check(&net.secrets[0].public())
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn hang_never_answers() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    node.set_fault(Fault::Hang);
    let proposal = net.empty_proposal(1).await;
    let start = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(24 * 3600),
        node.handle_block_proposal(proposal),
    )
    .await;
    assert!(answer.is_err(), "a hanging node answered");
    assert_eq!(start.elapsed(), Duration::from_secs(24 * 3600));
    assert_eq!(net.direct_vote(0, 1).await, None);
    let stats = node.stats();
    assert_eq!((stats.total(), stats.hung, stats.failed), (1, 1, 0));

    // A hung call does not block the node once it is honest again.
    let hung = tokio::spawn({
        let node = node.clone();
        let chain = net.chains[1];
        async move {
            node.handle_chain_info_query(ChainInfoQuery::new(chain))
                .await
        }
    });
    tokio::task::yield_now().await;
    node.set_fault(Fault::Honest);
    node.handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
        .await
        .unwrap();
    assert!(!hung.is_finished());
    hung.abort();
}

#[tokio::test]
async fn flaky_fails_with_io_at_its_rate() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    let query = ChainInfoQuery::new(net.chains[1]);

    node.set_fault(Fault::Flaky(1.0));
    for _ in 0..20 {
        assert_eq!(
            node.handle_chain_info_query(query.clone())
                .await
                .unwrap_err(),
            IO
        );
    }
    let proposal = net.empty_proposal(1).await;
    assert_eq!(node.handle_block_proposal(proposal).await.unwrap_err(), IO);
    assert_eq!(net.direct_vote(0, 1).await, None);

    node.set_fault(Fault::Flaky(0.0));
    for _ in 0..20 {
        node.handle_chain_info_query(query.clone()).await.unwrap();
    }

    node.handle().reset_stats();
    node.set_fault(Fault::Flaky(0.5));
    let mut failures = 0;
    for _ in 0..200 {
        match node.handle_chain_info_query(query.clone()).await {
            Ok(_) => {}
            Err(error) => {
                assert_eq!(error, IO);
                failures += 1;
            }
        }
    }
    assert!((60..=140).contains(&failures), "{failures} failures of 200");
    assert_eq!(node.stats().failed, failures);
}

#[tokio::test]
async fn crash_after_n_calls_stays_offline_until_switched() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    let query = ChainInfoQuery::new(net.chains[1]);
    node.set_fault(Fault::CrashAfter(2));

    let answer = node
        .handle_block_proposal(net.empty_proposal(1).await)
        .await
        .unwrap();
    assert!(answer.info.manager.pending.is_some());
    assert_eq!(node.fault(), Fault::CrashAfter(1));
    node.handle_chain_info_query(query.clone()).await.unwrap();
    assert_eq!(node.fault(), Fault::CrashAfter(0));

    for _ in 0..5 {
        assert_eq!(
            node.handle_chain_info_query(query.clone())
                .await
                .unwrap_err(),
            UNAVAILABLE
        );
    }
    assert_eq!(node.fault(), Fault::Offline);
    assert_eq!(node.stats().failed, 5);

    // A restart: the worker kept its state (the vote of the first call).
    node.set_fault(Fault::Honest);
    let answer = node.handle_chain_info_query(query).await.unwrap();
    assert!(answer.info.manager.pending.is_some());
}

#[tokio::test]
async fn crash_after_zero_crashes_on_the_first_call() {
    let net = TestNet::new(1, 2, false).await;
    let node = MemoryNode::new(net.workers[0].clone(), None, 5).with_fault(Fault::CrashAfter(0));
    let node: Arc<dyn ValidatorNode> = Arc::new(node);
    assert_eq!(
        node.handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
            .await
            .unwrap_err(),
        UNAVAILABLE
    );
}
