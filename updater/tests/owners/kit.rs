//! What the tests of chains with several owners share (`split_votes.rs`,
//! `several_owners.rs`): networks whose chain has two or three owners, fresh wallets, and
//! the checks of what every validator committed.
#![allow(dead_code)]

use quorum_core::{
    AccountSecretKey, Block, BlockHeight, ConfirmedBlockCertificate, Operation, Round,
    ValidatorNode,
};
use quorum_node::MemoryStorage;
use quorum_testkit::{test_description_shared, test_options, TokioTestNet};
use quorum_updater::ChainClient;
use rand::SeedableRng;

/// The chain with several owners (chain 0 is the admin chain).
pub const CHAIN: usize = 1;

pub fn transfer(net: &TokioTestNet, amount: u64) -> Vec<Operation> {
    vec![Operation::Transfer {
        recipient: net.chains[0],
        amount,
    }]
}

/// The certificate every validator has at `height` of `CHAIN`, once all are at `expected`.
pub async fn committed(
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

/// A network whose `CHAIN` has two owners (no fast round), with the owners' keys.
pub async fn two_owners() -> (TokioTestNet, [AccountSecretKey; 2]) {
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
pub async fn fresh_client(
    net: &TokioTestNet,
    owner: &AccountSecretKey,
) -> ChainClient<MemoryStorage> {
    ChainClient::new(
        net.chains[CHAIN],
        Some(owner.clone()),
        net.new_worker(None).await,
        net.validators.clone(),
        test_options(),
    )
}

/// A network of 4 validators and 2 chains without a fast round, whose `CHAIN`'s description
/// `shape` changes (its owners, its super owner).
pub async fn network(shape: impl Fn(&mut quorum_core::ChainDescription) + 'static) -> TokioTestNet {
    TokioTestNet::builder()
        .validators(4)
        .chains(2)
        .describe(move |index, owner| {
            let mut description = quorum_testkit::test_description(index, owner, false);
            if index == CHAIN as u32 {
                shape(&mut description);
            }
            description
        })
        .build()
        .await
}

/// A network whose `CHAIN` has three owners of equal weight (no fast round), with their keys.
pub async fn three_owners() -> (TokioTestNet, [AccountSecretKey; 3]) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
    let others = [
        AccountSecretKey::generate(&mut rng),
        AccountSecretKey::generate(&mut rng),
    ];
    let publics = [others[0].public(), others[1].public()];
    let net = network(move |description| {
        for public in publics {
            description.owners.insert(public, 1);
        }
    })
    .await;
    let [second, third] = others;
    let owners = [net.owners[CHAIN].clone(), second, third];
    (net, owners)
}

/// A client of `owner` with a local node of its own commits a transfer on `CHAIN`, and every
/// validator ends up with that same certificate.
pub async fn commits_from_a_fresh_wallet(net: &TokioTestNet, owner: &AccountSecretKey) {
    let client = fresh_client(net, owner).await;
    let own = client.transfer(net.chains[0], 100).await.unwrap();
    let height = own.value().block().height.0;
    for certificate in committed(net, height, height + 1).await {
        assert_eq!(certificate, own);
    }
}

/// Owner A's block publishing a blob of `content`, validated in the first round by validators
/// 0, 1 and 2 (which hold the blob pending) and locked on there; never confirmed.
pub async fn locked_with_a_blob(net: &TokioTestNet, content: &[u8]) -> (quorum_core::Blob, Block) {
    let blob = quorum_core::Blob::data(content.to_vec());
    for v in 0..3 {
        net.workers[v]
            .hold_own_pending_blob(net.chains[CHAIN], blob.clone())
            .await
            .unwrap();
    }
    let first = net
        .block(CHAIN, vec![Operation::PublishBlob(blob.id())])
        .await;
    let proposal = net.proposal(CHAIN, first.clone(), Round::MultiLeader(0));
    locked(net, &[0, 1, 2], &proposal).await;
    (blob, first)
}

/// `proposal` validated by `validators`, each of which then takes the certificate as its lock
/// (never confirmed).
pub async fn locked(
    net: &TokioTestNet,
    validators: &[usize],
    proposal: &quorum_core::BlockProposal,
) -> quorum_core::ValidatedBlockCertificate {
    let validated = net.validate(validators, proposal).await;
    for &v in validators {
        net.workers[v]
            .handle_validated_certificate(validated.clone())
            .await
            .unwrap();
    }
    validated
}

/// A network whose `CHAIN` has a super owner that is not one of its two regular owners (of
/// equal weight), so each height starts in the fast round; with the keys of the super owner
/// and the two owners.
pub async fn super_owner_and_two_owners() -> (TokioTestNet, [AccountSecretKey; 3]) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let super_owner = AccountSecretKey::generate(&mut rng);
    let second = AccountSecretKey::generate(&mut rng);
    let (super_public, second_public) = (super_owner.public(), second.public());
    let net = network(move |description| {
        description.owners.insert(second_public, 1);
        description.super_owner = Some(super_public);
    })
    .await;
    let owners = [super_owner, net.owners[CHAIN].clone(), second];
    (net, owners)
}

/// The super owner's fast-round proposal of a block on `CHAIN` with `operations`, on top of
/// what validator 0 has.
pub async fn fast_proposal(
    net: &TokioTestNet,
    super_owner: &AccountSecretKey,
    operations: Vec<Operation>,
) -> quorum_core::BlockProposal {
    let mut block = net.block(CHAIN, operations).await;
    block.authenticated_owner = super_owner.public();
    quorum_core::BlockProposal::new(block, Round::Fast, super_owner)
}

/// Every validator times out the current round of `CHAIN` at its next height.
pub async fn time_out_everywhere(net: &TokioTestNet, round: Round) {
    let all: Vec<usize> = (0..net.workers.len()).collect();
    time_out_on(net, &all, round).await;
}

/// Ten seconds later, `validators` time `round` of `CHAIN` out and take the certificate.
pub async fn time_out_on(net: &TokioTestNet, validators: &[usize], round: Round) {
    tokio::time::advance(std::time::Duration::from_secs(10)).await;
    let certificate = net.timeout(validators, CHAIN, round).await;
    for &v in validators {
        net.workers[v]
            .handle_timeout_certificate(certificate.clone())
            .await
            .unwrap();
    }
}

/// Runs `test` on a current-thread runtime with tokio's clock paused, as a property test's
/// case needs.
pub fn run_paused(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(test);
}

/// `own` (7 + 3 spent in all) was committed at height 1, after `first` at height 0 on every
/// validator.
pub async fn first_then_own(net: &TokioTestNet, first: &Block, own: &ConfirmedBlockCertificate) {
    assert_eq!(own.value().block().height, BlockHeight(1));
    for certificate in committed(net, 0, 2).await {
        assert_eq!(certificate.value().block(), first);
    }
    assert_eq!(
        net.balance(0, CHAIN).await,
        net.genesis.chains[CHAIN].balance - 10
    );
}
