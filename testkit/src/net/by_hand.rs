//! Running the protocol by hand on a [`TestNetwork`]'s Workers, without the updater: blocks,
//! proposals, votes aggregated into certificates, confirmation, delivery and timeouts.

use quorum_core::{
    Block, BlockHeight, BlockProposal, BlockValue, Certificate, ChainId, ChainInfoQuery,
    ChainInfoResponse, ConfirmedBlock, ConfirmedBlockCertificate, CrossChainDelivery, Hashed,
    IncomingBundle, LiteVote, NodeError, Operation, Round, SignatureAggregator, TimeDelta, Timeout,
    TimeoutCertificate, ValidatedBlock, ValidatedBlockCertificate, ValidatorNode,
};
use quorum_node::ManualClock;

use super::{NetClock, TestNetwork};
use crate::must::must;

impl<C: NetClock> TestNetwork<C> {
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
            epoch: state.epoch(),
            height: state.next_height(),
            timestamp: self.now(),
            previous_block_hash: state.tip_hash(),
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

    /// A timeout certificate for chain `c`'s current height at `round`, from validators `to`
    /// (the clock must be past the round's deadline).
    pub async fn timeout(&self, to: &[usize], c: usize, round: Round) -> TimeoutCertificate {
        let state = must(
            self.workers[to[0]].chain_state(self.chains[c]).await,
            "reading the chain",
        );
        let value = Hashed::new(Timeout {
            chain_id: self.chains[c],
            height: state.next_height(),
            epoch: state.epoch(),
        });
        let mut votes = Vec::new();
        for &v in to {
            let query =
                ChainInfoQuery::new(self.chains[c]).with_timeout(state.next_height(), round);
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
        .next_height()
    }

    /// Validator `v`'s balance of chain `c`.
    pub async fn balance(&self, v: usize, c: usize) -> u64 {
        must(
            self.workers[v].chain_state(self.chains[c]).await,
            "reading the chain",
        )
        .balance()
    }

    /// Validator `v`'s next height on the chain `chain`.
    pub async fn height_of(&self, v: usize, chain: ChainId) -> BlockHeight {
        must(
            self.workers[v].chain_state(chain).await,
            "reading the chain",
        )
        .next_height()
    }

    /// Validators 0..3 validate `proposal` directly (not through the transports); returns the
    /// validated certificate their votes make, checked against the committee.
    pub async fn validate_directly(
        &self,
        proposal: &BlockProposal,
        value: BlockValue,
    ) -> ValidatedBlockCertificate {
        let mut signatures = Vec::new();
        for v in 0..3 {
            let vote = Self::pending_vote(
                self.workers[v]
                    .handle_block_proposal(proposal.clone())
                    .await,
            );
            signatures.push((vote.validator, vote.signature));
        }
        let certificate = Certificate::new(
            Hashed::new(ValidatedBlock(value)),
            proposal.round(),
            signatures,
        );
        must(
            certificate.check(&self.committee),
            "checking the validated certificate",
        );
        certificate
    }
}

impl TestNetwork<ManualClock> {
    /// Moves the clock past chain `c`'s current round deadline (as validator 0 sees it).
    pub async fn pass_deadline(&self, c: usize) {
        let state = must(
            self.workers[0].chain_state(self.chains[c]).await,
            "reading the chain",
        );
        let deadline = state
            .manager()
            .round_timeout()
            .unwrap_or_else(|| panic!("the round has no deadline"));
        self.clock.set(deadline.saturating_add(TimeDelta(1)));
    }
}
