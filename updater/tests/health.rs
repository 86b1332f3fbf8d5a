//! Issue 11, in process: a hung validator (it accepts requests and never answers) costs no
//! client any time; it becomes suspect, and once it answers again it is healthy and caught up.
//! Paused clock: every duration below is virtual and exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quorum_core::BlockHeight;
use quorum_testkit::TokioTestNet;
use quorum_transport_mem::Fault;
use quorum_updater::HealthState;
use tokio::time::Instant;

const CHAIN: usize = 1;
/// Slack allowed over twice the all-honest time.
const SLACK: Duration = Duration::from_millis(100);

async fn hung_validator_costs_nothing(n: usize) {
    let net = TokioTestNet::new(n, 2, false).await;
    let client = net.client(CHAIN);
    let hung = n - 1;
    // The all-honest times, measured the same way.
    let start = Instant::now();
    client.transfer(net.chains[0], 1).await.unwrap();
    let honest_transfer = start.elapsed();
    let start = Instant::now();
    client.synchronize_from_validators().await.unwrap();
    let honest_sync = start.elapsed();

    net.set_fault(hung, Fault::Hang);
    for round in 0..5 {
        let start = Instant::now();
        client.transfer(net.chains[0], 1).await.unwrap();
        let took = start.elapsed();
        assert!(
            took <= honest_transfer * 2 + SLACK,
            "n = {n}, transfer {round}: {took:?} (honest {honest_transfer:?})"
        );
        let start = Instant::now();
        client.synchronize_from_validators().await.unwrap();
        let took = start.elapsed();
        assert!(
            took <= honest_sync * 2 + SLACK,
            "n = {n}, sync {round}: {took:?} (honest {honest_sync:?})"
        );
    }
    // Its requests, left running in the background, time out: it is suspect.
    net.settle().await;
    let key = net.secrets[hung].public();
    assert!(
        net.validators.health(&key).is_suspect(),
        "n = {n}: the hung validator is suspect"
    );
    let chain = net.chains[CHAIN];
    let local_next = client
        .local()
        .chain_state(chain)
        .await
        .unwrap()
        .next_height();
    assert_eq!(local_next, BlockHeight(6));
    for v in 0..hung {
        assert_eq!(net.height_of(v, chain).await, local_next, "validator {v}");
    }

    // It answers again: after its cooldown it is probed, healthy, and brought up to date.
    net.set_fault(hung, Fault::Honest);
    tokio::time::sleep(Duration::from_secs(61)).await;
    client.transfer(net.chains[0], 1).await.unwrap();
    net.settle().await;
    assert_eq!(
        net.validators.health(&key).snapshot().state(),
        HealthState::Healthy,
        "n = {n}"
    );
    assert_eq!(net.height_of(hung, chain).await, BlockHeight(7), "n = {n}");
}

#[tokio::test(start_paused = true)]
async fn a_hung_validator_among_four_costs_no_time() {
    hung_validator_costs_nothing(4).await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_validator_among_seven_costs_no_time() {
    hung_validator_costs_nothing(7).await;
}

/// A hung validator costs one catch-up worker with one target per chain, however many blocks
/// it misses; once it answers again (and its cooldown ends) the worker brings it up to date.
#[tokio::test(start_paused = true)]
async fn catch_up_is_one_worker_per_validator_with_merged_targets() {
    let net = TokioTestNet::new(4, 3, false).await;
    let payer = net.client(1);
    let other = payer.for_chain(net.chains[2], Some(net.owners[2].clone()));
    net.set_fault(3, Fault::Hang);
    for _ in 0..20 {
        payer.transfer(net.chains[0], 1).await.unwrap();
        other.transfer(net.chains[0], 1).await.unwrap();
    }
    let key = net.secrets[3].public();
    let queued = payer.catch_up().queued(&key);
    assert!(queued.len() <= 2, "one target per chain: {queued:?}");
    assert!(payer.catch_up().is_running(&key));
    net.set_fault(3, Fault::Honest);
    // Longer than the longest cooldown: the worker resumes and delivers everything.
    tokio::time::sleep(Duration::from_secs(120)).await;
    for chain in [net.chains[1], net.chains[2]] {
        assert_eq!(net.height_of(3, chain).await, BlockHeight(20));
    }
    assert!(!payer.catch_up().is_running(&key));
}
