//! The transport conformance suite (DESIGN §6, §10), written once and run on every transport.
//!
//! A transport is correct when a node reached through it behaves exactly like the node itself.
//! The suite checks that *differentially*: it builds two identical validators (same committee,
//! key, genesis and manual clock), calls one directly and the other through the transport under
//! test, with the same inputs, and requires the same answers — values, votes, signatures and
//! [`NodeError`]s — and the same chain states afterwards. Everything is deterministic (seeded
//! keys, a manual clock, ed25519's deterministic signatures), so any difference is the
//! transport's doing.
//!
//! A transport plugs in with a [`Connector`]: any `Fn(Arc<dyn ValidatorNode>) -> impl Future<
//! Output = Arc<dyn ValidatorNode>>` that returns a node reaching the given one through the
//! transport. Then:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn transport_conformance() {
//!     quorum_node::conformance::run_transport_conformance(|node| async move {
//!         Arc::new(MyTransportNode::new(node)) as Arc<dyn ValidatorNode>
//!     })
//!     .await;
//! }
//! ```
//!
//! [`run_transport_conformance`] runs every `check_*` function, each on a fresh pair of
//! validators (so `connect` is called once per check). The checks can also be run one by one.
//! Everything here panics on failure with a message naming the method and the check.

use std::future::Future;
use std::sync::Arc;

use quorum_core::block::epoch_event_id;
use quorum_core::node::MAX_CERTIFICATES_PER_BATCH;
use quorum_core::{
    BatchOutcome, Blob, BlobId, Block, BlockHeight, BlockProposal, BlockValue, Certificate,
    CertificateError, ChainId, ChainInfoQuery, ChainInfoResponse, ConfirmedBlock,
    ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, Epoch, ExecutionError,
    IncomingBundle, Limit, LiteVote, Message, NodeError, Operation, Round, Signature, TimeDelta,
    Timeout, Timestamp, ValidatedBlock, ValidatorNode, ValidatorPublicKey, Violation, VoteKind,
};
use tokio::task::JoinSet;

use crate::clock::{Clock, ManualClock};
use crate::genesis::Genesis;
use crate::memory::MemoryStorage;
use crate::testing::{TestChain, TestCommittee};
use crate::worker::{Worker, WorkerConfig};

/// Seed of the suite's committee and chains.
pub const SEED: u64 = 0x7472_616e_7370; // "transp"
/// Where the suite's manual clock starts, in microseconds.
pub const START: Timestamp = Timestamp(1_000_000_000);
/// Validators in the suite's committee (the validator under test is the first).
pub const COMMITTEE_SIZE: usize = 4;
/// Genesis chains of [`TestValidator`]; chain 0 is the admin chain.
pub const CHAINS: usize = 4;
/// Requests sent at once by [`check_concurrent_requests`].
pub const CONCURRENT_REQUESTS: usize = 120;

/// The value of `result`, or a panic naming `what` failed and why.
fn must<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error:?}"),
    }
}

/// The value of `option`, or a panic naming what is missing.
fn some<T>(option: Option<T>, what: &str) -> T {
    match option {
        Some(value) => value,
        None => panic!("{what}: missing"),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// How a transport under test is reached: given a node, returns a node that reaches it through
/// the transport. Implemented by every `Fn(Arc<dyn ValidatorNode>) -> Fut` closure whose `Fut`
/// yields an `Arc<dyn ValidatorNode>`.
pub trait Connector {
    /// A node that forwards every call to `node` through the transport.
    fn connect(&self, node: Arc<dyn ValidatorNode>)
        -> impl Future<Output = Arc<dyn ValidatorNode>>;
}

impl<C, Fut> Connector for C
where
    C: Fn(Arc<dyn ValidatorNode>) -> Fut,
    Fut: Future<Output = Arc<dyn ValidatorNode>>,
{
    fn connect(
        &self,
        node: Arc<dyn ValidatorNode>,
    ) -> impl Future<Output = Arc<dyn ValidatorNode>> {
        self(node)
    }
}

/// A validator Worker over [`MemoryStorage`], with a deterministic committee of
/// [`COMMITTEE_SIZE`] (the Worker holds the first key), [`CHAINS`] genesis chains and a manual
/// clock at [`START`]. Two `TestValidator`s sharing a clock behave identically when fed the
/// same inputs.
#[derive(Clone, Debug)]
pub struct TestValidator {
    /// The Worker.
    pub worker: Arc<Worker<MemoryStorage>>,
    /// The committee of epoch 0; it can certify any value.
    pub committee: TestCommittee,
    /// The genesis chains, as they are at genesis (chain 0 is the admin chain). Their
    /// [`TestChain::commit_blocks`] certificates apply to the Worker.
    pub chains: Vec<TestChain>,
    /// The Worker's clock.
    pub clock: ManualClock,
}

impl TestValidator {
    /// A validator whose Worker reads `clock` (shared by clones of the clock). Deterministic.
    pub async fn new(clock: ManualClock) -> Self {
        let committee = TestCommittee::new(COMMITTEE_SIZE, SEED);
        let chains: Vec<TestChain> = (0..CHAINS)
            .map(|index| {
                let index = must(u32::try_from(index), "chain index");
                TestChain::new(index, SEED.wrapping_add(u64::from(index)))
            })
            .collect();
        let genesis = Genesis {
            committee: committee.committee.clone(),
            chains: chains
                .iter()
                .map(|chain| chain.description.clone())
                .collect(),
        };
        let storage = MemoryStorage::new();
        let admin = must(
            genesis.initialize(&storage, clock.now()).await,
            "initializing the genesis",
        );
        let key = some(committee.keys.first().cloned(), "the validator's key");
        let worker = Worker::new(
            storage,
            Some(key),
            Arc::new(clock.clone()),
            WorkerConfig::new(admin),
        );
        TestValidator {
            worker: Arc::new(worker),
            committee,
            chains,
            clock,
        }
    }

    /// The Worker as a `dyn ValidatorNode`.
    pub fn node(&self) -> Arc<dyn ValidatorNode> {
        self.worker.clone()
    }

    /// The validator's public key (it signs votes and responses).
    pub fn public_key(&self) -> ValidatorPublicKey {
        some(self.worker.public_key(), "the validator's public key")
    }

    /// The id of genesis chain `chain`.
    pub fn chain_id(&self, chain: usize) -> ChainId {
        self.chains[chain].id()
    }

    /// The admin chain.
    pub fn admin_chain(&self) -> ChainId {
        self.chain_id(0)
    }

    /// The next block of genesis chain `chain` on top of what the Worker has, timestamped now.
    pub async fn next_block(&self, chain: usize, operations: Vec<Operation>) -> Block {
        let chain_id = self.chain_id(chain);
        let state = must(self.worker.chain_state(chain_id).await, "reading a chain");
        Block {
            chain_id,
            epoch: state.epoch,
            height: state.next_height,
            timestamp: self.clock.now().max(state.timestamp),
            previous_block_hash: state.tip_hash,
            authenticated_owner: self.chains[chain].owner.public(),
            incoming_bundles: Vec::new(),
            operations,
        }
    }

    /// `block` of genesis chain `chain`, proposed by its owner in `round`.
    pub fn proposal(&self, chain: usize, block: Block, round: Round) -> BlockProposal {
        BlockProposal::new(block, round, &self.chains[chain].owner)
    }

    /// What executing `block` gives on the Worker, with `blobs` available besides its own.
    pub async fn value(&self, block: &Block, blobs: &[Blob]) -> BlockValue {
        must(
            self.worker.stage_block_execution(block, blobs).await,
            "executing a block",
        )
    }

    /// `block`'s value, validated by the whole committee in `round`.
    pub async fn validated(
        &self,
        block: &Block,
        blobs: &[Blob],
        round: Round,
    ) -> Certificate<ValidatedBlock> {
        let value = self.value(block, blobs).await;
        self.committee.certify(ValidatedBlock(value), round)
    }

    /// `block`'s value, confirmed by the whole committee in `round`.
    pub async fn confirmed(
        &self,
        block: &Block,
        blobs: &[Blob],
        round: Round,
    ) -> ConfirmedBlockCertificate {
        let value = self.value(block, blobs).await;
        self.committee.certify(ConfirmedBlock(value), round)
    }

    /// `count` confirmed certificates of genesis chain `chain` from genesis on (see
    /// [`TestChain::commit_blocks`]).
    pub fn history(&self, chain: usize, count: usize) -> Vec<ConfirmedBlockCertificate> {
        self.chains[chain]
            .clone()
            .commit_blocks(&self.committee, count)
    }
}

/// A chain no validator knows.
fn stranger() -> TestChain {
    TestChain::new(99, SEED ^ 99)
}

/// A data blob no validator knows, distinct per `index`.
fn unknown_blob(index: usize) -> Blob {
    Blob::data(format!("unknown blob {index}").into_bytes())
}

/// Two identical validators: `direct` is called in process, `served` is reached as `remote`
/// through the transport under test.
struct Pair {
    direct: TestValidator,
    served: TestValidator,
    remote: Arc<dyn ValidatorNode>,
}

impl Pair {
    async fn new(connect: &impl Connector) -> Pair {
        let clock = ManualClock::new(START);
        let direct = TestValidator::new(clock.clone()).await;
        let served = TestValidator::new(clock).await;
        let remote = connect.connect(served.node()).await;
        Pair {
            direct,
            served,
            remote,
        }
    }

    /// Both validators hold the same state of every genesis chain (so the served one really
    /// processed what was sent through the transport).
    async fn assert_same_state(&self, check: &str) {
        for chain in 0..CHAINS {
            let chain_id = self.direct.chain_id(chain);
            let direct = must(self.direct.worker.chain_state(chain_id).await, "reading");
            let served = must(self.served.worker.chain_state(chain_id).await, "reading");
            assert_eq!(
                served, direct,
                "{check}: chain {chain} differs between the node behind the transport and the \
                 node called directly"
            );
        }
    }
}

/// Calls `$call` with `$node` bound to the directly called Worker, then to the node behind the
/// transport, asserts the two answers are equal and returns the transport's.
macro_rules! both {
    ($pair:expr, $what:expr, |$node:ident| $call:expr) => {{
        let direct = {
            let $node: &dyn ValidatorNode = &*$pair.direct.worker;
            $call.await
        };
        let remote = {
            let $node: &dyn ValidatorNode = &*$pair.remote;
            $call.await
        };
        assert_eq!(
            remote, direct,
            "{}: the answer through the transport differs from the Worker's",
            $what
        );
        remote
    }};
}

/// Like `both!`, and asserts the answer is `Err($error)`.
macro_rules! both_fail {
    ($pair:expr, $what:expr, |$node:ident| $call:expr, $error:expr) => {{
        let answer = both!($pair, $what, |$node| $call);
        let expected: NodeError = $error;
        assert_eq!(
            answer.as_ref().err(),
            Some(&expected),
            "{}: expected the error {:?}",
            $what,
            expected
        );
    }};
}

impl Pair {
    /// Gives both validators `history` (one batch), checking they answer alike.
    async fn commit_history(&self, history: &[ConfirmedBlockCertificate]) {
        let answer = both!(self, "handle_confirmed_certificates", |node| node
            .handle_confirmed_certificates(
                history.to_vec(),
                CrossChainDelivery::Blocking
            ));
        must(answer, "handle_confirmed_certificates");
    }
}

/// Checks that a response is signed by `validator` and returns its vote in `pending`.
fn signed_vote(
    response: &ChainInfoResponse,
    validator: &ValidatorPublicKey,
    what: &str,
) -> LiteVote {
    must(response.check(validator), what);
    let vote = some(response.info.manager.pending.clone(), what);
    must(vote.check(validator), what);
    vote
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

/// Runs every check of the transport conformance suite, each on a fresh pair of validators
/// (calling `connect` once per check).
///
/// [`check_concurrent_requests`] spawns tokio tasks: a multi-thread runtime makes them really
/// run in parallel (`#[tokio::test(flavor = "multi_thread")]`), a current-thread one works too.
pub async fn run_transport_conformance(connect: impl Connector) {
    check_block_proposals(&connect).await;
    check_certificates(&connect).await;
    check_timeouts(&connect).await;
    check_confirmed_batches(&connect).await;
    check_chain_info_queries(&connect).await;
    check_blobs(&connect).await;
    check_certificate_downloads(&connect).await;
    check_concurrent_requests(&connect).await;
}

/// Proposals: a proposal gets the same signed Validated vote, a repeated one the same answer,
/// and every refusal comes back intact: `WrongRound`, `UnexpectedBlockHeight`,
/// `InvalidTimestamp`, `BlobsNotFound` with the exact ids, `EventsNotFound`,
/// `MissingCrossChainUpdate`, `InactiveChain`, and a nested `Execution` error.
pub async fn check_block_proposals(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let key = v.public_key();

    let transfer = Operation::Transfer {
        recipient: v.chain_id(2),
        amount: 5,
    };
    let block = v.next_block(1, vec![transfer]).await;
    let proposal = v.proposal(1, block, Round::MultiLeader(0));
    let answer = both!(pair, "handle_block_proposal", |node| node
        .handle_block_proposal(proposal.clone()));
    let response = must(answer, "handle_block_proposal");
    let vote = signed_vote(&response, &key, "the vote on a proposal");
    assert_eq!(vote.kind, VoteKind::Validated, "the vote on a proposal");
    assert_eq!(vote.round, Round::MultiLeader(0), "the vote on a proposal");
    let again = both!(pair, "handle_block_proposal (repeated)", |node| node
        .handle_block_proposal(proposal.clone()));
    assert_eq!(again, Ok(response), "a repeated proposal changes nothing");

    // Refusals, all on chain 2, which stays untouched.
    let block = v.next_block(2, vec![]).await;
    let wrong_round = v.proposal(2, block.clone(), Round::MultiLeader(1));
    both_fail!(
        pair,
        "handle_block_proposal (wrong round)",
        |node| node.handle_block_proposal(wrong_round.clone()),
        NodeError::WrongRound(Round::MultiLeader(0))
    );

    let mut ahead = block.clone();
    ahead.height = BlockHeight(3);
    let ahead = v.proposal(2, ahead, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (height ahead)",
        |node| node.handle_block_proposal(ahead.clone()),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(0),
            found_block_height: BlockHeight(3),
        }
    );

    let mut future = block.clone();
    let grace = v.worker.config().timestamp_grace;
    future.timestamp = START.saturating_add(grace).saturating_add(TimeDelta(1));
    let future_proposal = v.proposal(2, future.clone(), Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (timestamp ahead)",
        |node| node.handle_block_proposal(future_proposal.clone()),
        NodeError::InvalidTimestamp {
            block_timestamp: future.timestamp,
            local_time: START,
        }
    );

    let mut missing: Vec<BlobId> = (0..3).map(|index| unknown_blob(index).id()).collect();
    let reads = missing.iter().copied().map(Operation::ReadBlob).collect();
    let reading = v.proposal(2, v.next_block(2, reads).await, Round::MultiLeader(0));
    missing.sort();
    both_fail!(
        pair,
        "handle_block_proposal (unknown blobs)",
        |node| node.handle_block_proposal(reading.clone()),
        NodeError::BlobsNotFound(missing.clone())
    );

    let new_epoch = vec![Operation::ProcessNewEpoch(Epoch(1))];
    let epoch = v.proposal(2, v.next_block(2, new_epoch).await, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (unknown epoch)",
        |node| node.handle_block_proposal(epoch.clone()),
        NodeError::EventsNotFound(vec![epoch_event_id(v.admin_chain(), Epoch(1))])
    );

    let mut receiving = block.clone();
    receiving.incoming_bundles = vec![IncomingBundle {
        origin: v.chain_id(1),
        height: BlockHeight(0),
        messages: vec![Message::Credit { amount: 5 }],
    }];
    let receiving = v.proposal(2, receiving, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (bundle not received)",
        |node| node.handle_block_proposal(receiving.clone()),
        NodeError::MissingCrossChainUpdate {
            chain_id: v.chain_id(2),
            origin: v.chain_id(1),
            height: BlockHeight(0),
        }
    );

    let stranger = stranger();
    let foreign = BlockProposal::new(
        stranger.next_block(vec![]),
        Round::MultiLeader(0),
        &stranger.owner,
    );
    both_fail!(
        pair,
        "handle_block_proposal (unknown chain)",
        |node| node.handle_block_proposal(foreign.clone()),
        NodeError::InactiveChain(stranger.id())
    );

    let too_much = TestChain::INITIAL_BALANCE + 1;
    let overdraft = vec![Operation::Transfer {
        recipient: v.chain_id(1),
        amount: too_much,
    }];
    let overdraft = v.proposal(2, v.next_block(2, overdraft).await, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (overdraft)",
        |node| node.handle_block_proposal(overdraft.clone()),
        NodeError::Execution(ExecutionError::InsufficientBalance {
            balance: TestChain::INITIAL_BALANCE,
            amount: too_much,
        })
    );
    pair.assert_same_state("check_block_proposals").await;
}

/// Certificates: validated → signed Confirmed vote; confirmed → committed (and idempotent);
/// the same through lite certificates; and `MissingCertificateValue`, `UnexpectedBlockHeight`,
/// `BlobsNotFound` (a validated block publishing a blob the node lacks) and a nested
/// `InvalidCertificate(BadSignatures(..))` come back intact.
pub async fn check_certificates(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let key = v.public_key();
    let round = Round::MultiLeader(0);

    // Chain 1, full certificates.
    let block = v.next_block(1, vec![]).await;
    let proposal = v.proposal(1, block.clone(), round);
    must(
        both!(pair, "handle_block_proposal", |node| node
            .handle_block_proposal(proposal.clone())),
        "handle_block_proposal",
    );
    let validated = v.validated(&block, &[], round).await;
    let answer = both!(pair, "handle_validated_certificate", |node| node
        .handle_validated_certificate(validated.clone()));
    let response = must(answer, "handle_validated_certificate");
    let vote = signed_vote(&response, &key, "the vote on a validated certificate");
    assert_eq!(
        vote.kind,
        VoteKind::Confirmed,
        "the vote on a validated block"
    );
    let confirmed = v.confirmed(&block, &[], round).await;
    assert_eq!(
        vote.value_hash,
        confirmed.hash(),
        "the vote confirms the block"
    );
    let answer = both!(pair, "handle_confirmed_certificate", |node| node
        .handle_confirmed_certificate(
            confirmed.clone(),
            CrossChainDelivery::Blocking
        ));
    let response = must(answer, "handle_confirmed_certificate");
    must(
        response.check(&key),
        "the response to a confirmed certificate",
    );
    assert_eq!(response.info.next_block_height, BlockHeight(1));
    assert_eq!(response.info.block_hash, Some(confirmed.hash()));
    let again = both!(pair, "handle_confirmed_certificate (repeated)", |node| node
        .handle_confirmed_certificate(
            confirmed.clone(),
            CrossChainDelivery::NonBlocking
        ));
    assert_eq!(
        again,
        Ok(response),
        "a repeated certificate changes nothing"
    );

    // Chain 2, lite certificates.
    let block = v.next_block(2, vec![]).await;
    let proposal = v.proposal(2, block.clone(), round);
    must(
        both!(pair, "handle_block_proposal", |node| node
            .handle_block_proposal(proposal.clone())),
        "handle_block_proposal",
    );
    let lite = v.validated(&block, &[], round).await.lite();
    let answer = both!(pair, "handle_lite_certificate (validated)", |node| node
        .handle_lite_certificate(lite.clone(), CrossChainDelivery::NonBlocking));
    let vote = signed_vote(
        &must(answer, "handle_lite_certificate (validated)"),
        &key,
        "the vote on a lite validated certificate",
    );
    assert_eq!(vote.kind, VoteKind::Confirmed);
    let lite = v.confirmed(&block, &[], round).await.lite();
    let answer = both!(pair, "handle_lite_certificate (confirmed)", |node| node
        .handle_lite_certificate(lite.clone(), CrossChainDelivery::Blocking));
    let response = must(answer, "handle_lite_certificate (confirmed)");
    assert_eq!(response.info.next_block_height, BlockHeight(1));

    // Chain 3, refusals.
    let history = v.history(3, 2);
    let unheld = history[0].lite();
    both_fail!(
        pair,
        "handle_lite_certificate (value not held)",
        |node| node.handle_lite_certificate(unheld.clone(), CrossChainDelivery::Blocking),
        NodeError::MissingCertificateValue
    );
    both_fail!(
        pair,
        "handle_confirmed_certificate (height ahead)",
        |node| node.handle_confirmed_certificate(history[1].clone(), CrossChainDelivery::Blocking),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(0),
            found_block_height: BlockHeight(1),
        }
    );
    let (value, certified_round, mut signatures) = history[0].clone().into_parts();
    let forged_signer = signatures[1].0;
    signatures[1].1 = Signature::from_bytes(&[9; 64]);
    let forged = Certificate::new(value, certified_round, signatures);
    both_fail!(
        pair,
        "handle_confirmed_certificate (bad signature)",
        |node| node.handle_confirmed_certificate(forged.clone(), CrossChainDelivery::Blocking),
        NodeError::InvalidCertificate(CertificateError::BadSignatures(vec![forged_signer]))
    );
    let blob = unknown_blob(7);
    let publishing = v
        .next_block(3, vec![Operation::PublishBlob(blob.id())])
        .await;
    let validated = v
        .validated(&publishing, std::slice::from_ref(&blob), round)
        .await;
    both_fail!(
        pair,
        "handle_validated_certificate (blob not uploaded)",
        |node| node.handle_validated_certificate(validated.clone()),
        NodeError::BlobsNotFound(vec![blob.id()])
    );
    let answer = both!(pair, "handle_confirmed_certificate", |node| node
        .handle_confirmed_certificate(
            history[0].clone(),
            CrossChainDelivery::Blocking
        ));
    assert_eq!(
        must(answer, "handle_confirmed_certificate").info.block_hash,
        Some(history[0].hash())
    );
    pair.assert_same_state("check_certificates").await;
}

/// Timeouts: no timeout vote before the deadline, a signed one after; a timeout certificate,
/// full or lite, moves the round; one for a later height is `UnexpectedBlockHeight`.
pub async fn check_timeouts(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let key = v.public_key();
    let chain_id = v.chain_id(1);
    let first = Round::MultiLeader(0);

    let query = ChainInfoQuery::new(chain_id).with_timeout(BlockHeight(0), first);
    let early = both!(pair, "handle_chain_info_query (timeout, early)", |node| {
        node.handle_chain_info_query(query.clone())
    });
    let early = must(early, "handle_chain_info_query (timeout, early)");
    assert_eq!(
        early.info.manager.timeout_vote, None,
        "no timeout vote early"
    );
    let deadline = some(early.info.manager.round_timeout, "the round's deadline");
    v.clock.set(deadline.saturating_add(TimeDelta(1)));
    let late = both!(pair, "handle_chain_info_query (timeout, late)", |node| node
        .handle_chain_info_query(query.clone()));
    let late = must(late, "handle_chain_info_query (timeout, late)");
    must(late.check(&key), "the response carrying a timeout vote");
    let vote = some(late.info.manager.timeout_vote.clone(), "the timeout vote");
    must(vote.check(&key), "the timeout vote");
    assert_eq!((vote.kind, vote.round), (VoteKind::Timeout, first));

    let timeout = |round| {
        v.committee.certify(
            Timeout {
                chain_id,
                height: BlockHeight(0),
                epoch: Epoch(0),
            },
            round,
        )
    };
    let certificate = timeout(first);
    assert_eq!(
        certificate.hash(),
        vote.value_hash,
        "the vote is for this timeout"
    );
    let answer = both!(pair, "handle_timeout_certificate", |node| node
        .handle_timeout_certificate(certificate.clone()));
    let response = must(answer, "handle_timeout_certificate");
    assert_eq!(response.info.manager.current_round, Round::MultiLeader(1));

    let lite = timeout(Round::MultiLeader(1)).lite();
    let answer = both!(pair, "handle_lite_certificate (timeout)", |node| node
        .handle_lite_certificate(lite.clone(), CrossChainDelivery::NonBlocking));
    let response = must(answer, "handle_lite_certificate (timeout)");
    assert_eq!(response.info.manager.current_round, Round::SingleLeader(0));

    let later = v.committee.certify(
        Timeout {
            chain_id,
            height: BlockHeight(5),
            epoch: Epoch(0),
        },
        first,
    );
    both_fail!(
        pair,
        "handle_timeout_certificate (height ahead)",
        |node| node.handle_timeout_certificate(later.clone()),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(0),
            found_block_height: BlockHeight(5),
        }
    );
    pair.assert_same_state("check_timeouts").await;
}

/// Batches of confirmed certificates: the [`BatchOutcome`] of a full batch, of one that stops
/// at a gap (with the error), of an empty one and of one mixing chains; an oversize batch is
/// `LimitExceeded(BatchSize)`.
pub async fn check_confirmed_batches(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let history = v.history(1, 6);

    let batch = history[..3].to_vec();
    let outcome = both!(pair, "handle_confirmed_certificates", |node| node
        .handle_confirmed_certificates(batch.clone(), CrossChainDelivery::Blocking));
    let outcome = must(outcome, "handle_confirmed_certificates");
    assert_eq!((outcome.processed, &outcome.error), (3, &None));
    let info = some(outcome.info, "the batch's chain information");
    must(info.check(&v.public_key()), "the batch's chain information");
    assert_eq!(info.info.next_block_height, BlockHeight(3));

    // Height 2 again (already there, counts as processed), 3, then a gap before 5.
    let gap = vec![history[2].clone(), history[3].clone(), history[5].clone()];
    let outcome = both!(pair, "handle_confirmed_certificates (gap)", |node| node
        .handle_confirmed_certificates(gap.clone(), CrossChainDelivery::NonBlocking));
    let outcome = must(outcome, "handle_confirmed_certificates (gap)");
    assert_eq!(outcome.processed, 2, "the batch stops at the gap");
    assert_eq!(
        outcome.error,
        Some(NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(4),
            found_block_height: BlockHeight(5),
        })
    );
    let info = some(outcome.info, "the stopped batch's chain information");
    assert_eq!(info.info.next_block_height, BlockHeight(4));

    let empty = both!(pair, "handle_confirmed_certificates (empty)", |node| node
        .handle_confirmed_certificates(Vec::new(), CrossChainDelivery::Blocking));
    assert_eq!(
        empty,
        Ok(BatchOutcome {
            processed: 0,
            info: None,
            error: None,
        })
    );

    let mixed = vec![history[4].clone(), v.history(2, 1)[0].clone()];
    let outcome = both!(pair, "handle_confirmed_certificates (two chains)", |node| {
        node.handle_confirmed_certificates(mixed.clone(), CrossChainDelivery::Blocking)
    });
    let outcome = must(outcome, "handle_confirmed_certificates (two chains)");
    assert_eq!(outcome.processed, 1);
    assert_eq!(
        outcome.error,
        Some(NodeError::ProtocolViolation(Violation::WrongChain))
    );

    let oversize = vec![history[5].clone(); MAX_CERTIFICATES_PER_BATCH + 1];
    both_fail!(
        pair,
        "handle_confirmed_certificates (oversize)",
        |node| node.handle_confirmed_certificates(oversize.clone(), CrossChainDelivery::Blocking),
        NodeError::LimitExceeded(Limit::BatchSize)
    );
    pair.assert_same_state("check_confirmed_batches").await;
}

/// Chain information: a signed answer with the chain's description and height, certificate
/// hashes for a range (clipped to what exists), manager values (the proposal voted for),
/// `UnexpectedBlockHeight` for a wrong `test_next_block_height`, `InactiveChain`.
pub async fn check_chain_info_queries(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let history = v.history(1, 3);
    let chain_id = v.chain_id(1);
    pair.commit_history(&history).await;

    let query = ChainInfoQuery::new(chain_id);
    let answer = both!(pair, "handle_chain_info_query", |node| node
        .handle_chain_info_query(query.clone()));
    let response = must(answer, "handle_chain_info_query");
    must(response.check(&v.public_key()), "the chain information");
    assert_eq!(response.info.chain_id, chain_id);
    assert_eq!(response.info.next_block_height, BlockHeight(3));
    assert_eq!(
        response.info.description.as_ref(),
        Some(&v.chains[1].description)
    );

    let hashes: Vec<CryptoHash> = history.iter().map(Certificate::hash).collect();
    for (start, end, expected) in [
        (0, 3, &hashes[..]),
        (1, 100, &hashes[1..]),
        (3, 5, &hashes[3..]),
    ] {
        let query = ChainInfoQuery::new(chain_id)
            .with_certificate_hashes(BlockHeight(start), BlockHeight(end));
        let answer = both!(
            pair,
            "handle_chain_info_query (certificate hashes)",
            |node| node.handle_chain_info_query(query.clone())
        );
        let response = must(answer, "handle_chain_info_query (certificate hashes)");
        assert_eq!(
            response.info.requested_certificate_hashes, expected,
            "certificate hashes {start}..{end}"
        );
    }

    let mut query = ChainInfoQuery::new(chain_id);
    query.test_next_block_height = Some(BlockHeight(3));
    must(
        both!(pair, "handle_chain_info_query (right height)", |node| node
            .handle_chain_info_query(query.clone())),
        "handle_chain_info_query (right height)",
    );
    query.test_next_block_height = Some(BlockHeight(2));
    both_fail!(
        pair,
        "handle_chain_info_query (wrong height)",
        |node| node.handle_chain_info_query(query.clone()),
        NodeError::UnexpectedBlockHeight {
            expected_block_height: BlockHeight(3),
            found_block_height: BlockHeight(2),
        }
    );

    let proposal = v.proposal(2, v.next_block(2, vec![]).await, Round::MultiLeader(0));
    must(
        both!(pair, "handle_block_proposal", |node| node
            .handle_block_proposal(proposal.clone())),
        "handle_block_proposal",
    );
    let query = ChainInfoQuery::new(v.chain_id(2)).with_manager_values();
    let answer = both!(pair, "handle_chain_info_query (manager values)", |node| {
        node.handle_chain_info_query(query.clone())
    });
    let response = must(answer, "handle_chain_info_query (manager values)");
    assert_eq!(
        response.info.manager.requested_proposed.as_deref(),
        Some(&proposal)
    );

    let stranger = stranger().id();
    both_fail!(
        pair,
        "handle_chain_info_query (unknown chain)",
        |node| node.handle_chain_info_query(ChainInfoQuery::new(stranger)),
        NodeError::InactiveChain(stranger)
    );
    pair.assert_same_state("check_chain_info_queries").await;
}

/// Blobs: `upload_blob` refuses a blob nobody asked for (`UnexpectedBlob`), and after a
/// certificate was answered with `BlobsNotFound` answers the id and lets it publish the blob;
/// `handle_pending_blob` lets a proposal publish one (`BlobsNotFound` with the exact id before);
/// `download_blob` returns published blobs and `BlobsNotFound([id])` otherwise;
/// `missing_blob_ids` lists exactly the unknown ones; `InactiveChain` and
/// `LimitExceeded(BatchSize)` come back intact.
pub async fn check_blobs(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let uploaded = Blob::data(b"uploaded for a certificate".to_vec());
    let pending = Blob::data(b"pending for a proposal".to_vec());
    let empty = Blob::data(Vec::new());
    let description = v.chains[0].description.to_blob();
    let unknown = unknown_blob(0);

    both_fail!(
        pair,
        "download_blob (not published yet)",
        |node| node.download_blob(uploaded.id()),
        NodeError::BlobsNotFound(vec![uploaded.id()])
    );
    let asked = vec![uploaded.id(), description.id(), unknown.id(), pending.id()];
    let missing = both!(pair, "missing_blob_ids", |node| node
        .missing_blob_ids(asked.clone()));
    let mut missing = must(missing, "missing_blob_ids");
    missing.sort();
    let mut expected = vec![uploaded.id(), unknown.id(), pending.id()];
    expected.sort();
    assert_eq!(missing, expected, "missing_blob_ids");

    // Nobody asked for these blobs: refused, and nothing is held.
    for blob in [&uploaded, &empty] {
        both_fail!(
            pair,
            "upload_blob (not asked for)",
            |node| node.upload_blob(blob.clone()),
            NodeError::UnexpectedBlob(blob.id())
        );
    }
    // A confirmed block publishing a blob the node lacks: `BlobsNotFound`, after which the
    // blob may be uploaded, and the certificate then publishes it.
    let block = v
        .next_block(1, vec![Operation::PublishBlob(uploaded.id())])
        .await;
    let confirmed = v
        .confirmed(
            &block,
            std::slice::from_ref(&uploaded),
            Round::MultiLeader(0),
        )
        .await;
    both_fail!(
        pair,
        "handle_confirmed_certificate (blob not uploaded)",
        |node| node.handle_confirmed_certificate(confirmed.clone(), CrossChainDelivery::Blocking),
        NodeError::BlobsNotFound(vec![uploaded.id()])
    );
    let answer = both!(pair, "upload_blob", |node| node
        .upload_blob(uploaded.clone()));
    assert_eq!(answer, Ok(uploaded.id()), "upload_blob");
    must(
        both!(pair, "handle_confirmed_certificate (publishing)", |node| {
            node.handle_confirmed_certificate(confirmed.clone(), CrossChainDelivery::Blocking)
        }),
        "handle_confirmed_certificate (publishing)",
    );

    // A proposal publishing a blob needs it as a pending blob of its chain.
    let block = v
        .next_block(2, vec![Operation::PublishBlob(pending.id())])
        .await;
    let proposal = v.proposal(2, block, Round::MultiLeader(0));
    both_fail!(
        pair,
        "handle_block_proposal (blob not pending)",
        |node| node.handle_block_proposal(proposal.clone()),
        NodeError::BlobsNotFound(vec![pending.id()])
    );
    let answer = both!(pair, "handle_pending_blob", |node| node
        .handle_pending_blob(v.chain_id(2), pending.clone()));
    let response = must(answer, "handle_pending_blob");
    assert_eq!(response.info.chain_id, v.chain_id(2));
    let answer = both!(pair, "handle_block_proposal (blob pending)", |node| node
        .handle_block_proposal(proposal.clone()));
    signed_vote(
        &must(answer, "handle_block_proposal (blob pending)"),
        &v.public_key(),
        "the vote on a proposal publishing a pending blob",
    );
    let stranger = stranger().id();
    both_fail!(
        pair,
        "handle_pending_blob (unknown chain)",
        |node| node.handle_pending_blob(stranger, pending.clone()),
        NodeError::InactiveChain(stranger)
    );

    for blob in [&uploaded, &description] {
        let answer = both!(pair, "download_blob", |node| node.download_blob(blob.id()));
        assert_eq!(answer.as_ref(), Ok(blob), "download_blob");
    }
    let missing = both!(pair, "missing_blob_ids (after publishing)", |node| node
        .missing_blob_ids(asked.clone()));
    assert_eq!(missing, Ok(vec![unknown.id(), pending.id()]));
    let oversize = vec![unknown.id(); MAX_CERTIFICATES_PER_BATCH + 1];
    both_fail!(
        pair,
        "missing_blob_ids (oversize)",
        |node| node.missing_blob_ids(oversize.clone()),
        NodeError::LimitExceeded(Limit::BatchSize)
    );
    pair.assert_same_state("check_blobs").await;
}

/// Certificate downloads: by hash (the certificate intact: value, round, signatures that still
/// check), `NotFound` for an unknown hash; by heights, those present in the order asked; an
/// oversize list is `LimitExceeded(BatchSize)`.
pub async fn check_certificate_downloads(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let history = v.history(1, 4);
    let chain_id = v.chain_id(1);
    pair.commit_history(&history).await;

    for certificate in &history {
        let answer = both!(pair, "download_certificate", |node| node
            .download_certificate(certificate.hash()));
        let downloaded = must(answer, "download_certificate");
        assert_eq!(&downloaded, certificate, "download_certificate");
        assert_eq!(
            downloaded.value().inner(),
            certificate.value().inner(),
            "the downloaded certificate's value"
        );
        assert_eq!(downloaded.signatures(), certificate.signatures());
        must(
            downloaded.check(&v.committee.committee),
            "checking a downloaded certificate",
        );
    }
    both_fail!(
        pair,
        "download_certificate (unknown)",
        |node| node.download_certificate(CryptoHash([7; 32])),
        NodeError::NotFound
    );

    let heights: Vec<BlockHeight> = [3, 0, 2, 9].into_iter().map(BlockHeight).collect();
    let answer = both!(pair, "download_certificates_by_heights", |node| node
        .download_certificates_by_heights(chain_id, heights.clone()));
    let downloaded = must(answer, "download_certificates_by_heights");
    let expected = vec![history[3].clone(), history[0].clone(), history[2].clone()];
    assert_eq!(downloaded, expected, "download_certificates_by_heights");
    let none = both!(
        pair,
        "download_certificates_by_heights (no blocks)",
        |node| node.download_certificates_by_heights(v.chain_id(2), vec![BlockHeight(0)])
    );
    assert_eq!(none, Ok(Vec::new()));
    let oversize = vec![BlockHeight(0); MAX_CERTIFICATES_PER_BATCH + 1];
    both_fail!(
        pair,
        "download_certificates_by_heights (oversize)",
        |node| node.download_certificates_by_heights(chain_id, oversize.clone()),
        NodeError::LimitExceeded(Limit::BatchSize)
    );
    pair.assert_same_state("check_certificate_downloads").await;
}

/// One read-only request of [`check_concurrent_requests`].
#[derive(Clone, Debug)]
enum Probe {
    Query(ChainInfoQuery),
    Certificate(CryptoHash),
    Certificates(ChainId, Vec<BlockHeight>),
    Blob(BlobId),
    Missing(Vec<BlobId>),
}

/// The answer to a [`Probe`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Info(Result<ChainInfoResponse, NodeError>),
    Certificate(Result<Box<ConfirmedBlockCertificate>, NodeError>),
    Certificates(Result<Vec<ConfirmedBlockCertificate>, NodeError>),
    Blob(Result<Blob, NodeError>),
    Missing(Result<Vec<BlobId>, NodeError>),
}

impl Probe {
    async fn ask(self, node: &dyn ValidatorNode) -> Answer {
        match self {
            Probe::Query(query) => Answer::Info(node.handle_chain_info_query(query).await),
            Probe::Certificate(hash) => {
                Answer::Certificate(node.download_certificate(hash).await.map(Box::new))
            }
            Probe::Certificates(chain_id, heights) => Answer::Certificates(
                node.download_certificates_by_heights(chain_id, heights)
                    .await,
            ),
            Probe::Blob(id) => Answer::Blob(node.download_blob(id).await),
            Probe::Missing(ids) => Answer::Missing(node.missing_blob_ids(ids).await),
        }
    }
}

/// Many requests in flight at once: [`CONCURRENT_REQUESTS`] chain information queries,
/// certificate and blob downloads and blob lookups, most of them with an answer (or an error)
/// unique to them, are sent together through the transport; each caller gets the answer the
/// Worker gives to its own request.
pub async fn check_concurrent_requests(connect: &impl Connector) {
    let pair = Pair::new(connect).await;
    let v = &pair.direct;
    let mut certificates = Vec::new();
    for (chain, count) in [(1, 3), (2, 2), (3, 1)] {
        let history = v.history(chain, count);
        pair.commit_history(&history).await;
        certificates.extend(history);
    }

    let probes: Vec<Probe> = (0..CONCURRENT_REQUESTS)
        .map(|index| {
            let round = index / 6;
            let chain = round % CHAINS;
            match index % 6 {
                0 => Probe::Query(
                    ChainInfoQuery::new(v.chain_id(chain)).with_certificate_hashes(
                        BlockHeight(0),
                        BlockHeight(u64::try_from(round % 4).unwrap_or(0)),
                    ),
                ),
                // An unknown chain per request: a distinct `InactiveChain` each.
                1 => Probe::Query(ChainInfoQuery::new(ChainId(CryptoHash::of_bytes(
                    "conformance",
                    &index.to_le_bytes(),
                )))),
                2 => Probe::Certificate(certificates[round % certificates.len()].hash()),
                3 if round % 2 == 0 => Probe::Blob(v.chains[chain].description.to_blob().id()),
                // An unknown blob per request: a distinct `BlobsNotFound` each.
                3 => Probe::Blob(unknown_blob(index).id()),
                4 => Probe::Certificates(
                    v.chain_id(1 + round % 3),
                    (0..=round % 4)
                        .rev()
                        .map(|height| BlockHeight(u64::try_from(height).unwrap_or(0)))
                        .collect(),
                ),
                _ => Probe::Missing(vec![
                    v.chains[chain].description.to_blob().id(),
                    unknown_blob(index).id(),
                ]),
            }
        })
        .collect();
    let mut expected = Vec::new();
    for probe in &probes {
        expected.push(probe.clone().ask(&*v.worker).await);
    }

    let mut calls = JoinSet::new();
    for (index, probe) in probes.into_iter().enumerate() {
        let remote = Arc::clone(&pair.remote);
        calls.spawn(async move { (index, probe.ask(&*remote).await) });
    }
    let mut answered = [false; CONCURRENT_REQUESTS];
    while let Some(joined) = calls.join_next().await {
        let (index, answer) = must(joined, "a concurrent request's task");
        assert_eq!(
            answer, expected[index],
            "concurrent request {index} got another answer than the Worker's"
        );
        answered[index] = true;
    }
    assert!(
        answered.iter().all(|done| *done),
        "every concurrent request was answered"
    );
    pair.assert_same_state("check_concurrent_requests").await;
}
