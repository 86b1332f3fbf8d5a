//! The reference validator driven directly: every expected error of DESIGN §4.6 from a real
//! situation, consensus (fast, two-phase, locking, timeouts), idempotence, and a committee of
//! four committing a cross-chain transfer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quorum_core::{
    epoch_event_id, Blob, BlockHeight, BlockProposal, Certificate, CertificateError,
    ChainInfoQuery, CrossChainDelivery, Epoch, IncomingBundle, Message, NodeError, Operation,
    Round, Signature, TimeDelta, TimeoutCertificate, Timestamp, ValidatorNode, ValidatorSecretKey,
};
use quorum_testkit::{genesis_description, TestNet as Net, START};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const ALL: [usize; 4] = [0, 1, 2, 3];

#[tokio::test]
async fn wrong_round() {
    let net = Net::new(4, 2, false).await;
    let block = net.block(1, vec![]).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(1));
    let answer = net.workers[0].handle_block_proposal(proposal).await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::WrongRound(Round::MultiLeader(0))
    );
}

#[tokio::test]
async fn unexpected_block_height() {
    let net = Net::new(4, 2, false).await;
    let mut block = net.block(1, vec![]).await;
    block.height = BlockHeight(1);
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    let answer = net.workers[0].handle_block_proposal(proposal).await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(0),
            found_block_height: BlockHeight(1)
        }
    );
}

#[tokio::test]
async fn missing_cross_chain_update() {
    let net = Net::new(4, 3, false).await;
    // Chain 1 pays chain 2; validator 3 never sees that block.
    let transfer = Operation::Transfer {
        recipient: net.chains[2],
        amount: 10,
    };
    let block = net.block(1, vec![transfer]).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    let validated = net.validate(&[0, 1, 2], &proposal).await;
    let confirmed = net.confirm(&[0, 1, 2], &validated).await;
    net.deliver(&[0, 1, 2], &confirmed).await;
    let bundle = IncomingBundle {
        origin: net.chains[1],
        height: BlockHeight(0),
        messages: vec![Message::Credit { amount: 10 }],
    };
    let block = net.block_on(0, 2, vec![], vec![bundle]).await;
    let proposal = net.proposal(2, block, Round::MultiLeader(0));
    let answers = net.propose(&ALL, &proposal).await;
    assert!(answers[0].is_ok());
    assert_eq!(
        answers[3].clone().unwrap_err(),
        NodeError::MissingCrossChainUpdate {
            chain_id: net.chains[2],
            origin: net.chains[1],
            height: BlockHeight(0)
        }
    );
}

#[tokio::test]
async fn events_not_found_before_the_epoch_is_announced() {
    let net = Net::new(4, 2, false).await;
    let block = net
        .block(1, vec![Operation::ProcessNewEpoch(Epoch(1))])
        .await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    let answer = net.workers[0].handle_block_proposal(proposal).await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::EventsNotFound(vec![epoch_event_id(net.admin(), Epoch(1))])
    );
}

#[tokio::test]
async fn blobs_not_found_for_an_unknown_blob() {
    let net = Net::new(4, 2, false).await;
    let unknown = Blob::data(b"never published".to_vec()).id();
    let block = net.block(1, vec![Operation::ReadBlob(unknown)]).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    let answer = net.workers[0].handle_block_proposal(proposal).await;
    assert_eq!(answer.unwrap_err(), NodeError::BlobsNotFound(vec![unknown]));
}

#[tokio::test]
async fn inactive_chain() {
    let net = Net::new(4, 2, false).await;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let owner = quorum_core::AccountSecretKey::generate(&mut rng);
    let stranger = genesis_description(
        77,
        owner.public(),
        false,
        quorum_core::ConsensusConfig::default(),
    );
    let mut block = net.block(1, vec![]).await;
    block.chain_id = stranger.id();
    block.authenticated_owner = owner.public();
    block.previous_block_hash = None;
    let proposal = BlockProposal::new(block, Round::MultiLeader(0), &owner);
    let answer = net.workers[0].handle_block_proposal(proposal).await;
    assert_eq!(answer.unwrap_err(), NodeError::InactiveChain(stranger.id()));
}

#[tokio::test]
async fn invalid_timestamp_beyond_clock_and_grace() {
    let net = Net::new(4, 2, false).await;
    let mut block = net.block(1, vec![]).await;
    let grace = net.workers[0].config().timestamp_grace;
    // Exactly at the grace limit is fine; one microsecond more is not.
    block.timestamp = net.now().saturating_add(grace).saturating_add(TimeDelta(1));
    let proposal = net.proposal(1, block.clone(), Round::MultiLeader(0));
    let answer = net.workers[0].handle_block_proposal(proposal).await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::InvalidTimestamp {
            block_timestamp: block.timestamp,
            local_time: START
        }
    );
    block.timestamp = net.now().saturating_add(grace);
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    assert!(net.workers[0].handle_block_proposal(proposal).await.is_ok());
}

#[tokio::test]
async fn missing_certificate_value_for_a_lite_certificate() {
    let net = Net::new(4, 2, false).await;
    let block = net.block(1, vec![]).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    let validated = net.validate(&[0, 1, 2], &proposal).await;
    // Validator 3 never saw the proposal: it cannot complete the lite certificate.
    let answer = net.workers[3]
        .handle_lite_certificate(validated.lite(), CrossChainDelivery::NonBlocking)
        .await;
    assert_eq!(answer.unwrap_err(), NodeError::MissingCertificateValue);
    // Validator 0 holds the value: the lite certificate works and yields a confirmation vote.
    let answer = net.workers[0]
        .handle_lite_certificate(validated.lite(), CrossChainDelivery::NonBlocking)
        .await
        .unwrap();
    let vote = answer.info.manager.pending.unwrap();
    assert_eq!(vote.kind, quorum_core::VoteKind::Confirmed);
}

#[tokio::test]
async fn fast_round_commit() {
    let net = Net::new(4, 2, true).await;
    let block = net
        .block(
            1,
            vec![Operation::Transfer {
                recipient: net.chains[0],
                amount: 5,
            }],
        )
        .await;
    let proposal = net.proposal(1, block, Round::Fast);
    let confirmed = net.fast_confirm(&[0, 1, 2], &proposal).await;
    assert_eq!(confirmed.round(), Round::Fast);
    net.deliver(&ALL, &confirmed).await;
    for v in ALL {
        assert_eq!(net.next_height(v, 1).await, BlockHeight(1));
        assert_eq!(net.balance(v, 1).await, 995);
        // The recipient's inbox holds the credit until a block consumes it.
        let state = net.workers[v].chain_state(net.chains[0]).await.unwrap();
        assert_eq!(state.inboxes()[&net.chains[1]].bundles().len(), 1);
    }
}

#[tokio::test]
async fn two_phase_commit() {
    let net = Net::new(4, 2, false).await;
    let block = net.block(1, vec![]).await;
    let confirmed = net.commit(1, block, Round::MultiLeader(0)).await;
    for v in ALL {
        let state = net.workers[v].chain_state(net.chains[1]).await.unwrap();
        assert_eq!(state.next_height(), BlockHeight(1));
        assert_eq!(state.tip_hash(), Some(confirmed.hash()));
    }
    // The next height chains on.
    let block = net.block(1, vec![]).await;
    assert_eq!(block.previous_block_hash, Some(confirmed.hash()));
    net.commit(1, block, Round::MultiLeader(0)).await;
    assert_eq!(net.next_height(3, 1).await, BlockHeight(2));
}

#[tokio::test]
async fn timeout_votes_only_after_the_deadline_and_certificates_move_the_round() {
    let net = Net::new(4, 2, false).await;
    let query =
        ChainInfoQuery::new(net.chains[1]).with_timeout(BlockHeight(0), Round::MultiLeader(0));
    let early = net.workers[0]
        .handle_chain_info_query(query.clone())
        .await
        .unwrap();
    assert!(early.info.manager.timeout_vote.is_none());
    net.pass_deadline(1).await;
    let late = net.workers[0].handle_chain_info_query(query).await.unwrap();
    let vote = late.info.manager.timeout_vote.unwrap();
    assert_eq!(vote.kind, quorum_core::VoteKind::Timeout);
    assert_eq!(vote.round, Round::MultiLeader(0));

    let certificate = net.timeout(&[0, 1, 2], 1, Round::MultiLeader(0)).await;
    for v in ALL {
        let answer = net.workers[v]
            .handle_timeout_certificate(certificate.clone())
            .await
            .unwrap();
        assert_eq!(answer.info.manager.current_round, Round::MultiLeader(1));
    }
    // The old round is refused, the new one accepted.
    let block = net.block(1, vec![]).await;
    let old = net.proposal(1, block.clone(), Round::MultiLeader(0));
    assert_eq!(
        net.workers[0].handle_block_proposal(old).await.unwrap_err(),
        NodeError::WrongRound(Round::MultiLeader(1))
    );
    net.commit(1, block, Round::MultiLeader(1)).await;
    assert_eq!(net.next_height(0, 1).await, BlockHeight(1));
}

/// Times round `round` of chain 1 out on every validator; returns the timeout certificate.
async fn time_out(net: &Net, round: Round) -> TimeoutCertificate {
    net.pass_deadline(1).await;
    let certificate = net.timeout(&[0, 1, 2], 1, round).await;
    for v in ALL {
        net.workers[v]
            .handle_timeout_certificate(certificate.clone())
            .await
            .unwrap();
    }
    certificate
}

#[tokio::test]
async fn a_validated_certificate_binds_and_a_vote_alone_does_not() {
    let net = Net::new(4, 2, false).await;
    let transfer = |amount| {
        vec![Operation::Transfer {
            recipient: net.chains[0],
            amount,
        }]
    };
    let b1 = net.block(1, transfer(1)).await;
    let b2 = net.block(1, transfer(2)).await;
    // Validator 0 alone votes for b1 in round 0, then round 0 times out.
    let answers = net
        .propose(&[0], &net.proposal(1, b1.clone(), Round::MultiLeader(0)))
        .await;
    assert!(answers[0].is_ok());
    time_out(&net, Round::MultiLeader(0)).await;
    // That vote binds nothing: in round 1 validator 0 votes for b2 like the others, which
    // validate it.
    let p2 = net.proposal(1, b2.clone(), Round::MultiLeader(1));
    let c2 = net.validate(&[1, 2, 3], &p2).await;
    let answer = net.propose(&[0], &p2).await.remove(0).unwrap();
    assert_eq!(
        answer.info.manager.pending.unwrap().round,
        Round::MultiLeader(1)
    );
    // Once it saw b2's validated certificate, validator 0 is bound to b2: b1 is refused in a
    // later round, unless a later validated certificate carries it.
    net.workers[0]
        .handle_validated_certificate(c2.clone())
        .await
        .unwrap();
    time_out(&net, Round::MultiLeader(1)).await;
    let round = Round::SingleLeader(0);
    assert_eq!(
        net.workers[0]
            .handle_block_proposal(net.proposal(1, b1.clone(), round))
            .await
            .unwrap_err(),
        NodeError::HasLockedBlock
    );
    let retry = BlockProposal::new_retry(round, c2, &net.owners[1]);
    let answer = net.workers[0].handle_block_proposal(retry).await.unwrap();
    assert_eq!(answer.info.manager.pending.unwrap().round, round);
}

#[tokio::test]
async fn a_validator_that_voted_in_a_later_round_does_not_confirm_an_earlier_certificate() {
    let net = Net::new(4, 2, false).await;
    let b1 = net.block(1, vec![]).await;
    let b2 = net
        .block(
            1,
            vec![Operation::Transfer {
                recipient: net.chains[0],
                amount: 2,
            }],
        )
        .await;
    // Validators 1, 2 and 3 validate b1 in round 0; validator 0 never hears of it.
    let c1 = net
        .validate(
            &[1, 2, 3],
            &net.proposal(1, b1.clone(), Round::MultiLeader(0)),
        )
        .await;
    let t0 = time_out(&net, Round::MultiLeader(0)).await;
    // Validator 0 votes for b2 in round 1, then sees b1's round-0 certificate: confirming it
    // now could contradict a quorum its round-1 vote helps form, so it refuses.
    let p2 = net.proposal(1, b2, Round::MultiLeader(1));
    net.propose(&[0], &p2).await.remove(0).unwrap();
    assert_eq!(
        net.workers[0]
            .handle_validated_certificate(c1.clone())
            .await
            .unwrap_err(),
        NodeError::HasLockedBlock
    );
    // A client's node (no key) that recorded the same proposal signs nothing: it keeps the
    // certificate as evidence, so that its client proposes b1 again.
    let local = net.new_worker(None).await;
    local.handle_timeout_certificate(t0).await.unwrap();
    local.handle_own_block_proposal(p2).await.unwrap();
    local
        .handle_validated_certificate(c1.clone())
        .await
        .unwrap();
    let state = local.chain_state(net.chains[1]).await.unwrap();
    assert_eq!(state.manager().locking_certificate(), Some(&c1));
    // The certified block proposed again in a later round gathers its vote.
    time_out(&net, Round::MultiLeader(1)).await;
    let retry = BlockProposal::new_retry(Round::SingleLeader(0), c1, &net.owners[1]);
    let answer = net.workers[0].handle_block_proposal(retry).await.unwrap();
    assert_eq!(
        answer.info.manager.pending.unwrap().round,
        Round::SingleLeader(0)
    );
}

#[tokio::test]
async fn processed_certificates_are_idempotent_and_bad_ones_change_nothing() {
    let net = Net::new(4, 2, false).await;
    let block = net.block(1, vec![]).await;
    let confirmed = net.commit(1, block, Round::MultiLeader(0)).await;
    let before = net.workers[0].chain_state(net.chains[1]).await.unwrap();
    let again = net.workers[0]
        .handle_confirmed_certificate(confirmed.clone(), CrossChainDelivery::Blocking)
        .await
        .unwrap();
    assert_eq!(again.info.next_block_height, BlockHeight(1));
    assert_eq!(
        net.workers[0].chain_state(net.chains[1]).await.unwrap(),
        before
    );

    // A certificate for the next block, tampered three ways.
    let block = net.block(1, vec![]).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    let validated = net.validate(&ALL, &proposal).await;
    let good = net.confirm(&ALL, &validated).await;
    let (value, round, signatures) = good.clone().into_parts();

    let mut rng = ChaCha8Rng::seed_from_u64(1234);
    let strangers: Vec<ValidatorSecretKey> = (0..4)
        .map(|_| ValidatorSecretKey::generate(&mut rng))
        .collect();
    let foreign: Vec<_> = strangers
        .iter()
        .map(|s| {
            let vote = quorum_core::LiteVote::new(
                value.hash(),
                quorum_core::VoteKind::Confirmed,
                round,
                s,
            );
            (vote.validator, vote.signature)
        })
        .collect();
    let wrong_committee = Certificate::new(value.clone(), round, foreign);
    let too_light = Certificate::new(value.clone(), round, signatures[..2].to_vec());
    let mut tampered = signatures.clone();
    tampered[1].1 = Signature::from_bytes(&[9; 64]);
    let bad_signature = Certificate::new(value, round, tampered.clone());

    let state_before = net.workers[3].chain_state(net.chains[1]).await.unwrap();
    let answer = net.workers[3]
        .handle_confirmed_certificate(wrong_committee, CrossChainDelivery::Blocking)
        .await;
    assert!(matches!(
        answer,
        Err(NodeError::InvalidCertificate(
            CertificateError::UnknownSigner(_)
        ))
    ));
    let answer = net.workers[3]
        .handle_confirmed_certificate(too_light, CrossChainDelivery::Blocking)
        .await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::InvalidCertificate(CertificateError::InsufficientWeight {
            weight: 2,
            threshold: 3
        })
    );
    let answer = net.workers[3]
        .handle_confirmed_certificate(bad_signature, CrossChainDelivery::Blocking)
        .await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::InvalidCertificate(CertificateError::BadSignatures(vec![tampered[1].0]))
    );
    assert_eq!(
        net.workers[3].chain_state(net.chains[1]).await.unwrap(),
        state_before
    );
    net.deliver(&ALL, &good).await;
    assert_eq!(net.next_height(3, 1).await, BlockHeight(2));
}

#[tokio::test]
async fn four_validators_commit_on_two_chains_with_a_cross_chain_transfer() {
    let net = Net::new(4, 3, false).await;
    let pay = Operation::Transfer {
        recipient: net.chains[2],
        amount: 250,
    };
    let block = net.block(1, vec![pay]).await;
    net.commit(1, block, Round::MultiLeader(0)).await;
    let bundle = IncomingBundle {
        origin: net.chains[1],
        height: BlockHeight(0),
        messages: vec![Message::Credit { amount: 250 }],
    };
    let block = net.block_on(0, 2, vec![], vec![bundle.clone()]).await;
    net.commit(2, block, Round::MultiLeader(0)).await;
    for v in ALL {
        assert_eq!(net.balance(v, 1).await, 750);
        assert_eq!(net.balance(v, 2).await, 1_250);
        assert_eq!(net.next_height(v, 2).await, BlockHeight(1));
        let state = net.workers[v].chain_state(net.chains[2]).await.unwrap();
        assert!(state.inboxes()[&net.chains[1]].bundles().is_empty());
    }
    // Consuming the same bundle twice is refused.
    let block = net.block_on(0, 2, vec![], vec![bundle]).await;
    let proposal = net.proposal(2, block, Round::MultiLeader(0));
    assert!(matches!(
        net.workers[0]
            .handle_block_proposal(proposal)
            .await
            .unwrap_err(),
        NodeError::Execution(quorum_core::ExecutionError::InvalidIncomingBundle { .. })
    ));
    let _ = Timestamp(0);
}

/// A certificate beyond a chain's height: the block waits, but the data blobs it publishes
/// are taken at once (with their blob states); without their contents nothing is written.
/// Once the chain catches up, the block executes as usual.
#[tokio::test]
async fn a_certificate_ahead_gives_its_published_blobs() {
    let net = Net::new(4, 2, false).await;
    let three = [0, 1, 2];
    let first = net.block(1, vec![]).await;
    let proposal = net.proposal(1, first, Round::MultiLeader(0));
    let validated = net.validate(&three, &proposal).await;
    let first = net.confirm(&three, &validated).await;
    net.deliver(&three, &first).await;
    let blob = Blob::data(b"published at height 1".to_vec());
    for v in three {
        net.workers[v]
            .hold_own_pending_blob(net.chains[1], blob.clone())
            .await
            .unwrap();
    }
    let second = net.block(1, vec![Operation::PublishBlob(blob.id())]).await;
    let proposal = net.proposal(1, second, Round::MultiLeader(0));
    let validated = net.validate(&three, &proposal).await;
    let second = net.confirm(&three, &validated).await;
    net.deliver(&three, &second).await;

    let laggard = &net.workers[3];
    let answer = laggard
        .handle_confirmed_certificate(second.clone(), CrossChainDelivery::Blocking)
        .await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::BlobsNotFound(vec![blob.id()])
    );
    assert!(laggard
        .storage()
        .read_blob(blob.id())
        .await
        .unwrap()
        .is_none());
    laggard.upload_blob(blob.clone()).await.unwrap();
    let answer = laggard
        .handle_confirmed_certificate(second.clone(), CrossChainDelivery::Blocking)
        .await;
    assert_eq!(
        answer.unwrap_err(),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(0),
            found_block_height: BlockHeight(1),
        }
    );
    let state = laggard.storage().read_blob_state(blob.id()).await.unwrap();
    assert_eq!(
        state.map(|s| (s.chain_id, s.height)),
        Some((net.chains[1], BlockHeight(1)))
    );
    assert_eq!(net.next_height(3, 1).await, BlockHeight(0));
    assert!(laggard
        .missing_blob_ids(vec![blob.id()])
        .await
        .unwrap()
        .is_empty());
    net.deliver(&[3], &first).await;
    net.deliver(&[3], &second).await;
    assert_eq!(net.next_height(3, 1).await, BlockHeight(2));
}
