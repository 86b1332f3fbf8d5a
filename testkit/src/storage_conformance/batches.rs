//! The suite's checks of batches: what they write, later writes winning, atomicity for
//! concurrent readers, and concurrent writers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;

/// Everything a batch writes, of every kind, is visible once it returns; an empty batch is
/// accepted and changes nothing.
pub async fn check_batch_contents<S: Storage + ?Sized>(storage: &S) {
    let committee = TestCommittee::new(4, 61);
    let mut chain = TestChain::new(0, 62);
    let certificate = chain.commit_blocks(&committee, 1).remove(0);
    let blob = Blob::data(b"in a batch".to_vec());
    let blob_state = BlobState {
        chain_id: chain.id(),
        height: BlockHeight(0),
    };
    let event = event_id(chain.id(), "batch", 0);

    write(storage, Vec::new()).await;
    let found = must(
        storage.read_chain_state(chain.id()).await,
        "read_chain_state",
    );
    assert!(found.is_none(), "an empty batch writes nothing");

    // What a validator writes when it commits a block.
    write(
        storage,
        vec![
            Write::Blob(blob.clone()),
            Write::BlobState(blob.id(), blob_state),
            Write::Event(event.clone(), b"payload".to_vec()),
            Write::Certificate(Arc::new(certificate.clone())),
            Write::ChainState(Arc::new(chain.state.clone())),
            Write::Committee(Epoch(0), committee.committee.clone()),
        ],
    )
    .await;

    let found = must(
        storage.read_certificate(certificate.hash()).await,
        "read_certificate",
    );
    assert_eq!(found.as_ref(), Some(&certificate));
    let found = must(
        storage
            .read_certificates_by_heights(chain.id(), &[BlockHeight(0)])
            .await,
        "read_certificates_by_heights",
    );
    assert_eq!(found, vec![Some(certificate.clone())]);
    let found = must(storage.read_blob(blob.id()).await, "read_blob");
    assert_eq!(found, Some(blob.clone()));
    let found = must(storage.read_blob_state(blob.id()).await, "read_blob_state");
    assert_eq!(found, Some(blob_state));
    let found = must(storage.read_event(&event).await, "read_event");
    assert_eq!(found, Some(b"payload".to_vec()));
    let found = must(
        storage.read_chain_state(chain.id()).await,
        "read_chain_state",
    );
    assert_eq!(found.as_ref(), Some(&chain.state));
    assert_eq!(
        found.and_then(|state| state.tip_hash()),
        Some(certificate.hash())
    );
    let found = must(storage.read_committee(Epoch(0)).await, "read_committee");
    assert_eq!(found.as_ref(), Some(&committee.committee));
}

/// Writes apply in order: a later write of a key in the same batch replaces an earlier one,
/// for every kind of write (a second certificate at the same chain and height takes the height
/// index, both stay readable by hash).
pub async fn check_batch_later_writes_win<S: Storage + ?Sized>(storage: &S) {
    let committee = TestCommittee::new(4, 71);
    let mut chain = TestChain::new(0, 72);
    let old_state = chain.state.clone();
    // Two different blocks at height 0 (a fork, as a faulty committee could certify).
    let mut fork = chain.clone();
    let first = fork.commit_next(
        &committee,
        vec![Operation::Transfer {
            recipient: TestChain::new(1, 73).id(),
            amount: 1,
        }],
    );
    let second = chain.commit_blocks(&committee, 1).remove(0);
    assert_ne!(first.hash(), second.hash());
    let blob = Blob::data(b"blob".to_vec());
    let event = event_id(chain.id(), "s", 0);
    let state_1 = BlobState {
        chain_id: chain.id(),
        height: BlockHeight(1),
    };
    let state_2 = BlobState {
        chain_id: chain.id(),
        height: BlockHeight(2),
    };
    let committee_1 = TestCommittee::new(1, 74).committee;
    let committee_2 = TestCommittee::new(2, 75).committee;

    write(
        storage,
        vec![
            Write::ChainState(Arc::new(old_state)),
            Write::Certificate(Arc::new(first.clone())),
            Write::Event(event.clone(), b"first".to_vec()),
            Write::BlobState(blob.id(), state_1),
            Write::Committee(Epoch(3), committee_1),
            Write::Event(event.clone(), b"second".to_vec()),
            Write::Certificate(Arc::new(second.clone())),
            Write::BlobState(blob.id(), state_2),
            Write::Committee(Epoch(3), committee_2.clone()),
            Write::ChainState(Arc::new(chain.state.clone())),
        ],
    )
    .await;

    let found = must(
        storage.read_chain_state(chain.id()).await,
        "read_chain_state",
    );
    assert_eq!(
        found.as_ref(),
        Some(&chain.state),
        "the later chain state wins"
    );
    let found = must(storage.read_event(&event).await, "read_event");
    assert_eq!(found, Some(b"second".to_vec()), "the later event wins");
    let found = must(storage.read_blob_state(blob.id()).await, "read_blob_state");
    assert_eq!(found, Some(state_2), "the later blob state wins");
    let found = must(storage.read_committee(Epoch(3)).await, "read_committee");
    assert_eq!(
        found.as_ref(),
        Some(&committee_2),
        "the later committee wins"
    );
    let hashes = must(
        storage
            .read_certificate_hashes(chain.id(), &[BlockHeight(0)])
            .await,
        "read_certificate_hashes",
    );
    assert_eq!(
        hashes,
        vec![Some(second.hash())],
        "the later certificate wins"
    );
    let found = must(
        storage
            .read_certificates_by_heights(chain.id(), &[BlockHeight(0)])
            .await,
        "read_certificates_by_heights",
    );
    assert_eq!(found, vec![Some(second.clone())]);
    for certificate in [&first, &second] {
        let found = must(
            storage.read_certificate(certificate.hash()).await,
            "read_certificate",
        );
        assert_eq!(
            found.as_ref(),
            Some(certificate),
            "both stay readable by hash"
        );
    }
}

/// Number of batches [`check_batches_atomic_for_readers`] writes.
const ATOMICITY_ROUNDS: u64 = 200;

/// A reader running beside a writer never sees half a batch: batch `r` writes the states of
/// chains A and B at height `r` together; reading A then B must never find B behind A.
pub async fn check_batches_atomic_for_readers<S: Storage + 'static>(storage: Arc<S>) {
    let committee = TestCommittee::new(4, 80);
    let (mut chain_a, mut chain_b) = (TestChain::new(0, 81), TestChain::new(1, 82));
    let (id_a, id_b) = (chain_a.id(), chain_b.id());
    let rounds: Vec<(ChainState, ChainState)> = (0..ATOMICITY_ROUNDS)
        .map(|_| {
            chain_a.commit_blocks(&committee, 1);
            chain_b.commit_blocks(&committee, 1);
            (chain_a.state.clone(), chain_b.state.clone())
        })
        .collect();

    let writer = {
        let storage = storage.clone();
        tokio::spawn(async move {
            for (a, b) in rounds {
                write(
                    &*storage,
                    vec![
                        Write::ChainState(Arc::new(a)),
                        Write::ChainState(Arc::new(b)),
                    ],
                )
                .await;
            }
        })
    };
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        tokio::spawn(async move {
            let height = |state: Option<ChainState>| state.map_or(0, |state| state.next_height().0);
            let mut observed = 0;
            loop {
                // Read after the writer finished: the final values must be there.
                let last = done.load(Ordering::Acquire);
                let a = height(must(storage.read_chain_state(id_a).await, "reading A"));
                let b = height(must(storage.read_chain_state(id_b).await, "reading B"));
                assert!(
                    b >= a,
                    "saw half a batch: A at {a} but B (written in the same batch) at {b}"
                );
                assert!(a >= observed, "A went back from {observed} to {a}");
                observed = a;
                if last {
                    assert_eq!((a, b), (ATOMICITY_ROUNDS, ATOMICITY_ROUNDS), "final values");
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let written = writer.await;
    done.store(true, Ordering::Release);
    must(written, "the writer task");
    must(reader.await, "the reader task");
}

/// Number of tasks [`check_concurrent_batches`] runs.
const CONCURRENT_TASKS: u32 = 8;
/// Number of blocks each task commits.
const BLOCKS_PER_TASK: usize = 10;

/// Batches written from several tasks at once all land: each task commits the blocks of its
/// own chain (certificate, event and chain state per batch); afterwards every chain is complete
/// and its state matches its last certificate.
pub async fn check_concurrent_batches<S: Storage + 'static>(storage: Arc<S>) {
    let committee = TestCommittee::new(4, 91);
    let mut tasks = Vec::new();
    let mut expected = Vec::new();
    for task in 0..CONCURRENT_TASKS {
        let mut chain = TestChain::new(task, 100 + u64::from(task));
        let batches: Vec<Batch> = (0..BLOCKS_PER_TASK)
            .map(|index| {
                let certificate = chain.commit_blocks(&committee, 1).remove(0);
                // The state as of this block (the chain's final state is the last one's).
                let state = chain.state.clone();
                let event = event_id(chain.id(), "concurrent", index as u32);
                Batch {
                    writes: vec![
                        Write::Certificate(Arc::new(certificate)),
                        Write::Event(event, vec![task as u8, index as u8]),
                        Write::ChainState(Arc::new(state)),
                    ],
                }
            })
            .collect();
        expected.push(chain);
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            for batch in batches {
                must(storage.write_batch(batch).await, "a concurrent batch");
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        must(task.await, "a writing task");
    }

    let all: Vec<BlockHeight> = (0..BLOCKS_PER_TASK as u64).map(BlockHeight).collect();
    for (task, chain) in expected.iter().enumerate() {
        let certificates = must(
            storage.read_certificates_by_heights(chain.id(), &all).await,
            "read_certificates_by_heights",
        );
        let certificates: Vec<ConfirmedBlockCertificate> = certificates
            .into_iter()
            .enumerate()
            .map(|(height, certificate)| {
                certificate.unwrap_or_else(|| panic!("task {task}: certificate at {height} lost"))
            })
            .collect();
        for (index, certificate) in certificates.iter().enumerate() {
            let event = event_id(chain.id(), "concurrent", index as u32);
            let payload = must(storage.read_event(&event).await, "read_event");
            assert_eq!(
                payload,
                Some(vec![task as u8, index as u8]),
                "task {task} event {index}"
            );
            if let Some(previous) = index.checked_sub(1) {
                assert_eq!(
                    certificate.value().block().previous_block_hash,
                    Some(certificates[previous].hash()),
                    "task {task}: chaining at {index}"
                );
            }
        }
        let state = must(
            storage.read_chain_state(chain.id()).await,
            "read_chain_state",
        );
        let Some(state) = state else {
            panic!("task {task}: chain state lost");
        };
        assert_eq!(state.next_height(), BlockHeight(BLOCKS_PER_TASK as u64));
        assert_eq!(state.tip_hash(), certificates.last().map(Certificate::hash));
        assert_eq!(state, chain.state, "task {task}: final chain state");
    }
}
