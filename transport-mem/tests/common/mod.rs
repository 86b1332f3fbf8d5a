//! A committee of Workers, each reachable directly and through a `MemoryNode` (adapted from
//! node/tests/common/mod.rs).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use quorum_core::{
    AccountPublicKey, AccountSecretKey, Block, BlockProposal, BlockValue, ChainDescription,
    ChainId, ChainInfoQuery, ChainInfoResponse, ChainOrigin, Committee, ConfirmedBlock,
    ConfirmedBlockCertificate, ConsensusConfig, CrossChainDelivery, Epoch, Hashed, LiteVote,
    Operation, Round, SignatureAggregator, TimeDelta, Timeout, TimeoutCertificate, Timestamp,
    ValidatedBlock, ValidatedBlockCertificate, ValidatorInfo, ValidatorNode, ValidatorSecretKey,
};
use quorum_node::{Clock, Genesis, ManualClock, MemoryStorage, Worker, WorkerConfig};
use quorum_transport_mem::MemoryNode;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Where the manual clock starts, in microseconds.
pub const START: Timestamp = Timestamp(1_000_000_000);

pub struct Net {
    pub clock: ManualClock,
    pub secrets: Vec<ValidatorSecretKey>,
    pub workers: Vec<Arc<Worker<MemoryStorage>>>,
    /// One `MemoryNode` per worker, honest, seeded with its index, BCS off.
    pub nodes: Vec<MemoryNode>,
    pub committee: Committee,
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
        let mut nodes = Vec::new();
        for (i, secret) in secrets.iter().enumerate() {
            let storage = MemoryStorage::new();
            genesis.initialize(&storage, START).await.unwrap();
            let worker = Arc::new(Worker::new(
                storage,
                Some(secret.clone()),
                Arc::new(clock.clone()),
                WorkerConfig::new(admin),
            ));
            nodes.push(MemoryNode::new(
                worker.clone(),
                Some(secret.clone()),
                i as u64,
            ));
            workers.push(worker);
        }
        Net {
            clock,
            secrets,
            workers,
            nodes,
            committee,
            owners,
            chains: descriptions.iter().map(ChainDescription::id).collect(),
        }
    }

    /// A block for chain `c` on top of what validator 0 has.
    pub async fn block(&self, c: usize, operations: Vec<Operation>) -> Block {
        let state = self.workers[0].chain_state(self.chains[c]).await.unwrap();
        Block {
            chain_id: self.chains[c],
            epoch: state.epoch,
            height: state.next_height,
            timestamp: self.clock.now(),
            previous_block_hash: state.tip_hash,
            authenticated_owner: self.owners[c].public(),
            incoming_bundles: vec![],
            operations,
        }
    }

    pub fn proposal(&self, c: usize, block: Block, round: Round) -> BlockProposal {
        BlockProposal::new(block, round, &self.owners[c])
    }

    /// A proposal of an empty block on chain `c` in round `MultiLeader(0)`.
    pub async fn empty_proposal(&self, c: usize) -> BlockProposal {
        let block = self.block(c, vec![]).await;
        self.proposal(c, block, Round::MultiLeader(0))
    }

    pub async fn value(&self, block: &Block) -> BlockValue {
        self.workers[0]
            .stage_block_execution(block, &[])
            .await
            .unwrap()
    }

    /// Validated certificate from the workers `to` (asked directly) on `proposal`.
    pub async fn validate(
        &self,
        to: &[usize],
        proposal: &BlockProposal,
    ) -> ValidatedBlockCertificate {
        let value = Hashed::new(ValidatedBlock(self.value(proposal.block()).await));
        let mut aggregator = SignatureAggregator::new(value, proposal.round(), &self.committee);
        let mut certificate = None;
        for &v in to {
            let answer = self.workers[v]
                .handle_block_proposal(proposal.clone())
                .await
                .unwrap();
            if let Some(c) = aggregator
                .add(answer.info.manager.pending.as_ref().unwrap())
                .unwrap()
            {
                certificate = Some(c);
            }
        }
        certificate.expect("a quorum validated")
    }

    /// Confirmed certificate from the workers `to` (asked directly) handling `validated`.
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

    /// Confirmed certificate of a fast-round proposal (workers asked directly).
    pub async fn fast_confirm(
        &self,
        to: &[usize],
        proposal: &BlockProposal,
    ) -> ConfirmedBlockCertificate {
        let value = Hashed::new(ConfirmedBlock(self.value(proposal.block()).await));
        let mut aggregator = SignatureAggregator::new(value, Round::Fast, &self.committee);
        let mut certificate = None;
        for &v in to {
            let answer = self.workers[v]
                .handle_block_proposal(proposal.clone())
                .await
                .unwrap();
            if let Some(c) = aggregator
                .add(answer.info.manager.pending.as_ref().unwrap())
                .unwrap()
            {
                certificate = Some(c);
            }
        }
        certificate.expect("a quorum confirmed in the fast round")
    }

    /// Delivers a confirmed certificate to the workers `to` directly.
    pub async fn deliver(&self, to: &[usize], certificate: &ConfirmedBlockCertificate) {
        for &v in to {
            self.workers[v]
                .handle_confirmed_certificate(certificate.clone(), CrossChainDelivery::Blocking)
                .await
                .unwrap();
        }
    }

    /// Moves the manual clock past chain `c`'s round deadline.
    pub async fn pass_deadline(&self, c: usize) {
        let state = self.workers[0].chain_state(self.chains[c]).await.unwrap();
        let deadline = state.manager.round_timeout.unwrap();
        self.clock.set(deadline.saturating_add(TimeDelta(1)));
    }

    /// A timeout certificate for chain `c`'s current height at `round`, from the workers `to`
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
            let query = ChainInfoQuery::new(self.chains[c]).with_timeout(state.next_height, round);
            let answer = self.workers[v]
                .handle_chain_info_query(query)
                .await
                .unwrap();
            let vote = answer.info.manager.timeout_vote.clone().unwrap();
            if let Some(c) = aggregator.add(&vote).unwrap() {
                certificate = Some(c);
            }
        }
        certificate.expect("a quorum timed out")
    }

    /// What worker `v` itself says about chain `c` (its vote included).
    pub async fn direct_info(&self, v: usize, c: usize) -> ChainInfoResponse {
        self.workers[v]
            .handle_chain_info_query(ChainInfoQuery::new(self.chains[c]))
            .await
            .unwrap()
    }

    /// Worker `v`'s own pending vote on chain `c`.
    pub async fn direct_vote(&self, v: usize, c: usize) -> Option<LiteVote> {
        self.direct_info(v, c).await.info.manager.pending
    }
}
