//! Deterministic fixtures: seeded validator keys and committees ([`validator_keys`],
//! [`committee_of`], [`TestCommittee`], which certifies any value), genesis chains
//! ([`genesis_description`], [`TestChain`], whose blocks are executed by the pure rules and
//! certified one after the other), [`sample_blobs`] and [`rich_chain_state`].
//!
//! Everything here panics on failure, with a message naming what failed: it is meant to run
//! inside tests.

use std::collections::BTreeMap;

use quorum_core::{committee_blob, execute_block, ExecutionInputs};
use quorum_core::{
    AccountPublicKey, AccountSecretKey, Blob, Block, BlockHeight, BlockProposal, BlockValue,
    Certificate, CertificateValue, ChainDescription, ChainId, ChainOrigin, ChainState, Committee,
    ConfirmedBlock, ConfirmedBlockCertificate, ConsensusConfig, Epoch, Hashed, LiteVote, Message,
    Operation, Round, StreamId, Timeout, Timestamp, ValidatedBlock, ValidatorInfo,
    ValidatorSecretKey,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::must::{must, some};

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
        let keys = validator_keys(size, seed);
        let committee = committee_of(&keys);
        TestCommittee { committee, keys }
    }

    /// A certificate for `value` in `round`, signed by every validator.
    pub fn certify<T: CertificateValue>(&self, value: T, round: Round) -> Certificate<T> {
        self.certify_by_first(Hashed::new(value), round, self.keys.len())
    }

    /// A certificate for `value` in `round`, signed by the first `signers` validators only (in
    /// the committee's key order), whether they make a quorum or not.
    pub fn certify_by_first<T: CertificateValue>(
        &self,
        value: Hashed<T>,
        round: Round,
        signers: usize,
    ) -> Certificate<T> {
        let signatures = self.keys[..signers]
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
        Self::with_rounds(index, seed, false)
    }

    /// [`TestChain::new`] with its owner as its super owner: blocks start in the fast round.
    pub fn fast(index: u32, seed: u64) -> Self {
        Self::with_rounds(index, seed, true)
    }

    fn with_rounds(index: u32, seed: u64, fast: bool) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let owner = AccountSecretKey::generate(&mut rng);
        let description = ChainDescription {
            origin: ChainOrigin::Genesis(index),
            owners: BTreeMap::from([(owner.public(), 1)]),
            super_owner: fast.then(|| owner.public()),
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
        self.state.chain_id()
    }

    /// The next block (at the state's next height, extending its tip, one millisecond after
    /// the previous one) with `operations`, not executed.
    pub fn next_block(&self, operations: Vec<Operation>) -> Block {
        Block {
            chain_id: self.id(),
            epoch: self.state.epoch(),
            height: self.state.next_height(),
            timestamp: Timestamp(self.state.timestamp().0.saturating_add(1_000)),
            previous_block_hash: self.state.tip_hash(),
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
        let sealed_at = state.timestamp();
        state.seal(certificate.hash(), sealed_at);
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
    let key = some(committee.keys.first(), "a validator key");
    let origin = TestChain::new(1_000, 1_000).id();
    // A block emitting three events on a stream of its own, committed.
    let mut rich = chain.clone();
    let events = (0..3u8)
        .map(|index| Operation::EmitEvent {
            stream: StreamId::user("rich"),
            payload: vec![index],
        })
        .collect();
    rich.commit_next(committee, events);
    let mut state = rich.state.clone();
    state.receive_bundle(
        origin,
        BlockHeight(3),
        vec![Message::Credit { amount: 5 }, Message::Credit { amount: 7 }],
    );
    let description = must(state.description(), "the chain's description").clone();
    let (chain_id, epoch, now) = (state.chain_id(), state.epoch(), state.timestamp());

    // Round 0 times out: its certificate moves consensus to round 1.
    let timeout = committee.certify(
        Timeout {
            chain_id,
            height: state.next_height(),
            epoch,
        },
        Round::MultiLeader(0),
    );
    state
        .manager_mut()
        .handle_timeout_certificate(&description, &timeout, now);
    let round = state.manager().current_round();

    // A proposal of round 1, voted for: the proposal, a lock and a pending vote.
    let block = rich.next_block(vec![Operation::Transfer {
        recipient: origin,
        amount: 10,
    }]);
    let execution = must(
        execute_block(&rich.state, &block, &ExecutionInputs::default()),
        "executing the rich state's proposal",
    );
    let value = BlockValue {
        block: block.clone(),
        outcome: execution.outcome,
    };
    let proposal = BlockProposal::new(block, round, &chain.owner);
    state
        .manager_mut()
        .vote_for_proposal(proposal, value.clone(), Some(key));

    // Its validated certificate: the locking certificate and a confirmation vote.
    let validated = committee.certify(ValidatedBlock(value), round);
    must(
        state
            .manager_mut()
            .handle_validated_certificate(&description, &validated, now, Some(key)),
        "handling the validated certificate",
    );

    // Past round 1's deadline: a timeout vote.
    let deadline = some(state.manager().round_timeout(), "round 1's deadline");
    state
        .manager_mut()
        .vote_timeout(chain_id, epoch, round, deadline, Some(key));
    state
}

// ---------------------------------------------------------------------------------------------

/// Where every test clock starts, in microseconds since the epoch.
pub const START: Timestamp = Timestamp(1_000_000_000);

/// Balance of every chain of a [`TestNet`](crate::TestNet) genesis.
pub(crate) const GENESIS_BALANCE: u64 = 1_000;

/// `n` validator keys from `seed`, sorted like a committee's members.
pub fn validator_keys(n: usize, seed: u64) -> Vec<ValidatorSecretKey> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut secrets: Vec<_> = (0..n)
        .map(|_| ValidatorSecretKey::generate(&mut rng))
        .collect();
    secrets.sort_by_key(ValidatorSecretKey::public);
    secrets
}

/// A committee of `secrets`, each of weight 1.
pub fn committee_of(secrets: &[ValidatorSecretKey]) -> Committee {
    let members = secrets
        .iter()
        .enumerate()
        .map(|(index, s)| {
            (
                s.public(),
                ValidatorInfo {
                    votes: 1,
                    address: format!("validator-{index}"),
                    network_key: None,
                },
            )
        })
        .collect();
    must(Committee::new(members), "building the committee")
}

/// Genesis chain number `index`, owned by `owner` (its super owner when `fast`), with
/// a balance of 1,000.
pub fn genesis_description(
    index: u32,
    owner: AccountPublicKey,
    fast: bool,
    consensus: ConsensusConfig,
) -> ChainDescription {
    ChainDescription {
        origin: ChainOrigin::Genesis(index),
        owners: BTreeMap::from([(owner, 1)]),
        super_owner: fast.then_some(owner),
        epoch: Epoch(0),
        timestamp: Timestamp(0),
        consensus,
        balance: GENESIS_BALANCE,
    }
}
