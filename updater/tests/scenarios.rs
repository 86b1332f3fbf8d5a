//! One scenario per recovery of DESIGN §5.2, each asserting that the recovery happened and the
//! block committed on the lagging validator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use quorum_core::protocol::RequestKind;
use quorum_core::{
    Blob, BlockHeight, BlockProposal, Certificate, ChainInfoQuery, CrossChainDelivery, Epoch,
    EventId, Hashed, Operation, Round, StreamId, ValidatedBlock, ValidatedBlockCertificate,
    ValidatorNode, VoteKind,
};
use quorum_testkit::TokioTestNet;
use quorum_transport_mem::Fault;
use quorum_updater::{CommunicateAction, RecoveryKind, ValidatorUpdater};

#[tokio::test(start_paused = true)]
async fn honest_committee_commits_two_phase_and_fast() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    let certificate = client.transfer(net.chains[0], 10).await.unwrap();
    assert_eq!(certificate.round(), Round::MultiLeader(0));
    net.settle().await;
    for v in 0..4 {
        net.assert_in_sync(v, net.chains[1]).await;
    }
    let fast = TokioTestNet::new(4, 2, true).await;
    let certificate = fast.client(1).transfer(fast.chains[0], 10).await.unwrap();
    assert_eq!(certificate.round(), Round::Fast);
}

#[tokio::test(start_paused = true)]
async fn remote_behind_in_height_is_sent_the_missing_blocks() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    net.set_fault(3, Fault::Offline);
    for _ in 0..3 {
        client.transfer(net.chains[0], 1).await.unwrap();
    }
    net.settle().await;
    assert_eq!(net.height_of(3, net.chains[1]).await, BlockHeight(0));
    net.set_fault(3, Fault::Honest);
    // Its vote is needed: the repair runs on the proposal path, not in the background.
    net.set_fault(2, Fault::Offline);
    client.transfer(net.chains[0], 1).await.unwrap();
    net.settle().await;
    assert!(client.stats().get(RecoveryKind::BlockHeight) >= 1);
    net.assert_in_sync(3, net.chains[1]).await;
    assert_eq!(net.height_of(3, net.chains[1]).await, BlockHeight(4));
}

#[tokio::test(start_paused = true)]
async fn wrong_round_is_repaired_with_the_timeout_certificate() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    // Validator 3 misses the timeout certificate of round 0.
    net.set_fault(3, Fault::Offline);
    client.time_out_round(Round::MultiLeader(0)).await.unwrap();
    net.settle().await;
    let info = net.workers[3]
        .handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
        .await
        .unwrap();
    assert_eq!(info.info.manager.current_round, Round::MultiLeader(0));
    net.set_fault(3, Fault::Honest);
    // Its vote is needed: the repair runs on the proposal path, not in the background.
    net.set_fault(2, Fault::Offline);
    let certificate = client.transfer(net.chains[0], 5).await.unwrap();
    assert_eq!(certificate.round(), Round::MultiLeader(1));
    net.settle().await;
    assert!(client.stats().get(RecoveryKind::WrongRound) >= 1);
    net.assert_in_sync(3, net.chains[1]).await;
}

#[tokio::test(start_paused = true)]
async fn missing_cross_chain_update_is_sent_with_blocking_delivery() {
    let net = TokioTestNet::new(4, 3, false).await;
    // No background catch-up: the repair under test is the proposal path's.
    let payer = net.client_with(1, without_background_catch_up());
    let payee = payer.for_chain(net.chains[2], Some(net.owners[2].clone()));
    net.set_fault(3, Fault::Offline);
    payer.transfer(net.chains[2], 40).await.unwrap();
    net.settle().await;
    net.set_fault(3, Fault::Honest);
    // The payee's block consumes the bundle validator 3 never received, and validator 3's vote
    // is needed for it: the repair runs on the proposal path.
    net.set_fault(2, Fault::Offline);
    payee.receive_messages().await.unwrap();
    net.settle().await;
    assert!(payee.stats().get(RecoveryKind::CrossChain) >= 1);
    net.assert_in_sync(3, net.chains[1]).await;
    net.assert_in_sync(3, net.chains[2]).await;
    assert_eq!(
        net.workers[3]
            .chain_state(net.chains[2])
            .await
            .unwrap()
            .balance(),
        1_040
    );
}

#[tokio::test(start_paused = true)]
async fn missing_events_are_sent_from_the_publisher_chain() {
    let net = TokioTestNet::new(4, 3, false).await;
    let emitter = net.client(1);
    let reader = emitter.for_chain(net.chains[2], Some(net.owners[2].clone()));
    net.set_fault(3, Fault::Offline);
    emitter
        .emit_event(StreamId::user("news"), b"hello".to_vec())
        .await
        .unwrap();
    net.settle().await;
    net.set_fault(3, Fault::Honest);
    let id = EventId {
        chain_id: net.chains[1],
        stream: StreamId::user("news"),
        index: 0,
    };
    reader.read_event(id).await.unwrap();
    net.settle().await;
    assert!(reader.stats().get(RecoveryKind::Events) >= 1);
    net.assert_in_sync(3, net.chains[1]).await;
    net.assert_in_sync(3, net.chains[2]).await;
}

#[tokio::test(start_paused = true)]
async fn missing_blobs_are_found_through_their_publishing_block() {
    let net = TokioTestNet::new(4, 3, false).await;
    let publisher = net.client(1);
    let reader = publisher.for_chain(net.chains[2], Some(net.owners[2].clone()));
    net.set_fault(3, Fault::Offline);
    let (blob_id, _) = publisher
        .publish_blob(b"a document".to_vec())
        .await
        .unwrap();
    net.settle().await;
    net.set_fault(3, Fault::Honest);
    // Its vote is needed: the repair runs on the proposal path, not in the background.
    net.set_fault(2, Fault::Offline);
    reader.read_blob(blob_id).await.unwrap();
    net.settle().await;
    assert!(reader.stats().get(RecoveryKind::Blobs) >= 1);
    assert!(net.nodes[3].stats().calls(RequestKind::MissingBlobIds) >= 1);
    net.assert_in_sync(3, net.chains[1]).await;
    net.assert_in_sync(3, net.chains[2]).await;
    let missing = net.workers[3]
        .missing_blob_ids(vec![blob_id])
        .await
        .unwrap();
    assert!(missing.is_empty());
}

#[tokio::test(start_paused = true)]
async fn invalid_timestamp_reports_skew_before_sleeping_then_commits() {
    // Validator 3's clock is 2 s behind; its grace is 0.5 s.
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .clock_offsets(&[0, 0, 0, -2_000_000])
        .build()
        .await;
    let client = net.client(1);
    let block = client.make_block(vec![]).await.unwrap();
    let proposal = quorum_core::BlockProposal::new(block, Round::MultiLeader(0), &net.owners[1]);
    let (updater, _) = updater_for(&net, &client, 3);
    let start = tokio::time::Instant::now();
    let task = tokio::spawn(async move {
        updater
            .send_chain_update(CommunicateAction::SubmitBlock {
                proposal: Box::new(proposal),
                blobs: vec![],
            })
            .await
    });
    // The report arrives while the updater is still sleeping.
    let stats = client.stats().clone();
    tokio::time::timeout(Duration::from_millis(500), async {
        while stats.max_skew().is_none() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the skew is reported at once");
    assert!(!task.is_finished());
    assert_eq!(client.stats().max_skew(), Some(2_000_000));
    let vote = task.await.unwrap().unwrap();
    vote.check(&net.secrets[3].public()).unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1_900) && waited <= Duration::from_millis(2_100),
        "{waited:?}"
    );
    assert_eq!(client.stats().get(RecoveryKind::ClockSkew), 1);
}

#[tokio::test(start_paused = true)]
async fn invalid_timestamp_beyond_the_maximum_skew_fails_without_sleeping() {
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .clock_offsets(&[0, 0, 0, -10_000_000])
        .build()
        .await;
    let client = net.client(1);
    let block = client.make_block(vec![]).await.unwrap();
    let proposal = quorum_core::BlockProposal::new(block, Round::MultiLeader(0), &net.owners[1]);
    let (updater, _) = updater_for(&net, &client, 3);
    let start = tokio::time::Instant::now();
    let result = updater
        .send_chain_update(CommunicateAction::SubmitBlock {
            proposal: Box::new(proposal),
            blobs: vec![],
        })
        .await;
    assert!(matches!(
        result,
        Err(quorum_core::NodeError::InvalidTimestamp { .. })
    ));
    assert!(start.elapsed() < Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn finalize_uploads_the_locking_blocks_blobs() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    let blob = Blob::data(b"contract".to_vec());
    let block = client
        .make_block(vec![Operation::PublishBlob(blob.id())])
        .await
        .unwrap();
    let value = net
        .local
        .stage_block_execution(&block, std::slice::from_ref(&blob))
        .await
        .unwrap();
    let round = Round::MultiLeader(0);
    let proposal = BlockProposal::new(block, round, &net.owners[1]);
    // Validators 0..3 validate; validator 3 never sees the proposal nor its blob.
    let mut signatures = Vec::new();
    for v in 0..3 {
        net.workers[v]
            .hold_own_pending_blob(net.chains[1], blob.clone())
            .await
            .unwrap();
        let answer = net.workers[v]
            .handle_block_proposal(proposal.clone())
            .await
            .unwrap();
        let vote = answer.info.manager.pending.clone().unwrap();
        signatures.push((vote.validator, vote.signature));
    }
    let validated: ValidatedBlockCertificate =
        Certificate::new(Hashed::new(ValidatedBlock(value)), round, signatures);
    validated.check(&net.committee).unwrap();
    let (updater, handle) = updater_for(&net, &client, 3);
    let vote = updater
        .send_chain_update(CommunicateAction::FinalizeBlock {
            certificate: Box::new(validated.clone()),
            blobs: vec![blob.clone()],
            delivery: CrossChainDelivery::NonBlocking,
        })
        .await
        .unwrap();
    assert_eq!(vote.kind, VoteKind::Confirmed);
    assert_eq!(client.stats().get(RecoveryKind::Blobs), 1);
    assert_eq!(handle.stats().calls(RequestKind::PendingBlob), 1);
    // With the others' confirmations the block commits on validator 3 too.
    let mut confirmations = vec![(vote.validator, vote.signature)];
    for v in 0..2 {
        let answer = net.workers[v]
            .handle_validated_certificate(validated.clone())
            .await
            .unwrap();
        let vote = answer.info.manager.pending.clone().unwrap();
        confirmations.push((vote.validator, vote.signature));
    }
    let confirmed = Certificate::new(
        Hashed::new(validated.value().to_confirmed()),
        round,
        confirmations,
    );
    confirmed.check(&net.committee).unwrap();
    net.workers[3]
        .handle_confirmed_certificate(confirmed, CrossChainDelivery::Blocking)
        .await
        .unwrap();
    assert_eq!(net.height_of(3, net.chains[1]).await, BlockHeight(1));
    assert!(net.workers[3]
        .missing_blob_ids(vec![blob.id()])
        .await
        .unwrap()
        .is_empty());
}

fn updater_for(
    net: &TokioTestNet,
    client: &quorum_updater::ChainClient<quorum_node::MemoryStorage>,
    v: usize,
) -> (
    ValidatorUpdater<quorum_node::MemoryStorage>,
    quorum_transport_mem::FaultHandle,
) {
    // Through the validator's in-process transport, so its call counters see the requests.
    let node = quorum_transport_mem::MemoryNode::new(
        net.workers[v].clone() as Arc<dyn ValidatorNode>,
        Some(net.secrets[v].clone()),
        99,
    );
    let handle = node.handle();
    let updater = client.updater(quorum_updater::RemoteNode::new(
        net.secrets[v].public(),
        Arc::new(node),
    ));
    (updater, handle)
}

#[tokio::test(start_paused = true)]
async fn new_chain_description_is_sent_to_a_validator_that_missed_it() {
    let net = TokioTestNet::new(4, 2, false).await;
    // No background catch-up: the repair under test is the proposal path's.
    let parent = net.client_with(1, without_background_catch_up());
    net.set_fault(3, Fault::Offline);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(5);
    let owner = quorum_core::AccountSecretKey::generate(&mut rng);
    let (child_id, _) = parent
        .open_chain(owner.public(), quorum_testkit::test_consensus())
        .await
        .unwrap();
    net.settle().await;
    net.set_fault(3, Fault::Honest);
    // Validator 3's vote is needed: the repair runs on the proposal path.
    net.set_fault(2, Fault::Offline);
    let child = parent.for_chain(child_id, Some(owner));
    child
        .emit_event(StreamId::user("s"), vec![1])
        .await
        .unwrap();
    net.settle().await;
    assert!(child.stats().get(RecoveryKind::InactiveChain) >= 1);
    net.assert_in_sync(3, net.chains[1]).await;
    net.assert_in_sync(3, child_id).await;
}

#[tokio::test(start_paused = true)]
async fn confirmed_certificate_with_missing_epoch_events_updates_the_admin_chain() {
    let net = TokioTestNet::new(4, 2, false).await;
    let admin = net.client(0);
    let user = admin.for_chain(net.chains[1], Some(net.owners[1].clone()));
    net.set_fault(3, Fault::Offline);
    admin.create_committee(net.committee.clone()).await.unwrap();
    user.process_new_epoch(Epoch(1)).await.unwrap();
    net.settle().await;
    net.set_fault(3, Fault::Honest);
    user.transfer(net.chains[0], 3).await.unwrap();
    net.settle().await;
    assert!(user.stats().get(RecoveryKind::Committee) >= 1);
    net.assert_in_sync(3, net.chains[0]).await;
    net.assert_in_sync(3, net.chains[1]).await;
    assert_eq!(
        net.workers[3]
            .chain_state(net.chains[1])
            .await
            .unwrap()
            .epoch(),
        Epoch(1)
    );
}

#[tokio::test(start_paused = true)]
async fn local_node_behind_synchronizes_from_validators() {
    let net = TokioTestNet::new(4, 2, false).await;
    // Another client, with its own local node, advances the chain.
    let other_local = net.new_worker(None).await;
    let other = quorum_updater::ChainClient::new(
        net.chains[1],
        Some(net.owners[1].clone()),
        other_local,
        net.validators.clone(),
        quorum_testkit::test_options(),
    );
    other.transfer(net.chains[0], 1).await.unwrap();
    other.transfer(net.chains[0], 1).await.unwrap();
    net.settle().await;
    let client = net.client(1);
    assert_eq!(client.local_next_height().await.unwrap(), BlockHeight(0));
    client.transfer(net.chains[0], 1).await.unwrap();
    assert_eq!(client.local_next_height().await.unwrap(), BlockHeight(3));
    assert!(client.stats().get(RecoveryKind::LocalSync) >= 1);
    net.settle().await;
    for v in 0..4 {
        net.assert_in_sync(v, net.chains[1]).await;
    }
    let _ = CrossChainDelivery::Blocking;
}

/// Brings validator `v` back online and sends it chain 1's information (height and round
/// sync); returns the call counters of the transport used.
async fn reconnect_and_sync(
    net: &TokioTestNet,
    client: &quorum_updater::ChainClient<quorum_node::MemoryStorage>,
    v: usize,
) -> quorum_transport_mem::FaultHandle {
    net.set_fault(v, Fault::Honest);
    let (updater, handle) = updater_for(net, client, v);
    let sent = updater
        .send_chain_information(
            net.chains[1],
            BlockHeight(0),
            CrossChainDelivery::NonBlocking,
            0,
        )
        .await;
    sent.unwrap();
    handle
}

#[tokio::test(start_paused = true)]
async fn round_sync_sends_the_locking_block() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    // Round 0 times out without validator 3; in round 1 a block is validated, again without it.
    net.set_fault(3, Fault::Offline);
    client.time_out_round(Round::MultiLeader(0)).await.unwrap();
    let block = client.make_block(vec![]).await.unwrap();
    let value = net.local.stage_block_execution(&block, &[]).await.unwrap();
    let proposal = BlockProposal::new(block, Round::MultiLeader(1), &net.owners[1]);
    let validated = net.validate_directly(&proposal, value).await;
    net.local
        .handle_validated_certificate(validated.clone())
        .await
        .unwrap();
    let handle = reconnect_and_sync(&net, &client, 3).await;
    let state = net.workers[3].chain_state(net.chains[1]).await.unwrap();
    assert_eq!(state.manager().current_round(), Round::MultiLeader(1));
    assert_eq!(state.manager().locking_certificate(), Some(&validated));
    // The locking block alone moved it: it was sent no timeout certificate.
    assert!(state.manager().timeout_certificate().is_none());
    assert_eq!(handle.stats().calls(RequestKind::TimeoutCertificate), 0);
    assert_eq!(handle.stats().calls(RequestKind::ValidatedCertificate), 1);
}

#[tokio::test(start_paused = true)]
async fn round_sync_sends_the_timeout_certificate_and_then_the_proposal() {
    let net = TokioTestNet::new(4, 2, false).await;
    let client = net.client(1);
    net.set_fault(3, Fault::Offline);
    client.time_out_round(Round::MultiLeader(0)).await.unwrap();
    // The client proposes in round 1; validator 3 (offline) never sees the proposal.
    let block = client.make_block(vec![]).await.unwrap();
    let proposal = BlockProposal::new(block, Round::MultiLeader(1), &net.owners[1]);
    net.local
        .handle_block_proposal(proposal.clone())
        .await
        .unwrap();
    let handle = reconnect_and_sync(&net, &client, 3).await;
    let state = net.workers[3].chain_state(net.chains[1]).await.unwrap();
    assert_eq!(state.manager().current_round(), Round::MultiLeader(1));
    assert_eq!(handle.stats().calls(RequestKind::TimeoutCertificate), 1);
    // Now in our round without a vote, it was sent our proposal and voted for it.
    assert_eq!(handle.stats().calls(RequestKind::BlockProposal), 1);
    assert_eq!(state.manager().proposed(), Some(&proposal));
    let vote = state.manager().pending_vote().unwrap();
    assert_eq!(vote.round, Round::MultiLeader(1));
    vote.check(&net.secrets[3].public()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn clock_ahead_of_f_plus_one_validators_is_reported() {
    // Two validators (f + 1 of the weight) run 10 s behind; the client waits at most 5 s.
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .clock_offsets(&[0, 0, -10_000_000, -10_000_000])
        .build()
        .await;
    let client = net.client(1);
    let error = client.transfer(net.chains[0], 1).await.unwrap_err();
    assert_eq!(client.stats().max_skew(), Some(10_000_000));
    match error {
        quorum_updater::ChainClientError::ClockAhead { skew_micros, .. } => {
            assert_eq!(skew_micros, 10_000_000);
        }
        other => panic!("expected ClockAhead, got {other}"),
    }
}

/// Test options without background catch-up (its budget is zero), so that a validator that
/// missed something is repaired on the path of the next request, never before it.
fn without_background_catch_up() -> quorum_updater::Options {
    quorum_updater::Options {
        background_catch_up: std::time::Duration::ZERO,
        ..quorum_testkit::test_options()
    }
}

#[tokio::test(start_paused = true)]
async fn a_validator_far_behind_on_chains_that_pay_each_other_is_caught_up_in_their_order() {
    // Chains 1 → 2 → 3 → 1 pay each other in a ring while validator 3 is away: nearly every
    // block consumes a bundle of the block before it on another chain.
    const ROUNDS: usize = 40;
    let net = TokioTestNet::new(4, 4, false).await;
    let clients: Vec<_> = (1..4)
        .map(|c| net.client_with(c, without_background_catch_up()))
        .collect();
    net.set_fault(3, Fault::Offline);
    for _ in 0..ROUNDS {
        for (i, client) in clients.iter().enumerate() {
            let next = net.chains[1 + (i + 1) % 3];
            client.transfer(next, 1).await.unwrap();
        }
    }
    net.set_fault(3, Fault::Honest);

    // One catch-up of the three chains: every certificate is sent after the ones whose
    // messages it consumes, so the validator refuses none (sent one chain after the other,
    // nearly every batch would stop at a missing cross-chain update, and the repairs would
    // exhaust the action's budget of recoveries long before the end).
    let (updater, handle) = updater_for(&net, &clients[0], 3);
    let mut targets = std::collections::BTreeMap::new();
    for chain in &net.chains[1..4] {
        let tip = net.local.chain_state(*chain).await.unwrap().next_height();
        assert_eq!(tip, BlockHeight(ROUNDS as u64));
        targets.insert(*chain, tip);
    }
    updater.catch_up(targets).await.unwrap();
    for chain in &net.chains[1..4] {
        net.assert_in_sync(3, *chain).await;
    }
    assert_eq!(
        handle.stats().calls(RequestKind::ConfirmedCertificate),
        0,
        "no certificate refused and repaired one by one"
    );
    assert_eq!(clients[0].stats().get(RecoveryKind::CrossChain), 0);
    let batches = handle.stats().calls(RequestKind::ConfirmedCertificates);
    assert!(
        (1..=3 * ROUNDS as u64).contains(&batches),
        "{batches} batches for {} certificates",
        3 * ROUNDS
    );
}
