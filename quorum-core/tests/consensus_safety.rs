//! Safety of the consensus rules (DESIGN §4.3) over random interleavings: three honest
//! validators' `ChainManager`s and one Byzantine validator that votes for anything. Three
//! owners (two regular owners and a super owner who is not one of them) propose three
//! different blocks in any order and any round, and re-propose validated blocks and the super
//! owner's fast block in later rounds; certificates form whenever a
//! quorum voted, and reach any validator at any time, or never; rounds time out at any time on
//! any validator. Whatever happens, at most one block is ever confirmed at the height.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use quorum_core::{
    AccountSecretKey, Block, BlockHeight, BlockOutcome, BlockProposal, BlockValue, Certificate,
    ChainDescription, ChainManager, ChainOrigin, ConsensusConfig, CryptoHash, Epoch, Hashed,
    Operation, ProposalDecision, Round, TimeDelta, Timeout, Timestamp, ValidatedBlock,
    ValidatedBlockCertificate, ValidatorSecretKey, VoteKind,
};
use rand::SeedableRng;

/// Honest validators; a fourth, Byzantine, votes for whatever helps a certificate form.
const HONEST: usize = 3;
/// Honest votes a certificate needs: a quorum of 3 of 4, less the Byzantine vote.
const HONEST_IN_QUORUM: usize = 2;
/// Blocks competing for the height.
const BLOCKS: usize = 3;
/// Owners proposing: the first two are the chain's regular owners, the last its super owner
/// only (who alone proposes in the fast round, and in multi-leader rounds like the others).
const OWNERS: usize = 3;

/// One step of the schedule.
#[derive(Clone, Debug)]
enum Step {
    /// Owner `owner` proposes block `block` to honest validator `to`, in its current round.
    Propose {
        to: usize,
        block: usize,
        owner: usize,
    },
    /// Owner `owner` proposes again, to `to` in its current round, the block of a validated
    /// certificate formed so far (picked by `certificate`, modulo their number).
    Retry {
        to: usize,
        certificate: usize,
        owner: usize,
    },
    /// Owner `owner` re-proposes to `to`, in its current round, the super owner's fast
    /// proposal some honest validator voted for, justified by its fast-round signature.
    FastRetry { to: usize, owner: usize },
    /// A validated certificate formed so far reaches `to`.
    Deliver { to: usize, certificate: usize },
    /// `to`'s current round times out.
    Timeout { to: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..HONEST, 0..BLOCKS, 0..OWNERS)
            .prop_map(|(to, block, owner)| Step::Propose { to, block, owner }),
        2 => (0..HONEST, 0..16usize, 0..OWNERS)
            .prop_map(|(to, certificate, owner)| Step::Retry { to, certificate, owner }),
        2 => (0..HONEST, 0..OWNERS).prop_map(|(to, owner)| Step::FastRetry { to, owner }),
        3 => (0..HONEST, 0..16usize).prop_map(|(to, certificate)| Step::Deliver { to, certificate }),
        2 => (0..HONEST).prop_map(|to| Step::Timeout { to }),
    ]
}

/// The honest validators, the chain, and every vote and certificate so far.
struct World {
    keys: Vec<ValidatorSecretKey>,
    owners: Vec<AccountSecretKey>,
    description: ChainDescription,
    blocks: Vec<BlockValue>,
    managers: Vec<ChainManager>,
    /// Honest votes: (kind, block, round) → voters.
    votes: BTreeMap<(VoteKind, usize, Round), BTreeSet<usize>>,
    validated: Vec<ValidatedBlockCertificate>,
    confirmed: BTreeSet<usize>,
}

impl World {
    fn new() -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let keys: Vec<ValidatorSecretKey> = (0..HONEST)
            .map(|_| ValidatorSecretKey::generate(&mut rng))
            .collect();
        let owners: Vec<AccountSecretKey> = (0..OWNERS)
            .map(|_| AccountSecretKey::generate(&mut rng))
            .collect();
        let description = ChainDescription {
            origin: ChainOrigin::Genesis(1),
            owners: owners[..OWNERS - 1]
                .iter()
                .map(|owner| (owner.public(), 1))
                .collect(),
            super_owner: Some(owners[OWNERS - 1].public()),
            epoch: Epoch(0),
            timestamp: Timestamp(0),
            consensus: ConsensusConfig {
                multi_leader_rounds: 2,
                fast_round_duration: TimeDelta::from_secs(1),
                base_timeout: TimeDelta::from_secs(2),
                timeout_increment: TimeDelta::from_secs(1),
            },
            balance: 100,
        };
        let blocks = (0..BLOCKS)
            .map(|index| {
                let block = Block {
                    chain_id: description.id(),
                    epoch: Epoch(0),
                    height: BlockHeight(0),
                    timestamp: Timestamp(0),
                    previous_block_hash: None,
                    authenticated_owner: owners[index % OWNERS].public(),
                    incoming_bundles: Vec::new(),
                    operations: vec![Operation::Transfer {
                        recipient: description.id(),
                        amount: index as u64 + 1,
                    }],
                };
                BlockValue {
                    block,
                    outcome: BlockOutcome {
                        state_hash: CryptoHash([index as u8; 32]),
                        messages: Vec::new(),
                        events: Vec::new(),
                        published_blobs: Vec::new(),
                    },
                }
            })
            .collect();
        let managers = (0..HONEST)
            .map(|_| ChainManager::new(&description, BlockHeight(0), Timestamp(0)))
            .collect();
        World {
            keys,
            owners,
            description,
            blocks,
            managers,
            votes: BTreeMap::new(),
            validated: Vec::new(),
            confirmed: BTreeSet::new(),
        }
    }

    fn index_of(&self, block: &Block) -> usize {
        self.blocks
            .iter()
            .position(|value| value.block == *block)
            .expect("a known block")
    }

    /// `to` considers `proposal` and votes for it if the rules let it.
    fn propose(&mut self, to: usize, proposal: BlockProposal) {
        let manager = &self.managers[to];
        let decision = manager.check_verified_proposal(&self.description, &proposal, Ok(()));
        if decision != Ok(ProposalDecision::Vote) {
            return;
        }
        let block = self.index_of(proposal.block());
        let value = self.blocks[block].clone();
        let round = proposal.round();
        let vote = self.managers[to]
            .vote_for_proposal(proposal, value, Some(&self.keys[to]))
            .expect("a vote");
        self.record(vote.kind, block, round, to);
    }

    fn record(&mut self, kind: VoteKind, block: usize, round: Round, voter: usize) {
        let voters = self.votes.entry((kind, block, round)).or_default();
        voters.insert(voter);
        if voters.len() < HONEST_IN_QUORUM {
            return;
        }
        match kind {
            VoteKind::Validated => {
                let value = Hashed::new(ValidatedBlock(self.blocks[block].clone()));
                let certificate = Certificate::new(value, round, Vec::new());
                if !self.validated.contains(&certificate) {
                    self.validated.push(certificate);
                }
            }
            VoteKind::Confirmed => {
                self.confirmed.insert(block);
            }
            VoteKind::Timeout => {}
        }
    }

    fn run(&mut self, step: Step) {
        match step {
            Step::Propose { to, block, owner } => {
                let round = self.managers[to].current_round();
                let block = self.blocks[block].block.clone();
                let proposal = BlockProposal::new(block, round, &self.owners[owner]);
                self.propose(to, proposal);
            }
            Step::Retry {
                to,
                certificate,
                owner,
            } => {
                if self.validated.is_empty() {
                    return;
                }
                let certificate = self.validated[certificate % self.validated.len()].clone();
                let round = self.managers[to].current_round();
                if certificate.round() >= round {
                    return;
                }
                let proposal = BlockProposal::new_retry(round, certificate, &self.owners[owner]);
                self.propose(to, proposal);
            }
            Step::FastRetry { to, owner } => {
                let round = self.managers[to].current_round();
                let fast = self
                    .managers
                    .iter()
                    .find_map(|manager| manager.fast_proposal().cloned());
                let Some(fast) = fast else {
                    return;
                };
                if round.is_fast() {
                    return;
                }
                if let Some(proposal) =
                    BlockProposal::new_fast_retry(round, &fast, &self.owners[owner])
                {
                    self.propose(to, proposal);
                }
            }
            Step::Deliver { to, certificate } => {
                if self.validated.is_empty() {
                    return;
                }
                let certificate = self.validated[certificate % self.validated.len()].clone();
                let answer = self.managers[to].handle_validated_certificate(
                    &self.description,
                    &certificate,
                    Timestamp(0),
                    Some(&self.keys[to]),
                );
                if let Ok(Some(vote)) = answer {
                    let block = self.index_of(certificate.value().block());
                    self.record(vote.kind, block, certificate.round(), to);
                }
            }
            Step::Timeout { to } => {
                let round = self.managers[to].current_round();
                let value = Hashed::new(Timeout {
                    chain_id: self.description.id(),
                    height: BlockHeight(0),
                    epoch: Epoch(0),
                });
                let certificate = Certificate::new(value, round, Vec::new());
                self.managers[to].handle_timeout_certificate(
                    &self.description,
                    &certificate,
                    Timestamp(0),
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn at_most_one_block_is_confirmed(steps in prop::collection::vec(step(), 1..80)) {
        let mut world = World::new();
        for step in steps {
            world.run(step);
            prop_assert!(
                world.confirmed.len() <= 1,
                "two blocks confirmed: {:?}",
                world.confirmed
            );
        }
    }
}
