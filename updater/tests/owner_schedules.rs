//! Issue 28, must-show 2, in process: random schedules of a chain with a super owner and two
//! regular owners, with one Byzantine validator (DESIGN §4.3).
//!
//! During the schedule, the three owners' proposals (some publishing blobs), the super owner's
//! one fast proposal, re-proposals of validated blocks and of the fast block, deliveries of
//! validated certificates and timeouts happen in any order, each reaching any subset of the
//! three honest validators. Validator 3 is Byzantine: it signs a vote for whatever is being
//! voted on, so that certificates form with only two honest votes. Confirmed certificates
//! formed on the way are never delivered.
//!
//! Checked: at most one block is ever confirmed at the height (with the Byzantine votes), and
//! once the schedule stops (validator 3 honest from then on) any owner's transfer from a
//! fresh wallet commits within `Options::max_rounds_per_block` rounds, on top of the block
//! confirmed during the schedule if there was one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quorum_core::{
    Blob, Block, BlockHeight, BlockProposal, BlockValue, Certificate, ChainInfoQuery,
    ConfirmedBlock, Hashed, LiteVote, Operation, Round, SignatureAggregator, Timeout,
    ValidatedBlock, ValidatedBlockCertificate, ValidatorNode, VoteKind,
};
use quorum_testkit::TokioTestNet;

#[path = "owners/kit.rs"]
mod kit;

use kit::{commits_from_a_fresh_wallet, run_paused, super_owner_and_two_owners, transfer, CHAIN};

/// The honest validators; validator `BYZANTINE` signs anything.
const HONEST: [usize; 3] = [0, 1, 2];
const BYZANTINE: usize = 3;

/// One step; `mask` picks honest validators (bit v for validator v, at least one).
#[derive(Clone, Debug)]
enum Step {
    /// The super owner's fast proposal (always the same block: an honest super owner signs
    /// one per height).
    Fast { mask: u8 },
    /// Owner `owner` (0 the super owner) proposes a block of its own (`variant` picks its
    /// amount), in the current round of the first validator of `mask` unless it is the fast
    /// round.
    Propose {
        owner: usize,
        variant: u8,
        blob: bool,
        mask: u8,
    },
    /// Owner `owner` re-proposes a validated block formed so far (`which`, modulo their
    /// number).
    Retry {
        owner: usize,
        which: usize,
        mask: u8,
    },
    /// Owner `owner` re-proposes the super owner's fast block, justified by its signature.
    FastRetry { owner: usize, mask: u8 },
    /// A validated certificate formed so far reaches the validators of `mask`.
    Deliver { which: usize, mask: u8 },
    /// The validators of `mask` are asked to time out the first one's round; a certificate,
    /// if it forms, reaches the validators of `reach`.
    Timeout { mask: u8, reach: u8 },
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let mask = 1..8u8;
    prop_oneof![
        2 => mask.clone().prop_map(|mask| Step::Fast { mask }),
        4 => (0..3usize, 0..3u8, any::<bool>(), mask.clone())
            .prop_map(|(owner, variant, blob, mask)| Step::Propose { owner, variant, blob, mask }),
        2 => (0..3usize, 0..8usize, mask.clone())
            .prop_map(|(owner, which, mask)| Step::Retry { owner, which, mask }),
        2 => (0..3usize, mask.clone()).prop_map(|(owner, mask)| Step::FastRetry { owner, mask }),
        3 => (0..8usize, mask.clone()).prop_map(|(which, mask)| Step::Deliver { which, mask }),
        2 => (mask.clone(), mask).prop_map(|(mask, reach)| Step::Timeout { mask, reach }),
    ]
}

/// The network, the owners, and what formed so far.
struct World {
    net: TokioTestNet,
    /// The super owner, then the two regular owners.
    owners: [quorum_core::AccountSecretKey; 3],
    template: Block,
    fast: BlockProposal,
    /// The blob each block publishes, if any.
    blobs: Vec<(Block, Blob)>,
    validated: Vec<ValidatedBlockCertificate>,
    confirmed: Vec<Block>,
}

/// `author`'s block like `template` transferring `amount`, publishing a blob if `blob` (noted
/// in `blobs`).
fn make_block(
    net: &TokioTestNet,
    template: &Block,
    author: &quorum_core::AccountSecretKey,
    amount: u64,
    blob: bool,
    blobs: &mut Vec<(Block, Blob)>,
) -> Block {
    let mut operations = transfer(net, amount);
    let blob = blob.then(|| {
        let mut content = author.public().as_bytes().to_vec();
        content.push(amount as u8);
        Blob::data(content)
    });
    if let Some(blob) = &blob {
        operations.push(Operation::PublishBlob(blob.id()));
    }
    let block = Block {
        authenticated_owner: author.public(),
        operations,
        ..template.clone()
    };
    if let Some(blob) = blob {
        if !blobs.iter().any(|(known, _)| *known == block) {
            blobs.push((block.clone(), blob));
        }
    }
    block
}

fn honest(mask: u8) -> Vec<usize> {
    HONEST
        .into_iter()
        .filter(|v| mask & (1 << v) != 0)
        .collect()
}

impl World {
    async fn new(fast_blob: bool) -> Self {
        let (net, owners) = super_owner_and_two_owners().await;
        let template = net.block(CHAIN, Vec::new()).await;
        let mut blobs = Vec::new();
        let block = make_block(&net, &template, &owners[0], 9, fast_blob, &mut blobs);
        let fast = BlockProposal::new(block, Round::Fast, &owners[0]);
        World {
            net,
            owners,
            template,
            fast,
            blobs,
            validated: Vec::new(),
            confirmed: Vec::new(),
        }
    }

    /// Owner `owner`'s block at height 0 transferring `amount`, publishing a blob if `blob`.
    fn block(&mut self, owner: usize, amount: u64, blob: bool) -> Block {
        let author = &self.owners[owner];
        make_block(
            &self.net,
            &self.template,
            author,
            amount,
            blob,
            &mut self.blobs,
        )
    }

    fn blob_of(&self, block: &Block) -> Option<Blob> {
        self.blobs
            .iter()
            .find(|(known, _)| known == block)
            .map(|(_, blob)| blob.clone())
    }

    async fn round_of(&self, v: usize) -> Round {
        self.net
            .direct_info(v, CHAIN)
            .await
            .info
            .manager
            .current_round
    }

    async fn value(&self, block: &Block) -> BlockValue {
        let blobs: Vec<Blob> = self.blob_of(block).into_iter().collect();
        self.net
            .local
            .stage_block_execution(block, &blobs)
            .await
            .unwrap()
    }

    /// Sends `proposal` to `to` (which first hold its block's blob pending); returns the
    /// votes of kind `kind` in its round.
    async fn propose(&self, to: &[usize], proposal: &BlockProposal) -> Vec<LiteVote> {
        if let Some(blob) = self.blob_of(proposal.block()) {
            for &v in to {
                let _ = self.net.workers[v]
                    .hold_own_pending_blob(self.net.chains[CHAIN], blob.clone())
                    .await;
            }
        }
        let kind = if proposal.round().is_fast() {
            VoteKind::Confirmed
        } else {
            VoteKind::Validated
        };
        self.net
            .propose(to, proposal)
            .await
            .into_iter()
            .filter_map(|answer| answer.ok()?.info.manager.pending)
            .filter(|vote| vote.kind == kind && vote.round == proposal.round())
            .collect()
    }

    /// The certificate the honest `votes` and the Byzantine validator's vote make, if any.
    fn certify<T: quorum_core::CertificateValue + Clone>(
        &self,
        value: Hashed<T>,
        kind: VoteKind,
        round: Round,
        votes: &[LiteVote],
    ) -> Option<Certificate<T>> {
        let byzantine = LiteVote::new(value.hash(), kind, round, &self.net.secrets[BYZANTINE]);
        let mut aggregator = SignatureAggregator::new(value, round, &self.net.committee);
        let mut certificate = None;
        for vote in votes.iter().chain([&byzantine]) {
            if let Ok(Some(done)) = aggregator.add(vote) {
                certificate = Some(done);
            }
        }
        certificate
    }

    fn record_confirmed(&mut self, block: &Block) {
        if !self.confirmed.contains(block) {
            self.confirmed.push(block.clone());
        }
        assert!(self.confirmed.len() <= 1, "two blocks confirmed");
    }

    /// Proposes `proposal` to `to` and keeps the certificate its votes make.
    async fn vote_on(&mut self, to: &[usize], proposal: BlockProposal) {
        let votes = self.propose(to, &proposal).await;
        let value = self.value(proposal.block()).await;
        let round = proposal.round();
        if round.is_fast() {
            let value = Hashed::new(ConfirmedBlock(value));
            if self
                .certify(value, VoteKind::Confirmed, round, &votes)
                .is_some()
            {
                self.record_confirmed(proposal.block());
            }
        } else if let Some(certificate) = self.certify(
            Hashed::new(ValidatedBlock(value)),
            VoteKind::Validated,
            round,
            &votes,
        ) {
            if !self.validated.contains(&certificate) {
                self.validated.push(certificate);
            }
        }
    }

    async fn run(&mut self, step: Step) {
        match step {
            Step::Fast { mask } => {
                let to = honest(mask);
                self.vote_on(&to, self.fast.clone()).await;
            }
            Step::Propose {
                owner,
                variant,
                blob,
                mask,
            } => {
                let to = honest(mask);
                let round = self.round_of(to[0]).await;
                if round.is_fast() {
                    // The super owner's one fast proposal is `Step::Fast`'s.
                    return;
                }
                let block = self.block(owner, u64::from(variant) + 1, blob);
                let proposal = BlockProposal::new(block, round, &self.owners[owner]);
                self.vote_on(&to, proposal).await;
            }
            Step::Retry { owner, which, mask } => {
                if self.validated.is_empty() {
                    return;
                }
                let certificate = self.validated[which % self.validated.len()].clone();
                let to = honest(mask);
                let round = self.round_of(to[0]).await;
                if certificate.round() >= round {
                    return;
                }
                let proposal = BlockProposal::new_retry(round, certificate, &self.owners[owner]);
                self.vote_on(&to, proposal).await;
            }
            Step::FastRetry { owner, mask } => {
                let to = honest(mask);
                let round = self.round_of(to[0]).await;
                if round.is_fast() {
                    return;
                }
                let proposal =
                    BlockProposal::new_fast_retry(round, &self.fast, &self.owners[owner]).unwrap();
                self.vote_on(&to, proposal).await;
            }
            Step::Deliver { which, mask } => {
                if self.validated.is_empty() {
                    return;
                }
                let certificate = self.validated[which % self.validated.len()].clone();
                let mut votes = Vec::new();
                for v in honest(mask) {
                    let answer = self.net.workers[v]
                        .handle_validated_certificate(certificate.clone())
                        .await;
                    if let Some(vote) = answer.ok().and_then(|a| a.info.manager.pending) {
                        if vote.kind == VoteKind::Confirmed && vote.round == certificate.round() {
                            votes.push(vote);
                        }
                    }
                }
                let value = Hashed::new(certificate.value().to_confirmed());
                let round = certificate.round();
                if self
                    .certify(value, VoteKind::Confirmed, round, &votes)
                    .is_some()
                {
                    self.record_confirmed(certificate.value().block());
                }
            }
            Step::Timeout { mask, reach } => {
                tokio::time::advance(Duration::from_secs(10)).await;
                let to = honest(mask);
                let round = self.round_of(to[0]).await;
                let chain = self.net.chains[CHAIN];
                let mut votes = Vec::new();
                for &v in &to {
                    let query = ChainInfoQuery::new(chain).with_timeout(BlockHeight(0), round);
                    if let Ok(answer) = self.net.workers[v].handle_chain_info_query(query).await {
                        votes.extend(
                            answer
                                .info
                                .manager
                                .timeout_vote
                                .filter(|vote| vote.round == round),
                        );
                    }
                }
                let value = Hashed::new(Timeout {
                    chain_id: chain,
                    height: BlockHeight(0),
                    epoch: self.template.epoch,
                });
                if let Some(certificate) = self.certify(value, VoteKind::Timeout, round, &votes) {
                    for v in honest(reach) {
                        let _ = self.net.workers[v]
                            .handle_timeout_certificate(certificate.clone())
                            .await;
                    }
                }
            }
        }
    }
}

async fn any_schedule_is_safe_and_then_commits(steps: Vec<Step>, fast_blob: bool, driver: usize) {
    let mut world = World::new(fast_blob).await;
    for step in steps {
        world.run(step).await;
    }
    commits_from_a_fresh_wallet(&world.net, &world.owners[driver]).await;
    if let Some(confirmed) = world.confirmed.first() {
        for v in 0..4 {
            let found = world.net.workers[v]
                .download_certificates_by_heights(world.net.chains[CHAIN], vec![BlockHeight(0)])
                .await
                .unwrap();
            assert_eq!(found[0].value().block(), confirmed, "validator {v}");
        }
    }
}

proptest::proptest! {
    // A fixed seed: the same 64 schedules on every run (4,000 random ones passed when this
    // was written: `PROPTEST_CASES=4000`, with the seed line taken out).
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(28),
        ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn a_super_owner_two_owners_and_a_byzantine_validator_never_fork_or_stall_the_chain(
        steps in proptest::collection::vec(step(), 1..24),
        fast_blob in proptest::bool::ANY,
        driver in 0..3usize,
    ) {
        run_paused(any_schedule_is_safe_and_then_commits(steps, fast_blob, driver));
    }
}

/// A schedule the property test found: every validator timed out to the first single-leader
/// round, where the super owner's fast block was re-proposed and validated (the certificate
/// never delivered); a regular owner then commits.
#[tokio::test(start_paused = true)]
async fn a_fast_block_validated_in_a_single_leader_round_is_finished_by_a_regular_owner() {
    let steps = vec![
        Step::Timeout { mask: 3, reach: 6 },
        Step::Timeout { mask: 6, reach: 6 },
        Step::Timeout { mask: 6, reach: 7 },
        Step::FastRetry { owner: 0, mask: 5 },
        Step::Fast { mask: 1 },
    ];
    any_schedule_is_safe_and_then_commits(steps, false, 1).await;
}

/// A schedule the property test found: the super owner's block was validated in the round
/// the validators are in (and reached one of them) while another validator is bound by its
/// fast-round vote; the super owner's fresh wallet finalizes that block in its round rather
/// than re-proposing it there (which a validator refuses).
#[tokio::test(start_paused = true)]
async fn a_block_validated_in_the_current_round_is_finalized() {
    let steps = vec![
        Step::Fast { mask: 4 },
        Step::Timeout { mask: 3, reach: 7 },
        Step::Propose {
            owner: 0,
            variant: 0,
            blob: false,
            mask: 7,
        },
        Step::Deliver { which: 0, mask: 4 },
    ];
    any_schedule_is_safe_and_then_commits(steps, false, 0).await;
}
