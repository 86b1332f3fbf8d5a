//! The planner's rules, one test per row of DESIGN §5.2 / §5.4.1, and properties over random
//! answer sequences. No runtime: the planner is pure.
#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;
use quorum_core::{
    AccountSecretKey, Blob, CryptoHash, IncomingBundle, Message, Operation, StreamId,
};
use rand::SeedableRng;

const SKEW: TimeDelta = TimeDelta::from_secs(5);
const NOW: Timestamp = Timestamp(1_000_000_000);

fn chain(n: u8) -> ChainId {
    ChainId(CryptoHash([n; 32]))
}

fn blob() -> BlobId {
    Blob::data(b"published".to_vec()).id()
}

fn event(publisher: u8) -> EventId {
    EventId {
        chain_id: chain(publisher),
        stream: StreamId::user("news"),
        index: 0,
    }
}

fn epoch_event(index: u32) -> EventId {
    EventId {
        chain_id: chain(0),
        stream: StreamId::epoch(),
        index,
    }
}

/// Chain 1's block at height 3, epoch 2: consumes (chain 2, 5), publishes a blob, reads an
/// event of chain 3. The admin chain is chain 0.
fn block() -> Block {
    let owner = AccountSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
    Block {
        chain_id: chain(1),
        epoch: Epoch(2),
        height: BlockHeight(3),
        timestamp: NOW,
        previous_block_hash: None,
        authenticated_owner: owner.public(),
        incoming_bundles: vec![IncomingBundle {
            origin: chain(2),
            height: BlockHeight(5),
            messages: vec![Message::Credit { amount: 1 }],
        }],
        operations: vec![
            Operation::PublishBlob(blob()),
            Operation::ReadEvent(event(3)),
        ],
    }
}

fn planner(asked: Asked, lite: bool) -> Planner {
    let subject = Subject::for_block(
        asked,
        &block(),
        Round::MultiLeader(1),
        chain(0),
        BlockHeight(3),
        SKEW,
    );
    Planner::new(subject, lite)
}

fn plan(planner: &mut Planner, error: NodeError) -> Decision {
    planner.plan(&error, NOW, &Budget::new(100))
}

fn fails_with(decision: Decision, expected: NodeError) {
    assert_eq!(decision, Decision::Fail(expected));
}

fn send(chain_id: ChainId, target: u64, delivery: CrossChainDelivery) -> Step {
    Step::SendChainInfo {
        chain_id,
        target: BlockHeight(target),
        delivery,
    }
}

fn recovered(decision: Decision) -> (Option<RecoveryKind>, Step) {
    match decision {
        Decision::Recover { kind, step } => (kind, step),
        Decision::Fail(error) => panic!("expected a recovery, got {error}"),
    }
}

#[test]
fn proposal_wrong_round_sends_the_chain_once_per_round() {
    let mut p = planner(Asked::Proposal, false);
    let (kind, step) = recovered(plan(&mut p, NodeError::WrongRound(Round::MultiLeader(0))));
    assert_eq!(kind, Some(RecoveryKind::WrongRound));
    assert_eq!(step, send(chain(1), 3, CrossChainDelivery::NonBlocking));
    fails_with(
        plan(&mut p, NodeError::WrongRound(Round::MultiLeader(0))),
        NodeError::WrongRound(Round::MultiLeader(0)),
    );
    // A remote in a later round is not ours to repair.
    fails_with(
        plan(&mut p, NodeError::WrongRound(Round::MultiLeader(4))),
        NodeError::WrongRound(Round::MultiLeader(4)),
    );
}

#[test]
fn proposal_height_behind_sends_up_to_the_proposal() {
    let mut p = planner(Asked::Proposal, false);
    let behind = NodeError::UnexpectedBlockHeight {
        expected_block_height: BlockHeight(1),
        found_block_height: BlockHeight(3),
    };
    let (kind, step) = recovered(plan(&mut p, behind.clone()));
    assert_eq!(kind, Some(RecoveryKind::BlockHeight));
    assert_eq!(step, send(chain(1), 3, CrossChainDelivery::NonBlocking));
    fails_with(plan(&mut p, behind.clone()), behind);
    // Ahead of us: fail (the client synchronizes itself).
    let ahead = NodeError::UnexpectedBlockHeight {
        expected_block_height: BlockHeight(9),
        found_block_height: BlockHeight(3),
    };
    fails_with(
        plan(&mut planner(Asked::Proposal, false), ahead.clone()),
        ahead,
    );
}

#[test]
fn cross_chain_claims_are_checked_and_repaired_with_blocking_delivery() {
    for request in [Asked::Proposal, Asked::Confirmed] {
        let mut p = planner(request, false);
        let claim = |origin: u8, height: u64| NodeError::MissingCrossChainUpdate {
            chain_id: chain(1),
            origin: chain(origin),
            height: BlockHeight(height),
        };
        let (kind, step) = recovered(plan(&mut p, claim(2, 5)));
        assert_eq!(kind, Some(RecoveryKind::CrossChain));
        assert_eq!(step, send(chain(2), 6, CrossChainDelivery::Blocking));
        fails_with(plan(&mut p, claim(2, 5)), claim(2, 5));
        // A bundle the block does not consume is a lie.
        fails_with(
            plan(&mut p, claim(9, 5)),
            violation(Violation::FalseCrossChainClaim),
        );
        fails_with(
            plan(&mut p, claim(2, 4)),
            violation(Violation::FalseCrossChainClaim),
        );
    }
}

#[test]
fn events_are_checked_and_publishers_sent_once() {
    let mut p = planner(Asked::Proposal, false);
    let missing = NodeError::EventsNotFound(vec![event(3)]);
    let (kind, step) = recovered(plan(&mut p, missing.clone()));
    assert_eq!(kind, Some(RecoveryKind::Events));
    assert_eq!(step, Step::SendPublishers(vec![chain(3)]));
    fails_with(plan(&mut p, missing.clone()), missing);
    // Thousands of invented publishers: refused at once.
    let invented = NodeError::EventsNotFound((10..200).map(event).collect());
    fails_with(
        plan(&mut planner(Asked::Proposal, false), invented),
        violation(Violation::FalseEventsNotFound),
    );
    // A user stream named like the system one is not an epoch announcement.
    let fake_epoch = EventId {
        stream: StreamId::user("epoch"),
        ..epoch_event(1)
    };
    fails_with(
        plan(
            &mut planner(Asked::Confirmed, false),
            NodeError::EventsNotFound(vec![fake_epoch]),
        ),
        violation(Violation::FalseEventsNotFound),
    );
}

#[test]
fn a_certificate_missing_its_committee_updates_the_admin_chain() {
    let mut p = planner(Asked::Confirmed, true);
    let (kind, step) = recovered(plan(
        &mut p,
        NodeError::EventsNotFound(vec![epoch_event(2)]),
    ));
    assert_eq!(kind, Some(RecoveryKind::Committee));
    assert_eq!(step, Step::SendPublishers(vec![chain(0)]));
    // An epoch after the block's is not needed.
    fails_with(
        plan(
            &mut planner(Asked::Confirmed, true),
            NodeError::EventsNotFound(vec![epoch_event(3)]),
        ),
        violation(Violation::FalseEventsNotFound),
    );
    // A re-proposal carries a validated certificate, which needs its committee too (issue
    // 28): the admin chain is sent, not the validator dropped.
    for request in [Asked::Proposal, Asked::Validated] {
        let (kind, step) = recovered(plan(
            &mut planner(request, true),
            NodeError::EventsNotFound(vec![epoch_event(2)]),
        ));
        assert_eq!(kind, Some(RecoveryKind::Committee));
        assert_eq!(step, Step::SendPublishers(vec![chain(0)]));
    }
    // A timeout request needs no committee from the remote: nothing is sent for it.
    let missing = NodeError::EventsNotFound(vec![epoch_event(2)]);
    fails_with(
        plan(&mut planner(Asked::Timeout, true), missing.clone()),
        missing,
    );
}

#[test]
fn blobs_are_checked_then_uploaded_once() {
    let mut p = planner(Asked::Proposal, false);
    let missing = NodeError::BlobsNotFound(vec![blob()]);
    let (kind, step) = recovered(plan(&mut p, missing.clone()));
    assert_eq!(kind, Some(RecoveryKind::Blobs));
    assert_eq!(step, Step::UploadProposalBlobs);
    fails_with(plan(&mut p, missing.clone()), missing.clone());
    let other = NodeError::BlobsNotFound(vec![Blob::data(b"other".to_vec()).id()]);
    for request in [Asked::Proposal, Asked::Validated, Asked::Confirmed] {
        fails_with(
            plan(&mut planner(request, true), other.clone()),
            violation(Violation::FalseBlobsNotFound),
        );
    }
    // A certificate: upload, then send it in full.
    let mut p = planner(Asked::Confirmed, true);
    assert!(p.lite());
    let (_, step) = recovered(plan(&mut p, missing.clone()));
    assert_eq!(step, Step::UploadBlobs(vec![blob()]));
    assert!(!p.lite());
    // Finalize: the locking block's blobs as pending blobs.
    let (_, step) = recovered(plan(&mut planner(Asked::Validated, true), missing));
    assert_eq!(step, Step::UploadProposalBlobs);
}

#[test]
fn a_lite_certificate_without_value_goes_full_once_uncounted() {
    for request in [Asked::Validated, Asked::Confirmed] {
        let mut p = planner(request, true);
        let (kind, step) = recovered(plan(&mut p, NodeError::MissingCertificateValue));
        assert_eq!((kind, step), (None, Step::SendFull));
        assert!(!p.lite());
        fails_with(
            plan(&mut p, NodeError::MissingCertificateValue),
            NodeError::MissingCertificateValue,
        );
    }
}

#[test]
fn inactive_chain_sends_the_chain_or_its_description() {
    let (kind, step) = recovered(plan(
        &mut planner(Asked::Proposal, false),
        NodeError::InactiveChain(chain(1)),
    ));
    assert_eq!(kind, Some(RecoveryKind::InactiveChain));
    assert_eq!(step, send(chain(1), 3, CrossChainDelivery::NonBlocking));
    let mut p = planner(Asked::Confirmed, false);
    let (_, step) = recovered(plan(&mut p, NodeError::InactiveChain(chain(1))));
    assert_eq!(step, Step::SendDescription);
    fails_with(
        plan(&mut p, NodeError::InactiveChain(chain(1))),
        NodeError::InactiveChain(chain(1)),
    );
}

#[test]
fn timestamps_wait_from_the_send_time_and_within_the_maximum() {
    let mut p = planner(Asked::Proposal, false);
    // The remote reads 1 s behind our send time; the block is 2 s ahead of it.
    let behind = NodeError::InvalidTimestamp {
        block_timestamp: NOW.saturating_add(TimeDelta::from_secs(1)),
        local_time: Timestamp(NOW.0 - 1_000_000),
    };
    let (kind, step) = recovered(p.plan(&behind, NOW, &Budget::new(10)));
    assert_eq!(kind, Some(RecoveryKind::ClockSkew));
    assert_eq!(
        step,
        Step::Wait {
            until: NOW.saturating_add(TimeDelta::from_secs(2))
        }
    );
    // Latency: the remote read its clock after we sent; no skew.
    assert_eq!(
        clock_skew(NOW, NOW.saturating_add(TimeDelta::from_millis(50))),
        TimeDelta(0)
    );
    // Beyond the maximum wait: the real error.
    let far = NodeError::InvalidTimestamp {
        block_timestamp: NOW.saturating_add(TimeDelta::from_secs(10)),
        local_time: NOW,
    };
    fails_with(plan(&mut planner(Asked::Proposal, false), far.clone()), far);
    // At most MAX_TIMESTAMP_WAITS waits.
    let _ = plan(&mut p, behind.clone());
    fails_with(plan(&mut p, behind.clone()), behind);
}

#[test]
fn timeout_and_finalize_sync_if_needed() {
    let subject = Subject::for_timeout(
        chain(1),
        BlockHeight(3),
        Round::MultiLeader(1),
        chain(0),
        BlockHeight(3),
    );
    // The remote is behind: sent our chain; ahead: we sync from it; later round: round sync.
    let behind = NodeError::UnexpectedBlockHeight {
        expected_block_height: BlockHeight(2),
        found_block_height: BlockHeight(3),
    };
    let (kind, step) = recovered(plan(
        &mut Planner::new(subject.clone(), false),
        behind.clone(),
    ));
    assert_eq!(kind, Some(RecoveryKind::BlockHeight));
    assert_eq!(step, send(chain(1), 3, CrossChainDelivery::NonBlocking));
    let ahead = NodeError::UnexpectedBlockHeight {
        expected_block_height: BlockHeight(7),
        found_block_height: BlockHeight(3),
    };
    let (_, step) = recovered(plan(&mut Planner::new(subject.clone(), false), ahead));
    assert_eq!(
        step,
        Step::SyncFromRemote {
            target: BlockHeight(7)
        }
    );
    let mut p = Planner::new(subject, false);
    let (_, step) = recovered(plan(&mut p, NodeError::WrongRound(Round::MultiLeader(5))));
    assert_eq!(step, Step::SyncRoundFromRemote);
    fails_with(
        plan(&mut p, NodeError::WrongRound(Round::MultiLeader(5))),
        NodeError::WrongRound(Round::MultiLeader(5)),
    );
    // Finalize uses the same rules for anything but blobs.
    let (_, step) = recovered(plan(&mut planner(Asked::Validated, false), behind));
    assert_eq!(step, send(chain(1), 3, CrossChainDelivery::NonBlocking));
}

#[test]
fn an_empty_budget_stops_every_recovery() {
    let budget = Budget::new(1);
    let mut p = planner(Asked::Proposal, false);
    assert!(matches!(
        p.plan(&NodeError::WrongRound(Round::MultiLeader(0)), NOW, &budget),
        Decision::Recover { .. }
    ));
    assert_eq!(budget.left(), 0);
    // Another planner of the same action shares the budget.
    let mut other = planner(Asked::Confirmed, false);
    fails_with(
        other.plan(&NodeError::InactiveChain(chain(1)), NOW, &budget),
        violation(Violation::RepeatedRecovery),
    );
}

/// Any answer a remote might give about the block, honest or not.
fn any_error() -> impl Strategy<Value = NodeError> {
    let c = 0u8..6;
    let h = 0u64..8;
    prop_oneof![
        (0u32..4).prop_map(|r| NodeError::WrongRound(Round::MultiLeader(r))),
        (h.clone(), h.clone()).prop_map(|(e, f)| NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(e),
            found_block_height: BlockHeight(f),
        }),
        (c.clone(), h.clone()).prop_map(|(o, h)| NodeError::MissingCrossChainUpdate {
            chain_id: chain(1),
            origin: chain(o),
            height: BlockHeight(h),
        }),
        proptest::collection::vec(c.clone(), 1..4)
            .prop_map(|cs| NodeError::EventsNotFound(cs.into_iter().map(event).collect())),
        Just(NodeError::EventsNotFound(vec![epoch_event(1)])),
        Just(NodeError::BlobsNotFound(vec![blob()])),
        c.prop_map(|n| NodeError::InactiveChain(chain(n))),
        (0u64..8_000_000).prop_map(|ahead| NodeError::InvalidTimestamp {
            block_timestamp: NOW.saturating_add(TimeDelta(ahead)),
            local_time: NOW,
        }),
        Just(NodeError::MissingCertificateValue),
    ]
}

fn any_request() -> impl Strategy<Value = Asked> {
    prop_oneof![
        Just(Asked::Proposal),
        Just(Asked::Validated),
        Just(Asked::Confirmed),
        Just(Asked::Timeout),
    ]
}

proptest! {
    #[test]
    fn no_answers_exceed_the_budget_or_repeat_a_recovery(
        request in any_request(),
        errors in proptest::collection::vec(any_error(), 0..60),
        budget in 0usize..20,
    ) {
        let budget = Budget::new(budget);
        let start = budget.left();
        let mut p = planner(request, true);
        let mut counted = 0usize;
        let mut recovered_for: Vec<NodeError> = Vec::new();
        for error in &errors {
            match p.plan(error, NOW, &budget) {
                Decision::Recover { kind, .. } => {
                    if kind.is_some() {
                        counted += 1;
                    }
                    // The same cause never gets a second recovery (timestamp waits, bounded
                    // by MAX_TIMESTAMP_WAITS, are the one repeatable kind).
                    if !matches!(error, NodeError::InvalidTimestamp { .. }) {
                        prop_assert!(!recovered_for.contains(error), "repeated for {error}");
                    }
                    recovered_for.push(error.clone());
                }
                Decision::Fail(_) => {}
            }
        }
        prop_assert!(counted <= start);
        prop_assert_eq!(budget.left(), start - counted);
        let waits = recovered_for
            .iter()
            .filter(|e| matches!(e, NodeError::InvalidTimestamp { .. }))
            .count();
        prop_assert!(waits <= MAX_TIMESTAMP_WAITS);
    }
}
