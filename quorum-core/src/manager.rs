//! Consensus on one chain at its current height: rounds, votes, locks and timeouts
//! (DESIGN §4.3). Pure: time is an argument.

use alloc::boxed::Box;

use serde::{Deserialize, Serialize};

use crate::block::{
    Block, BlockProposal, BlockValue, ConfirmedBlock, TimeoutCertificate, ValidatedBlock,
    ValidatedBlockCertificate,
};
use crate::committee::Epoch;
use crate::crypto::{AccountPublicKey, CryptoError, ValidatorSecretKey};
use crate::error::NodeError;
use crate::hash::{BcsHashable, CryptoHash, Hashed};
use crate::info::ManagerInfo;
use crate::round::Round;
use crate::timeout::Timeout;
use crate::vote::{LiteVote, VoteKind};
use crate::{BlockHeight, ChainDescription, ChainId, TimeDelta, Timestamp};

/// The latest block a node voted for or saw validated at this height, with its outcome.
///
/// What binds the node's later votes is narrower (DESIGN §4.3, see
/// [`ChainManager::binding_lock`]): a vote in the fast round, or a validated certificate. A
/// vote in another round binds nothing: were it to, validators whose votes split between two
/// blocks of one round (two owners proposing at once, or an owner whose proposal reached too
/// few) would refuse each other's block forever, and the chain would never commit again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The round in which the node voted for it (the fast round stays, when the node voted for
    /// the same block again later), or of the certificate it saw.
    pub round: Round,
    /// The block and its outcome.
    pub value: BlockValue,
}

/// Consensus state of one chain at its current height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainManager {
    /// The height this state is about.
    pub(crate) height: BlockHeight,
    /// The current round.
    pub(crate) current_round: Round,
    /// When the current round started on this node.
    pub(crate) round_started: Timestamp,
    /// When the current round may be timed out (`None`: the chain has no owners).
    pub(crate) round_timeout: Option<Timestamp>,
    /// The latest proposal this node voted for at this height.
    pub(crate) proposed: Option<Box<BlockProposal>>,
    /// The lock (see [`Lock`]).
    pub(crate) lock: Option<Lock>,
    /// The highest validated certificate seen at this height.
    pub(crate) locking_certificate: Option<Box<ValidatedBlockCertificate>>,
    /// The node's latest vote at this height (validated or confirmed).
    pub(crate) pending_vote: Option<LiteVote>,
    /// The highest timeout certificate seen at this height.
    pub(crate) timeout_certificate: Option<Box<TimeoutCertificate>>,
    /// The node's timeout vote for the current round, once given.
    pub(crate) timeout_vote: Option<LiteVote>,
    /// The super owner's fast-round proposal at this height that this node voted for or
    /// learned of (the first one: a super owner that signs two has equivocated). It
    /// justifies re-proposing that block in a later round (see
    /// [`BlockProposal::new_fast_retry`]).
    pub(crate) fast_proposal: Option<Box<BlockProposal>>,
}

/// What a proposal check concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalDecision {
    /// A new vote is due for this block.
    Vote,
    /// The node already voted for exactly this proposal: answer with the same vote.
    AlreadyVotedForThis,
}

/// What the node should vote for, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoteValue {
    /// A validated-block vote.
    Validated(Hashed<ValidatedBlock>),
    /// A confirmed-block vote (fast round).
    Confirmed(Hashed<ConfirmedBlock>),
}

impl VoteValue {
    /// The voted value's hash.
    pub fn hash(&self) -> CryptoHash {
        match self {
            VoteValue::Validated(value) => value.hash(),
            VoteValue::Confirmed(value) => value.hash(),
        }
    }
}

/// How long `round` lasts before it may be timed out.
pub fn round_duration(config: &crate::ConsensusConfig, round: Round) -> TimeDelta {
    let extra = |n: u32| TimeDelta(config.timeout_increment.0.saturating_mul(u64::from(n)));
    match round {
        Round::Fast => config.fast_round_duration,
        Round::MultiLeader(n) => TimeDelta(config.base_timeout.0.saturating_add(extra(n).0)),
        Round::SingleLeader(n) => TimeDelta(
            config
                .base_timeout
                .0
                .saturating_add(extra(n.saturating_add(config.multi_leader_rounds)).0),
        ),
    }
}

/// The first round at every height.
pub fn first_round(description: &ChainDescription) -> Round {
    if description.super_owner.is_some() {
        Round::Fast
    } else if description.consensus.multi_leader_rounds > 0 {
        Round::MultiLeader(0)
    } else {
        Round::SingleLeader(0)
    }
}

#[derive(Serialize)]
struct LeaderSeed {
    chain_id: ChainId,
    height: BlockHeight,
    round: Round,
}

impl BcsHashable for LeaderSeed {
    const DOMAIN: &'static str = "LeaderSeed";
}

/// The owner allowed to propose in a single-leader round: picked with probability proportional
/// to owner weight, from a hash of chain, height and round (the same on every node).
pub fn leader(
    description: &ChainDescription,
    chain_id: ChainId,
    height: BlockHeight,
    round: Round,
) -> Option<AccountPublicKey> {
    let total: u64 = description
        .owners
        .values()
        .fold(0u64, |a, w| a.saturating_add(*w));
    if total == 0 {
        return description.owners.keys().next().copied();
    }
    let seed = CryptoHash::new(&LeaderSeed {
        chain_id,
        height,
        round,
    });
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&seed.as_bytes()[..8]);
    let mut pick = u64::from_le_bytes(bytes) % total;
    for (owner, weight) in &description.owners {
        if pick < *weight {
            return Some(*owner);
        }
        pick -= weight;
    }
    None
}

impl ChainManager {
    /// The height this state is about.
    pub fn height(&self) -> BlockHeight {
        self.height
    }

    /// The current round.
    pub fn current_round(&self) -> Round {
        self.current_round
    }

    /// When the current round started on this node.
    pub fn round_started(&self) -> Timestamp {
        self.round_started
    }

    /// When the current round may be timed out (`None`: the chain has no owners).
    pub fn round_timeout(&self) -> Option<Timestamp> {
        self.round_timeout
    }

    /// The latest proposal this node voted for at this height.
    pub fn proposed(&self) -> Option<&BlockProposal> {
        self.proposed.as_deref()
    }

    /// The lock (see [`Lock`]).
    pub fn lock(&self) -> Option<&Lock> {
        self.lock.as_ref()
    }

    /// The block this node votes for alone at this height, and the round from which a
    /// validated certificate of another block frees it: the highest validated certificate it
    /// saw, or else the block it voted for in the fast round (where a vote confirms at once).
    pub fn binding_lock(&self) -> Option<(&Block, Round)> {
        if let Some(certificate) = &self.locking_certificate {
            return Some((certificate.value().block(), certificate.round()));
        }
        self.lock
            .as_ref()
            .filter(|lock| lock.round.is_fast())
            .map(|lock| (&lock.value.block, lock.round))
    }

    /// The highest validated certificate seen at this height.
    pub fn locking_certificate(&self) -> Option<&ValidatedBlockCertificate> {
        self.locking_certificate.as_deref()
    }

    /// The node's latest vote at this height (validated or confirmed).
    pub fn pending_vote(&self) -> Option<&LiteVote> {
        self.pending_vote.as_ref()
    }

    /// The highest timeout certificate seen at this height.
    pub fn timeout_certificate(&self) -> Option<&TimeoutCertificate> {
        self.timeout_certificate.as_deref()
    }

    /// The node's timeout vote for the current round, once given.
    pub fn timeout_vote(&self) -> Option<&LiteVote> {
        self.timeout_vote.as_ref()
    }

    /// The super owner's fast-round proposal at this height this node voted for or learned
    /// of, if any.
    pub fn fast_proposal(&self) -> Option<&BlockProposal> {
        self.fast_proposal.as_deref()
    }

    /// Keeps the fast-round proposal that `proposal` is or re-proposes
    /// ([`BlockProposal::fast_original`]) as this height's fast proposal, if there is none
    /// yet: for a node that learns it from others (a client's node). The caller checked the
    /// height, and that [`ChainManager::check_fast_original`] accepts `proposal`. Returns
    /// whether it was kept.
    pub fn learn_fast_proposal(&mut self, proposal: &BlockProposal) -> bool {
        if self.fast_proposal.is_some() {
            return false;
        }
        match proposal.fast_original() {
            Some(original) => {
                self.fast_proposal = Some(Box::new(original));
                true
            }
            None => false,
        }
    }

    /// Checks the fast-round proposal `proposal` is or re-proposes: by the chain's super
    /// owner, its signature valid. `UnauthorizedOwner` when the block's author is not the
    /// super owner (only the super owner proposes in the fast round), `InvalidSignature` when
    /// the signature does not verify, `NotFound` when `proposal` has no fast original.
    pub fn check_fast_original(
        description: &ChainDescription,
        proposal: &BlockProposal,
    ) -> Result<(), NodeError> {
        let original = proposal.fast_original().ok_or(NodeError::NotFound)?;
        if description.super_owner != Some(original.owner()) {
            return Err(NodeError::UnauthorizedOwner);
        }
        original
            .check_signature()
            .map_err(NodeError::InvalidSignature)
    }

    /// The state of a chain not active on this node.
    pub fn inactive() -> Self {
        ChainManager {
            height: BlockHeight(0),
            current_round: Round::Fast,
            round_started: Timestamp(0),
            round_timeout: None,
            proposed: None,
            lock: None,
            locking_certificate: None,
            pending_vote: None,
            timeout_certificate: None,
            timeout_vote: None,
            fast_proposal: None,
        }
    }

    /// A fresh state at `height`, its first round starting at `now`.
    pub fn new(description: &ChainDescription, height: BlockHeight, now: Timestamp) -> Self {
        let round = first_round(description);
        let mut manager = ChainManager {
            height,
            ..ChainManager::inactive()
        };
        manager.enter_round(description, round, now);
        manager
    }

    fn enter_round(&mut self, description: &ChainDescription, round: Round, now: Timestamp) {
        self.current_round = round;
        self.round_started = now;
        self.round_timeout = if description.owners.is_empty() {
            None
        } else {
            Some(now.saturating_add(round_duration(&description.consensus, round)))
        };
        self.timeout_vote = None;
    }

    /// Checks a proposal for the current height (the caller checked height and chain): round,
    /// proposer, signature and locks. Does not execute the block.
    pub fn check_proposal(
        &self,
        description: &ChainDescription,
        proposal: &BlockProposal,
    ) -> Result<ProposalDecision, NodeError> {
        self.check_proposal_signed(description, proposal, || proposal.check_signature())
    }

    /// [`ChainManager::check_proposal`] with the outcome of the proposer's signature check
    /// ([`BlockProposal::check_signature`]) given: a node verifies it before it takes its lock,
    /// so that the verification does not hold back other chains. The outcome counts where
    /// `check_proposal` would verify, so the answer is the same, error for error.
    pub fn check_verified_proposal(
        &self,
        description: &ChainDescription,
        proposal: &BlockProposal,
        signature: Result<(), CryptoError>,
    ) -> Result<ProposalDecision, NodeError> {
        self.check_proposal_signed(description, proposal, || signature)
    }

    fn check_proposal_signed(
        &self,
        description: &ChainDescription,
        proposal: &BlockProposal,
        signature: impl FnOnce() -> Result<(), CryptoError>,
    ) -> Result<ProposalDecision, NodeError> {
        let block = proposal.block();
        let round = proposal.round();
        if round != self.current_round {
            return Err(NodeError::WrongRound(self.current_round));
        }
        // The proposer is checked, not the block's author: any owner may re-propose a block
        // another owner left validated (the signature check requires the certificate then).
        let owner = proposal.owner();
        let allowed = match round {
            Round::Fast => description.super_owner == Some(owner),
            // The super owner proposes in every round; in a single-leader round, so does the
            // round's leader.
            _ if description.super_owner == Some(owner) => true,
            Round::MultiLeader(_) => description.owners.contains_key(&owner),
            Round::SingleLeader(_) => {
                leader(description, block.chain_id, block.height, round) == Some(owner)
            }
        };
        if !allowed {
            return Err(NodeError::UnauthorizedOwner);
        }
        // A fast-round signature justifies only a block the super owner made.
        if proposal.fast_signature.is_some()
            && description.super_owner != Some(block.authenticated_owner)
        {
            return Err(NodeError::UnauthorizedOwner);
        }
        signature().map_err(NodeError::InvalidSignature)?;
        if let Some(previous) = &self.proposed {
            if previous.round() == round {
                return if previous.content == proposal.content {
                    Ok(ProposalDecision::AlreadyVotedForThis)
                } else {
                    Err(NodeError::AlreadyVoted)
                };
            }
        }
        if let Some((locked, lock_round)) = self.binding_lock() {
            if locked != block {
                // Only a validated certificate from a later round than the lock unlocks.
                let unlocked = proposal
                    .validated_block_certificate
                    .as_ref()
                    .is_some_and(|certificate| certificate.round() > lock_round);
                if !unlocked {
                    return Err(NodeError::HasLockedBlock);
                }
            }
        }
        if let Some(certificate) = &proposal.validated_block_certificate {
            if certificate.value().block() != block || certificate.round() >= round {
                return Err(NodeError::CertificateNotApplicable(certificate.hash()));
            }
        }
        Ok(ProposalDecision::Vote)
    }

    /// Records a vote for a checked proposal whose execution gave `value`; returns the vote
    /// (none without a key). The caller verified any validated certificate it carries.
    pub fn vote_for_proposal(
        &mut self,
        proposal: BlockProposal,
        value: BlockValue,
        key: Option<&ValidatorSecretKey>,
    ) -> Option<LiteVote> {
        let round = proposal.round();
        if let Some(certificate) = &proposal.validated_block_certificate {
            self.observe_validated(certificate);
        }
        // A fast-round vote binds (see `binding_lock`): a later vote for the same block keeps
        // its round.
        let keeps_fast_vote = self
            .lock
            .as_ref()
            .is_some_and(|lock| lock.round.is_fast() && lock.value.block == value.block);
        let lock_round = self.lock.as_ref().map(|lock| lock.round);
        if !keeps_fast_vote && lock_round.is_none_or(|lock_round| lock_round <= round) {
            self.lock = Some(Lock {
                round,
                value: value.clone(),
            });
        }
        let vote = key.map(|key| {
            if round.is_fast() {
                let confirmed = Hashed::new(ConfirmedBlock(value));
                LiteVote::new(confirmed.hash(), VoteKind::Confirmed, round, key)
            } else {
                let validated = Hashed::new(ValidatedBlock(value));
                LiteVote::new(validated.hash(), VoteKind::Validated, round, key)
            }
        });
        if self.fast_proposal.is_none() {
            self.fast_proposal = proposal.fast_original().map(Box::new);
        }
        self.proposed = Some(Box::new(proposal));
        self.pending_vote = vote.clone();
        vote
    }

    fn observe_validated(&mut self, certificate: &ValidatedBlockCertificate) {
        let higher = self
            .locking_certificate
            .as_ref()
            .is_none_or(|current| current.round() < certificate.round());
        if higher {
            self.locking_certificate = Some(Box::new(certificate.clone()));
        }
        let lock_round = self.lock.as_ref().map(|lock| lock.round);
        if lock_round.is_none_or(|lock_round| lock_round <= certificate.round()) {
            self.lock = Some(Lock {
                round: certificate.round(),
                value: certificate.value().inner().0.clone(),
            });
        }
    }

    /// Handles a checked validated certificate at this height: updates the lock and the round,
    /// and returns the confirmation vote (none without a key).
    ///
    /// Refused with `HasLockedBlock` when the node is bound to another block by a later
    /// certificate, or, if it signs votes, voted in a later round than the certificate's:
    /// confirming then could contradict a quorum it helped form. (Its votes in later rounds bind nothing, so one of
    /// them may have gone to another block even when the latest is for this one.) The owner
    /// then proposes the certified block again in the current round.
    pub fn handle_validated_certificate(
        &mut self,
        description: &ChainDescription,
        certificate: &ValidatedBlockCertificate,
        now: Timestamp,
        key: Option<&ValidatorSecretKey>,
    ) -> Result<Option<LiteVote>, NodeError> {
        let round = certificate.round();
        let block = certificate.value().block();
        let bound_elsewhere = self
            .binding_lock()
            .is_some_and(|(locked, lock_round)| lock_round > round && locked != block);
        // Only a node that signs votes can contradict itself; a client's node (no key) takes
        // every certificate as evidence of the round.
        let voted_later = key.is_some()
            && self
                .proposed
                .as_ref()
                .is_some_and(|proposal| proposal.round() > round);
        if bound_elsewhere || voted_later {
            return Err(NodeError::HasLockedBlock);
        }
        self.observe_validated(certificate);
        if round > self.current_round {
            self.enter_round(description, round, now);
        }
        let vote = key.map(|key| {
            let confirmed = Hashed::new(certificate.value().to_confirmed());
            LiteVote::new(confirmed.hash(), VoteKind::Confirmed, round, key)
        });
        if vote.is_some() {
            self.pending_vote = vote.clone();
        }
        Ok(vote)
    }

    /// Handles a checked timeout certificate at this height: moves past its round.
    pub fn handle_timeout_certificate(
        &mut self,
        description: &ChainDescription,
        certificate: &TimeoutCertificate,
        now: Timestamp,
    ) {
        let round = certificate.round();
        let higher = self
            .timeout_certificate
            .as_ref()
            .is_none_or(|current| current.round() < round);
        if higher {
            self.timeout_certificate = Some(Box::new(certificate.clone()));
        }
        if round >= self.current_round {
            if let Some(next) = round.next(description.consensus.multi_leader_rounds) {
                self.enter_round(description, next, now);
            }
        }
    }

    /// Signs a timeout vote for `round` if it is the current round and its deadline has passed
    /// at `now`; returns the vote (the same one if asked again).
    pub fn vote_timeout(
        &mut self,
        chain_id: ChainId,
        epoch: Epoch,
        round: Round,
        now: Timestamp,
        key: Option<&ValidatorSecretKey>,
    ) -> Option<LiteVote> {
        if round != self.current_round {
            return None;
        }
        let deadline = self.round_timeout?;
        if now < deadline {
            return None;
        }
        if let Some(vote) = &self.timeout_vote {
            return Some(vote.clone());
        }
        let key = key?;
        let value = Hashed::new(Timeout {
            chain_id,
            height: self.height,
            epoch,
        });
        let vote = LiteVote::new(value.hash(), VoteKind::Timeout, round, key);
        self.timeout_vote = Some(vote.clone());
        Some(vote)
    }

    /// The value a lite certificate of `kind` with `hash` refers to, if this node holds it.
    pub fn value_for(&self, kind: VoteKind, hash: CryptoHash) -> Option<BlockValue> {
        let candidates = self.lock.iter().map(|lock| &lock.value).chain(
            self.locking_certificate
                .iter()
                .map(|c| &c.value().inner().0),
        );
        for value in candidates {
            let matches = match kind {
                VoteKind::Validated => CryptoHash::new(&ValidatedBlock(value.clone())) == hash,
                VoteKind::Confirmed => CryptoHash::new(&ConfirmedBlock(value.clone())) == hash,
                VoteKind::Timeout => false,
            };
            if matches {
                return Some(value.clone());
            }
        }
        None
    }

    /// The proposed block at this height, if any (for uploading its blobs).
    pub fn proposed_block(&self) -> Option<&Block> {
        self.proposed.as_ref().map(|proposal| proposal.block())
    }

    /// What a query reveals.
    pub fn info(&self, with_values: bool) -> ManagerInfo {
        ManagerInfo {
            current_round: self.current_round,
            round_timeout: self.round_timeout,
            pending: self.pending_vote.clone(),
            timeout_vote: self.timeout_vote.clone(),
            requested_proposed: if with_values {
                self.proposed.clone()
            } else {
                None
            },
            requested_locking: if with_values {
                self.locking_certificate.clone()
            } else {
                None
            },
            timeout_certificate: self.timeout_certificate.clone(),
        }
    }
}
