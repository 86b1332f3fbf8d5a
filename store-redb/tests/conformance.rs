//! The storage conformance suite of `quorum-node` on [`RedbStorage`], plus what only a
//! persistent store can show: data survives closing and reopening the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use quorum_core::{Batch, Epoch, Storage, StorageErrorKind, Write};
use quorum_store_redb::{Durability, Error, RedbOptions, RedbStorage};
use quorum_testkit::{
    rich_chain_state, sample_blobs, storage_conformance, TestChain, TestCommittee,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_storage_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let count = AtomicUsize::new(0);
    storage_conformance::run(|| {
        let index = count.fetch_add(1, Ordering::Relaxed);
        RedbStorage::open(dir.path().join(format!("db-{index}.redb"))).unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_storage_conforms_with_eventual_durability() {
    let dir = tempfile::tempdir().unwrap();
    let count = AtomicUsize::new(0);
    let options = RedbOptions {
        durability: Durability::Eventual,
        cache_size: Some(16 << 20),
        ..RedbOptions::default()
    };
    storage_conformance::run(|| {
        let index = count.fetch_add(1, Ordering::Relaxed);
        let path = dir.path().join(format!("db-{index}.redb"));
        RedbStorage::open_with(path, options.clone()).unwrap()
    })
    .await;
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let committee = TestCommittee::new(4, 1);
    let mut chain = TestChain::new(0, 2);
    let certificates = chain.commit_blocks(&committee, 3);
    let state = rich_chain_state(&chain, &committee);
    let blobs = sample_blobs();

    let storage = RedbStorage::open(&path).unwrap();
    assert_eq!(storage.path(), path);
    assert_eq!(storage.durability(), Durability::Immediate);
    let mut batch = Batch::new();
    for certificate in &certificates {
        batch.push(Write::Certificate(Arc::new(certificate.clone())));
    }
    batch.push(Write::ChainState(Arc::new(state.clone())));
    batch.push(Write::Committee(Epoch(0), committee.committee.clone()));
    for blob in &blobs {
        batch.push(Write::Blob(blob.clone()));
    }
    storage.write_batch(batch).await.unwrap();

    // The file is locked while open.
    let second = RedbStorage::open(&path).unwrap_err();
    assert!(matches!(second, Error::Open { .. }), "{second}");
    drop(storage);

    let storage = RedbStorage::open_with(
        &path,
        RedbOptions {
            create: false,
            ..RedbOptions::default()
        },
    )
    .unwrap();
    let heights: Vec<_> = (0..3).map(quorum_core::BlockHeight).collect();
    let found = storage
        .read_certificates_by_heights(chain.id(), &heights)
        .await
        .unwrap();
    assert_eq!(
        found,
        certificates.into_iter().map(Some).collect::<Vec<_>>()
    );
    assert_eq!(
        storage.read_chain_state(chain.id()).await.unwrap(),
        Some(state)
    );
    assert_eq!(
        storage.read_committee(Epoch(0)).await.unwrap(),
        Some(committee.committee)
    );
    let ids: Vec<_> = blobs.iter().map(quorum_core::Blob::id).collect();
    assert!(storage.missing_blobs(&ids).await.unwrap().is_empty());
}

#[test]
fn opening_without_create_needs_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let options = RedbOptions {
        create: false,
        ..RedbOptions::default()
    };
    let error = RedbStorage::open_with(dir.path().join("missing.redb"), options).unwrap_err();
    assert!(matches!(error, Error::Open { .. }), "{error}");
    assert_eq!(error.kind(), StorageErrorKind::Read);
    assert!(!dir.path().join("missing.redb").exists());
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.redb");
    std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
    let error = RedbStorage::open(&path).unwrap_err();
    assert!(matches!(error, Error::Open { .. }), "{error}");
}
