//! A committee of Workers driven directly, without the updater.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use quorum_core::{
    AccountPublicKey, AccountSecretKey, Block, BlockHeight, BlockProposal, BlockValue,
    ChainDescription, ChainId, ChainInfoResponse, ChainOrigin, Committee, ConfirmedBlock,
    ConfirmedBlockCertificate, ConsensusConfig, CrossChainDelivery, Epoch, Hashed, IncomingBundle,
    LiteVote, NodeError, Operation, Round, SignatureAggregator, Timeout, TimeoutCertificate,
    Timestamp, ValidatedBlock, ValidatedBlockCertificate, ValidatorInfo, ValidatorNode,
    ValidatorSecretKey,
};
use quorum_node::{Genesis, ManualClock, MemoryStorage, Worker, WorkerConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Where the manual clock starts, in microseconds.
pub const START: Timestamp = Timestamp(1_000_000_000);

pub struct Net {
    pub clock: ManualClock,
    pub secrets: Vec<ValidatorSecretKey>,
    pub workers: Vec<Arc<Worker<MemoryStorage>>>,
    pub committee: Committee,
    pub genesis: Genesis,
    pub owners: Vec<AccountSecretKey>,
    pub chains: Vec<ChainId>,
}

pub fn description(index: u32, owner: AccountPublicKey, fast: bool) -> ChainDescription {
    ChainDescription {
        origin: ChainOrigin::Genesis(index),
        owners: BTreeMap::from([(owner, 1)]),
        super_owner: fast.then_some(owner),
        epoch: Epoch(0),
        timestamp: Timestamp(0),
        consensus: ConsensusConfig::default(),
        balance: 1_000,
    }
}

pub fn committee_of(secrets: &[ValidatorSecretKey]) -> Committee {
    Committee::new(
        secrets
            .iter()
            .map(|s| {
                (
                    s.public(),
                    ValidatorInfo {
                        votes: 1,
                        address: String::new(),
                    },
                )
            })
            .collect(),
    )
    .unwrap()
}

impl Net {
    /// `n` validators of weight 1, `chains` genesis chains (chain 0 is the admin chain); chains
    /// have a super owner (fast round) when `fast`.
    pub async fn new(n: usize, chains: u32, fast: bool) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut secrets: Vec<_> = (0..n)
            .map(|_| ValidatorSecretKey::generate(&mut rng))
            .collect();
        secrets.sort_by_key(|s| s.public());
        let owners: Vec<_> = (0..chains)
            .map(|_| AccountSecretKey::generate(&mut rng))
            .collect();
        let committee = committee_of(&secrets);
        let descriptions: Vec<_> = (0..chains)
            .map(|i| description(i, owners[i as usize].public(), fast))
            .collect();
        let genesis = Genesis {
            committee: committee.clone(),
            chains: descriptions.clone(),
        };
        let clock = ManualClock::new(START);
        let admin = genesis.admin_chain().unwrap();
        let mut workers = Vec::new();
        for secret in &secrets {
            let storage = MemoryStorage::new();
            genesis.initialize(&storage, START).await.unwrap();
            workers.push(Arc::new(Worker::new(
                storage,
                Some(secret.clone()),
                Arc::new(clock.clone()),
                WorkerConfig::new(admin),
            )));
        }
        Net {
            clock,
            secrets,
            workers,
            committee,
            genesis,
            owners,
            chains: descriptions.iter().map(ChainDescription::id).collect(),
        }
    }

    pub fn admin(&self) -> ChainId {
        self.chains[0]
    }

    /// A block for chain `c` on top of what validator `v` has.
    pub async fn block_on(
        &self,
        v: usize,
        c: usize,
        operations: Vec<Operation>,
        bundles: Vec<IncomingBundle>,
    ) -> Block {
        let state = self.workers[v].chain_state(self.chains[c]).await.unwrap();
        Block {
            chain_id: self.chains[c],
            epoch: state.epoch,
            height: state.next_height,
            timestamp: self.clock.now_ts(),
            previous_block_hash: state.tip_hash,
            authenticated_owner: self.owners[c].public(),
            incoming_bundles: bundles,
            operations,
        }
    }

    pub async fn block(&self, c: usize, operations: Vec<Operation>) -> Block {
        self.block_on(0, c, operations, vec![]).await
    }

    pub fn proposal(&self, c: usize, block: Block, round: Round) -> BlockProposal {
        BlockProposal::new(block, round, &self.owners[c])
    }

    pub async fn value(&self, block: &Block) -> BlockValue {
        self.workers[0]
            .stage_block_execution(block, &[])
            .await
            .unwrap()
    }

    /// Sends the proposal to validators `to`; returns their answers.
    pub async fn propose(
        &self,
        to: &[usize],
        proposal: &BlockProposal,
    ) -> Vec<Result<ChainInfoResponse, NodeError>> {
        let mut answers = Vec::new();
        for &v in to {
            answers.push(
                self.workers[v]
                    .handle_block_proposal(proposal.clone())
                    .await,
            );
        }
        answers
    }

    fn votes(answers: Vec<Result<ChainInfoResponse, NodeError>>) -> Vec<LiteVote> {
        answers
            .into_iter()
            .map(|a| a.unwrap().info.manager.pending.clone().unwrap())
            .collect()
    }

    /// Validated certificate from the votes of validators `to` on `proposal`.
    pub async fn validate(
        &self,
        to: &[usize],
        proposal: &BlockProposal,
    ) -> ValidatedBlockCertificate {
        let value = Hashed::new(ValidatedBlock(self.value(proposal.block()).await));
        let mut aggregator = SignatureAggregator::new(value, proposal.round(), &self.committee);
        let mut certificate = None;
        for vote in Self::votes(self.propose(to, proposal).await) {
            if let Some(c) = aggregator.add(&vote).unwrap() {
                certificate = Some(c);
            }
        }
        certificate.expect("a quorum validated")
    }

    /// Confirmed certificate from validators `to` handling `validated`.
    pub async fn confirm(
        &self,
        to: &[usize],
        validated: &ValidatedBlockCertificate,
    ) -> ConfirmedBlockCertificate {
        let value = Hashed::new(validated.value().to_confirmed());
        let mut aggregator = SignatureAggregator::new(value, validated.round(), &self.committee);
        let mut certificate = None;
        for &v in to {
            let answer = self.workers[v]
                .handle_validated_certificate(validated.clone())
                .await
                .unwrap();
            if let Some(c) = aggregator
                .add(answer.info.manager.pending.as_ref().unwrap())
                .unwrap()
            {
                certificate = Some(c);
            }
        }
        certificate.expect("a quorum confirmed")
    }

    /// Confirmed certificate of a fast-round proposal.
    pub async fn fast_confirm(
        &self,
        to: &[usize],
        proposal: &BlockProposal,
    ) -> ConfirmedBlockCertificate {
        let value = Hashed::new(ConfirmedBlock(self.value(proposal.block()).await));
        let mut aggregator = SignatureAggregator::new(value, Round::Fast, &self.committee);
        let mut certificate = None;
        for vote in Self::votes(self.propose(to, proposal).await) {
            if let Some(c) = aggregator.add(&vote).unwrap() {
                certificate = Some(c);
            }
        }
        certificate.expect("a quorum confirmed in the fast round")
    }

    /// Delivers a confirmed certificate to validators `to`.
    pub async fn deliver(&self, to: &[usize], certificate: &ConfirmedBlockCertificate) {
        for &v in to {
            self.workers[v]
                .handle_confirmed_certificate(certificate.clone(), CrossChainDelivery::Blocking)
                .await
                .unwrap();
        }
    }

    /// Runs the two-phase protocol for `block` on every validator in `round`.
    pub async fn commit(&self, c: usize, block: Block, round: Round) -> ConfirmedBlockCertificate {
        let all: Vec<usize> = (0..self.workers.len()).collect();
        let proposal = self.proposal(c, block, round);
        let validated = self.validate(&all, &proposal).await;
        let confirmed = self.confirm(&all, &validated).await;
        self.deliver(&all, &confirmed).await;
        confirmed
    }

    /// A timeout certificate for chain `c`'s current height at `round`, from validators `to`
    /// (the clock must be past the round's deadline).
    pub async fn timeout(&self, to: &[usize], c: usize, round: Round) -> TimeoutCertificate {
        let state = self.workers[to[0]]
            .chain_state(self.chains[c])
            .await
            .unwrap();
        let value = Hashed::new(Timeout {
            chain_id: self.chains[c],
            height: state.next_height,
            epoch: state.epoch,
        });
        let mut aggregator = SignatureAggregator::new(value, round, &self.committee);
        let mut certificate = None;
        for &v in to {
            let query = quorum_core::ChainInfoQuery::new(self.chains[c])
                .with_timeout(state.next_height, round);
            let answer = self.workers[v]
                .handle_chain_info_query(query)
                .await
                .unwrap();
            let vote = answer
                .info
                .manager
                .timeout_vote
                .clone()
                .expect("timeout vote");
            if let Some(c) = aggregator.add(&vote).unwrap() {
                certificate = Some(c);
            }
        }
        certificate.expect("a quorum timed out")
    }

    pub async fn next_height(&self, v: usize, c: usize) -> BlockHeight {
        self.workers[v]
            .chain_state(self.chains[c])
            .await
            .unwrap()
            .next_height
    }

    pub async fn balance(&self, v: usize, c: usize) -> u64 {
        self.workers[v]
            .chain_state(self.chains[c])
            .await
            .unwrap()
            .balance
    }
}

pub trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        quorum_node::Clock::now(self)
    }
}
