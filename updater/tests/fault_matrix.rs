//! The fault matrix of DESIGN §10: committees of 1, 4, 7 and 10 validators × every fault.
//!
//! With `f` faulty validators, blocks commit and every honest validator ends in sync. With
//! `f + 1`, there is never a certificate without a real quorum, failures come as errors within
//! bounded (virtual) time, and nothing panics or hangs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quorum_core::BlockHeight;
use quorum_testkit::TokioTestNet;
use quorum_transport_mem::Fault;

fn faults() -> Vec<Fault> {
    vec![
        Fault::Offline,
        Fault::Slow(Duration::from_millis(700)),
        Fault::Hang,
        Fault::Flaky(0.5),
        Fault::CrashAfter(3),
        Fault::BadSignature,
        Fault::WrongKey,
        Fault::Equivocate,
        Fault::FalseBlobsNotFound,
        Fault::DontSendValidateVote,
        Fault::DontSendConfirmVote,
        Fault::DontProcessValidated,
    ]
}

/// Faults after which at most `2f` honest validators remain able to vote: with `f + 1` of
/// them, no block can be certified.
fn prevents_quorum(fault: &Fault) -> bool {
    !matches!(
        fault,
        Fault::Slow(_) | Fault::Flaky(_) | Fault::CrashAfter(_)
    )
}

/// Upper bound on one client operation, in virtual time, beyond which it counts as a hang.
const HANG_BOUND: Duration = Duration::from_secs(3_600);

/// Two chains: chain 1 pays chain 2, chain 2 consumes the payment, chain 1 pays again.
async fn workload(net: &TokioTestNet) -> Result<(), quorum_updater::ChainClientError> {
    let payer = net.client(1);
    let payee = payer.for_chain(net.chains[2], Some(net.owners[2].clone()));
    for certificate in [
        payer.transfer(net.chains[2], 10).await?,
        payee.receive_messages().await?,
        payer.transfer(net.chains[2], 5).await?,
    ] {
        // Whatever the faults, a certificate the client obtained has a real quorum.
        certificate
            .check(&net.committee)
            .expect("certificate without a real quorum");
    }
    Ok(())
}

async fn run(
    n: usize,
    faulty: usize,
    fault: Fault,
) -> Result<(), quorum_updater::ChainClientError> {
    let net = TokioTestNet::new(n, 3, false).await;
    // Faulty validators are the last ones.
    for v in n - faulty..n {
        net.set_fault(v, fault);
    }
    let result = tokio::time::timeout(HANG_BOUND, workload(&net))
        .await
        .unwrap_or_else(|_| panic!("n={n} faulty={faulty} {fault:?}: client hung"));
    if result.is_ok() {
        net.settle().await;
        for v in 0..n - faulty {
            for chain in [net.chains[1], net.chains[2]] {
                net.assert_in_sync(v, chain).await;
            }
        }
        assert_eq!(
            net.local
                .chain_state(net.chains[1])
                .await
                .unwrap()
                .next_height(),
            BlockHeight(2),
            "n={n} faulty={faulty} {fault:?}"
        );
    }
    result
}

async fn matrix(n: usize) {
    let f = (n - 1) / 3;
    for fault in faults() {
        if f > 0 {
            run(n, f, fault)
                .await
                .unwrap_or_else(|e| panic!("n={n} with {f} × {fault:?} must commit: {e}"));
        }
        let result = run(n, f + 1, fault).await;
        if prevents_quorum(&fault) {
            let error = result.expect_err("f+1 faulty validators cannot leave a quorum");
            assert!(!error.to_string().is_empty());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn committee_of_1() {
    matrix(1).await;
}

#[tokio::test(start_paused = true)]
async fn committee_of_4() {
    matrix(4).await;
}

#[tokio::test(start_paused = true)]
async fn committee_of_7() {
    matrix(7).await;
}

#[tokio::test(start_paused = true)]
async fn committee_of_10() {
    matrix(10).await;
}
