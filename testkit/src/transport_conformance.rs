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
//!     quorum_testkit::transport_conformance::run(|node| async move {
//!         Arc::new(MyTransportNode::new(node)) as Arc<dyn ValidatorNode>
//!     })
//!     .await;
//! }
//! ```
//!
//! [`run`] runs every `check_*` function, each on a fresh pair of
//! validators (so `connect` is called once per check). The checks can also be run one by one.
//! Everything here panics on failure with a message naming the method and the check.

use std::future::Future;
use std::sync::Arc;

use quorum_core::{
    epoch_event_id, BatchOutcome, Blob, BlobId, Block, BlockHeight, BlockProposal, BlockValue,
    Certificate, CertificateError, ChainId, ChainInfoQuery, ChainInfoResponse, ConfirmedBlock,
    ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, Epoch, ExecutionError,
    IncomingBundle, Limit, Limits, LiteVote, Message, NodeError, Operation, Round, Signature,
    TimeDelta, Timeout, ValidatedBlock, ValidatorNode, ValidatorPublicKey, Violation, VoteKind,
};
use tokio::task::JoinSet;

use quorum_node::{Clock, ManualClock, MemoryStorage, Worker};

use crate::fixtures::{TestChain, TestCommittee, START};
use crate::must::{must, some};
use crate::net::TestNet;

/// Seed of the suite's committee and chains.
pub const SEED: u64 = 0x7472_616e_7370; // "transp"
/// Validators in the suite's committee (the validator under test is the first).
pub const COMMITTEE_SIZE: usize = 4;
/// Genesis chains of [`TestValidator`]; chain 0 is the admin chain.
pub const CHAINS: usize = 4;
/// Requests sent at once by [`check_concurrent_requests`].
pub const CONCURRENT_REQUESTS: usize = 120;

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
        let chains: Vec<TestChain> = (0..CHAINS)
            .map(|index| {
                let index = must(u32::try_from(index), "chain index");
                TestChain::new(index, SEED.wrapping_add(u64::from(index)))
            })
            .collect();
        let net = TestNet::builder()
            .validators(COMMITTEE_SIZE)
            .validator_seed(SEED)
            .genesis_chains(&chains)
            .running(1)
            .clock(clock.clone())
            .build()
            .await;
        TestValidator {
            worker: net.workers[0].clone(),
            committee: net.test_committee(),
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
            epoch: state.epoch(),
            height: state.next_height(),
            timestamp: self.clock.now().max(state.timestamp()),
            previous_block_hash: state.tip_hash(),
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

/// Returns the vote in a response's `pending`, checking that `validator` signed it. (Only
/// answers to queries are signed as a whole, DESIGN §4.2; `both!` already requires the same
/// signature, or none, from both sides.)
fn checked_vote(
    response: &ChainInfoResponse,
    validator: &ValidatorPublicKey,
    what: &str,
) -> LiteVote {
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
pub async fn run(connect: impl Connector) {
    check_block_proposals(&connect).await;
    check_certificates(&connect).await;
    check_timeouts(&connect).await;
    check_confirmed_batches(&connect).await;
    check_chain_info_queries(&connect).await;
    check_blobs(&connect).await;
    check_certificate_downloads(&connect).await;
    check_concurrent_requests(&connect).await;
    check_notifications(&connect).await;
}

mod consensus;
mod data;
mod notifications;

pub use consensus::*;
pub use data::*;
pub use notifications::*;
