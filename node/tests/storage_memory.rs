//! The storage conformance suite on [`MemoryStorage`].

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use quorum_node::MemoryStorage;
use quorum_testkit::storage_conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_storage_conforms() {
    storage_conformance::run(MemoryStorage::new).await;
}

#[tokio::test]
async fn clones_share_the_data() {
    let storage = MemoryStorage::new();
    let clone = storage.clone();
    let committee = quorum_testkit::TestCommittee::new(1, 1).committee;
    let mut batch = quorum_core::Batch::new();
    batch.push(quorum_core::Write::Committee(
        quorum_core::Epoch(0),
        committee.clone(),
    ));
    quorum_core::Storage::write_batch(&clone, batch)
        .await
        .unwrap();
    let found = quorum_core::Storage::read_committee(&storage, quorum_core::Epoch(0))
        .await
        .unwrap();
    assert_eq!(found, Some(committee));
}
