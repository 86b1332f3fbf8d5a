//! The checker on evidence made by hand: a consistent ledger passes every invariant, and each
//! planted violation is named under its invariant.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use quorum_core::{BlockHeight, ChainId, CryptoHash};

use super::*;
use crate::evidence::{
    BlockRecord, ChainProgress, ChainView, Evidence, ProcessOutcome, ValidatorView,
};
use crate::journal::Acknowledgement;

fn chain(n: u8) -> ChainId {
    ChainId(CryptoHash([n; 32]))
}

fn hash(chain: u8, height: u64) -> CryptoHash {
    let mut bytes = [chain; 32];
    bytes[0] = height as u8;
    CryptoHash(bytes)
}

/// Chain 1 sends 10 to chain 2 at height 0; chain 2 consumes it at height 0 and sends 3 back
/// at height 1, not consumed yet.
fn ledger() -> BTreeMap<ChainId, ChainView> {
    let one = ChainView {
        balance: 90,
        next_height: BlockHeight(1),
        tip: Some(hash(1, 0)),
        blocks: BTreeMap::from([(
            BlockHeight(0),
            BlockRecord {
                height: BlockHeight(0),
                hash: hash(1, 0),
                certified: true,
                sent: vec![(chain(2), 10)],
                consumed: vec![],
            },
        )]),
    };
    let two = ChainView {
        balance: 107,
        next_height: BlockHeight(2),
        tip: Some(hash(2, 1)),
        blocks: BTreeMap::from([
            (
                BlockHeight(0),
                BlockRecord {
                    height: BlockHeight(0),
                    hash: hash(2, 0),
                    certified: true,
                    sent: vec![],
                    consumed: vec![(chain(1), BlockHeight(0), 10)],
                },
            ),
            (
                BlockHeight(1),
                BlockRecord {
                    height: BlockHeight(1),
                    hash: hash(2, 1),
                    certified: true,
                    sent: vec![(chain(1), 3)],
                    consumed: vec![],
                },
            ),
        ]),
    };
    BTreeMap::from([(chain(1), one), (chain(2), two)])
}

fn evidence() -> Evidence {
    let views = (0..3)
        .map(|index| ValidatorView {
            name: format!("validator-{index}"),
            chains: ledger(),
            unreachable: None,
        })
        .collect();
    Evidence {
        genesis: BTreeMap::from([(chain(1), 100), (chain(2), 100)]),
        validators: views,
        journal: vec![Acknowledgement {
            client: 0,
            chain: chain(2),
            height: BlockHeight(1),
            hash: hash(2, 1),
        }],
        progress: vec![
            ChainProgress {
                chain: chain(1),
                took: Some(Duration::from_millis(40)),
                error: None,
            },
            ChainProgress {
                chain: chain(2),
                took: Some(Duration::from_millis(70)),
                error: None,
            },
        ],
        progress_bound: Duration::from_secs(30),
        processes: ProcessOutcome::default(),
    }
}

/// The invariants violated, with their violations.
fn violated(evidence: &Evidence) -> Vec<(Invariant, Vec<Violation>)> {
    check(evidence)
        .into_iter()
        .filter(|verdict| !verdict.held())
        .map(|verdict| (verdict.invariant, verdict.violations))
        .collect()
}

#[test]
fn a_consistent_ledger_holds_everything() {
    let verdicts = check(&evidence());
    assert_eq!(verdicts.len(), 6);
    for verdict in &verdicts {
        assert!(verdict.held(), "{verdict}");
    }
    assert!(verdicts[3]
        .figures
        .contains("in flight per validator [3, 3, 3]"));
}

#[test]
fn a_fork_is_named_with_its_holders() {
    let mut evidence = evidence();
    let block = evidence.validators[1]
        .chains
        .get_mut(&chain(1))
        .unwrap()
        .blocks
        .get_mut(&BlockHeight(0))
        .unwrap();
    block.hash = hash(9, 0);
    let violated = violated(&evidence);
    assert_eq!(violated[0].0, Invariant::NoFork);
    match &violated[0].1[..] {
        [Violation::Fork {
            height: 0, holders, ..
        }] => assert_eq!(holders.len(), 3),
        other => panic!("expected one fork, got {other:?}"),
    }
}

#[test]
fn an_uncertified_block_and_a_silent_validator_break_invariant_one() {
    let mut evidence = evidence();
    evidence.validators[0]
        .chains
        .get_mut(&chain(2))
        .unwrap()
        .blocks
        .get_mut(&BlockHeight(1))
        .unwrap()
        .certified = false;
    evidence.validators[2].unreachable = Some("timeout".into());
    let violated = violated(&evidence);
    assert_eq!(violated.len(), 1);
    assert!(matches!(
        violated[0].1[0],
        Violation::Uncertified { height: 1, .. }
    ));
    assert!(matches!(violated[0].1[1], Violation::Unreachable { .. }));
}

#[test]
fn an_acknowledged_block_deleted_or_replaced_is_named() {
    let mut evidence = evidence();
    let two = evidence.validators[2].chains.get_mut(&chain(2)).unwrap();
    two.blocks.remove(&BlockHeight(1));
    two.next_height = BlockHeight(1);
    two.tip = Some(hash(2, 0));
    two.balance = 110;
    evidence.journal.push(Acknowledgement {
        client: 1,
        chain: chain(1),
        height: BlockHeight(0),
        hash: hash(7, 0),
    });
    let violated = violated(&evidence);
    assert_eq!(violated.len(), 1, "{violated:?}");
    assert_eq!(violated[0].0, Invariant::AcknowledgedCommitted);
    let violations = &violated[0].1;
    assert!(violations.contains(&Violation::AcknowledgedMissing {
        validator: "validator-2".into(),
        client: 0,
        chain: short(&chain(2)),
        height: 1,
    }));
    assert_eq!(
        violations
            .iter()
            .filter(|v| matches!(v, Violation::AcknowledgedReplaced { client: 1, .. }))
            .count(),
        3
    );
}

#[test]
fn a_minted_balance_breaks_replay_and_supply() {
    let mut evidence = evidence();
    evidence.validators[1]
        .chains
        .get_mut(&chain(1))
        .unwrap()
        .balance += 1_000;
    let violated = violated(&evidence);
    let invariants: Vec<Invariant> = violated.iter().map(|(invariant, _)| *invariant).collect();
    assert_eq!(
        invariants,
        vec![Invariant::BalancesReplay, Invariant::SupplyConserved]
    );
    assert!(matches!(
        violated[1].1[..],
        [Violation::SupplyChanged {
            expected: 200,
            found: 1_200,
            ..
        }]
    ));
}

#[test]
fn a_consumed_bundle_never_sent_is_named_and_changes_the_supply() {
    let mut evidence = evidence();
    // Chain 2 claims 10 from a block of chain 1 that sent nothing, and its balance agrees.
    for view in &mut evidence.validators {
        let two = view.chains.get_mut(&chain(2)).unwrap();
        two.blocks
            .get_mut(&BlockHeight(1))
            .unwrap()
            .consumed
            .push((chain(1), BlockHeight(5), 10));
        two.balance += 10;
    }
    let violated = violated(&evidence);
    assert_eq!(violated.len(), 1, "{violated:?}");
    assert_eq!(violated[0].0, Invariant::SupplyConserved);
    assert!(violated[0].1.iter().any(|v| matches!(
        v,
        Violation::ConsumedNeverSent {
            height: 5,
            amount: 10,
            ..
        }
    )));
    assert!(violated[0].1.iter().any(|v| matches!(
        v,
        Violation::SupplyChanged {
            expected: 200,
            found: 210,
            ..
        }
    )));
}

#[test]
fn a_missing_block_and_a_wrong_tip_break_replay() {
    let mut evidence = evidence();
    evidence.validators[0]
        .chains
        .get_mut(&chain(1))
        .unwrap()
        .tip = Some(hash(8, 8));
    evidence.validators[1]
        .chains
        .get_mut(&chain(2))
        .unwrap()
        .blocks
        .remove(&BlockHeight(0));
    let violated = violated(&evidence);
    let replay = violated
        .iter()
        .find(|(invariant, _)| *invariant == Invariant::BalancesReplay)
        .unwrap();
    assert!(replay
        .1
        .iter()
        .any(|v| matches!(v, Violation::TipMismatch { .. })));
    assert!(replay
        .1
        .iter()
        .any(|v| matches!(v, Violation::BlockMissing { height: 0, .. })));
}

#[test]
fn slow_chains_and_unclean_processes_are_named() {
    let mut evidence = evidence();
    evidence.progress[0].took = Some(Duration::from_secs(31));
    evidence.progress[1].took = None;
    evidence.progress[1].error = Some("too many rounds".into());
    evidence.processes = ProcessOutcome {
        panicked: vec![(
            "validator-1".into(),
            "thread 'main' panicked at x.rs:1".into(),
        )],
        left_running: vec!["validator-3".into()],
    };
    let violated = violated(&evidence);
    assert_eq!(violated.len(), 2);
    assert_eq!(violated[0].0, Invariant::Progress);
    assert_eq!(violated[0].1.len(), 2);
    assert_eq!(violated[1].0, Invariant::CleanProcesses);
    assert_eq!(violated[1].1.len(), 2);
}
