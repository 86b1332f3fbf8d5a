//! Rounds whose votes split so that no block reached a quorum (DESIGN §4.3): the chain still
//! commits. A validator that only voted for a block in a multi-leader round is not locked on
//! it, and an owner whose proposal reached too few validators proposes that same block again
//! before anything else (in the fast round, where a vote does lock, nothing else could ever
//! gather a quorum). Two scenarios, and a property test over random splits of the first
//! round's votes between two owners' blocks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quorum_core::{
    AccountSecretKey, Block, BlockHeight, BlockProposal, ConfirmedBlockCertificate, Operation,
    Round, ValidatorNode,
};
use quorum_node::MemoryStorage;
use quorum_testkit::{test_description_shared, test_options, TokioTestNet};
use quorum_updater::ChainClient;
use rand::SeedableRng;

const CHAIN: usize = 1;

fn transfer(net: &TokioTestNet, amount: u64) -> Vec<Operation> {
    vec![Operation::Transfer {
        recipient: net.chains[0],
        amount,
    }]
}

/// The certificate every validator has at `height` of `CHAIN`, once all are at `expected`.
async fn committed(
    net: &TokioTestNet,
    height: u64,
    expected: u64,
) -> Vec<ConfirmedBlockCertificate> {
    net.settle().await;
    let chain = net.chains[CHAIN];
    let mut certificates = Vec::new();
    for v in 0..net.workers.len() {
        assert_eq!(
            net.height_of(v, chain).await,
            BlockHeight(expected),
            "validator {v}"
        );
        let mut found = net.workers[v]
            .download_certificates_by_heights(chain, vec![BlockHeight(height)])
            .await
            .unwrap();
        certificates.push(found.remove(0));
    }
    certificates
}

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
    assert_eq!(own.value().block().height, BlockHeight(1));
    for certificate in committed(&net, 0, 2).await {
        assert_eq!(*certificate.value().block(), first);
    }
    assert_eq!(
        net.balance(0, CHAIN).await,
        net.genesis.chains[CHAIN].balance - 10
    );
}

/// A network whose `CHAIN` has two owners (no fast round), with the owners' keys.
async fn two_owners() -> (TokioTestNet, [AccountSecretKey; 2]) {
    let second = AccountSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(9));
    let second_public = second.public();
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .describe(move |index, owner| {
            test_description_shared(index, owner, CHAIN as u32, second_public)
        })
        .build()
        .await;
    let owners = [net.owners[CHAIN].clone(), second];
    (net, owners)
}

/// A client of `CHAIN` for `owner`, with a local node of its own that saw nothing yet.
async fn fresh_client(net: &TokioTestNet, owner: &AccountSecretKey) -> ChainClient<MemoryStorage> {
    ChainClient::new(
        net.chains[CHAIN],
        Some(owner.clone()),
        net.new_worker(None).await,
        net.validators.clone(),
        test_options(),
    )
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
    let client = fresh_client(&net, &owners[driver]).await;
    let own = client.transfer(net.chains[0], 100).await.unwrap();
    let height = own.value().block().height.0;
    for certificate in committed(&net, height, height + 1).await {
        assert_eq!(certificate, own);
    }
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(any_split_commits(splits, driver));
    }
}

/// Issue 28, row 2: owner A's block is validated (a quorum locked on its certificate) but
/// never confirmed; owner B, from a wallet of its own that saw none of it, finishes A's block
/// first, then commits its own.
#[tokio::test(start_paused = true)]
async fn another_owner_finishes_a_block_left_validated() {
    let (net, [_, second]) = two_owners().await;
    let first = net.block(CHAIN, transfer(&net, 7)).await;
    let proposal = net.proposal(CHAIN, first.clone(), Round::MultiLeader(0));
    let validated = net.validate(&[0, 1, 2], &proposal).await;
    for v in 0..3 {
        net.workers[v]
            .handle_validated_certificate(validated.clone())
            .await
            .unwrap();
    }
    let client = fresh_client(&net, &second).await;
    let own = client.transfer(net.chains[0], 3).await.unwrap();
    assert_eq!(own.value().block().height, BlockHeight(1));
    for certificate in committed(&net, 0, 2).await {
        assert_eq!(*certificate.value().block(), first);
    }
    assert_eq!(
        net.balance(0, CHAIN).await,
        net.genesis.chains[CHAIN].balance - 10
    );
}

/// Issue 28, row 1: a chain whose super owner is not one of its regular owners: the super
/// owner's blocks commit, in the fast round and, when the fast round is over, in a
/// multi-leader round.
#[tokio::test(start_paused = true)]
async fn a_super_owner_that_is_not_a_regular_owner_commits() {
    let super_owner = AccountSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(11));
    let super_public = super_owner.public();
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .describe(move |index, owner| {
            let mut description = quorum_testkit::test_description(index, owner, false);
            if index == CHAIN as u32 {
                description.super_owner = Some(super_public);
            }
            description
        })
        .build()
        .await;
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
    let all = [0, 1, 2, 3];
    // Both multi-leader rounds time out on every validator.
    for round in [Round::MultiLeader(0), Round::MultiLeader(1)] {
        tokio::time::advance(Duration::from_secs(10)).await;
        let certificate = net.timeout(&all, CHAIN, round).await;
        for v in all {
            net.workers[v]
                .handle_timeout_certificate(certificate.clone())
                .await
                .unwrap();
        }
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

/// Issue 28, row 5: a call whose rounds run out stops at `Options::max_rounds_per_block` and
/// names the lock that holds the chain.
#[tokio::test(start_paused = true)]
async fn a_call_that_runs_out_of_rounds_names_the_lock() {
    let (net, [_, second]) = two_owners().await;
    let first = net.block(CHAIN, transfer(&net, 7)).await;
    let proposal = net.proposal(CHAIN, first.clone(), Round::MultiLeader(0));
    let validated = net.validate(&[0, 1, 2], &proposal).await;
    for v in 0..3 {
        net.workers[v]
            .handle_validated_certificate(validated.clone())
            .await
            .unwrap();
    }
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

/// Owner A's block publishing a blob of `content`, validated in the first round by validators
/// 0, 1 and 2 (which hold the blob pending) and locked on there; never confirmed.
async fn locked_with_a_blob(net: &TokioTestNet, content: &[u8]) -> (quorum_core::Blob, Block) {
    let blob = quorum_core::Blob::data(content.to_vec());
    for v in 0..3 {
        net.workers[v]
            .handle_pending_blob(net.chains[CHAIN], blob.clone())
            .await
            .unwrap();
    }
    let first = net
        .block(CHAIN, vec![Operation::PublishBlob(blob.id())])
        .await;
    let proposal = net.proposal(CHAIN, first.clone(), Round::MultiLeader(0));
    let validated = net.validate(&[0, 1, 2], &proposal).await;
    for v in 0..3 {
        net.workers[v]
            .handle_validated_certificate(validated.clone())
            .await
            .unwrap();
    }
    (blob, first)
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

/// A network whose `CHAIN` has three owners of equal weight (no fast round), with their keys.
async fn three_owners() -> (TokioTestNet, [AccountSecretKey; 3]) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let others = [
        AccountSecretKey::generate(&mut rng),
        AccountSecretKey::generate(&mut rng),
    ];
    let publics = [others[0].public(), others[1].public()];
    let net = TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .describe(move |index, owner| {
            let mut description = quorum_testkit::test_description(index, owner, false);
            if index == CHAIN as u32 {
                for public in publics {
                    description.owners.insert(public, 1);
                }
            }
            description
        })
        .build()
        .await;
    let [second, third] = others;
    let owners = [net.owners[CHAIN].clone(), second, third];
    (net, owners)
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
                    .handle_pending_blob(net.chains[CHAIN], blob.clone())
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
    let client = fresh_client(&net, &owners[driver]).await;
    let own = client.transfer(net.chains[0], 100).await.unwrap();
    let height = own.value().block().height.0;
    for certificate in committed(&net, height, height + 1).await {
        assert_eq!(certificate, own);
    }
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(any_schedule_commits(attempts, driver));
    }
}
