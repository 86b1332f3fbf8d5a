//! Issue 27, must-show 3 (first half): every field a block carries is bounded in bytes, and a
//! proposal beyond a bound is refused before anything of it is stored (DESIGN §4.5.2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quorum_core::{
    CommitteeError, EncodedCommittee, ExecutionError, Limit, Limits, NodeError, Operation, Round,
    StreamId, ValidatorInfo, ValidatorNode, ValidatorSecretKey,
};
use quorum_testkit::TestNet as Net;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `answer` refused the proposal, and the chain's state on validator 0 holds nothing of it.
async fn refused_and_not_stored(
    net: &Net,
    chain: usize,
    operations: Vec<Operation>,
    expected: ExecutionError,
) {
    let before = net.workers[0].chain_state(net.chains[chain]).await.unwrap();
    let block = net.block(chain, operations).await;
    let proposal = net.proposal(chain, block, Round::MultiLeader(0));
    let answer = net.workers[0].handle_block_proposal(proposal).await;
    assert_eq!(answer.unwrap_err(), NodeError::Execution(expected));
    let after = net.workers[0].chain_state(net.chains[chain]).await.unwrap();
    assert!(after.manager().proposed().is_none());
    assert_eq!(after, before);
}

/// The committee bomb of the issue: 1,024 members with 16,340-byte addresses (16.78 MB),
/// proposed by the admin chain's owner, is refused for its size before it is decoded; a
/// committee of one member with an address over 256 bytes, in a small block, is refused
/// when decoded.
#[tokio::test]
async fn an_oversize_committee_is_refused_before_it_is_stored() {
    let net = Net::new(4, 2, false).await;
    let mut rng = ChaCha8Rng::seed_from_u64(27);
    let member = |rng: &mut ChaCha8Rng, address_bytes: usize| {
        let info = ValidatorInfo {
            votes: 1,
            address: "a".repeat(address_bytes),
            network_key: None,
        };
        (ValidatorSecretKey::generate(rng).public(), info)
    };
    let members: std::collections::BTreeMap<_, _> =
        (0..1_024).map(|_| member(&mut rng, 16_340)).collect();
    let encoded = |members: &std::collections::BTreeMap<_, ValidatorInfo>| -> EncodedCommittee {
        let bytes = bcs::to_bytes(members).unwrap();
        bcs::from_bytes(&bcs::to_bytes(&bytes).unwrap()).unwrap()
    };
    refused_and_not_stored(
        &net,
        0,
        vec![Operation::CreateCommittee(encoded(&members))],
        ExecutionError::TooLarge(Limit::BlockSize),
    )
    .await;

    let one: std::collections::BTreeMap<_, _> = [member(&mut rng, 257)].into_iter().collect();
    refused_and_not_stored(
        &net,
        0,
        vec![Operation::CreateCommittee(encoded(&one))],
        ExecutionError::InvalidCommittee(CommitteeError::AddressTooLong {
            bytes: 257,
            max: Limits::DEFAULT.max_validator_address_bytes,
        }),
    )
    .await;
}

/// Stream names over 256 bytes, emitted or read, and a block whose events (each within its
/// own 64 KiB bound) add up to more than 2 MiB, are refused; at the bounds, accepted.
#[tokio::test]
async fn long_stream_names_and_oversize_blocks_are_refused() {
    let net = Net::new(4, 2, false).await;
    let max_name = Limits::DEFAULT.max_stream_name_bytes;
    let emit = |name: String, payload: usize| Operation::EmitEvent {
        stream: StreamId::user(name),
        payload: vec![7; payload],
    };
    refused_and_not_stored(
        &net,
        1,
        vec![emit("s".repeat(max_name + 1), 1)],
        ExecutionError::TooLarge(Limit::StreamName),
    )
    .await;
    let read = Operation::ReadEvent(quorum_core::EventId {
        chain_id: net.chains[1],
        stream: StreamId::user("r".repeat(max_name + 1)),
        index: 0,
    });
    refused_and_not_stored(
        &net,
        1,
        vec![read],
        ExecutionError::TooLarge(Limit::StreamName),
    )
    .await;
    let payload = Limits::DEFAULT.max_event_payload_bytes;
    let many: Vec<Operation> = (0..33).map(|i| emit(format!("s{i}"), payload)).collect();
    refused_and_not_stored(&net, 1, many, ExecutionError::TooLarge(Limit::BlockSize)).await;
    // At the bounds: a 256-byte name, and 31 full events (just under 2 MiB).
    let mut fits: Vec<Operation> = (0..31).map(|i| emit(format!("s{i}"), payload)).collect();
    fits.push(emit("s".repeat(max_name), 1));
    let block = net.block(1, fits).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    let answer = net.workers[0]
        .handle_block_proposal(proposal)
        .await
        .unwrap();
    assert!(answer.info.manager.pending.is_some());
}
