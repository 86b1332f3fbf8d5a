//! Batches of confirmed certificates (`handle_confirmed_certificates`): applied in order, their
//! signatures verified together, and cut at the first bad certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quorum_core::{
    BlockHeight, Certificate, ConfirmedBlockCertificate, CrossChainDelivery, NodeError, Round,
    Signature, ValidatorNode,
};
use quorum_testkit::TestNet as Net;

#[tokio::test]
async fn a_batch_is_applied_in_order_and_cut_at_the_first_bad_certificate() {
    let net = Net::new(4, 2, false).await;
    // Validators 0..3 commit five blocks; validator 3 sees none of them.
    let mut certificates = Vec::new();
    for _ in 0..5 {
        certificates.push(commit_on_first_three(&net, 1).await);
    }
    // The fourth is tampered with: the batch stops there, the first three are stored.
    let mut batch = certificates.clone();
    batch[3] = with_a_bad_signature(&certificates[3]);
    let outcome = net.workers[3]
        .handle_confirmed_certificates(batch, CrossChainDelivery::NonBlocking)
        .await
        .unwrap();
    assert_eq!(outcome.processed, 3);
    assert!(matches!(
        outcome.error,
        Some(NodeError::InvalidCertificate(_))
    ));
    assert_eq!(outcome.info.unwrap().info.next_block_height, BlockHeight(3));
    assert_eq!(net.next_height(3, 1).await, BlockHeight(3));
    // The whole batch again: the first three are no-ops, the last two apply.
    let outcome = net.workers[3]
        .handle_confirmed_certificates(certificates.clone(), CrossChainDelivery::NonBlocking)
        .await
        .unwrap();
    assert_eq!((outcome.processed, outcome.error), (5, None));
    let state = net.workers[3].chain_state(net.chains[1]).await.unwrap();
    assert_eq!(state.next_height(), BlockHeight(5));
    assert_eq!(state.tip_hash(), Some(certificates[4].hash()));
}

/// The signatures of a batch are verified together after the other checks, yet the batch is
/// still cut at its first bad certificate, whatever the kind of fault and its place.
#[tokio::test]
async fn a_batch_is_cut_at_its_first_fault_whether_signature_or_other() {
    let net = Net::new(4, 3, false).await;
    let mut certificates = Vec::new();
    for _ in 0..4 {
        certificates.push(commit_on_first_three(&net, 1).await);
    }
    let other_chain = commit_on_first_three(&net, 2).await;
    let forged = with_a_bad_signature(&certificates[1]);
    // A bad signature at 1, another chain's block at 3: cut at 1.
    let batch = vec![
        certificates[0].clone(),
        forged.clone(),
        certificates[2].clone(),
        other_chain.clone(),
    ];
    let outcome = net.workers[3]
        .handle_confirmed_certificates(batch, CrossChainDelivery::NonBlocking)
        .await
        .unwrap();
    assert_eq!(outcome.processed, 1);
    assert!(matches!(
        outcome.error,
        Some(NodeError::InvalidCertificate(_))
    ));
    // Another chain's block at 2, a bad signature at 3: cut at 2.
    let batch = vec![
        certificates[1].clone(),
        certificates[2].clone(),
        other_chain,
        forged,
    ];
    let outcome = net.workers[3]
        .handle_confirmed_certificates(batch, CrossChainDelivery::NonBlocking)
        .await
        .unwrap();
    assert_eq!(outcome.processed, 2);
    assert!(matches!(
        outcome.error,
        Some(NodeError::ProtocolViolation(_))
    ));
    assert_eq!(net.next_height(3, 1).await, BlockHeight(3));
}

/// An empty block on chain `c`, validated, confirmed and delivered by validators 0 to 2 (not 3):
/// its confirmed certificate.
async fn commit_on_first_three(net: &Net, c: usize) -> ConfirmedBlockCertificate {
    let block = net.block(c, vec![]).await;
    let proposal = net.proposal(c, block, Round::MultiLeader(0));
    let validated = net.validate(&[0, 1, 2], &proposal).await;
    let confirmed = net.confirm(&[0, 1, 2], &validated).await;
    net.deliver(&[0, 1, 2], &confirmed).await;
    confirmed
}

/// `certificate` with its first signature replaced by bytes that do not verify.
fn with_a_bad_signature(certificate: &ConfirmedBlockCertificate) -> ConfirmedBlockCertificate {
    let (value, round, mut signatures) = certificate.clone().into_parts();
    signatures[0].1 = Signature::from_bytes(&[5; 64]);
    Certificate::new(value, round, signatures)
}
