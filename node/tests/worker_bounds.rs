//! The bounds of the reference validator against what a peer sends (DESIGN §4.5.2, §6.1):
//! committees inside blocks decoded only at execution and capped, blob memory bounded in bytes
//! and time, downloads stopped at a byte budget, the protocol's `Limits` taken from the
//! Worker's configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quorum_core::{
    Blob, BlockHeight, CrossChainDelivery, ExecutionError, Limit, Limits, NodeError, Operation,
    Round, TimeDelta, ValidatorNode, ValidatorSecretKey,
};
use quorum_testkit::TestNet as Net;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A committee inside a block travels as bytes: a proposal naming more members than
/// `Limits::max_committee_members` is refused when executed, before any key is decoded, and
/// leaves no trace in the chain's state; a block may create one committee only.
#[tokio::test]
async fn oversized_or_repeated_committees_are_refused_at_execution() {
    const MAX_MEMBERS: usize = quorum_core::Limits::DEFAULT.max_committee_members;
    use quorum_core::{CommitteeError, EncodedCommittee, ExecutionError};

    let net = Net::new(4, 2, false).await;
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let members: std::collections::BTreeMap<_, _> = (0..=MAX_MEMBERS)
        .map(|_| {
            let info = quorum_core::ValidatorInfo {
                votes: 1,
                address: String::new(),
                network_key: None,
            };
            (ValidatorSecretKey::generate(&mut rng).public(), info)
        })
        .collect();
    // The bytes of a committee one member too large (encoded like any committee map).
    let bytes = bcs::to_bytes(&members).unwrap();
    let bomb: EncodedCommittee = bcs::from_bytes(&bcs::to_bytes(&bytes).unwrap()).unwrap();
    assert_eq!(
        bomb.decode(),
        Err(CommitteeError::TooManyMembers {
            members: MAX_MEMBERS + 1,
            max: MAX_MEMBERS
        })
    );
    let block = net.block(0, vec![Operation::CreateCommittee(bomb)]).await;
    let proposal = net.proposal(0, block, Round::MultiLeader(0));
    let answer = net.workers[0].handle_block_proposal(proposal).await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::Execution(ExecutionError::InvalidCommittee(
            CommitteeError::TooManyMembers {
                members: MAX_MEMBERS + 1,
                max: MAX_MEMBERS
            }
        ))
    );
    let state = net.workers[0].chain_state(net.admin()).await.unwrap();
    assert!(state.manager().proposed().is_none());

    let good = EncodedCommittee::new(&net.committee);
    let twice = vec![
        Operation::CreateCommittee(good.clone()),
        Operation::CreateCommittee(good),
    ];
    let block = net.block(0, twice).await;
    let proposal = net.proposal(0, block, Round::MultiLeader(0));
    let answer = net.workers[0].handle_block_proposal(proposal).await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::Execution(ExecutionError::TooLarge(quorum_core::Limit::Committees))
    );
}

/// Memory a peer can fill is bounded in bytes and time: blobs nobody asked for are refused,
/// pending blobs stop at the chain's byte quota without touching other chains, and expire.
#[tokio::test]
async fn blob_memory_is_bounded_in_bytes_and_time() {
    let net = Net::new(4, 3, false).await;
    let worker = net
        .new_worker_with(Some(net.secrets[0].clone()), |config| {
            config.max_pending_bytes_per_chain = 10_000;
            config.max_held_blob_bytes = 20_000;
            config.held_blob_expiry = TimeDelta::from_secs(60);
        })
        .await;
    let attack = |n: u8| Blob::data(vec![n; 3_000]);
    // 4 MiB-style uploads in a loop, unasked: every one refused.
    for n in 0..10 {
        assert_eq!(
            worker.upload_blob(attack(n)).await,
            Err(NodeError::UnexpectedBlob(attack(n).id()))
        );
    }
    // Pending blobs no owner's proposal asked for: every one refused, nothing held.
    for n in 0..10 {
        assert_eq!(
            worker.handle_pending_blob(net.chains[1], attack(n)).await,
            Err(NodeError::UnexpectedBlob(attack(n).id()))
        );
    }
    // An owner's own pending blobs on one chain: three fit in its 10,000 bytes, the fourth
    // is refused.
    for n in 0..3 {
        worker
            .hold_own_pending_blob(net.chains[1], attack(n))
            .await
            .unwrap();
    }
    assert_eq!(
        worker
            .hold_own_pending_blob(net.chains[1], attack(3))
            .await
            .unwrap_err(),
        NodeError::LimitExceeded(quorum_core::Limit::PendingBlobs)
    );
    // Another chain still has room until the global budget.
    for n in 10..13 {
        worker
            .hold_own_pending_blob(net.chains[2], attack(n))
            .await
            .unwrap();
    }
    assert_eq!(
        worker
            .hold_own_pending_blob(net.chains[0], attack(20))
            .await
            .unwrap_err(),
        NodeError::LimitExceeded(quorum_core::Limit::PendingBlobs)
    );
    // After the expiry the room is back.
    net.clock.advance(TimeDelta::from_secs(61));
    worker
        .hold_own_pending_blob(net.chains[0], attack(20))
        .await
        .unwrap();
}

/// Issue 27, must-show 2: an anonymous peer floods a chain with pending blobs; none is held,
/// so the owner's proposal that publishes a blob still gets the blob taken and its vote.
#[tokio::test]
async fn an_anonymous_peer_cannot_make_an_owners_pending_blob_be_refused() {
    let net = Net::new(4, 2, false).await;
    let worker = net
        .new_worker_with(Some(net.secrets[0].clone()), |config| {
            config.max_pending_blobs_per_chain = 2;
            config.max_pending_bytes_per_chain = 10_000;
        })
        .await;
    // Far more than the chain's quota, sent again and again.
    for round in 0..3u8 {
        for n in 0..50u8 {
            let junk = Blob::data(vec![n, round, 1, 2, 3]);
            assert_eq!(
                worker
                    .handle_pending_blob(net.chains[1], junk.clone())
                    .await,
                Err(NodeError::UnexpectedBlob(junk.id()))
            );
        }
    }
    let blob = Blob::data(b"the owner's".to_vec());
    let block = net.block(1, vec![Operation::PublishBlob(blob.id())]).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    assert_eq!(
        worker
            .handle_block_proposal(proposal.clone())
            .await
            .unwrap_err(),
        NodeError::BlobsNotFound(vec![blob.id()])
    );
    // Asked for by the owner's signed proposal: taken, whoever uploads it.
    worker
        .handle_pending_blob(net.chains[1], blob.clone())
        .await
        .unwrap();
    // The flood again: still nothing of it is taken.
    let junk = Blob::data(vec![9; 5]);
    assert_eq!(
        worker
            .handle_pending_blob(net.chains[1], junk.clone())
            .await,
        Err(NodeError::UnexpectedBlob(junk.id()))
    );
    let answer = worker.handle_block_proposal(proposal).await.unwrap();
    assert!(answer.info.manager.pending.is_some());
    // A proposal that is not an owner's asks for nothing.
    let stranger =
        quorum_core::AccountSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(8));
    let other = Blob::data(b"a stranger's".to_vec());
    let mut block = net.block(1, vec![Operation::PublishBlob(other.id())]).await;
    block.authenticated_owner = stranger.public();
    let forged = quorum_core::BlockProposal::new(block, Round::MultiLeader(0), &stranger);
    assert_eq!(
        worker.handle_block_proposal(forged).await.unwrap_err(),
        NodeError::UnauthorizedOwner
    );
    assert_eq!(
        worker
            .handle_pending_blob(net.chains[1], other.clone())
            .await,
        Err(NodeError::UnexpectedBlob(other.id()))
    );
}

/// A download stops at the byte budget (always giving at least one certificate), and the
/// shorter answer says how far it got.
#[tokio::test]
async fn downloads_stop_at_the_byte_budget() {
    let net = Net::new(4, 2, false).await;
    let mut certificates = Vec::new();
    for _ in 0..4 {
        let block = net.block(1, vec![]).await;
        certificates.push(net.commit(1, block, Round::MultiLeader(0)).await);
    }
    let size = quorum_core::encoded_len(&certificates[0]).unwrap();
    let heights: Vec<BlockHeight> = (0..4).map(BlockHeight).collect();
    for (budget, expected) in [(1, 1), (size * 2 + size / 2, 2), (size * 10, 4)] {
        let worker = net
            .new_worker_with(Some(net.secrets[0].clone()), |config| {
                config.limits.max_download_bytes = budget
            })
            .await;
        worker
            .handle_confirmed_certificates(certificates.clone(), CrossChainDelivery::Blocking)
            .await
            .unwrap();
        let got = worker
            .download_certificates_by_heights(net.chains[1], heights.clone())
            .await
            .unwrap();
        assert_eq!(got, certificates[..expected].to_vec(), "budget {budget}");
    }
}

/// The Worker applies the protocol's limits of its configuration: to blocks it executes, blobs,
/// batches and queries.
#[tokio::test]
async fn the_configured_limits_are_the_ones_enforced() {
    let net = Net::new(4, 2, false).await;
    let limits = Limits {
        max_operations_per_block: 1,
        max_blob_bytes: 100,
        max_certificates_per_batch: 2,
        ..Limits::DEFAULT
    };
    let worker = net
        .new_worker_with(Some(net.secrets[0].clone()), move |config| {
            config.limits = limits
        })
        .await;
    let transfer = Operation::Transfer {
        recipient: net.chains[0],
        amount: 1,
    };
    let block = net.block(1, vec![transfer.clone(), transfer]).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    assert_eq!(
        worker.handle_block_proposal(proposal).await.unwrap_err(),
        NodeError::Execution(ExecutionError::TooLarge(Limit::Operations))
    );
    assert_eq!(
        worker
            .handle_pending_blob(net.chains[1], Blob::data(vec![1; 101]))
            .await
            .unwrap_err(),
        NodeError::LimitExceeded(Limit::BlobSize)
    );
    let ids = (0..3u8).map(|n| Blob::data(vec![n]).id()).collect();
    assert_eq!(
        worker.missing_blob_ids(ids).await.unwrap_err(),
        NodeError::LimitExceeded(Limit::BatchSize)
    );
    let heights = vec![BlockHeight(0); 3];
    assert_eq!(
        worker
            .download_certificates_by_heights(net.chains[1], heights)
            .await
            .unwrap_err(),
        NodeError::LimitExceeded(Limit::BatchSize)
    );
}
