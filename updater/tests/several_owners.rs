//! Chains with several owners, exact (issue 28): a super owner that is not a regular owner,
//! another owner finishing a block left validated (with the blobs it publishes), owners behind
//! the validators' round, a bound on rounds that names the lock, and re-proposals that carry
//! their blobs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quorum_core::{AccountSecretKey, BlockHeight, Round, ValidatorNode};
use quorum_testkit::{test_options, TokioTestNet};
use quorum_updater::ChainClient;
use rand::SeedableRng;

#[path = "owners/kit.rs"]
mod kit;

use kit::{
    committed, first_then_own, fresh_client, locked, locked_with_a_blob, network,
    time_out_everywhere, time_out_on, transfer, two_owners, CHAIN,
};

/// Issue 28, row 2: owner A's block is validated (a quorum locked on its certificate) but
/// never confirmed; owner B, from a wallet of its own that saw none of it, finishes A's block
/// first, then commits its own.
#[tokio::test(start_paused = true)]
async fn another_owner_finishes_a_block_left_validated() {
    let (net, [_, second]) = two_owners().await;
    let first = net.block(CHAIN, transfer(&net, 7)).await;
    let proposal = net.proposal(CHAIN, first.clone(), Round::MultiLeader(0));
    locked(&net, &[0, 1, 2], &proposal).await;
    let client = fresh_client(&net, &second).await;
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    first_then_own(&net, &first, &own).await;
}

/// Issue 28, row 1: a chain whose super owner is not one of its regular owners: the super
/// owner's blocks commit, in the fast round and, when the fast round is over, in a
/// multi-leader round.
#[tokio::test(start_paused = true)]
async fn a_super_owner_that_is_not_a_regular_owner_commits() {
    let super_owner = AccountSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(11));
    let super_public = super_owner.public();
    let net = network(move |description| description.super_owner = Some(super_public)).await;
    assert!(!net.genesis.chains[CHAIN].owners.contains_key(&super_public));
    let client = fresh_client(&net, &super_owner).await;
    let fast = client.transfer(net.chains[0], 2).await.unwrap();
    assert_eq!(fast.round(), Round::Fast);
    // The fast round of the next height runs out: the super owner proposes in the next one.
    let state = client.local().chain_state(net.chains[CHAIN]).await.unwrap();
    client
        .time_out_round(state.manager().current_round())
        .await
        .unwrap();
    let later = client.transfer(net.chains[0], 3).await.unwrap();
    assert_eq!(later.round(), Round::MultiLeader(0));
    for certificate in committed(&net, 1, 2).await {
        assert_eq!(certificate, later);
    }
    assert_eq!(
        net.balance(0, CHAIN).await,
        net.genesis.chains[CHAIN].balance - 5
    );
}

/// Issue 28, row 3: the validators moved on to a round this owner leads while its wallet saw
/// none of it; the owner learns their round and proposes in it.
#[tokio::test(start_paused = true)]
async fn an_owner_behind_the_validators_round_proposes_in_the_round_it_leads() {
    let (net, owners) = two_owners().await;
    // Both multi-leader rounds time out on every validator.
    for round in [Round::MultiLeader(0), Round::MultiLeader(1)] {
        time_out_everywhere(&net, round).await;
    }
    let round = Round::SingleLeader(0);
    let description = &net.genesis.chains[CHAIN];
    let leader =
        quorum_core::leader(description, net.chains[CHAIN], BlockHeight(0), round).unwrap();
    let owner = owners.iter().find(|o| o.public() == leader).unwrap();
    let client = fresh_client(&net, owner).await;
    let start = tokio::time::Instant::now();
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    assert_eq!(own.round(), round);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    for certificate in committed(&net, 0, 1).await {
        assert_eq!(certificate, own);
    }
}

/// Issue 28, row 3 on a chain opened by another chain, which one validator does not know:
/// the validators moved on to a round the second owner leads; that owner, from a wallet that
/// follows the chain by id, proposes in it.
#[tokio::test(start_paused = true)]
async fn an_owner_of_a_child_chain_behind_the_validators_round_commits() {
    let net = TokioTestNet::new(4, 2, false).await;
    let second = AccountSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(12));
    let opener = net.client(CHAIN);
    let owners =
        std::collections::BTreeMap::from([(net.owners[CHAIN].public(), 1), (second.public(), 1)]);
    net.set_fault(3, quorum_transport_mem::Fault::Offline);
    // Validator 3 misses the parent's first block too: the opening block is ahead for it.
    opener.transfer(net.chains[0], 1).await.unwrap();
    let (child, _) = opener
        .open_chain_with_owners(owners, None, quorum_testkit::test_consensus())
        .await
        .unwrap();
    net.settle().await;
    net.set_fault(3, quorum_transport_mem::Fault::Honest);
    let state = net.workers[0].chain_state(child).await.unwrap();
    let description = state.description().unwrap().clone();
    let live = [0, 1, 2];
    // Time out both multi-leader rounds on the validators that know the chain.
    for round in [Round::MultiLeader(0), Round::MultiLeader(1)] {
        tokio::time::advance(Duration::from_secs(10)).await;
        let value = quorum_core::Hashed::new(quorum_core::Timeout {
            chain_id: child,
            height: BlockHeight(0),
            epoch: state.epoch(),
        });
        let mut aggregator = quorum_core::SignatureAggregator::new(value, round, &net.committee);
        let mut certificate = None;
        for v in live {
            let query = quorum_core::ChainInfoQuery::new(child).with_timeout(BlockHeight(0), round);
            let answer = net.workers[v].handle_chain_info_query(query).await.unwrap();
            let vote = answer.info.manager.timeout_vote.unwrap();
            certificate = aggregator.add(&vote).unwrap().or(certificate);
        }
        let certificate = certificate.unwrap();
        for v in live {
            net.workers[v]
                .handle_timeout_certificate(certificate.clone())
                .await
                .unwrap();
        }
    }
    let round = Round::SingleLeader(0);
    let leader = quorum_core::leader(&description, child, BlockHeight(0), round).unwrap();
    let keys = [net.owners[CHAIN].clone(), second];
    let owner = keys.iter().find(|k| k.public() == leader).unwrap();
    let client = ChainClient::new(
        child,
        Some(owner.clone()),
        net.new_worker(None).await,
        net.validators.clone(),
        test_options(),
    );
    client.synchronize_from_validators().await.unwrap();
    let start = tokio::time::Instant::now();
    // The chain has no tokens: an empty block is the point.
    let own = client.receive_messages().await.unwrap();
    assert_eq!(own.round(), round);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    net.settle().await;
    // Validator 3 never learned the chain, and this wallet has none of the parent's history:
    // it sets the chain up there with the block that opened it alone.
    let parent_on_3 = net.workers[3].chain_state(net.chains[CHAIN]).await.unwrap();
    assert_eq!(
        parent_on_3.next_height(),
        BlockHeight(0),
        "validator 3 lags on the parent"
    );
    for v in 0..4 {
        assert_eq!(
            net.height_of(v, child).await,
            BlockHeight(1),
            "validator {v}"
        );
    }
}

/// Issue 28, row 5: a call whose rounds run out stops at `Options::max_rounds_per_block` and
/// names the lock that holds the chain.
#[tokio::test(start_paused = true)]
async fn a_call_that_runs_out_of_rounds_names_the_lock() {
    let (net, [_, second]) = two_owners().await;
    let first = net.block(CHAIN, transfer(&net, 7)).await;
    let proposal = net.proposal(CHAIN, first.clone(), Round::MultiLeader(0));
    let validated = locked(&net, &[0, 1, 2], &proposal).await;
    // Two validators never send a confirmed vote: nothing can be confirmed.
    net.set_fault(0, quorum_transport_mem::Fault::DontSendConfirmVote);
    net.set_fault(1, quorum_transport_mem::Fault::DontSendConfirmVote);
    let options = quorum_updater::Options {
        max_rounds_per_block: 2,
        ..test_options()
    };
    let client = ChainClient::new(
        net.chains[CHAIN],
        Some(second),
        net.new_worker(None).await,
        net.validators.clone(),
        options,
    );
    match client.transfer(net.chains[0], 3).await.unwrap_err() {
        quorum_updater::ChainClientError::TooManyRounds { rounds, lock } => {
            assert_eq!(rounds, 2);
            let lock = lock.expect("the lock is named");
            assert_eq!(lock.block, validated.hash());
            assert_eq!(lock.owner, first.authenticated_owner);
            // Re-proposed by the second owner, the same block is validated again later.
            assert!(lock.round >= Round::MultiLeader(0), "{:?}", lock.round);
            assert!(lock.validators.len() >= 3);
        }
        other => panic!("expected TooManyRounds, got {other}"),
    }
}

/// Issue 28, row 4: owner A's proposal publishes a blob and is left validated; owner B, from a
/// wallet that never saw the blob, finishes A's block (the blob comes from the validators that
/// hold it pending for the lock), then commits its own.
#[tokio::test(start_paused = true)]
async fn another_owner_finishes_a_validated_block_that_publishes_a_blob() {
    let (net, [_, second]) = two_owners().await;
    let (blob, first) = locked_with_a_blob(&net, b"left behind with the lock").await;
    let client = fresh_client(&net, &second).await;
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    assert_eq!(own.value().block().height, BlockHeight(1));
    for certificate in committed(&net, 0, 2).await {
        assert_eq!(*certificate.value().block(), first);
    }
    for v in 0..4 {
        assert_eq!(
            net.workers[v].download_blob(blob.id()).await.unwrap(),
            blob,
            "validator {v}"
        );
    }
}

/// Issue 28, row 8: the re-proposal of a lock that publishes a blob reaches a validator that
/// never had the blob: the blob goes with it, from the re-proposing owner's local node.
#[tokio::test(start_paused = true)]
async fn a_re_proposal_carries_the_blobs_its_block_publishes() {
    let (net, [_, second]) = two_owners().await;
    let (blob, first) = locked_with_a_blob(&net, b"only three validators had it").await;
    // Without validator 2, the quorum needs validator 3, which never saw the blob.
    net.set_fault(2, quorum_transport_mem::Fault::Offline);
    let client = fresh_client(&net, &second).await;
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    assert_eq!(own.value().block().height, BlockHeight(1));
    let on_3 = net.workers[3]
        .download_certificates_by_heights(net.chains[CHAIN], vec![BlockHeight(0)])
        .await
        .unwrap();
    assert_eq!(*on_3[0].value().block(), first);
    assert_eq!(net.workers[3].download_blob(blob.id()).await.unwrap(), blob);
}

/// Issue 28, row 9: the re-proposal of a block validated in epoch 1 reaches a validator that
/// missed the epoch change (it lags on the admin chain and on this chain). It answers
/// `EventsNotFound` for the admin chain's announcement of epoch 1, which it needs to check
/// the certificate: the updater sends it the admin chain, then the chain, and it votes in
/// that same round.
#[tokio::test(start_paused = true)]
async fn a_re_proposal_to_a_validator_that_missed_the_epoch_change_gets_the_admin_chain() {
    let (net, [first_owner, second]) = two_owners().await;
    net.set_fault(3, quorum_transport_mem::Fault::Offline);
    {
        let admin = net.client(0);
        admin.create_committee(net.committee.clone()).await.unwrap();
        let first = admin.for_chain(net.chains[CHAIN], Some(first_owner));
        first
            .process_new_epoch(quorum_core::Epoch(1))
            .await
            .unwrap();
        net.settle().await;
    }
    net.set_fault(3, quorum_transport_mem::Fault::Honest);
    // Owner A's block at height 1, in epoch 1, validated and locked on validators 0, 1 and 2.
    let block = net.block(CHAIN, transfer(&net, 7)).await;
    assert_eq!(block.epoch, quorum_core::Epoch(1));
    let proposal = net.proposal(CHAIN, block.clone(), Round::MultiLeader(0));
    locked(&net, &[0, 1, 2], &proposal).await;
    // They moved on to the next round: the other owner re-proposes the block there at once.
    time_out_on(&net, &[0, 1, 2], Round::MultiLeader(0)).await;
    // Without validator 2, the quorum needs validator 3, still in epoch 0 at height 0.
    net.set_fault(2, quorum_transport_mem::Fault::Offline);
    assert_eq!(net.height_of(3, net.chains[CHAIN]).await, BlockHeight(0));
    assert!(net.workers[3]
        .committee(quorum_core::Epoch(1))
        .await
        .is_err());
    let client = fresh_client(&net, &second).await;
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    assert_eq!(own.value().block().height, BlockHeight(2));
    let on_3 = net.workers[3]
        .download_certificates_by_heights(net.chains[CHAIN], vec![BlockHeight(1)])
        .await
        .unwrap();
    assert_eq!(*on_3[0].value().block(), block);
    // In the round the client found: validator 3 was not taken for a liar and dropped
    // (which cost a round before).
    assert_eq!(on_3[0].round(), Round::MultiLeader(1));
    assert!(client.stats().get(quorum_updater::RecoveryKind::Committee) >= 1);
}
