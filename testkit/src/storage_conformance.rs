//! The storage conformance suite (DESIGN §7, §10), written once and run on every [`Storage`].
//!
//! [`run`] runs every `check_*` function, each on a fresh storage; the checks can also be run
//! one by one. Reads and single-kind writes are checked here, batches (their contents, their
//! atomicity for readers, concurrent writers) in [`batches`](self#functions). Everything panics
//! on failure with a message naming what failed.

use std::sync::Arc;

use quorum_core::{
    Batch, Blob, BlobId, BlobState, BlobType, BlockHeight, Certificate, ChainId, ChainState,
    ConfirmedBlockCertificate, CryptoHash, Epoch, EventId, Operation, ReceivedEntry, Storage,
    StreamId, Write,
};

use crate::fixtures::{rich_chain_state, sample_blobs, TestChain, TestCommittee};
use crate::must::must;

mod batches;
mod outbox;

pub use batches::{
    check_batch_contents, check_batch_later_writes_win, check_batches_atomic_for_readers,
    check_concurrent_batches,
};
pub use outbox::check_outbox;

/// Runs every check of the storage conformance suite, each on a fresh storage from `make`.
///
/// The concurrency checks spawn tokio tasks: run it on a multi-thread runtime
/// (`#[tokio::test(flavor = "multi_thread")]`) so that they really run in parallel.
pub async fn run<S, F>(make: F)
where
    S: Storage + 'static,
    F: Fn() -> S,
{
    check_absent_reads(&make()).await;
    check_certificates(&make()).await;
    check_blobs(&make()).await;
    check_events(&make()).await;
    check_chain_states(&make()).await;
    check_committees(&make()).await;
    check_received_logs(&make()).await;
    check_outbox(&make()).await;
    check_batch_contents(&make()).await;
    check_batch_later_writes_win(&make()).await;
    check_batches_atomic_for_readers(Arc::new(make())).await;
    check_concurrent_batches(Arc::new(make())).await;
}

/// Applies `writes` in one batch.
pub(crate) async fn write<S: Storage + ?Sized>(storage: &S, writes: Vec<Write>) {
    must(
        storage.write_batch(Batch { writes }).await,
        "writing a batch",
    );
}

fn heights(values: &[u64]) -> Vec<BlockHeight> {
    values.iter().copied().map(BlockHeight).collect()
}

fn event_id(chain_id: ChainId, stream: &str, index: u32) -> EventId {
    EventId {
        chain_id,
        stream: StreamId::user(stream),
        index,
    }
}

/// Asserts two certificates are the same in every part: value (block and outcome), hash,
/// round and signatures; and that the stored one still checks against `committee`.
fn assert_same_certificate(
    found: &ConfirmedBlockCertificate,
    expected: &ConfirmedBlockCertificate,
    committee: &TestCommittee,
) {
    assert_eq!(found.hash(), expected.hash(), "certificate hash");
    assert_eq!(
        found.value().inner(),
        expected.value().inner(),
        "certified value"
    );
    assert_eq!(found.round(), expected.round(), "certificate round");
    assert_eq!(
        found.signatures(),
        expected.signatures(),
        "certificate signatures"
    );
    must(
        found.check(&committee.committee),
        "checking a stored certificate",
    );
}

/// On an empty storage, every read finds nothing: `None`, one `None` per height asked, every
/// blob missing, and empty answers to empty questions.
pub async fn check_absent_reads<S: Storage + ?Sized>(storage: &S) {
    let chain = TestChain::new(0, 1);
    let blob = Blob::data(b"absent".to_vec());
    let hash = CryptoHash::of_bytes("test", b"absent");

    let certificate = must(storage.read_certificate(hash).await, "read_certificate");
    assert!(certificate.is_none(), "absent certificate");
    let asked = heights(&[0, 1, 5, 0]);
    let hashes = must(
        storage.read_certificate_hashes(chain.id(), &asked).await,
        "read_certificate_hashes",
    );
    assert_eq!(hashes, vec![None; 4], "absent certificate hashes");
    let certificates = must(
        storage
            .read_certificates_by_heights(chain.id(), &asked)
            .await,
        "read_certificates_by_heights",
    );
    assert_eq!(certificates, vec![None; 4], "absent certificates");
    let hashes = must(
        storage.read_certificate_hashes(chain.id(), &[]).await,
        "read_certificate_hashes",
    );
    assert!(hashes.is_empty(), "no heights asked, no hashes");
    let certificates = must(
        storage.read_certificates_by_heights(chain.id(), &[]).await,
        "read_certificates_by_heights",
    );
    assert!(certificates.is_empty(), "no heights asked, no certificates");

    assert!(must(storage.read_blob(blob.id()).await, "read_blob").is_none());
    let ids: Vec<BlobId> = sample_blobs().iter().map(Blob::id).collect();
    let missing = must(storage.missing_blobs(&ids).await, "missing_blobs");
    assert_eq!(missing, ids, "every blob is missing, in the order asked");
    let missing = must(storage.missing_blobs(&[]).await, "missing_blobs");
    assert!(missing.is_empty(), "no blobs asked, none missing");
    let state = must(storage.read_blob_state(blob.id()).await, "read_blob_state");
    assert!(state.is_none(), "absent blob state");

    let event = must(
        storage.read_event(&event_id(chain.id(), "test", 0)).await,
        "read_event",
    );
    assert!(event.is_none(), "absent event");
    let state = must(
        storage.read_chain_state(chain.id()).await,
        "read_chain_state",
    );
    assert!(state.is_none(), "absent chain state");
    for epoch in [0, 1, u32::MAX] {
        let committee = must(storage.read_committee(Epoch(epoch)).await, "read_committee");
        assert!(committee.is_none(), "absent committee of epoch {epoch}");
    }
}

/// Certificates round-trip exactly and are found by hash and by chain and heights: in the
/// order asked, repeats answered each time, gaps and other chains' heights `None`.
pub async fn check_certificates<S: Storage + ?Sized>(storage: &S) {
    let committee = TestCommittee::new(4, 11);
    let mut chain_a = TestChain::new(0, 12);
    let mut chain_b = TestChain::new(1, 13);
    let a = chain_a.commit_blocks(&committee, 6);
    let b = chain_b.commit_blocks(&committee, 3);

    // Heights 0 and 1 of A in one batch, 2 and 4 one by one; 3 and 5 never.
    write(
        storage,
        vec![
            Write::Certificate(Arc::new(a[0].clone())),
            Write::Certificate(Arc::new(a[1].clone())),
        ],
    )
    .await;
    for index in [2, 4] {
        write(
            storage,
            vec![Write::Certificate(Arc::new(a[index].clone()))],
        )
        .await;
    }
    write(
        storage,
        b.iter()
            .map(|certificate| Write::Certificate(Arc::new(certificate.clone())))
            .collect(),
    )
    .await;
    // Writing a certificate again changes nothing.
    write(storage, vec![Write::Certificate(Arc::new(a[1].clone()))]).await;

    let present = [&a[0], &a[1], &a[2], &a[4], &b[0], &b[1], &b[2]];
    check_by_hash(storage, &present, &[&a[3], &a[5]], &committee).await;

    let asked = heights(&[4, 0, 3, 2, 9, 0, 5, 1]);
    let expected = [
        Some(4),
        Some(0),
        None,
        Some(2),
        None,
        Some(0),
        None,
        Some(1),
    ];
    let hashes = must(
        storage.read_certificate_hashes(chain_a.id(), &asked).await,
        "read_certificate_hashes",
    );
    let expected_hashes: Vec<Option<CryptoHash>> = expected
        .iter()
        .map(|index| index.map(|index: usize| a[index].hash()))
        .collect();
    assert_eq!(
        hashes, expected_hashes,
        "hashes by height, in the order asked"
    );
    let certificates = must(
        storage
            .read_certificates_by_heights(chain_a.id(), &asked)
            .await,
        "read_certificates_by_heights",
    );
    assert_eq!(
        certificates.len(),
        asked.len(),
        "one answer per height asked"
    );
    for ((found, expected), height) in certificates.iter().zip(&expected).zip(&asked) {
        match (found, expected) {
            (Some(found), Some(index)) => assert_same_certificate(found, &a[*index], &committee),
            (None, None) => {}
            (found, expected) => panic!(
                "at {height}: found {:?}, expected {:?}",
                found.as_ref().map(Certificate::hash),
                expected.map(|index| a[index].hash())
            ),
        }
    }

    check_other_chains(storage, chain_b.id(), &b).await;
}

/// Each of `present` is found by its hash, as written; none of `absent` is.
async fn check_by_hash<S: Storage + ?Sized>(
    storage: &S,
    present: &[&ConfirmedBlockCertificate],
    absent: &[&ConfirmedBlockCertificate],
    committee: &TestCommittee,
) {
    for certificate in present {
        let found = must(
            storage.read_certificate(certificate.hash()).await,
            "read_certificate",
        );
        let Some(found) = found else {
            panic!(
                "certificate at {} not found by hash",
                certificate.value().block().height
            );
        };
        assert_same_certificate(&found, certificate, committee);
    }
    for absent in absent {
        let found = must(
            storage.read_certificate(absent.hash()).await,
            "read_certificate",
        );
        assert!(found.is_none(), "a certificate never written is absent");
    }
}

/// Chain B's heights are its own (`b` its certificates, from height 0); an unknown chain has
/// nothing.
async fn check_other_chains<S: Storage + ?Sized>(
    storage: &S,
    chain_b: ChainId,
    b: &[ConfirmedBlockCertificate],
) {
    let asked = heights(&[2, 3, 0]);
    let hashes = must(
        storage.read_certificate_hashes(chain_b, &asked).await,
        "read_certificate_hashes",
    );
    assert_eq!(hashes, vec![Some(b[2].hash()), None, Some(b[0].hash())]);
    let unknown = TestChain::new(2, 14).id();
    let hashes = must(
        storage.read_certificate_hashes(unknown, &asked).await,
        "read_certificate_hashes",
    );
    assert_eq!(
        hashes,
        vec![None; 3],
        "an unknown chain has no certificates"
    );
    let certificates = must(
        storage.read_certificates_by_heights(unknown, &asked).await,
        "read_certificates_by_heights",
    );
    assert_eq!(
        certificates,
        vec![None; 3],
        "an unknown chain has no certificates"
    );
}

/// Blobs of every type round-trip exactly; `missing_blobs` answers in the order asked; blob
/// states are stored independently of blobs.
pub async fn check_blobs<S: Storage + ?Sized>(storage: &S) {
    let blobs = sample_blobs();
    let chain = TestChain::new(0, 21).id();
    let absent_1 = Blob::data(b"never written 1".to_vec()).id();
    let absent_2 = Blob::new(BlobType::Committee, b"never written 2".to_vec()).id();
    let state = BlobState {
        chain_id: chain,
        height: BlockHeight(7),
    };
    // A state may be recorded for a blob whose content is not stored.
    let orphan_state = BlobState {
        chain_id: chain,
        height: BlockHeight(u64::MAX),
    };

    let mut writes: Vec<Write> = blobs.iter().cloned().map(Write::Blob).collect();
    writes.push(Write::BlobState(blobs[0].id(), state));
    writes.push(Write::BlobState(absent_1, orphan_state));
    write(storage, writes).await;

    for blob in &blobs {
        let found = must(storage.read_blob(blob.id()).await, "read_blob");
        assert_eq!(found.as_ref(), Some(blob), "blob {:?}", blob.id());
    }
    // Same content, other type: another blob.
    let retyped = Blob::new(BlobType::Committee, blobs[0].content.clone());
    assert!(must(storage.read_blob(retyped.id()).await, "read_blob").is_none());

    let asked = [
        absent_2,
        blobs[0].id(),
        absent_1,
        blobs[3].id(),
        retyped.id(),
        blobs[1].id(),
    ];
    let missing = must(storage.missing_blobs(&asked).await, "missing_blobs");
    assert_eq!(
        missing,
        vec![absent_2, absent_1, retyped.id()],
        "missing blobs, in the order asked"
    );
    let ids: Vec<BlobId> = blobs.iter().map(Blob::id).collect();
    let missing = must(storage.missing_blobs(&ids).await, "missing_blobs");
    assert!(missing.is_empty(), "every stored blob is present");

    let found = must(
        storage.read_blob_state(blobs[0].id()).await,
        "read_blob_state",
    );
    assert_eq!(found, Some(state));
    let found = must(storage.read_blob_state(absent_1).await, "read_blob_state");
    assert_eq!(found, Some(orphan_state));
    assert!(
        must(storage.read_blob(absent_1).await, "read_blob").is_none(),
        "a blob state does not make the blob present"
    );
    let found = must(
        storage.read_blob_state(blobs[1].id()).await,
        "read_blob_state",
    );
    assert!(found.is_none(), "a blob without a recorded state has none");

    // A later state replaces the earlier one.
    let moved = BlobState {
        chain_id: TestChain::new(1, 22).id(),
        height: BlockHeight(0),
    };
    write(storage, vec![Write::BlobState(blobs[0].id(), moved)]).await;
    let found = must(
        storage.read_blob_state(blobs[0].id()).await,
        "read_blob_state",
    );
    assert_eq!(found, Some(moved));
}

/// Events round-trip by (chain, stream, index), an empty payload included (it is `Some`, not
/// `None`).
pub async fn check_events<S: Storage + ?Sized>(storage: &S) {
    let a = TestChain::new(0, 31).id();
    let b = TestChain::new(1, 32).id();
    let events = vec![
        (event_id(a, "s", 0), b"first".to_vec()),
        (event_id(a, "s", 1), Vec::new()),
        (event_id(a, "t", 0), b"other stream".to_vec()),
        (event_id(b, "s", 0), b"other chain".to_vec()),
        (event_id(a, "", u32::MAX), vec![0xff; 4096]),
    ];
    write(
        storage,
        events
            .iter()
            .map(|(id, payload)| Write::Event(id.clone(), payload.clone()))
            .collect(),
    )
    .await;
    for (id, payload) in &events {
        let found = must(storage.read_event(id).await, "read_event");
        assert_eq!(found.as_ref(), Some(payload), "event {id:?}");
    }
    for absent in [
        event_id(a, "s", 2),
        event_id(b, "t", 0),
        event_id(b, "s", 1),
        event_id(a, "ss", 0),
    ] {
        let found = must(storage.read_event(&absent).await, "read_event");
        assert!(found.is_none(), "absent event {absent:?}");
    }
}

/// Chain states round-trip exactly (every field, the consensus manager's included), and a
/// later state replaces the earlier one.
pub async fn check_chain_states<S: Storage + ?Sized>(storage: &S) {
    let committee = TestCommittee::new(4, 41);
    let mut chain_a = TestChain::new(0, 42);
    let chain_b = TestChain::new(1, 43);

    let first = rich_chain_state(&chain_a, &committee);
    write(storage, vec![Write::ChainState(Arc::new(first.clone()))]).await;
    let found = must(
        storage.read_chain_state(chain_a.id()).await,
        "read_chain_state",
    );
    assert_eq!(found.as_ref(), Some(&first), "rich chain state");
    let found = must(
        storage.read_chain_state(chain_b.id()).await,
        "read_chain_state",
    );
    assert!(found.is_none(), "another chain's state is absent");

    chain_a.commit_blocks(&committee, 2);
    let second = chain_a.state.clone();
    write(storage, vec![Write::ChainState(Arc::new(second.clone()))]).await;
    let found = must(
        storage.read_chain_state(chain_a.id()).await,
        "read_chain_state",
    );
    assert_eq!(found.as_ref(), Some(&second), "the later state replaces");

    write(
        storage,
        vec![Write::ChainState(Arc::new(chain_b.state.clone()))],
    )
    .await;
    let found = must(
        storage.read_chain_state(chain_b.id()).await,
        "read_chain_state",
    );
    assert_eq!(found.as_ref(), Some(&chain_b.state));
    let found = must(
        storage.read_chain_state(chain_a.id()).await,
        "read_chain_state",
    );
    assert_eq!(found.as_ref(), Some(&second), "other chains are untouched");
}

/// Committees round-trip by epoch; a later committee for an epoch replaces the earlier one.
pub async fn check_committees<S: Storage + ?Sized>(storage: &S) {
    let one = TestCommittee::new(1, 51).committee;
    let four = TestCommittee::new(4, 52).committee;
    let seven = TestCommittee::new(7, 53).committee;
    write(
        storage,
        vec![
            Write::Committee(Epoch(0), one.clone()),
            Write::Committee(Epoch(1), four.clone()),
            Write::Committee(Epoch(u32::MAX), seven.clone()),
        ],
    )
    .await;
    for (epoch, expected) in [(0, &one), (1, &four), (u32::MAX, &seven)] {
        let found = must(storage.read_committee(Epoch(epoch)).await, "read_committee");
        assert_eq!(found.as_ref(), Some(expected), "committee of epoch {epoch}");
    }
    let found = must(storage.read_committee(Epoch(2)).await, "read_committee");
    assert!(found.is_none(), "absent epoch");

    write(storage, vec![Write::Committee(Epoch(1), seven.clone())]).await;
    let found = must(storage.read_committee(Epoch(1)).await, "read_committee");
    assert_eq!(found.as_ref(), Some(&seven), "the later committee replaces");
    let found = must(storage.read_committee(Epoch(0)).await, "read_committee");
    assert_eq!(found.as_ref(), Some(&one), "other epochs are untouched");
}

/// Received logs (DESIGN §4.2.1): entries read back in order from any index, at most the limit
/// asked, stopping before the first index not stored, and never another chain's.
pub async fn check_received_logs<S: Storage + ?Sized>(storage: &S) {
    let chain = ChainId(CryptoHash([61; 32]));
    let next_chain = ChainId(CryptoHash([62; 32]));
    let entry = |origin: u8, height: u64| ReceivedEntry {
        origin: ChainId(CryptoHash([origin; 32])),
        height: BlockHeight(height),
    };
    let empty = must(
        storage.read_received_log(chain, 0, 10).await,
        "read_received_log",
    );
    assert!(empty.is_empty(), "a chain without a log");
    write(
        storage,
        vec![
            Write::ReceivedLog(chain, 0, entry(1, 5)),
            Write::ReceivedLog(chain, 1, entry(2, 0)),
            Write::ReceivedLog(next_chain, 0, entry(3, 9)),
        ],
    )
    .await;
    write(storage, vec![Write::ReceivedLog(chain, 2, entry(1, 7))]).await;
    // Index 4 without index 3: a read stops at the gap.
    write(storage, vec![Write::ReceivedLog(chain, 4, entry(4, 4))]).await;
    let all = must(
        storage.read_received_log(chain, 0, 10).await,
        "read_received_log",
    );
    assert_eq!(
        all,
        vec![entry(1, 5), entry(2, 0), entry(1, 7)],
        "the whole log, in order"
    );
    let page = must(
        storage.read_received_log(chain, 1, 1).await,
        "read_received_log",
    );
    assert_eq!(page, vec![entry(2, 0)], "one entry from index 1");
    let after = must(
        storage.read_received_log(chain, 4, 10).await,
        "read_received_log",
    );
    assert_eq!(after, vec![entry(4, 4)], "from an index past the gap");
    let none = must(
        storage.read_received_log(chain, 0, 0).await,
        "read_received_log",
    );
    assert!(none.is_empty(), "a limit of zero");
    let beyond = must(
        storage.read_received_log(chain, 5, 10).await,
        "read_received_log",
    );
    assert!(beyond.is_empty(), "past the end");
    let other = must(
        storage.read_received_log(next_chain, 0, 10).await,
        "read_received_log",
    );
    assert_eq!(other, vec![entry(3, 9)], "another chain's log is its own");
}
