//! Test fixtures shared with other crates' tests (crate feature `testing`).
//!
//! * Deterministic fixtures: [`TestCommittee`] (validators with seeded keys that certify any
//!   value) and [`TestChain`] (a chain whose blocks are executed by the pure rules and certified
//!   one after the other), plus [`sample_blobs`] and [`rich_chain_state`].
//! * The storage conformance suite (DESIGN §7, §10), written once and run on every
//!   [`Storage`]: [`run_storage_conformance`] runs all of the `check_*` functions, each on a
//!   fresh storage.
//!
//! Everything here panics on failure, with a message naming what failed: it is meant to run
//! inside tests.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use quorum_core::block::committee_blob;
use quorum_core::chain::{execute_block, ExecutionInputs};
use quorum_core::manager::{ChainManager, Lock};
use quorum_core::{
    AccountSecretKey, Batch, Blob, BlobId, BlobState, BlobType, Block, BlockHeight, BlockProposal,
    BlockValue, Certificate, CertificateValue, ChainDescription, ChainId, ChainOrigin, ChainState,
    Committee, ConfirmedBlock, ConfirmedBlockCertificate, ConsensusConfig, CryptoHash, Epoch,
    EventId, Hashed, LiteVote, Message, Operation, Round, Storage, StreamId, Timeout, Timestamp,
    ValidatedBlock, ValidatorInfo, ValidatorSecretKey, Write,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The value of `result`, or a panic naming `what` failed and why.
pub(crate) fn must<T, E: Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A committee of validators with equal weights and keys derived from a seed, able to certify
/// any value.
#[derive(Clone, Debug)]
pub struct TestCommittee {
    /// The committee.
    pub committee: Committee,
    /// The validators' signing keys, in the committee's (public key) order.
    pub keys: Vec<ValidatorSecretKey>,
}

impl TestCommittee {
    /// `size` validators of weight 1 with keys drawn from a ChaCha8 generator seeded with
    /// `seed`; addresses are `validator-<i>`. The same arguments always give the same committee.
    ///
    /// # Panics
    /// If `size` is zero (a committee needs weight).
    pub fn new(size: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut keys: Vec<ValidatorSecretKey> = (0..size)
            .map(|_| ValidatorSecretKey::generate(&mut rng))
            .collect();
        keys.sort_by_key(|key| key.public());
        let validators: BTreeMap<_, _> = keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                let info = ValidatorInfo {
                    votes: 1,
                    address: format!("validator-{index}"),
                };
                (key.public(), info)
            })
            .collect();
        let committee = must(Committee::new(validators), "building the test committee");
        TestCommittee { committee, keys }
    }

    /// A certificate for `value` in `round`, signed by every validator.
    pub fn certify<T: CertificateValue>(&self, value: T, round: Round) -> Certificate<T> {
        let value = Hashed::new(value);
        let signatures = self
            .keys
            .iter()
            .map(|key| {
                let vote = LiteVote::new(value.hash(), T::KIND, round, key);
                (vote.validator, vote.signature)
            })
            .collect();
        Certificate::new(value, round, signatures)
    }
}

/// A genesis chain with one owner, whose blocks are executed with the pure chain rules and
/// certified by a [`TestCommittee`] one after the other.
#[derive(Clone, Debug)]
pub struct TestChain {
    /// The chain's description (its hash is the chain id).
    pub description: ChainDescription,
    /// The owner, who proposes every block.
    pub owner: AccountSecretKey,
    /// The chain's state after the last block built.
    pub state: ChainState,
}

impl TestChain {
    /// Balance a test chain starts with.
    pub const INITIAL_BALANCE: u64 = 1_000_000;

    /// The genesis chain number `index`, its owner's key drawn from a ChaCha8 generator seeded
    /// with `seed`. Deterministic.
    pub fn new(index: u32, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let owner = AccountSecretKey::generate(&mut rng);
        let description = ChainDescription {
            origin: ChainOrigin::Genesis(index),
            owners: BTreeMap::from([(owner.public(), 1)]),
            super_owner: None,
            epoch: Epoch(0),
            timestamp: Timestamp(0),
            consensus: ConsensusConfig::default(),
            balance: Self::INITIAL_BALANCE,
        };
        let mut state = ChainState::inactive(description.id());
        state.activate(description.clone(), Timestamp(0));
        TestChain {
            description,
            owner,
            state,
        }
    }

    /// The chain's id.
    pub fn id(&self) -> ChainId {
        self.state.chain_id
    }

    /// The next block (at the state's next height, extending its tip, one millisecond after
    /// the previous one) with `operations`, not executed.
    pub fn next_block(&self, operations: Vec<Operation>) -> Block {
        Block {
            chain_id: self.id(),
            epoch: self.state.epoch,
            height: self.state.next_height,
            timestamp: Timestamp(self.state.timestamp.0.saturating_add(1_000)),
            previous_block_hash: self.state.tip_hash,
            authenticated_owner: self.owner.public(),
            incoming_bundles: Vec::new(),
            operations,
        }
    }

    /// Executes the next block with `operations`, has `committee` confirm it (round
    /// `MultiLeader(0)`), and advances [`TestChain::state`] as a validator commits it: next
    /// height, tip hash, timestamp, state hash and a fresh consensus manager.
    ///
    /// # Panics
    /// If the pure rules refuse the block: the operations must need no blob, event or inbox
    /// (transfers to other chains within the balance, events and opened chains are fine).
    pub fn commit_next(
        &mut self,
        committee: &TestCommittee,
        operations: Vec<Operation>,
    ) -> ConfirmedBlockCertificate {
        let block = self.next_block(operations);
        let execution = must(
            execute_block(&self.state, &block, &ExecutionInputs::default()),
            "executing a test block",
        );
        let value = ConfirmedBlock(BlockValue {
            block,
            outcome: execution.outcome,
        });
        let certificate = committee.certify(value, Round::MultiLeader(0));
        let mut state = execution.state;
        state.tip_hash = Some(certificate.hash());
        state.manager = ChainManager::new(&self.description, state.next_height, state.timestamp);
        self.state = state;
        certificate
    }

    /// Commits `count` blocks, each emitting one event (see [`TestChain::commit_next`]).
    pub fn commit_blocks(
        &mut self,
        committee: &TestCommittee,
        count: usize,
    ) -> Vec<ConfirmedBlockCertificate> {
        (0..count)
            .map(|index| {
                let operations = vec![Operation::EmitEvent {
                    stream: StreamId::user("test"),
                    payload: format!("block {index}").into_bytes(),
                }];
                self.commit_next(committee, operations)
            })
            .collect()
    }
}

/// Blobs of every type, including an empty one.
pub fn sample_blobs() -> Vec<Blob> {
    let committee = TestCommittee::new(4, 7);
    vec![
        Blob::data(b"hello, quorum".to_vec()),
        Blob::data(Vec::new()),
        Blob::data((0..=255u8).cycle().take(10_000).collect()),
        TestChain::new(9, 9).description.to_blob(),
        committee_blob(&committee.committee),
    ]
}

/// `chain`'s state with every field filled: an inbox with an unconsumed bundle, event counts,
/// and a consensus manager holding a proposal, a lock, a validated certificate, votes and a
/// timeout certificate. Round-trips through a storage only if nothing is lost.
pub fn rich_chain_state(chain: &TestChain, committee: &TestCommittee) -> ChainState {
    let mut state = chain.state.clone();
    let origin = TestChain::new(1_000, 1_000).id();
    state.receive_bundle(
        origin,
        BlockHeight(3),
        vec![Message::Credit { amount: 5 }, Message::Credit { amount: 7 }],
    );
    state.event_counts.insert(StreamId::user("rich"), 3);

    let round = Round::MultiLeader(1);
    let block = chain.next_block(vec![Operation::Transfer {
        recipient: origin,
        amount: 10,
    }]);
    let execution = must(
        execute_block(&chain.state, &block, &ExecutionInputs::default()),
        "executing the rich state's proposal",
    );
    let value = BlockValue {
        block: block.clone(),
        outcome: execution.outcome,
    };
    let validated = committee.certify(ValidatedBlock(value.clone()), round);
    let timeout = committee.certify(
        Timeout {
            chain_id: chain.id(),
            height: block.height,
            epoch: block.epoch,
        },
        Round::MultiLeader(0),
    );
    let manager = &mut state.manager;
    manager.current_round = round;
    manager.proposed = Some(Box::new(BlockProposal::new(block, round, &chain.owner)));
    manager.lock = Some(Lock {
        round,
        value: value.clone(),
    });
    manager.pending_vote = committee.keys.first().map(|key| {
        LiteVote::new(
            validated.hash(),
            <ValidatedBlock as CertificateValue>::KIND,
            round,
            key,
        )
    });
    manager.locking_certificate = Some(Box::new(validated));
    manager.timeout_vote = committee.keys.first().map(|key| {
        LiteVote::new(
            timeout.hash(),
            <Timeout as CertificateValue>::KIND,
            round,
            key,
        )
    });
    manager.timeout_certificate = Some(Box::new(timeout));
    state
}

// ---------------------------------------------------------------------------------------------
// The storage conformance suite
// ---------------------------------------------------------------------------------------------

/// Runs every check of the storage conformance suite, each on a fresh storage from `make`.
///
/// The concurrency checks spawn tokio tasks: run it on a multi-thread runtime
/// (`#[tokio::test(flavor = "multi_thread")]`) so that they really run in parallel.
pub async fn run_storage_conformance<S, F>(make: F)
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
    check_batch_contents(&make()).await;
    check_batch_later_writes_win(&make()).await;
    check_batches_atomic_for_readers(Arc::new(make())).await;
    check_concurrent_batches(Arc::new(make())).await;
}

/// Applies `writes` in one batch.
async fn write<S: Storage + ?Sized>(storage: &S, writes: Vec<Write>) {
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
            Write::Certificate(Box::new(a[0].clone())),
            Write::Certificate(Box::new(a[1].clone())),
        ],
    )
    .await;
    for index in [2, 4] {
        write(
            storage,
            vec![Write::Certificate(Box::new(a[index].clone()))],
        )
        .await;
    }
    write(
        storage,
        b.iter()
            .map(|certificate| Write::Certificate(Box::new(certificate.clone())))
            .collect(),
    )
    .await;
    // Writing a certificate again changes nothing.
    write(storage, vec![Write::Certificate(Box::new(a[1].clone()))]).await;

    for certificate in [&a[0], &a[1], &a[2], &a[4], &b[0], &b[1], &b[2]] {
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
        assert_same_certificate(&found, certificate, &committee);
    }
    for absent in [&a[3], &a[5]] {
        let found = must(
            storage.read_certificate(absent.hash()).await,
            "read_certificate",
        );
        assert!(found.is_none(), "a certificate never written is absent");
    }

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

    // Chain B's heights are its own; an unknown chain has nothing.
    let asked = heights(&[2, 3, 0]);
    let hashes = must(
        storage.read_certificate_hashes(chain_b.id(), &asked).await,
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
    write(storage, vec![Write::ChainState(Box::new(first.clone()))]).await;
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
    write(storage, vec![Write::ChainState(Box::new(second.clone()))]).await;
    let found = must(
        storage.read_chain_state(chain_a.id()).await,
        "read_chain_state",
    );
    assert_eq!(found.as_ref(), Some(&second), "the later state replaces");

    write(
        storage,
        vec![Write::ChainState(Box::new(chain_b.state.clone()))],
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
            Write::Certificate(Box::new(certificate.clone())),
            Write::ChainState(Box::new(chain.state.clone())),
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
        found.and_then(|state| state.tip_hash),
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
            Write::ChainState(Box::new(old_state)),
            Write::Certificate(Box::new(first.clone())),
            Write::Event(event.clone(), b"first".to_vec()),
            Write::BlobState(blob.id(), state_1),
            Write::Committee(Epoch(3), committee_1),
            Write::Event(event.clone(), b"second".to_vec()),
            Write::Certificate(Box::new(second.clone())),
            Write::BlobState(blob.id(), state_2),
            Write::Committee(Epoch(3), committee_2.clone()),
            Write::ChainState(Box::new(chain.state.clone())),
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

/// A reader running beside a writer never sees half a batch: each batch sets chain A's balance
/// then chain B's to the same value; reading A then B must never find B behind A.
pub async fn check_batches_atomic_for_readers<S: Storage + 'static>(storage: Arc<S>) {
    let a = TestChain::new(0, 81).state;
    let b = TestChain::new(1, 82).state;
    let (chain_a, chain_b) = (a.chain_id, b.chain_id);

    let writer = {
        let storage = storage.clone();
        tokio::spawn(async move {
            for round in 1..=ATOMICITY_ROUNDS {
                let mut a = a.clone();
                let mut b = b.clone();
                a.balance = round;
                b.balance = round;
                write(
                    &*storage,
                    vec![
                        Write::ChainState(Box::new(a)),
                        Write::ChainState(Box::new(b)),
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
            let balance = |state: Option<ChainState>| state.map_or(0, |state| state.balance);
            let mut observed = 0;
            loop {
                // Read after the writer finished: the final values must be there.
                let last = done.load(Ordering::Acquire);
                let a = balance(must(storage.read_chain_state(chain_a).await, "reading A"));
                let b = balance(must(storage.read_chain_state(chain_b).await, "reading B"));
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
        let batches: Vec<Batch> = chain
            .commit_blocks(&committee, BLOCKS_PER_TASK)
            .into_iter()
            .enumerate()
            .map(|(index, certificate)| {
                let mut state = chain.state.clone();
                // The state as of this block (the chain's final state is the last one's).
                state.next_height = BlockHeight(index as u64 + 1);
                state.tip_hash = Some(certificate.hash());
                let event = event_id(chain.id(), "concurrent", index as u32);
                Batch {
                    writes: vec![
                        Write::Certificate(Box::new(certificate)),
                        Write::Event(event, vec![task as u8, index as u8]),
                        Write::ChainState(Box::new(state)),
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
        assert_eq!(state.next_height, BlockHeight(BLOCKS_PER_TASK as u64));
        assert_eq!(state.tip_hash, certificates.last().map(Certificate::hash));
        assert_eq!(state, chain.state, "task {task}: final chain state");
    }
}
