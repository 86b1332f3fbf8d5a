//! The workspace's one test network: a committee of Workers over [`MemoryStorage`], each also
//! reachable through an in-process [`MemoryNode`] (with fault injection), a client's local
//! node, and the chains' owners.
//!
//! [`TestNetwork::builder`] builds every network of the workspace's tests; [`TestNet`] (a
//! [`ManualClock`], moved by hand) and [`TokioTestNet`] (a [`TokioClock`], following tokio's
//! paused clock, with a per-validator offset) name its two clocks. A network is driven either
//! through its clients ([`TestNetwork::client`], the updater's way) or by hand (the methods of
//! `protocol.rs`: propose, aggregate votes, confirm, deliver, time out).
//!
//! Everything panics on failure with a message naming what failed: it is meant for tests.

use std::sync::Arc;
use std::time::Duration;

use crate::TokioClock;
use quorum_core::{
    AccountPublicKey, AccountSecretKey, ChainDescription, ChainId, Committee, ConsensusConfig,
    TimeDelta, Timestamp, ValidatorNode, ValidatorSecretKey,
};
use quorum_node::{Clock, Genesis, ManualClock, MemoryStorage, SystemClock, Worker, WorkerConfig};
use quorum_transport_mem::{Fault, FaultHandle, MemoryNode};
use quorum_updater::{ChainClient, Options, ValidatorSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::fixtures::{
    committee_of, genesis_description, validator_keys, TestChain, TestCommittee, START,
};
use crate::must::must;

mod by_hand;

/// Seed of a test network's validator keys ([`validator_keys`]).
pub(crate) const VALIDATOR_SEED: u64 = 42;
/// Seed of a test network's chain owners' keys.
pub(crate) const OWNER_SEED: u64 = 7;
/// How long [`TestNetwork::settle`] lets background work run (tokio's virtual time).
pub(crate) const SETTLE_TIME: Duration = Duration::from_secs(10);

/// The clock of a [`TestNetwork`]: every Worker reads a copy of it.
pub trait NetClock: Clock + Clone + 'static {
    /// A clock reading `start`.
    fn starting_at(start: Timestamp) -> Self;

    /// A copy of this clock shifted by `offset_micros` (a validator whose clock is off).
    ///
    /// # Panics
    /// If the clock cannot be shifted (a [`ManualClock`] with a non-zero offset).
    fn shifted(&self, offset_micros: i64) -> Self;
}

impl NetClock for ManualClock {
    fn starting_at(start: Timestamp) -> Self {
        ManualClock::new(start)
    }

    fn shifted(&self, offset_micros: i64) -> Self {
        assert_eq!(
            offset_micros, 0,
            "a ManualClock network cannot shift a validator's clock: use a TokioTestNet"
        );
        self.clone()
    }
}

impl NetClock for SystemClock {
    /// The system clock reads the real time, whatever `start` says.
    fn starting_at(_start: Timestamp) -> Self {
        SystemClock
    }

    fn shifted(&self, offset_micros: i64) -> Self {
        assert_eq!(
            offset_micros, 0,
            "a SystemClock network cannot shift a validator's clock: use a TokioTestNet"
        );
        SystemClock
    }
}

impl NetClock for TokioClock {
    fn starting_at(start: Timestamp) -> Self {
        TokioClock::new(start)
    }

    fn shifted(&self, offset_micros: i64) -> Self {
        self.with_offset(offset_micros)
    }
}

/// A test network on a [`ManualClock`]: time moves only when the test moves it.
pub type TestNet = TestNetwork<ManualClock>;

/// A test network on a [`TokioClock`]: time follows tokio's clock (paused in tests).
pub type TokioTestNet = TestNetwork<TokioClock>;

/// The consensus settings of a test network's chains: two multi-leader rounds and short
/// timeouts (a fast round of 1 s, rounds of 2 s plus 1 s each), so that tests reach them
/// quickly in virtual time.
pub fn test_consensus() -> ConsensusConfig {
    ConsensusConfig {
        multi_leader_rounds: 2,
        fast_round_duration: TimeDelta::from_secs(1),
        base_timeout: TimeDelta::from_secs(2),
        timeout_increment: TimeDelta::from_secs(1),
    }
}

/// Updater options for tests: short deadlines (tokio time is paused in tests, so only virtual
/// time passes).
pub fn test_options() -> Options {
    Options {
        deadline: Duration::from_secs(20),
        request_timeout: Duration::from_secs(2),
        background_catch_up: Duration::from_secs(5),
        ..Options::default()
    }
}

/// A description of genesis chain `index` owned by `owner` (its super owner when `fast`), with
/// [`test_consensus`].
pub fn test_description(index: u32, owner: &AccountSecretKey, fast: bool) -> ChainDescription {
    genesis_description(index, owner.public(), fast, test_consensus())
}

/// [`test_description`] without a fast round, the chain `shared` (a genesis index) owned by
/// `other` too, with the same weight: two owners who may propose in multi-leader rounds.
pub fn test_description_shared(
    index: u32,
    owner: &AccountSecretKey,
    shared: u32,
    other: AccountPublicKey,
) -> ChainDescription {
    let mut description = test_description(index, owner, false);
    if index == shared {
        description.owners.insert(other, 1);
    }
    description
}

/// Describes genesis chain `index` given its owner.
type Describe = Box<dyn Fn(u32, &AccountSecretKey) -> ChainDescription>;

/// Builds a [`TestNetwork`]; see [`TestNetwork::builder`].
pub struct TestNetworkBuilder<C> {
    validators: usize,
    chains: u32,
    describe: Describe,
    offsets: Vec<i64>,
    bcs: bool,
    config: Box<dyn Fn(WorkerConfig) -> WorkerConfig>,
    validator_seed: u64,
    chains_given: Option<Vec<TestChain>>,
    running: Option<usize>,
    clock: Option<C>,
}

impl<C: NetClock> TestNetworkBuilder<C> {
    /// `n` validators of weight 1 (default 4).
    pub fn validators(mut self, n: usize) -> Self {
        self.validators = n;
        self
    }

    /// `count` genesis chains (default 2); chain 0 is the admin chain.
    pub fn chains(mut self, count: u32) -> Self {
        self.chains = count;
        self
    }

    /// The genesis chains are `chains` (their descriptions and owners) instead of `count`
    /// chains described by the builder; chain 0 is the admin chain.
    pub fn genesis_chains(mut self, chains: &[TestChain]) -> Self {
        self.chains_given = Some(chains.to_vec());
        self
    }

    /// Validator keys drawn from `seed` (default 42), as
    /// [`TestCommittee::new`] draws them.
    pub fn validator_seed(mut self, seed: u64) -> Self {
        self.validator_seed = seed;
        self
    }

    /// Runs a Worker for the first `count` validators of the committee only (default all): the
    /// others exist as keys, e.g. to sign certificates with [`TestNetwork::test_committee`].
    pub fn running(mut self, count: usize) -> Self {
        self.running = Some(count);
        self
    }

    /// Every Worker reads `clock` (shared with whoever holds a copy) instead of a new one.
    pub fn clock(mut self, clock: C) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Whether the chains have a super owner, and so a fast round (default no).
    pub fn fast(mut self, fast: bool) -> Self {
        self.describe = Box::new(move |index, owner| test_description(index, owner, fast));
        self
    }

    /// Describes each genesis chain with `describe(index, owner)` instead.
    pub fn describe(
        mut self,
        describe: impl Fn(u32, &AccountSecretKey) -> ChainDescription + 'static,
    ) -> Self {
        self.describe = Box::new(describe);
        self
    }

    /// Shifts validator `i`'s clock by `offsets[i]` µs (only a [`TokioTestNet`] can).
    pub fn clock_offsets(mut self, offsets: &[i64]) -> Self {
        self.offsets = offsets.to_vec();
        self
    }

    /// Whether each [`MemoryNode`] round-trips requests and answers through BCS (default yes).
    pub fn bcs(mut self, bcs: bool) -> Self {
        self.bcs = bcs;
        self
    }

    /// Adjusts every validator's [`WorkerConfig`] (not the local node's).
    pub fn worker_config(
        mut self,
        adjust: impl Fn(WorkerConfig) -> WorkerConfig + 'static,
    ) -> Self {
        self.config = Box::new(adjust);
        self
    }

    /// The network, its clocks starting at [`START`].
    pub async fn build(self) -> TestNetwork<C> {
        let secrets = validator_keys(self.validators, self.validator_seed);
        let committee = committee_of(&secrets);
        let (owners, descriptions): (Vec<_>, Vec<_>) = match &self.chains_given {
            Some(chains) => chains
                .iter()
                .map(|chain| (chain.owner.clone(), chain.description.clone()))
                .unzip(),
            None => {
                let mut rng = ChaCha8Rng::seed_from_u64(OWNER_SEED);
                (0..self.chains)
                    .map(|index| {
                        let owner = AccountSecretKey::generate(&mut rng);
                        let description = (self.describe)(index, &owner);
                        (owner, description)
                    })
                    .unzip()
            }
        };
        let genesis = Genesis {
            committee: committee.clone(),
            chains: descriptions.clone(),
        };
        let clock = self.clock.unwrap_or_else(|| C::starting_at(START));
        let validators = ValidatorSet::new();
        let mut workers = Vec::new();
        let mut nodes = Vec::new();
        let running = self.running.unwrap_or(secrets.len());
        for (index, secret) in secrets.iter().enumerate().take(running) {
            let offset = self.offsets.get(index).copied().unwrap_or(0);
            let worker = new_worker(
                &genesis,
                Some(secret.clone()),
                clock.shifted(offset),
                &*self.config,
            )
            .await;
            let node = MemoryNode::new(
                worker.clone() as Arc<dyn ValidatorNode>,
                Some(secret.clone()),
                must(u64::try_from(index), "a validator index"),
            )
            .with_bcs(self.bcs);
            validators.insert(secret.public(), Arc::new(node.clone()));
            nodes.push(node);
            workers.push(worker);
        }
        let local = new_worker(&genesis, None, clock.clone(), &|config| config).await;
        TestNetwork {
            clock,
            secrets,
            workers,
            nodes,
            committee,
            genesis,
            owners,
            chains: descriptions.iter().map(ChainDescription::id).collect(),
            validators,
            local,
        }
    }
}

/// A Worker over a fresh [`MemoryStorage`] holding `genesis`, reading `clock`.
async fn new_worker<C: NetClock>(
    genesis: &Genesis,
    key: Option<ValidatorSecretKey>,
    clock: C,
    config: &dyn Fn(WorkerConfig) -> WorkerConfig,
) -> Arc<Worker<MemoryStorage>> {
    let storage = MemoryStorage::new();
    let admin = must(
        genesis.initialize(&storage, START).await,
        "writing the genesis",
    );
    Arc::new(Worker::new(
        storage,
        key,
        Arc::new(clock),
        config(WorkerConfig::new(admin)),
    ))
}

/// A committee of Workers, their in-process transports, a client's local node and the chains'
/// owners.
pub struct TestNetwork<C> {
    /// The clock every Worker reads (validators with an offset read a shifted copy).
    pub clock: C,
    /// Validator keys, in committee order.
    pub secrets: Vec<ValidatorSecretKey>,
    /// One Worker per running validator, called directly by the `protocol.rs` methods.
    pub workers: Vec<Arc<Worker<MemoryStorage>>>,
    /// One [`MemoryNode`] per validator in front of its Worker (seeded with its index); they
    /// share their faults and call counts with [`TestNetwork::validators`].
    pub nodes: Vec<MemoryNode>,
    /// The committee of epoch 0.
    pub committee: Committee,
    /// The genesis every Worker started from.
    pub genesis: Genesis,
    /// Owner keys, one per chain.
    pub owners: Vec<AccountSecretKey>,
    /// The genesis chains; chain 0 is the admin chain.
    pub chains: Vec<ChainId>,
    /// The validators as clients reach them: the [`MemoryNode`]s.
    pub validators: ValidatorSet,
    /// A client's local node (no key), shared by the clients of [`TestNetwork::client`].
    pub local: Arc<Worker<MemoryStorage>>,
}

impl<C: NetClock> TestNetwork<C> {
    /// A builder of 4 validators and 2 chains without a fast round, [`test_consensus`], BCS on.
    pub fn builder() -> TestNetworkBuilder<C> {
        TestNetworkBuilder {
            validators: 4,
            chains: 2,
            describe: Box::new(|index, owner| test_description(index, owner, false)),
            offsets: Vec::new(),
            bcs: true,
            config: Box::new(|config| config),
            validator_seed: VALIDATOR_SEED,
            chains_given: None,
            running: None,
            clock: None,
        }
    }

    /// `n` validators of weight 1 and `chains` genesis chains (chain 0 is the admin chain), with
    /// a super owner (fast round) when `fast`.
    pub async fn new(n: usize, chains: u32, fast: bool) -> Self {
        Self::builder()
            .validators(n)
            .chains(chains)
            .fast(fast)
            .build()
            .await
    }

    /// The committee with its keys, able to certify any value.
    pub fn test_committee(&self) -> TestCommittee {
        TestCommittee {
            committee: self.committee.clone(),
            keys: self.secrets.clone(),
        }
    }

    /// The admin chain.
    pub fn admin(&self) -> ChainId {
        self.chains[0]
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A new Worker from the network's genesis on its clock, holding `key` (a validator that
    /// joins later, or another client's local node when `None`).
    pub async fn new_worker(&self, key: Option<ValidatorSecretKey>) -> Arc<Worker<MemoryStorage>> {
        self.new_worker_with(key, |_| {}).await
    }

    /// Like [`TestNetwork::new_worker`], its [`WorkerConfig`] adjusted by `configure`.
    pub async fn new_worker_with(
        &self,
        key: Option<ValidatorSecretKey>,
        configure: impl Fn(&mut WorkerConfig),
    ) -> Arc<Worker<MemoryStorage>> {
        let adjust = |mut config: WorkerConfig| {
            configure(&mut config);
            config
        };
        new_worker(&self.genesis, key, self.clock.clone(), &adjust).await
    }

    /// A client of chain `c`, its owner, with [`test_options`].
    pub fn client(&self, c: usize) -> ChainClient<MemoryStorage> {
        self.client_with(c, test_options())
    }

    /// A client of chain `c`, its owner, with `options`.
    pub fn client_with(&self, c: usize, options: Options) -> ChainClient<MemoryStorage> {
        ChainClient::new(
            self.chains[c],
            Some(self.owners[c].clone()),
            self.local.clone(),
            self.validators.clone(),
            options,
        )
    }

    /// The handle switching validator `v`'s faults.
    pub fn handle(&self, v: usize) -> FaultHandle {
        self.nodes[v].handle()
    }

    /// Makes validator `v` behave as `fault` says.
    pub fn set_fault(&self, v: usize, fault: Fault) {
        self.nodes[v].set_fault(fault);
    }

    /// Lets background catch-up tasks finish (10 s of tokio's time).
    pub async fn settle(&self) {
        tokio::time::sleep(SETTLE_TIME).await;
    }

    /// Asserts validator `v` has chain `chain` exactly as the local node has it: height, tip
    /// and balance.
    pub async fn assert_in_sync(&self, v: usize, chain: ChainId) {
        let local = must(
            self.local.chain_state(chain).await,
            "reading the local chain",
        );
        let remote = must(
            self.workers[v].chain_state(chain).await,
            "reading the chain",
        );
        assert_eq!(
            remote.next_height(),
            local.next_height(),
            "validator {v} height on {chain:?}"
        );
        assert_eq!(
            remote.tip_hash(),
            local.tip_hash(),
            "validator {v} tip on {chain:?}"
        );
        assert_eq!(
            remote.balance(),
            local.balance(),
            "validator {v} balance on {chain:?}"
        );
    }
}
