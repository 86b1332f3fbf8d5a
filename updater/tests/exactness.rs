//! One scenario per divergence of issue 9 / DESIGN §5.4.1, each through the public API and
//! asserting the outcome a user expects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use quorum_core::protocol::RequestKind;
use quorum_core::{
    BlockHeight, BlockProposal, CrossChainDelivery, NodeError, Round, TimeDelta, ValidatorNode,
};
use quorum_testkit::{test_consensus, TokioTestNet};
use quorum_transport_mem::Fault;
use quorum_updater::{ChainClientError, CommunicateAction, Options, RecoveryKind};
use tokio::time::Instant;

const CHAIN: usize = 1;

/// Item 1: a timeout request is for one height; lagging validators are brought up to date
/// and then vote.
#[tokio::test(start_paused = true)]
async fn round_timeout_brings_lagging_validators_up_to_date() {
    let net = TokioTestNet::new(7, 2, false).await;
    let client = net.client(CHAIN);
    let chain = net.chains[CHAIN];
    net.set_fault(5, Fault::Offline);
    net.set_fault(6, Fault::Offline);
    client.transfer(net.chains[0], 1).await.unwrap();
    net.settle().await;
    assert_eq!(net.height_of(5, chain).await, BlockHeight(0));
    net.set_fault(5, Fault::Honest);
    net.set_fault(6, Fault::Honest);
    let start = Instant::now();
    client.time_out_round(Round::MultiLeader(0)).await.unwrap();
    // Round 0 lasts 2 s from the commit, less the settling already waited.
    assert!(start.elapsed() <= Duration::from_secs(2) + Duration::from_millis(10));
    net.settle().await;
    for v in [5, 6] {
        let state = net.workers[v].chain_state(chain).await.unwrap();
        assert_eq!(state.next_height(), BlockHeight(1), "validator {v}");
        assert_eq!(state.manager().current_round(), Round::MultiLeader(1));
    }
}

#[path = "exactness/twisted.rs"]
mod twisted;

use twisted::Twisted;

/// Item 2: one validator naming a deadline a year away does not hold the timeout back.
#[tokio::test(start_paused = true)]
async fn a_far_deadline_from_one_validator_does_not_stall_the_timeout() {
    let net = TokioTestNet::new(4, 2, false).await;
    net.validators.insert(
        net.secrets[0].public(),
        Twisted::new(net.workers[0].clone(), true, false),
    );
    let client = net.client(CHAIN);
    let start = Instant::now();
    client.time_out_round(Round::MultiLeader(0)).await.unwrap();
    // The round lasts 2 s; the client waits 1 ms past the quorum's deadline.
    assert!(
        start.elapsed() < Duration::from_millis(2_100),
        "{:?}",
        start.elapsed()
    );
    let state = net.local.chain_state(net.chains[CHAIN]).await.unwrap();
    assert_eq!(state.manager().current_round(), Round::MultiLeader(1));
}

/// Item 3: a chain five generations below a genesis chain is repaired on a validator that
/// missed all of them, and its vote makes the quorum.
#[tokio::test(start_paused = true)]
async fn five_generations_of_chains_are_repaired() {
    let net = TokioTestNet::new(4, 2, false).await;
    let owner = net.owners[CHAIN].clone();
    net.set_fault(3, Fault::Offline);
    let mut client = net.client(CHAIN);
    for _ in 0..5 {
        let (child, _) = client
            .open_chain(owner.public(), test_consensus())
            .await
            .unwrap();
        client = client.for_chain(child, Some(owner.clone()));
    }
    let youngest = client.chain_id();
    net.settle().await;
    assert!(net.workers[3]
        .chain_state(youngest)
        .await
        .unwrap()
        .description()
        .is_err());
    net.set_fault(3, Fault::Honest);
    net.set_fault(2, Fault::Offline);
    let certificate = client.receive_messages().await.unwrap();
    assert_eq!(certificate.value().block().height, BlockHeight(0));
    assert!(certificate
        .signatures()
        .iter()
        .any(|(signer, _)| *signer == net.secrets[3].public()));
    net.settle().await;
    net.assert_in_sync(3, youngest).await;
}

/// Item 4: a batch size above the node's limit is capped, so a laggard is caught up.
#[tokio::test(start_paused = true)]
async fn an_oversized_batch_option_still_catches_a_laggard_up() {
    let net = TokioTestNet::new(4, 2, true).await;
    let chain = net.chains[CHAIN];
    let options = Options {
        certificate_upload_batch_size: 2_000,
        ..quorum_testkit::test_options()
    };
    let client = net.client_with(CHAIN, options);
    net.set_fault(3, Fault::Offline);
    for _ in 0..1_500 {
        client.receive_messages().await.unwrap();
    }
    net.set_fault(3, Fault::Honest);
    let failed = client.update_validators(chain).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(net.height_of(3, chain).await, BlockHeight(1_500));
    net.assert_in_sync(3, chain).await;
}

/// Item 5, first half: equal clocks and 50 ms of latency report no skew at all.
#[tokio::test(start_paused = true)]
async fn latency_is_not_taken_for_clock_skew() {
    let net = TokioTestNet::new(4, 2, false).await;
    for v in 0..4 {
        net.set_fault(v, Fault::Slow(Duration::from_millis(50)));
    }
    let client = net.client(CHAIN);
    let mut block = client.make_block(vec![]).await.unwrap();
    // Ten seconds ahead: beyond the 5 s the client waits, so every validator refuses.
    block.timestamp = block.timestamp.saturating_add(TimeDelta::from_secs(10));
    let proposal = BlockProposal::new(block, Round::MultiLeader(0), &net.owners[CHAIN]);
    assert_eq!(client.stats().max_skew(), None, "nothing reported yet");
    for v in 0..4 {
        let node = net.validators.remotes(&net.committee)[v].clone();
        let updater = client.updater(node);
        let action = CommunicateAction::SubmitBlock {
            proposal: Box::new(proposal.clone()),
            blobs: vec![],
        };
        assert_eq!(action.round(), Round::MultiLeader(0));
        let error = updater.send_chain_update(action).await.unwrap_err();
        assert!(
            matches!(error, NodeError::InvalidTimestamp { .. }),
            "{error}"
        );
    }
    // Every refusal was reported, and none as skew.
    assert_eq!(client.stats().max_skew(), Some(0));
}

/// Item 5, second half: f+1 clocks really behind: `ClockAhead`, carrying the real error.
#[tokio::test(start_paused = true)]
async fn clock_ahead_carries_the_real_error() {
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .clock_offsets(&[0, 0, -10_000_000, -10_000_000])
        .build()
        .await;
    let client = net.client(CHAIN);
    match client.transfer(net.chains[0], 1).await.unwrap_err() {
        ChainClientError::ClockAhead { skew_micros, error } => {
            assert_eq!(skew_micros, 10_000_000);
            let main = error.main_error().cloned();
            assert!(
                matches!(main, Some(NodeError::InvalidTimestamp { .. })),
                "{error}"
            );
        }
        other => panic!("expected ClockAhead, got {other}"),
    }
}

/// Item 6: round sync sends our proposal to a remote whose only vote is of an earlier round.
#[tokio::test(start_paused = true)]
async fn round_sync_sends_the_proposal_over_an_earlier_round_vote() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(CHAIN);
    let chain = net.chains[CHAIN];
    let block = client.make_block(vec![]).await.unwrap();
    // Validator 3 votes for the block in round 0, then misses the round's timeout.
    let first = BlockProposal::new(block.clone(), Round::MultiLeader(0), &net.owners[CHAIN]);
    net.workers[3].handle_block_proposal(first).await.unwrap();
    net.set_fault(3, Fault::Offline);
    client.time_out_round(Round::MultiLeader(0)).await.unwrap();
    let second = BlockProposal::new(block, Round::MultiLeader(1), &net.owners[CHAIN]);
    net.local
        .handle_block_proposal(second.clone())
        .await
        .unwrap();
    net.set_fault(3, Fault::Honest);
    let node = quorum_transport_mem::MemoryNode::new(
        net.workers[3].clone() as Arc<dyn ValidatorNode>,
        Some(net.secrets[3].clone()),
        5,
    );
    let handle = node.handle();
    let updater = client.updater(quorum_updater::RemoteNode::new(
        net.secrets[3].public(),
        Arc::new(node),
    ));
    updater
        .send_chain_information(chain, BlockHeight(0), CrossChainDelivery::NonBlocking, 0)
        .await
        .unwrap();
    assert_eq!(handle.stats().calls(RequestKind::BlockProposal), 1);
    let state = net.workers[3].chain_state(chain).await.unwrap();
    assert_eq!(state.manager().proposed(), Some(&second));
    assert_eq!(
        state.manager().pending_vote().unwrap().round,
        Round::MultiLeader(1)
    );
}

/// Item 7: a chain with more waiting bundles than one block takes commits them over several
/// blocks.
#[tokio::test(start_paused = true)]
async fn thousands_of_waiting_bundles_commit_over_several_blocks() {
    const SENDERS: usize = 3;
    const BUNDLES: usize = 2_500;
    let net = TokioTestNet::new(1, SENDERS as u32 + 1, true).await;
    let receiver = net.chains[0];
    for i in 0..BUNDLES {
        let sender = net.client(1 + i % SENDERS);
        sender.transfer(receiver, 1).await.unwrap();
    }
    let client = net.client(0);
    let waiting = |state: &quorum_core::ChainState| {
        state
            .inboxes()
            .values()
            .map(|inbox| inbox.bundles().len())
            .sum::<usize>()
    };
    assert_eq!(
        waiting(&net.local.chain_state(receiver).await.unwrap()),
        BUNDLES
    );
    let before = client.local_balance().await.unwrap();
    let mut blocks = 0;
    while waiting(&net.local.chain_state(receiver).await.unwrap()) > 0 {
        let certificate = client.receive_messages().await.unwrap();
        assert!(certificate.value().block().incoming_bundles.len() <= 1_000);
        blocks += 1;
        assert!(blocks <= 3, "more blocks than needed");
    }
    assert_eq!(blocks, 3);
    assert_eq!(
        client.local_balance().await.unwrap(),
        before + BUNDLES as u64
    );
}

/// Item 8: another owner finishes a block the first owner left validated, then commits its
/// own.
#[tokio::test(start_paused = true)]
async fn another_owner_re_proposes_a_locked_block() {
    let second = quorum_core::AccountSecretKey::generate(&mut rand_chacha::rand_core::OsRng);
    let second_public = second.public();
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .describe(move |i, owner| {
            quorum_testkit::test_description_shared(i, owner, CHAIN as u32, second_public)
        })
        .build()
        .await;
    let chain = net.chains[CHAIN];
    // Owner A's block is validated by 0..3 and the validators lock on it; A vanishes.
    let first_client = net.client(CHAIN);
    let block = first_client
        .make_block(vec![quorum_core::Operation::Transfer {
            recipient: net.chains[0],
            amount: 7,
        }])
        .await
        .unwrap();
    let value = net.local.stage_block_execution(&block, &[]).await.unwrap();
    let proposal = BlockProposal::new(block.clone(), Round::MultiLeader(0), &net.owners[CHAIN]);
    let validated = net.validate_directly(&proposal, value).await;
    for v in 0..4 {
        net.workers[v]
            .handle_validated_certificate(validated.clone())
            .await
            .unwrap();
    }
    // Owner B, with its own local node, commits A's block and then its own.
    let local = net.new_worker(None).await;
    let client = quorum_updater::ChainClient::new(
        chain,
        Some(second),
        local,
        net.validators.clone(),
        quorum_testkit::test_options(),
    );
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    assert_eq!(own.value().block().height, BlockHeight(1));
    assert_eq!(own.value().block().authenticated_owner, second_public);
    net.settle().await;
    let first = net.workers[0]
        .download_certificates_by_heights(chain, vec![BlockHeight(0)])
        .await
        .unwrap();
    assert_eq!(*first[0].value().block(), block);
    for v in 0..4 {
        assert_eq!(net.height_of(v, chain).await, BlockHeight(2));
    }
}

/// Item 9: a wallet that never saw a blob syncs the publishing chain and reads the blob; a
/// sync that cannot complete names what is missing.
#[tokio::test(start_paused = true)]
async fn a_sync_fetches_the_blobs_of_what_it_downloads() {
    let net = TokioTestNet::new(4, 3, false).await;
    let publisher = net.client(1);
    let (blob_id, _) = publisher
        .publish_blob(b"the contents".to_vec())
        .await
        .unwrap();
    net.settle().await;
    // A wallet with its own local node that never saw the blob.
    let local = net.new_worker(None).await;
    let wallet = quorum_updater::ChainClient::new(
        net.chains[2],
        Some(net.owners[2].clone()),
        local.clone(),
        net.validators.clone(),
        quorum_testkit::test_options(),
    );
    wallet.synchronize_chain(net.chains[1]).await.unwrap();
    assert_eq!(
        local
            .chain_state(net.chains[1])
            .await
            .unwrap()
            .next_height(),
        BlockHeight(1)
    );
    let read = wallet.read_blob(blob_id).await.unwrap();
    assert_eq!(read.value().block().height, BlockHeight(0));
}

/// Item 9, second half: validators that serve certificates but withhold the blobs they need.
#[tokio::test(start_paused = true)]
async fn an_incomplete_sync_names_what_is_missing() {
    let net = TokioTestNet::new(4, 3, false).await;
    let (blob_id, _) = net
        .client(1)
        .publish_blob(b"kept back".to_vec())
        .await
        .unwrap();
    net.settle().await;
    for v in 0..4 {
        net.validators.insert(
            net.secrets[v].public(),
            Twisted::new(net.workers[v].clone(), false, true),
        );
    }
    let local = net.new_worker(None).await;
    let wallet = quorum_updater::ChainClient::new(
        net.chains[2],
        Some(net.owners[2].clone()),
        local,
        net.validators.clone(),
        quorum_testkit::test_options(),
    );
    match wallet.synchronize_chain(net.chains[1]).await.unwrap_err() {
        ChainClientError::SyncIncomplete {
            chain_id,
            reached,
            target,
            error,
        } => {
            assert_eq!(chain_id, net.chains[1]);
            assert_eq!(reached, BlockHeight(0));
            assert_eq!(target, BlockHeight(1));
            assert_eq!(
                error.as_deref(),
                Some(&NodeError::BlobsNotFound(vec![blob_id]))
            );
        }
        other => panic!("expected SyncIncomplete, got {other}"),
    }
}

/// Item 10: an owner who is not the leader of a single-leader round waits for the round's
/// timeout and commits in the next round.
#[tokio::test(start_paused = true)]
async fn a_non_leader_waits_for_the_next_round() {
    let second = quorum_core::AccountSecretKey::generate(&mut rand_chacha::rand_core::OsRng);
    let second_public = second.public();
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .describe(move |i, owner| {
            let mut description =
                quorum_testkit::test_description_shared(i, owner, CHAIN as u32, second_public);
            description.consensus.multi_leader_rounds = 0;
            description
        })
        .build()
        .await;
    let chain = net.chains[CHAIN];
    let description = net.local.chain_state(chain).await.unwrap();
    let description = description.description().unwrap().clone();
    // Whoever is not round 0's leader proposes.
    let leader = quorum_core::leader(&description, chain, BlockHeight(0), Round::SingleLeader(0));
    let secret = if leader == Some(second_public) {
        net.owners[CHAIN].clone()
    } else {
        second
    };
    let client = quorum_updater::ChainClient::new(
        chain,
        Some(secret.clone()),
        net.local.clone(),
        net.validators.clone(),
        quorum_testkit::test_options(),
    );
    let certificate = client.transfer(net.chains[0], 1).await.unwrap();
    let round = certificate.round();
    assert!(round > Round::SingleLeader(0), "{round:?}");
    assert_eq!(
        quorum_core::leader(&description, chain, BlockHeight(0), round),
        Some(secret.public())
    );
}

/// A validator still in an earlier round answers a timeout request without a vote: it is sent
/// our round's evidence (the timeout certificate of the round before), moves to the round, and
/// votes once the round is due. Here its vote is needed for the quorum.
#[tokio::test(start_paused = true)]
async fn a_validator_in_an_earlier_round_is_moved_up_and_votes() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(CHAIN);
    let chain = net.chains[CHAIN];
    net.set_fault(3, Fault::Offline);
    client.time_out_round(Round::MultiLeader(0)).await.unwrap();
    net.settle().await;
    let behind = net.workers[3].chain_state(chain).await.unwrap();
    assert_eq!(behind.manager().current_round(), Round::MultiLeader(0));
    net.set_fault(3, Fault::Honest);
    net.set_fault(2, Fault::Offline);
    // Validators 0, 1 and 3 are the only quorum left: validator 3 must vote in round 1.
    client.time_out_round(Round::MultiLeader(1)).await.unwrap();
    let local = client.local().chain_state(chain).await.unwrap();
    assert!(local.manager().current_round() > Round::MultiLeader(1));
    net.settle().await;
    let moved = net.workers[3].chain_state(chain).await.unwrap();
    assert_eq!(
        moved.manager().current_round(),
        local.manager().current_round()
    );
}

/// Item 7 (blob path): a validator far behind on the chain that published a blob gets only
/// the publishing block, not the chain up to it, and votes for a block reading the blob.
#[tokio::test(start_paused = true)]
async fn a_missing_blob_comes_with_its_publishing_block_alone() {
    let net = TokioTestNet::new(4, 3, false).await;
    let publisher = net.client(1);
    let reader = net.client(2);
    net.set_fault(3, Fault::Offline);
    for _ in 0..20 {
        publisher.transfer(net.chains[0], 1).await.unwrap();
    }
    let (blob_id, published) = publisher
        .publish_blob(b"read from afar".to_vec())
        .await
        .unwrap();
    assert_eq!(published.value().block().height, BlockHeight(20));
    for _ in 0..10 {
        publisher.transfer(net.chains[0], 1).await.unwrap();
    }
    net.settle().await;
    reader.synchronize_chain(net.chains[1]).await.unwrap();
    // Validator 3 is back, 2 is gone: 3's vote is needed, and it lacks the blob.
    net.set_fault(3, Fault::Honest);
    net.set_fault(2, Fault::Offline);
    let sent_before = reader.stats().get(RecoveryKind::CertificatesSent);
    let read = reader.read_blob(blob_id).await.unwrap();
    read.check(&net.committee).unwrap();
    let signers: Vec<_> = read.signatures().iter().map(|(key, _)| *key).collect();
    assert!(signers.contains(&net.secrets[3].public()));
    // Validator 3 holds the blob, and is still at height 0 of the publishing chain.
    assert!(net.workers[3]
        .storage()
        .read_blob(blob_id)
        .await
        .unwrap()
        .is_some());
    assert_eq!(net.height_of(3, net.chains[1]).await, BlockHeight(0));
    assert_eq!(
        reader.stats().get(RecoveryKind::CertificatesSent),
        sent_before,
        "no batch of the publishing chain was sent"
    );
}
