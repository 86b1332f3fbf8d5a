//! Reconfiguration: the admin chain creates epoch 1 with one validator replaced; chains move to
//! epoch 1 and keep committing; the updater brings the new validator up to date.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use quorum_core::{BlockHeight, Epoch, ValidatorNode};
use quorum_testkit::TokioTestNet;
use quorum_transport_mem::{Fault, MemoryNode};
use quorum_updater::RecoveryKind;

#[tokio::test(start_paused = true)]
async fn new_committee_with_a_replaced_validator() {
    let net = TokioTestNet::new(4, 2, false).await;
    let admin = net.client(0);
    let user = admin.for_chain(net.chains[1], Some(net.owners[1].clone()));
    user.transfer(net.chains[0], 7).await.unwrap();

    // Validator 3 leaves; a new validator joins, knowing only the genesis.
    let newcomer = quorum_testkit::validator_keys(1, 777).remove(0);
    let mut members: Vec<_> = net.secrets[..3].to_vec();
    members.push(newcomer.clone());
    let committee = quorum_testkit::committee_of(&members);
    let worker = net.new_worker(Some(newcomer.clone())).await;
    let node = MemoryNode::new(
        worker.clone() as Arc<dyn ValidatorNode>,
        Some(newcomer.clone()),
        50,
    )
    .with_bcs(true);
    net.validators.insert(newcomer.public(), Arc::new(node));

    admin.create_committee(committee.clone()).await.unwrap();
    user.process_new_epoch(Epoch(1)).await.unwrap();
    assert_eq!(
        user.local()
            .chain_state(net.chains[1])
            .await
            .unwrap()
            .epoch(),
        Epoch(1)
    );

    // With an old member offline, the epoch-1 quorum needs the newcomer.
    net.set_fault(0, Fault::Offline);
    let certificate = user.transfer(net.chains[0], 3).await.unwrap();
    certificate.check(&committee).unwrap();
    assert!(certificate
        .signatures()
        .iter()
        .any(|(k, _)| *k == newcomer.public()));
    assert!(user.stats().get(RecoveryKind::Committee) >= 1);
    assert!(user.stats().get(RecoveryKind::BlockHeight) >= 1);
    assert!(user.stats().get(RecoveryKind::CertificatesSent) >= 1);
    let state = worker.chain_state(net.chains[1]).await.unwrap();
    assert_eq!(state.next_height(), BlockHeight(3));
    assert_eq!(state.epoch(), Epoch(1));
    // The chain keeps committing in epoch 1.
    user.transfer(net.chains[0], 1).await.unwrap();
    net.settle().await;
    for v in 1..3 {
        net.assert_in_sync(v, net.chains[1]).await;
    }
    assert_eq!(
        worker
            .chain_state(net.chains[1])
            .await
            .unwrap()
            .next_height(),
        BlockHeight(4)
    );
}
