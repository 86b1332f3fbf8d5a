//! Re-proposing a block the super owner got confirmed votes for in the fast round (issue 28,
//! row 6; DESIGN §4.3): validators that voted for it in the fast round vote for no other block,
//! so another owner finishes it in a later round, justified by the super owner's signed fast
//! proposal; and what a super owner that signs two fast proposals at one height does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quorum_core::{BlockHeight, Operation, Round, ValidatorNode};
use quorum_updater::ChainClientError;

#[path = "owners/kit.rs"]
mod kit;

use kit::{
    committed, fast_proposal, fresh_client, super_owner_and_two_owners, time_out_everywhere,
    transfer, CHAIN,
};

/// The super owner's fast block, which publishes a blob, got the confirmed votes of
/// validators 0 and 1 only (one short of a quorum) before the fast round timed out. A
/// regular owner, from a wallet that saw none of it, finishes that block first (validators 0
/// and 1 would vote for no other), with its blob, then commits its own block.
#[tokio::test(start_paused = true)]
async fn another_owner_finishes_a_block_confirmed_in_the_fast_round() {
    let (net, [super_owner, _, second]) = super_owner_and_two_owners().await;
    let blob = quorum_core::Blob::data(b"published by the fast block".to_vec());
    for v in 0..2 {
        net.workers[v]
            .hold_own_pending_blob(net.chains[CHAIN], blob.clone())
            .await
            .unwrap();
    }
    let mut operations = transfer(&net, 7);
    operations.push(Operation::PublishBlob(blob.id()));
    let fast = fast_proposal(&net, &super_owner, operations).await;
    for answer in net.propose(&[0, 1], &fast).await {
        answer.unwrap();
    }
    time_out_everywhere(&net, Round::Fast).await;

    let client = fresh_client(&net, &second).await;
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    assert_eq!(own.value().block().height, BlockHeight(1));
    for certificate in committed(&net, 0, 2).await {
        assert_eq!(certificate.value().block(), fast.block());
        assert_ne!(certificate.round(), Round::Fast);
    }
    for v in 0..4 {
        assert_eq!(
            net.workers[v].download_blob(blob.id()).await.unwrap(),
            blob,
            "validator {v}"
        );
    }
    assert_eq!(
        net.balance(0, CHAIN).await,
        net.genesis.chains[CHAIN].balance - 10
    );
}

/// A fast-round signature justifies only the super owner's block: a regular owner's block
/// carried with its author's signature over a "fast" proposal is refused, and a forged
/// fast-round signature is refused.
#[tokio::test(start_paused = true)]
async fn a_fast_round_signature_justifies_only_the_super_owners_own_block() {
    let (net, [super_owner, first, second]) = super_owner_and_two_owners().await;
    time_out_everywhere(&net, Round::Fast).await;
    let round = Round::MultiLeader(0);
    // A regular owner's block, "fast-proposed" by its author, re-proposed by another owner.
    let block = net.block(CHAIN, transfer(&net, 1)).await;
    let by_first = quorum_core::BlockProposal::new(block, Round::Fast, &first);
    let retry = quorum_core::BlockProposal::new_fast_retry(round, &by_first, &second).unwrap();
    for answer in net.propose(&[0], &retry).await {
        assert_eq!(
            answer.unwrap_err(),
            quorum_core::NodeError::UnauthorizedOwner
        );
    }
    // The super owner's block with a signature that is not the super owner's.
    let fast = fast_proposal(&net, &super_owner, transfer(&net, 2)).await;
    let mut forged = quorum_core::BlockProposal::new_fast_retry(round, &fast, &second).unwrap();
    forged.fast_signature = Some(second.sign(&fast.content));
    forged.signature = second.sign(&forged.content);
    for answer in net.propose(&[0], &forged).await {
        assert!(
            matches!(answer, Err(quorum_core::NodeError::InvalidSignature(_))),
            "{answer:?}"
        );
    }
    // The genuine one is voted for.
    let genuine = quorum_core::BlockProposal::new_fast_retry(round, &fast, &second).unwrap();
    for answer in net.propose(&[0], &genuine).await {
        answer.unwrap();
    }
}

/// A super owner that signs two different fast proposals at one height, each confirmed-voted
/// by half of the validators, has bound each half to its own block: no block can gather a
/// quorum at that height any more. Safety holds (nothing is committed there); the chain
/// stalls, and a call says so by running out of rounds (DESIGN §4.3).
#[tokio::test(start_paused = true)]
async fn a_super_owner_that_signs_two_fast_proposals_stalls_the_chain_but_nothing_forks() {
    let (net, [super_owner, _, second]) = super_owner_and_two_owners().await;
    let one = fast_proposal(&net, &super_owner, transfer(&net, 1)).await;
    let other = fast_proposal(&net, &super_owner, transfer(&net, 2)).await;
    assert_ne!(one.block(), other.block());
    for (to, proposal) in [([0, 1], &one), ([2, 3], &other)] {
        for answer in net.propose(&to, proposal).await {
            answer.unwrap();
        }
    }
    time_out_everywhere(&net, Round::Fast).await;
    let options = quorum_updater::Options {
        max_rounds_per_block: 3,
        ..quorum_testkit::test_options()
    };
    let client = quorum_updater::ChainClient::new(
        net.chains[CHAIN],
        Some(second),
        net.new_worker(None).await,
        net.validators.clone(),
        options,
    );
    let error = client.transfer(net.chains[0], 3).await.unwrap_err();
    assert!(
        matches!(error, ChainClientError::TooManyRounds { rounds: 3, .. }),
        "{error}"
    );
    net.settle().await;
    for v in 0..4 {
        assert_eq!(
            net.height_of(v, net.chains[CHAIN]).await,
            BlockHeight(0),
            "validator {v}"
        );
    }
}
