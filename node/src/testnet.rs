//! A committee of Workers driven directly, without the updater (crate feature `testing`).
//!
//! [`TestNet`] builds `n` equal-weight validators with seeded keys over [`MemoryStorage`], a
//! genesis of owned chains (chain 0 is the admin chain) and one [`ManualClock`], and runs the
//! protocol by hand: propose, aggregate votes into certificates, confirm, deliver, time out.
//! Everything panics on failure with a message naming what failed: it is meant for tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use quorum_core::{
    AccountPublicKey, AccountSecretKey, Block, BlockHeight, BlockProposal, BlockValue,
    ChainDescription, ChainId, ChainInfoQuery, ChainInfoResponse, ChainOrigin, Committee,
    ConfirmedBlock, ConfirmedBlockCertificate, ConsensusConfig, CrossChainDelivery, Epoch, Hashed,
    IncomingBundle, LiteVote, NodeError, Operation, Round, SignatureAggregator, TimeDelta, Timeout,
    TimeoutCertificate, Timestamp, ValidatedBlock, ValidatedBlockCertificate, ValidatorInfo,
    ValidatorNode, ValidatorSecretKey,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::testing::must;
use crate::{Clock, Genesis, ManualClock, MemoryStorage, Worker, WorkerConfig};

/// Where the manual clock starts, in microseconds.
pub const START: Timestamp = Timestamp(1_000_000_000);

/// Balance of every chain of a [`TestNet`] genesis.
pub const GENESIS_BALANCE: u64 = 1_000;

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
        .map(|s| {
            (
                s.public(),
                ValidatorInfo {
                    votes: 1,
                    address: String::new(),
                },
            )
        })
        .collect();
    must(Committee::new(members), "building the committee")
}

/// Genesis chain number `index`, owned by `owner` (its super owner when `fast`), with
/// [`GENESIS_BALANCE`].
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

/// A committee of Workers and the chains' owners.
pub struct TestNet {
    /// The clock every worker reads.
    pub clock: ManualClock,
    /// Validator keys, in committee order.
    pub secrets: Vec<ValidatorSecretKey>,
    /// One Worker per validator.
    pub workers: Vec<Arc<Worker<MemoryStorage>>>,
    /// The committee of epoch 0.
    pub committee: Committee,
    /// The genesis every worker started from.
    pub genesis: Genesis,
    /// Owner keys, one per chain.
    pub owners: Vec<AccountSecretKey>,
    /// The genesis chains; chain 0 is the admin chain.
    pub chains: Vec<ChainId>,
}

impl TestNet {
    /// `n` validators of weight 1 and `chains` genesis chains with default consensus settings;
    /// chains have a super owner (fast round) when `fast`.
    pub async fn new(n: usize, chains: u32, fast: bool) -> TestNet {
        let secrets = validator_keys(n, 42);
        let mut rng = ChaCha8Rng::seed_from_u64(43);
        let owners: Vec<_> = (0..chains)
            .map(|_| AccountSecretKey::generate(&mut rng))
            .collect();
        let committee = committee_of(&secrets);
        let descriptions: Vec<_> = owners
            .iter()
            .zip(0..)
            .map(|(owner, i)| {
                genesis_description(i, owner.public(), fast, ConsensusConfig::default())
            })
            .collect();
        let genesis = Genesis {
            committee: committee.clone(),
            chains: descriptions.clone(),
        };
        let clock = ManualClock::new(START);
        let mut workers = Vec::new();
        for secret in &secrets {
            let storage = MemoryStorage::new();
            let admin = must(
                genesis.initialize(&storage, START).await,
                "writing the genesis",
            );
            let clock: Arc<dyn Clock> = Arc::new(clock.clone());
            workers.push(Arc::new(Worker::new(
                storage,
                Some(secret.clone()),
                clock,
                WorkerConfig::new(admin),
            )));
        }
        let chains = descriptions.iter().map(ChainDescription::id).collect();
        TestNet {
            clock,
            secrets,
            workers,
            committee,
            genesis,
            owners,
            chains,
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

    /// A block for chain `c` on top of what validator `v` has.
    pub async fn block_on(
        &self,
        v: usize,
        c: usize,
        operations: Vec<Operation>,
        bundles: Vec<IncomingBundle>,
    ) -> Block {
        let state = must(
            self.workers[v].chain_state(self.chains[c]).await,
            "reading the chain",
        );
        Block {
            chain_id: self.chains[c],
            epoch: state.epoch,
            height: state.next_height,
            timestamp: self.now(),
            previous_block_hash: state.tip_hash,
            authenticated_owner: self.owners[c].public(),
            incoming_bundles: bundles,
            operations,
        }
    }

    /// A block for chain `c` on top of what validator 0 has, consuming nothing.
    pub async fn block(&self, c: usize, operations: Vec<Operation>) -> Block {
        self.block_on(0, c, operations, vec![]).await
    }

    /// The owner's proposal of `block` in `round`.
    pub fn proposal(&self, c: usize, block: Block, round: Round) -> BlockProposal {
        BlockProposal::new(block, round, &self.owners[c])
    }

    /// A proposal of an empty block on chain `c` in round `MultiLeader(0)`.
    pub async fn empty_proposal(&self, c: usize) -> BlockProposal {
        let block = self.block(c, vec![]).await;
        self.proposal(c, block, Round::MultiLeader(0))
    }

    /// The value of `block` as validator 0 executes it.
    pub async fn value(&self, block: &Block) -> BlockValue {
        must(
            self.workers[0].stage_block_execution(block, &[]).await,
            "executing the block",
        )
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

    fn pending_vote(answer: Result<ChainInfoResponse, NodeError>) -> LiteVote {
        let response = must(answer, "asking for a vote");
        response
            .info
            .manager
            .pending
            .unwrap_or_else(|| panic!("the answer carries no vote"))
    }

    fn aggregate<T: quorum_core::CertificateValue + Clone>(
        &self,
        value: Hashed<T>,
        round: Round,
        votes: impl IntoIterator<Item = LiteVote>,
        what: &str,
    ) -> quorum_core::Certificate<T> {
        let mut aggregator = SignatureAggregator::new(value, round, &self.committee);
        let mut certificate = None;
        for vote in votes {
            if let Some(done) = must(aggregator.add(&vote), "adding a vote") {
                certificate = Some(done);
            }
        }
        certificate.unwrap_or_else(|| panic!("no quorum: {what}"))
    }

    /// Validated certificate from the votes of validators `to` on `proposal`.
    pub async fn validate(
        &self,
        to: &[usize],
        proposal: &BlockProposal,
    ) -> ValidatedBlockCertificate {
        let value = Hashed::new(ValidatedBlock(self.value(proposal.block()).await));
        let votes = self
            .propose(to, proposal)
            .await
            .into_iter()
            .map(Self::pending_vote);
        self.aggregate(value, proposal.round(), votes, "validating")
    }

    /// Confirmed certificate from validators `to` handling `validated`.
    pub async fn confirm(
        &self,
        to: &[usize],
        validated: &ValidatedBlockCertificate,
    ) -> ConfirmedBlockCertificate {
        let value = Hashed::new(validated.value().to_confirmed());
        let mut votes = Vec::new();
        for &v in to {
            votes.push(Self::pending_vote(
                self.workers[v]
                    .handle_validated_certificate(validated.clone())
                    .await,
            ));
        }
        self.aggregate(value, validated.round(), votes, "confirming")
    }

    /// Confirmed certificate of a fast-round proposal, from validators `to`.
    pub async fn fast_confirm(
        &self,
        to: &[usize],
        proposal: &BlockProposal,
    ) -> ConfirmedBlockCertificate {
        let value = Hashed::new(ConfirmedBlock(self.value(proposal.block()).await));
        let votes = self
            .propose(to, proposal)
            .await
            .into_iter()
            .map(Self::pending_vote);
        self.aggregate(value, Round::Fast, votes, "confirming in the fast round")
    }

    /// Delivers a confirmed certificate to validators `to`.
    pub async fn deliver(&self, to: &[usize], certificate: &ConfirmedBlockCertificate) {
        for &v in to {
            let answer = self.workers[v]
                .handle_confirmed_certificate(certificate.clone(), CrossChainDelivery::Blocking)
                .await;
            must(answer, "delivering a certificate");
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

    /// Moves the clock past chain `c`'s current round deadline (as validator 0 sees it).
    pub async fn pass_deadline(&self, c: usize) {
        let state = must(
            self.workers[0].chain_state(self.chains[c]).await,
            "reading the chain",
        );
        let deadline = state
            .manager
            .round_timeout
            .unwrap_or_else(|| panic!("the round has no deadline"));
        self.clock.set(deadline.saturating_add(TimeDelta(1)));
    }

    /// A timeout certificate for chain `c`'s current height at `round`, from validators `to`
    /// (the clock must be past the round's deadline).
    pub async fn timeout(&self, to: &[usize], c: usize, round: Round) -> TimeoutCertificate {
        let state = must(
            self.workers[to[0]].chain_state(self.chains[c]).await,
            "reading the chain",
        );
        let value = Hashed::new(Timeout {
            chain_id: self.chains[c],
            height: state.next_height,
            epoch: state.epoch,
        });
        let mut votes = Vec::new();
        for &v in to {
            let query = ChainInfoQuery::new(self.chains[c]).with_timeout(state.next_height, round);
            let answer = must(
                self.workers[v].handle_chain_info_query(query).await,
                "asking for a timeout",
            );
            votes.push(
                answer
                    .info
                    .manager
                    .timeout_vote
                    .unwrap_or_else(|| panic!("no timeout vote")),
            );
        }
        self.aggregate(value, round, votes, "timing out")
    }

    /// What validator `v` says about chain `c`.
    pub async fn direct_info(&self, v: usize, c: usize) -> ChainInfoResponse {
        let query = ChainInfoQuery::new(self.chains[c]);
        must(
            self.workers[v].handle_chain_info_query(query).await,
            "querying a chain",
        )
    }

    /// Validator `v`'s own pending vote on chain `c`.
    pub async fn direct_vote(&self, v: usize, c: usize) -> Option<LiteVote> {
        self.direct_info(v, c).await.info.manager.pending
    }

    /// Validator `v`'s next height on chain `c`.
    pub async fn next_height(&self, v: usize, c: usize) -> BlockHeight {
        must(
            self.workers[v].chain_state(self.chains[c]).await,
            "reading the chain",
        )
        .next_height
    }

    /// Validator `v`'s balance of chain `c`.
    pub async fn balance(&self, v: usize, c: usize) -> u64 {
        must(
            self.workers[v].chain_state(self.chains[c]).await,
            "reading the chain",
        )
        .balance
    }
}
