//! `communicate_with_quorum` timing and results, with controlled delays under paused time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quorum_core::{Committee, NodeError, ValidatorInfo, ValidatorNode, ValidatorPublicKey};
use quorum_updater::{communicate_with_quorum, Options, QuorumError, RemoteNode};
use tokio::time::Instant;

/// What a validator answers, and after how long.
#[derive(Clone)]
enum Answer {
    Value(u32),
    Error(NodeError),
    Never,
}

struct Setup {
    committee: Committee,
    remotes: Vec<RemoteNode>,
}

async fn setup(weights: &[u64]) -> Setup {
    let secrets = quorum_testkit::validator_keys(weights.len(), 3);
    let committee = Committee::new(
        secrets
            .iter()
            .zip(weights)
            .map(|(s, w)| {
                (
                    s.public(),
                    ValidatorInfo {
                        votes: *w,
                        address: String::new(),
                        network_key: None,
                    },
                )
            })
            .collect(),
    )
    .unwrap();
    // The node behind each remote is irrelevant here: `execute` decides the answers.
    let net = quorum_testkit::TokioTestNet::new(1, 1, false).await;
    let placeholder: Arc<dyn ValidatorNode> = net.workers[0].clone();
    let remotes = secrets
        .iter()
        .map(|s| RemoteNode::new(s.public(), placeholder.clone()))
        .collect();
    Setup { committee, remotes }
}

fn options(grace: f64) -> Options {
    Options {
        quorum_grace: grace,
        deadline: Duration::from_secs(10),
        ..Options::default()
    }
}

type Outcome = Result<(u32, Vec<ValidatorPublicKey>), QuorumError>;

/// Runs a quorum call where validator `i` answers `plan[i]` after `plan[i].1` ms. Returns the
/// outcome and the virtual time it took.
async fn run(
    setup: &Setup,
    plan: &[(Answer, u64)],
    grace: f64,
    asked: &Arc<AtomicUsize>,
) -> (Outcome, Duration) {
    run_with(setup, plan, &options(grace), asked).await
}

/// Like [`run`], with any options.
async fn run_with(
    setup: &Setup,
    plan: &[(Answer, u64)],
    options: &Options,
    asked: &Arc<AtomicUsize>,
) -> (Outcome, Duration) {
    let by_key: BTreeMap<ValidatorPublicKey, (Answer, u64)> = setup
        .remotes
        .iter()
        .zip(plan)
        .map(|(r, p)| (r.public_key, p.clone()))
        .collect();
    let start = Instant::now();
    let result = communicate_with_quorum(
        &setup.remotes,
        &setup.committee,
        options,
        |value: &u32| *value,
        |remote| {
            asked.fetch_add(1, Ordering::SeqCst);
            let (answer, delay) = by_key[&remote.public_key].clone();
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                match answer {
                    Answer::Value(v) => Ok(v),
                    Answer::Error(e) => Err(e),
                    Answer::Never => std::future::pending().await,
                }
            }
        },
    )
    .await;
    let elapsed = start.elapsed();
    let outcome =
        result.map(|((key, values), _)| (key, values.into_iter().map(|(k, _)| k).collect()));
    (outcome, elapsed)
}

#[tokio::test(start_paused = true)]
async fn returns_at_quorum_plus_grace() {
    let s = setup(&[1, 1, 1, 1]).await;
    let asked = Arc::new(AtomicUsize::new(0));
    let plan = [
        (Answer::Value(7), 100),
        (Answer::Value(7), 200),
        (Answer::Value(7), 300),
        (Answer::Value(7), 1_000),
    ];
    // Quorum (3 of 4) at 300 ms; grace 0.2 × 300 ms = 60 ms.
    let (outcome, elapsed) = run(&s, &plan, 0.2, &asked).await;
    let (key, voters) = outcome.unwrap();
    assert_eq!(key, 7);
    assert_eq!(voters.len(), 3);
    assert_eq!(elapsed, Duration::from_millis(360));
    // Grace 0 returns at the quorum itself.
    let (_, elapsed) = run(&s, &plan, 0.0, &asked).await;
    assert_eq!(elapsed, Duration::from_millis(300));
    // A large grace waits for the slow validator, and stops as soon as everyone answered.
    let (outcome, elapsed) = run(&s, &plan, 10.0, &asked).await;
    assert_eq!(outcome.unwrap().1.len(), 4);
    assert_eq!(elapsed, Duration::from_millis(1_000));
}

#[tokio::test(start_paused = true)]
async fn stops_as_soon_as_quorum_is_impossible() {
    let s = setup(&[1, 1, 1, 1]).await;
    let asked = Arc::new(AtomicUsize::new(0));
    let plan = [
        (
            Answer::Error(NodeError::InactiveChain(quorum_core::ChainId(
                Default::default(),
            ))),
            10,
        ),
        (Answer::Value(1), 20),
        (Answer::Value(2), 30),
        (Answer::Never, 0),
    ];
    // After 30 ms: best key 1 + 1 unheard < 3.
    let (outcome, elapsed) = run(&s, &plan, 0.2, &asked).await;
    assert_eq!(elapsed, Duration::from_millis(30));
    assert!(matches!(outcome, Err(QuorumError::Sample(errors)) if errors.len() == 1));
}

#[tokio::test(start_paused = true)]
async fn deadline_bounds_the_call() {
    let s = setup(&[1, 1, 1, 1]).await;
    let asked = Arc::new(AtomicUsize::new(0));
    let plan = [
        (Answer::Value(1), 5),
        (Answer::Never, 0),
        (Answer::Never, 0),
        (Answer::Never, 0),
    ];
    let (outcome, elapsed) = run(&s, &plan, 0.2, &asked).await;
    assert_eq!(elapsed, Duration::from_secs(10));
    // Three validators timed out: 3 ≥ f+1 = 2, so the timeout is trusted.
    assert_eq!(
        outcome.unwrap_err(),
        QuorumError::Trusted(NodeError::Timeout)
    );
}

#[tokio::test(start_paused = true)]
async fn zero_weight_validators_are_never_asked() {
    let s = setup(&[1, 1, 1, 0]).await;
    let asked = Arc::new(AtomicUsize::new(0));
    let plan = [
        (Answer::Value(1), 1),
        (Answer::Value(1), 1),
        (Answer::Value(1), 1),
        (Answer::Value(9), 1),
    ];
    let (outcome, _) = run(&s, &plan, 10.0, &asked).await;
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    let (key, voters) = outcome.unwrap();
    assert_eq!((key, voters.len()), (1, 3));
}

#[tokio::test(start_paused = true)]
async fn trusted_sample_and_no_consensus() {
    let s = setup(&[1, 1, 1, 1]).await;
    let asked = Arc::new(AtomicUsize::new(0));
    let late = NodeError::MissingCertificateValue;
    let odd = NodeError::NotFound;
    // Two equal errors (weight 2 ≥ f+1 = 2): trusted.
    let plan = [
        (Answer::Error(late.clone()), 1),
        (Answer::Error(late.clone()), 2),
        (Answer::Value(1), 3),
        (Answer::Value(2), 4),
    ];
    assert_eq!(
        run(&s, &plan, 0.2, &asked).await.0.unwrap_err(),
        QuorumError::Trusted(late.clone())
    );
    // Distinct errors below f+1: a sample, heaviest first.
    let plan = [
        (Answer::Error(late.clone()), 1),
        (Answer::Error(odd.clone()), 2),
        (Answer::Value(1), 3),
        (Answer::Value(2), 4),
    ];
    match run(&s, &plan, 0.2, &asked).await.0.unwrap_err() {
        QuorumError::Sample(errors) => {
            assert_eq!(errors.len(), 2);
            assert!(errors.iter().all(|(_, w)| *w == 1));
        }
        other => panic!("expected a sample, got {other:?}"),
    }
    // No errors, values split 2/1/1: no consensus with the scores.
    let plan = [
        (Answer::Value(1), 1),
        (Answer::Value(1), 2),
        (Answer::Value(2), 3),
        (Answer::Value(3), 4),
    ];
    assert_eq!(
        run(&s, &plan, 0.2, &asked).await.0.unwrap_err(),
        QuorumError::NoConsensus {
            threshold: 3,
            scores: vec![(2, 2), (1, 1), (1, 1)]
        }
    );
}

#[tokio::test(start_paused = true)]
async fn odd_grace_fractions_and_deadlines_do_not_panic() {
    let s = setup(&[1, 1, 1, 1]).await;
    let plan = [
        (Answer::Value(7), 100),
        (Answer::Value(7), 200),
        (Answer::Value(7), 300),
        (Answer::Never, 0),
    ];
    for (grace, deadline) in [
        (f64::NAN, Duration::from_secs(10)),
        (-1.0, Duration::from_secs(10)),
        (1e300, Duration::from_secs(10)),
        (0.2, Duration::MAX),
    ] {
        let options = Options {
            quorum_grace: grace,
            deadline,
            ..Options::default()
        };
        let asked = Arc::new(AtomicUsize::new(0));
        let (outcome, _) = run_with(&s, &plan, &options, &asked).await;
        assert_eq!(
            outcome.unwrap().0,
            7,
            "grace {grace}, deadline {deadline:?}"
        );
    }
}
