//! A committee of Workers behind in-process transports with fault injection, and clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use quorum_core::{
    AccountSecretKey, BlockHeight, ChainDescription, ChainId, Committee, ConsensusConfig,
    TimeDelta, Timestamp, ValidatorNode, ValidatorSecretKey,
};
use quorum_node::{Genesis, MemoryStorage, TokioClock, Worker, WorkerConfig};
use quorum_transport_mem::{Fault, FaultHandle, MemoryNode};
use quorum_updater::{ChainClient, Options, ValidatorSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Where every clock starts, in microseconds.
pub const START: Timestamp = Timestamp(1_000_000_000);

pub struct TestNet {
    pub clock: TokioClock,
    pub secrets: Vec<ValidatorSecretKey>,
    pub workers: Vec<Arc<Worker<MemoryStorage>>>,
    pub handles: Vec<FaultHandle>,
    pub committee: Committee,
    pub genesis: Genesis,
    pub owners: Vec<AccountSecretKey>,
    pub chains: Vec<ChainId>,
    pub validators: ValidatorSet,
    pub local: Arc<Worker<MemoryStorage>>,
}

/// Options for tests: short deadlines (tokio time is paused, so only virtual time passes).
pub fn test_options() -> Options {
    Options {
        deadline: Duration::from_secs(20),
        request_timeout: Duration::from_secs(2),
        background_catch_up: Duration::from_secs(5),
        ..Options::default()
    }
}

pub fn consensus() -> ConsensusConfig {
    ConsensusConfig {
        multi_leader_rounds: 2,
        fast_round_duration: TimeDelta::from_secs(1),
        base_timeout: TimeDelta::from_secs(2),
        timeout_increment: TimeDelta::from_secs(1),
    }
}

pub use quorum_node::testnet::{committee_of, validator_keys as keys};

pub fn description(index: u32, owner: &AccountSecretKey, fast: bool) -> ChainDescription {
    quorum_node::testnet::genesis_description(index, owner.public(), fast, consensus())
}

impl TestNet {
    /// `n` validators of weight 1 and `chains` genesis chains (chain 0 is the admin chain).
    pub async fn new(n: usize, chains: u32, fast: bool) -> TestNet {
        Self::with_clock_offsets(n, chains, fast, &vec![0; n]).await
    }

    /// Like [`TestNet::new`], with each validator's clock shifted by an offset in µs.
    pub async fn with_clock_offsets(n: usize, chains: u32, fast: bool, offsets: &[i64]) -> TestNet {
        Self::build(n, chains, offsets, |i, owner| description(i, owner, fast)).await
    }

    /// Like [`TestNet::new`], each genesis chain described by `describe(index, owner)`.
    pub async fn with_descriptions(
        n: usize,
        chains: u32,
        describe: impl Fn(u32, &AccountSecretKey) -> ChainDescription,
    ) -> TestNet {
        Self::build(n, chains, &vec![0; n], describe).await
    }

    async fn build(
        n: usize,
        chains: u32,
        offsets: &[i64],
        describe: impl Fn(u32, &AccountSecretKey) -> ChainDescription,
    ) -> TestNet {
        let secrets = keys(n, 42);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let owners: Vec<_> = (0..chains)
            .map(|_| AccountSecretKey::generate(&mut rng))
            .collect();
        let committee = committee_of(&secrets);
        let descriptions: Vec<_> = (0..chains)
            .map(|i| describe(i, &owners[i as usize]))
            .collect();
        let genesis = Genesis {
            committee: committee.clone(),
            chains: descriptions.clone(),
        };
        let clock = TokioClock::new(START);
        let admin = genesis.admin_chain().unwrap();
        let validators = ValidatorSet::new();
        let mut workers = Vec::new();
        let mut handles = Vec::new();
        for (i, secret) in secrets.iter().enumerate() {
            let worker = Self::worker(
                &genesis,
                Some(secret.clone()),
                clock.with_offset(offsets[i]),
            )
            .await;
            let node = MemoryNode::new(
                worker.clone() as Arc<dyn ValidatorNode>,
                Some(secret.clone()),
                i as u64,
            )
            .with_bcs(true);
            handles.push(node.handle());
            validators.insert(secret.public(), Arc::new(node));
            workers.push(worker);
        }
        let local = Self::worker(&genesis, None, clock.clone()).await;
        let _ = admin;
        TestNet {
            clock,
            secrets,
            workers,
            handles,
            committee,
            genesis,
            owners,
            chains: descriptions.iter().map(ChainDescription::id).collect(),
            validators,
            local,
        }
    }

    pub async fn worker(
        genesis: &Genesis,
        key: Option<ValidatorSecretKey>,
        clock: TokioClock,
    ) -> Arc<Worker<MemoryStorage>> {
        let storage = MemoryStorage::new();
        let admin = genesis.initialize(&storage, START).await.unwrap();
        Arc::new(Worker::new(
            storage,
            key,
            Arc::new(clock),
            WorkerConfig::new(admin),
        ))
    }

    pub fn client(&self, c: usize) -> ChainClient<MemoryStorage> {
        self.client_with(c, test_options())
    }

    pub fn client_with(&self, c: usize, options: Options) -> ChainClient<MemoryStorage> {
        ChainClient::new(
            self.chains[c],
            Some(self.owners[c].clone()),
            self.local.clone(),
            self.validators.clone(),
            options,
        )
    }

    pub fn set_fault(&self, v: usize, fault: Fault) {
        self.handles[v].set_fault(fault);
    }

    pub async fn next_height(&self, v: usize, chain: ChainId) -> BlockHeight {
        self.workers[v]
            .chain_state(chain)
            .await
            .unwrap()
            .next_height
    }

    /// Lets background catch-up tasks finish (virtual time).
    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }

    /// Asserts validator `v` has chain `chain` exactly as the local node has it.
    pub async fn assert_in_sync(&self, v: usize, chain: ChainId) {
        let local = self.local.chain_state(chain).await.unwrap();
        let remote = self.workers[v].chain_state(chain).await.unwrap();
        assert_eq!(
            remote.next_height, local.next_height,
            "validator {v} height on {chain:?}"
        );
        assert_eq!(
            remote.tip_hash, local.tip_hash,
            "validator {v} tip on {chain:?}"
        );
        assert_eq!(
            remote.balance, local.balance,
            "validator {v} balance on {chain:?}"
        );
    }
}

/// Validators 0..3 validate `proposal` (directly, not through the transports); returns the
/// validated certificate their votes make.
pub async fn validate_directly(
    net: &TestNet,
    proposal: &quorum_core::BlockProposal,
    value: quorum_core::BlockValue,
) -> quorum_core::ValidatedBlockCertificate {
    let mut signatures = Vec::new();
    for v in 0..3 {
        let answer = net.workers[v]
            .handle_block_proposal(proposal.clone())
            .await
            .unwrap();
        let vote = answer.info.manager.pending.clone().unwrap();
        signatures.push((vote.validator, vote.signature));
    }
    let certificate = quorum_core::Certificate::new(
        quorum_core::Hashed::new(quorum_core::ValidatedBlock(value)),
        proposal.round(),
        signatures,
    );
    certificate.check(&net.committee).unwrap();
    certificate
}
