//! Tests of the redb store that need its internals (the shared conformance suite is in
//! `tests/`).

use std::sync::Arc;

use quorum_core::{BlobType, StorageErrorKind, StreamId};
use quorum_testkit::{TestChain, TestCommittee};

use super::*;

fn open() -> (tempfile::TempDir, RedbStorage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = RedbStorage::open(dir.path().join("db.redb")).unwrap();
    (dir, storage)
}

/// Writes raw bytes (`None`: nothing) straight into tables, bypassing the encoding.
fn poke(storage: &RedbStorage, poke: impl FnOnce(&mut WriteTables<'_>)) {
    let transaction = storage.inner.database.begin_write().unwrap();
    {
        let mut tables = WriteTables::new(&transaction);
        poke(&mut tables);
    }
    transaction.commit().unwrap();
}

fn kind<T: fmt::Debug>(result: Result<T, StorageError>) -> StorageErrorKind {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => {
            // The message names the table.
            assert!(!error.to_string().is_empty());
            error.kind
        }
    }
}

#[tokio::test]
async fn undecodable_values_are_corrupted_not_panics() {
    let (_dir, storage) = open();
    let chain = TestChain::new(0, 1);
    let hash = CryptoHash([7; 32]);
    let blob = BlobId {
        hash,
        blob_type: BlobType::Data,
    };
    for garbage in [
        &b""[..],
        &b"\xff\xff\xff\xff\xff\xff\xff\xff\x0f"[..],
        &[0; 3][..],
    ] {
        poke(&storage, |tables| {
            let certificates = tables.certificates().unwrap();
            certificates.insert(hash_key(&hash), garbage).unwrap();
            let states = tables.chain_states().unwrap();
            states.insert(hash_key(&chain.id().0), garbage).unwrap();
            let committees = tables.committees().unwrap();
            committees.insert(0, garbage).unwrap();
            let blob_states = tables.blob_states().unwrap();
            blob_states.insert(blob_key(&blob), garbage).unwrap();
            let hashes = tables.certificate_hashes().unwrap();
            hashes
                .insert(height_key(&chain.id(), BlockHeight(0)), hash_key(&hash))
                .unwrap();
        });
        assert_eq!(
            kind(storage.read_certificate(hash).await),
            StorageErrorKind::Corrupted
        );
        assert_eq!(
            kind(
                storage
                    .read_certificates_by_heights(chain.id(), &[BlockHeight(0)])
                    .await
            ),
            StorageErrorKind::Corrupted
        );
        assert_eq!(
            kind(storage.read_chain_state(chain.id()).await),
            StorageErrorKind::Corrupted
        );
        assert_eq!(
            kind(storage.read_committee(Epoch(0)).await),
            StorageErrorKind::Corrupted
        );
        assert_eq!(
            kind(storage.read_blob_state(blob).await),
            StorageErrorKind::Corrupted
        );
    }
    // The index alone reads fine: it holds a hash.
    assert_eq!(
        storage
            .read_certificate_hashes(chain.id(), &[BlockHeight(0)])
            .await
            .unwrap(),
        vec![Some(hash)]
    );
}

#[tokio::test]
async fn values_under_the_wrong_key_are_corrupted() {
    let (_dir, storage) = open();
    let committee = TestCommittee::new(4, 2);
    let mut chain = TestChain::new(0, 3);
    let other = TestChain::new(1, 4);
    let certificates = chain.commit_blocks(&committee, 2);
    let wrong_hash = certificates[1].hash();
    let missing_hash = CryptoHash([9; 32]);
    let blob = Blob::data(b"content".to_vec());
    poke(&storage, |tables| {
        let bytes = bcs::to_bytes(&certificates[0]).unwrap();
        let table = tables.certificates().unwrap();
        // Height 0's certificate stored under height 1's hash.
        table
            .insert(hash_key(&wrong_hash), bytes.as_slice())
            .unwrap();
        let hashes = tables.certificate_hashes().unwrap();
        hashes
            .insert(
                height_key(&chain.id(), BlockHeight(1)),
                hash_key(&wrong_hash),
            )
            .unwrap();
        // An index entry pointing at nothing.
        hashes
            .insert(
                height_key(&chain.id(), BlockHeight(2)),
                hash_key(&missing_hash),
            )
            .unwrap();
        // A chain's state under another chain's id.
        let bytes = bcs::to_bytes(&chain.state).unwrap();
        let states = tables.chain_states().unwrap();
        states
            .insert(hash_key(&other.id().0), bytes.as_slice())
            .unwrap();
        // Content that does not hash to its blob id.
        let blobs = tables.blobs().unwrap();
        blobs.insert(blob_key(&blob.id()), &b"other"[..]).unwrap();
    });
    assert_eq!(
        kind(storage.read_certificate(wrong_hash).await),
        StorageErrorKind::Corrupted
    );
    for height in [1, 2] {
        assert_eq!(
            kind(
                storage
                    .read_certificates_by_heights(chain.id(), &[BlockHeight(height)])
                    .await
            ),
            StorageErrorKind::Corrupted,
            "height {height}"
        );
    }
    assert_eq!(
        kind(storage.read_chain_state(other.id()).await),
        StorageErrorKind::Corrupted
    );
    assert_eq!(
        kind(storage.read_blob(blob.id()).await),
        StorageErrorKind::Corrupted
    );
    // Presence alone does not decode anything.
    assert!(storage
        .missing_blobs(&[blob.id()])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_uncommitted_batch_leaves_nothing() {
    let (_dir, storage) = open();
    let committee = TestCommittee::new(4, 5);
    let mut chain = TestChain::new(0, 6);
    let certificate = chain.commit_blocks(&committee, 1).remove(0);
    // What `Inner::commit` does up to a failure: apply, then drop the transaction.
    let transaction = storage.inner.database.begin_write().unwrap();
    {
        let mut tables = WriteTables::new(&transaction);
        tables
            .apply(Write::Certificate(Arc::new(certificate.clone())))
            .unwrap();
        tables
            .apply(Write::ChainState(Arc::new(chain.state.clone())))
            .unwrap();
    }
    drop(transaction);
    assert_eq!(
        storage.read_certificate(certificate.hash()).await.unwrap(),
        None
    );
    assert_eq!(storage.read_chain_state(chain.id()).await.unwrap(), None);
    let event = EventId {
        chain_id: chain.id(),
        stream: StreamId::user("test"),
        index: 0,
    };
    assert_eq!(storage.read_event(&event).await.unwrap(), None);
}

/// A caller that stops waiting once its commit has begun (a request that timed out) does
/// not stop the commit, and nobody reads the state from before it: the read waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_caller_gave_up_lands_before_any_later_read() {
    let (_dir, storage) = open();
    let committee = TestCommittee::new(4, 5);
    for round in 0..20u32 {
        let mut chain = TestChain::new(round, 6);
        let certificate = chain.commit_blocks(&committee, 1).remove(0);
        let batch = Batch {
            writes: vec![
                Write::Certificate(Arc::new(certificate.clone())),
                Write::ChainState(Arc::new(chain.state.clone())),
            ],
        };
        {
            let write = storage.write_batch(batch);
            futures_poll_once(write).await;
        }
        // The write's future is gone; its commit may still be running.
        assert_eq!(
            storage.read_chain_state(chain.id()).await.unwrap(),
            Some(chain.state.clone()),
            "round {round}"
        );
    }
}

/// Polls `future` once, then drops it.
async fn futures_poll_once<F: std::future::Future>(future: F) {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|context| {
        let _ = future.as_mut().poll(context);
        std::task::Poll::Ready(())
    })
    .await;
}

#[tokio::test]
async fn another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let storage = RedbStorage::open(&path).unwrap();
    poke(&storage, |tables| {
        tables
            .meta()
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION + 1)
            .unwrap();
    });
    drop(storage);
    let error = RedbStorage::open(&path).unwrap_err();
    assert!(
        matches!(error, Error::SchemaVersion { found, .. } if found == SCHEMA_VERSION + 1),
        "{error}"
    );
    assert_eq!(error.kind(), StorageErrorKind::Corrupted);
    assert_eq!(StorageError::from(error).kind, StorageErrorKind::Corrupted);
}

#[test]
fn debug_names_the_file() {
    let (dir, storage) = open();
    let debug = format!("{storage:?}");
    assert!(debug.contains("RedbStorage"), "{debug}");
    assert!(debug.contains(&*dir.path().to_string_lossy()), "{debug}");
}
