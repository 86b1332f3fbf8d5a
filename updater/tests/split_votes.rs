//! Rounds whose votes split so that no block reached a quorum (DESIGN §4.3): the chain still
//! commits. A validator that only voted for a block in a multi-leader round is not locked on
//! it, and an owner whose proposal reached too few validators proposes that same block again
//! before anything else (in the fast round, where a vote does lock, nothing else could ever
//! gather a quorum). Two scenarios, and a property test over random splits of the first
//! round's votes between two owners' blocks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quorum_core::{Block, BlockHeight, BlockProposal, Operation, Round, ValidatorNode};
use quorum_testkit::TokioTestNet;

#[path = "owners/kit.rs"]
mod kit;

use kit::{
    commits_from_a_fresh_wallet, committed, first_then_own, fresh_client, run_paused, three_owners,
    transfer, two_owners, CHAIN,
};

#[tokio::test(start_paused = true)]
async fn an_owner_finishes_its_fast_proposal_that_reached_too_few_validators() {
    let net = TokioTestNet::new(4, 2, true).await;
    let client = net.client(CHAIN);
    // The owner's first attempt is recorded by its local node, then reaches validators 0 and 1
    // only before the client stops: they voted for it in the fast round.
    let first = client.make_block(transfer(&net, 7)).await.unwrap();
    let proposal = BlockProposal::new(first.clone(), Round::Fast, &net.owners[CHAIN]);
    net.local
        .handle_own_block_proposal(proposal.clone())
        .await
        .unwrap();
    for answer in net.propose(&[0, 1], &proposal).await {
        assert!(answer.unwrap().info.manager.pending.is_some());
    }
    // Later, the owner transfers something else: its first block is committed first.
    tokio::time::advance(Duration::from_millis(10)).await;
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    first_then_own(&net, &first, &own).await;
}

#[tokio::test(start_paused = true)]
async fn two_owners_whose_votes_split_still_commit() {
    let (net, [_, second]) = two_owners().await;
    let second_public = second.public();
    // In the first multi-leader round both owners propose: validators 0 and 1 vote for the
    // first owner's block, 2 and 3 for the second's. Neither has a quorum.
    let first = net.block(CHAIN, transfer(&net, 7)).await;
    let proposal = net.proposal(CHAIN, first.clone(), Round::MultiLeader(0));
    for answer in net.propose(&[0, 1], &proposal).await {
        answer.unwrap();
    }
    let other = Block {
        authenticated_owner: second_public,
        operations: transfer(&net, 5),
        ..first
    };
    let proposal = BlockProposal::new(other, Round::MultiLeader(0), &second);
    for answer in net.propose(&[2, 3], &proposal).await {
        answer.unwrap();
    }
    // The second owner, from a local node of its own that saw none of it, commits a block.
    let client = fresh_client(&net, &second).await;
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    assert_eq!(own.value().block().height, BlockHeight(0));
    assert!(own.round() > Round::MultiLeader(0));
    for certificate in committed(&net, 0, 1).await {
        assert_eq!(certificate, own);
    }
}

/// Owner `owner` (0 or 1) proposes block `block` (0..3) in the first multi-leader round to the
/// validators of `mask` (bit v for validator v).
type Split = (usize, usize, u8);

/// Every split of first-round votes between the two owners' blocks, then a client of either
/// owner with a local node of its own: its transfer commits, and every validator has it.
async fn any_split_commits(splits: Vec<Split>, driver: usize) {
    let (net, owners) = two_owners().await;
    let template = net.block(CHAIN, Vec::new()).await;
    for (owner, block, mask) in splits {
        let block = Block {
            authenticated_owner: owners[owner].public(),
            operations: transfer(&net, block as u64 + 1),
            ..template.clone()
        };
        let proposal = BlockProposal::new(block, Round::MultiLeader(0), &owners[owner]);
        let to: Vec<usize> = (0..4).filter(|v| mask & (1 << v) != 0).collect();
        // Validators that voted in this round already refuse: that is the split.
        let _ = net.propose(&to, &proposal).await;
    }
    commits_from_a_fresh_wallet(&net, &owners[driver]).await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 24,
        ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn no_split_of_first_round_votes_stalls_the_chain(
        splits in proptest::collection::vec((0..2usize, 0..3usize, 1..16u8), 1..6),
        driver in 0..2usize,
    ) {
        run_paused(any_split_commits(splits, driver));
    }
}

/// Two owners of one chain, each with a wallet of its own, transfer at the same moment: both
/// transfers commit, one after the other.
#[tokio::test(start_paused = true)]
async fn two_owners_transferring_at_once_both_commit() {
    let (net, [first, second]) = two_owners().await;
    let a = fresh_client(&net, &first).await;
    let b = fresh_client(&net, &second).await;
    let (x, y) = tokio::join!(a.transfer(net.chains[0], 2), b.transfer(net.chains[0], 3));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_ne!(x.value().block().height, y.value().block().height);
    net.settle().await;
    assert_eq!(
        net.balance(0, CHAIN).await,
        net.genesis.chains[CHAIN].balance - 5
    );
}

/// One first-round proposal of a random schedule: owner, block, the validators it reaches
/// (bit v for validator v), whether its block publishes a blob (held pending by those
/// validators), and the validators that get its validated certificate if one forms.
type Attempt = (usize, usize, u8, bool, u8);

/// Three owners' proposals split the first round's votes at random, some publishing blobs and
/// some validated and locked on some validators; then a client of any owner, with a local
/// node of its own, commits a transfer, and every validator has it.
async fn any_schedule_commits(attempts: Vec<Attempt>, driver: usize) {
    let (net, owners) = three_owners().await;
    let template = net.block(CHAIN, Vec::new()).await;
    for (owner, block, mask, with_blob, lock_mask) in attempts {
        let to: Vec<usize> = (0..4).filter(|v| mask & (1 << v) != 0).collect();
        let mut operations = transfer(&net, block as u64 + 1);
        let blob = with_blob.then(|| quorum_core::Blob::data(vec![block as u8; 16]));
        if let Some(blob) = &blob {
            for &v in &to {
                let _ = net.workers[v]
                    .hold_own_pending_blob(net.chains[CHAIN], blob.clone())
                    .await;
            }
            operations.push(Operation::PublishBlob(blob.id()));
        }
        let block = Block {
            authenticated_owner: owners[owner].public(),
            operations,
            ..template.clone()
        };
        let round = Round::MultiLeader(0);
        let proposal = BlockProposal::new(block.clone(), round, &owners[owner]);
        let votes: Vec<_> = net
            .propose(&to, &proposal)
            .await
            .into_iter()
            .filter_map(|answer| answer.ok()?.info.manager.pending)
            .filter(|vote| vote.kind == quorum_core::VoteKind::Validated)
            .collect();
        // A quorum of first-round votes: the certificate reaches the validators of lock_mask.
        let executed = net
            .local
            .stage_block_execution(&block, blob.as_slice())
            .await
            .unwrap();
        let value = quorum_core::Hashed::new(quorum_core::ValidatedBlock(executed));
        let mut aggregator = quorum_core::SignatureAggregator::new(value, round, &net.committee);
        let mut validated = None;
        for vote in &votes {
            if let Ok(Some(certificate)) = aggregator.add(vote) {
                validated = Some(certificate);
            }
        }
        if let Some(certificate) = validated {
            for v in (0..4).filter(|v| lock_mask & (1 << v) != 0) {
                let _ = net.workers[v]
                    .handle_validated_certificate(certificate.clone())
                    .await;
            }
        }
    }
    commits_from_a_fresh_wallet(&net, &owners[driver]).await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 24,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Issue 28, must-show 2 (liveness, in process): once the schedule's faults stop, any
    /// owner's transfer commits.
    #[test]
    fn three_owners_with_blobs_and_locks_never_stall_the_chain(
        attempts in proptest::collection::vec(
            (0..3usize, 0..3usize, 1..16u8, proptest::bool::ANY, 0..16u8),
            1..6,
        ),
        driver in 0..3usize,
    ) {
        run_paused(any_schedule_commits(attempts, driver));
    }
}
