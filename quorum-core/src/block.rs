//! Blocks, their execution outcome, proposals and the certified values (DESIGN §4.1).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::certificate::Certificate;
use crate::committee::{Committee, EncodedCommittee, Epoch};
use crate::crypto::{
    AccountPublicKey, AccountSecretKey, AccountSignature, CryptoError, PreparedKey, SignatureCheck,
};
use crate::hash::{BcsHashable, CryptoHash};
use crate::round::Round;
use crate::timeout::Timeout;
use crate::vote::{CertificateValue, VoteKind};
use crate::{
    Blob, BlobId, BlobType, BlockHeight, ChainDescription, ChainId, EventId, StreamId, Timestamp,
};

/// A message from one chain to another.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Message {
    /// Credits the recipient with tokens.
    Credit {
        /// The amount.
        amount: u64,
    },
    /// Gives back tokens of a [`Message::Credit`] that reached a closed chain: credited like
    /// a credit, but never returned again (a closed chain keeps it), so nothing bounces for
    /// ever.
    Return {
        /// The amount.
        amount: u64,
    },
}

/// The messages a block of `origin` at `height` sent to one recipient, as consumed by a block
/// of the recipient.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IncomingBundle {
    /// The sending chain.
    pub origin: ChainId,
    /// The height of the sending block.
    pub height: BlockHeight,
    /// The messages, in the order sent.
    pub messages: Vec<Message>,
}

/// The messages a block sends to one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OutgoingBundle {
    /// The receiving chain.
    pub recipient: ChainId,
    /// The messages, in the order sent.
    pub messages: Vec<Message>,
}

/// What a block does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// Sends tokens to another chain (a [`Message::Credit`] to its inbox).
    Transfer {
        /// The receiving chain.
        recipient: ChainId,
        /// The amount.
        amount: u64,
    },
    /// Publishes a data blob; validators need its content (uploaded as a pending blob).
    PublishBlob(BlobId),
    /// Requires a blob published earlier (by any chain).
    ReadBlob(BlobId),
    /// Opens a new chain; publishes its description blob. The origin must name this block.
    OpenChain(ChainDescription),
    /// Emits an event on one of this chain's streams.
    EmitEvent {
        /// The stream.
        stream: StreamId,
        /// The payload.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Requires an event emitted earlier (by any chain).
    ReadEvent(EventId),
    /// Admin chain only: publishes a committee blob and announces it as the next epoch on the
    /// `epoch` stream. The committee travels as its bytes and is decoded only when the block
    /// executes (see [`EncodedCommittee`]); one per block.
    CreateCommittee(EncodedCommittee),
    /// Moves this chain to `epoch`, reading the admin chain's announcement of it.
    ProcessNewEpoch(Epoch),
    /// Closes the chain (the last operation of its block): its remaining balance goes to
    /// `beneficiary` (required unless the balance is zero). A closed chain accepts no
    /// operation any more; its later blocks only consume what arrives and return every credit
    /// to its sender.
    CloseChain {
        /// The chain that receives the remaining balance.
        beneficiary: Option<ChainId>,
    },
}

/// A block proposed for a chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Block {
    /// The chain.
    pub chain_id: ChainId,
    /// The epoch of the committee that certifies it.
    pub epoch: Epoch,
    /// Its height.
    pub height: BlockHeight,
    /// Its timestamp: not before the previous block's, not beyond the validators' clocks.
    pub timestamp: Timestamp,
    /// Hash of the previous block's confirmed value (`None` for the first block).
    pub previous_block_hash: Option<CryptoHash>,
    /// The owner that proposed it.
    pub authenticated_owner: AccountPublicKey,
    /// Bundles from other chains' outboxes that it consumes, in order.
    pub incoming_bundles: Vec<IncomingBundle>,
    /// Its operations, executed in order.
    pub operations: Vec<Operation>,
}

impl Block {
    /// Blobs whose content the block publishes (data blobs; description and committee blobs are
    /// carried inline).
    pub fn published_blob_ids(&self) -> Vec<BlobId> {
        let mut ids = Vec::new();
        for operation in &self.operations {
            if let Operation::PublishBlob(id) = operation {
                ids.push(*id);
            }
        }
        ids
    }

    /// Blobs published inline by the block's operations (descriptions of opened chains and
    /// committees).
    pub fn inline_blobs(&self) -> Vec<Blob> {
        let mut blobs = Vec::new();
        for operation in &self.operations {
            match operation {
                Operation::OpenChain(description) => blobs.push(description.to_blob()),
                Operation::CreateCommittee(committee) => blobs.push(Blob::new(
                    BlobType::Committee,
                    committee.as_bytes().to_vec(),
                )),
                _ => {}
            }
        }
        blobs
    }

    /// Every blob the block needs the content or existence of: those it publishes with
    /// [`Operation::PublishBlob`] and those it reads. Sorted, distinct.
    pub fn required_blob_ids(&self) -> Vec<BlobId> {
        let mut ids = BTreeSet::new();
        for operation in &self.operations {
            match operation {
                Operation::PublishBlob(id) | Operation::ReadBlob(id) => {
                    ids.insert(*id);
                }
                _ => {}
            }
        }
        ids.into_iter().collect()
    }

    /// The events the block reads (explicitly, or the admin chain's epoch announcements).
    pub fn required_event_ids(&self, admin_chain: ChainId) -> Vec<EventId> {
        let mut ids = BTreeSet::new();
        for operation in &self.operations {
            match operation {
                Operation::ReadEvent(id) => {
                    ids.insert(id.clone());
                }
                Operation::ProcessNewEpoch(epoch) => {
                    ids.insert(epoch_event_id(admin_chain, *epoch));
                }
                _ => {}
            }
        }
        ids.into_iter().collect()
    }
}

/// The blob of a committee.
pub fn committee_blob(committee: &Committee) -> Blob {
    // A committee always encodes: keys, integers and strings in a map.
    Blob::new(
        BlobType::Committee,
        crate::encoding::to_bytes(committee).unwrap_or_default(),
    )
}

/// The admin chain's event announcing `epoch`.
pub fn epoch_event_id(admin_chain: ChainId, epoch: Epoch) -> EventId {
    EventId {
        chain_id: admin_chain,
        stream: StreamId::epoch(),
        index: epoch.0,
    }
}

/// What executing a block produced.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockOutcome {
    /// Hash of the chain's execution state after the block.
    pub state_hash: CryptoHash,
    /// Messages to other chains, one bundle per recipient, in recipient order.
    pub messages: Vec<OutgoingBundle>,
    /// Events emitted, in order.
    pub events: Vec<EmittedEvent>,
    /// Blobs published (data blobs and inline ones), in operation order.
    pub published_blobs: Vec<BlobId>,
}

/// An event as a block outcome records it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EmittedEvent {
    /// The stream.
    pub stream: StreamId,
    /// Its index in the stream.
    pub index: u32,
    /// The payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// A block with its execution outcome: what validators vote on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockValue {
    /// The block.
    pub block: Block,
    /// Its outcome.
    pub outcome: BlockOutcome,
}

/// A block validated by a quorum (first phase).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ValidatedBlock(pub BlockValue);

/// A block confirmed by a quorum: final at its height.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConfirmedBlock(pub BlockValue);

impl BcsHashable for ValidatedBlock {
    const DOMAIN: &'static str = "ValidatedBlock";
}
impl BcsHashable for ConfirmedBlock {
    const DOMAIN: &'static str = "ConfirmedBlock";
}
impl CertificateValue for ValidatedBlock {
    const KIND: VoteKind = VoteKind::Validated;
    fn chain_id(&self) -> ChainId {
        self.0.block.chain_id
    }
}
impl CertificateValue for ConfirmedBlock {
    const KIND: VoteKind = VoteKind::Confirmed;
    fn chain_id(&self) -> ChainId {
        self.0.block.chain_id
    }
}

impl ValidatedBlock {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.0.block
    }
    /// The confirmed value for the same block.
    pub fn to_confirmed(&self) -> ConfirmedBlock {
        ConfirmedBlock(self.0.clone())
    }
}

impl ConfirmedBlock {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.0.block
    }
    /// The outcome.
    pub fn outcome(&self) -> &BlockOutcome {
        &self.0.outcome
    }
}

/// A block validated by a quorum.
pub type ValidatedBlockCertificate = Certificate<ValidatedBlock>;
/// A block confirmed by a quorum.
pub type ConfirmedBlockCertificate = Certificate<ConfirmedBlock>;
/// A round timed out by a quorum.
pub type TimeoutCertificate = Certificate<Timeout>;

/// What an owner signs when proposing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProposalContent {
    /// The proposed block.
    pub block: Block,
    /// The round it is proposed in.
    pub round: Round,
    /// The owner who proposes it and signs the proposal. For a new block, the block's
    /// authenticated owner; for a re-proposal of a locked block, any owner of the chain may
    /// re-propose it (the block keeps its original authenticated owner).
    pub owner: AccountPublicKey,
}

impl BcsHashable for ProposalContent {
    const DOMAIN: &'static str = "ProposalContent";
}

/// A signed block proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockProposal {
    /// Block and round.
    pub content: ProposalContent,
    /// The owner's signature over the content.
    pub signature: AccountSignature,
    /// When re-proposing a block that a quorum validated in an earlier round: its certificate,
    /// which lets locked validators vote for it.
    pub validated_block_certificate: Option<ValidatedBlockCertificate>,
    /// When re-proposing a block its author (the super owner) proposed in the fast round:
    /// the author's signature over that fast proposal (this block, [`Round::Fast`], the
    /// author). It justifies another owner's re-proposal of the block, which validators bound
    /// by their fast-round vote may vote for (DESIGN §4.3).
    pub fast_signature: Option<AccountSignature>,
}

impl BlockProposal {
    /// Signs a proposal of `block` in `round`.
    pub fn new(block: Block, round: Round, secret: &AccountSecretKey) -> Self {
        let content = ProposalContent {
            block,
            round,
            owner: secret.public(),
        };
        let signature = secret.sign(&content);
        BlockProposal {
            content,
            signature,
            validated_block_certificate: None,
            fast_signature: None,
        }
    }

    /// Re-proposes the block of `certificate` in `round`, signed by the owner holding `secret`
    /// (who need not be the block's authenticated owner): the certificate justifies it.
    pub fn new_retry(
        round: Round,
        certificate: ValidatedBlockCertificate,
        secret: &AccountSecretKey,
    ) -> Self {
        let content = ProposalContent {
            block: certificate.value().block().clone(),
            round,
            owner: secret.public(),
        };
        let signature = secret.sign(&content);
        BlockProposal {
            content,
            signature,
            validated_block_certificate: Some(certificate),
            fast_signature: None,
        }
    }

    /// Re-proposes in `round` the block of `fast`, a proposal its author made in the fast
    /// round, signed by the owner holding `secret` (who need not be the block's author): the
    /// author's fast-round signature justifies it. `None` if `fast` is not a fast-round
    /// proposal by the block's author.
    pub fn new_fast_retry(
        round: Round,
        fast: &BlockProposal,
        secret: &AccountSecretKey,
    ) -> Option<Self> {
        let original = fast.fast_original()?;
        let content = ProposalContent {
            block: original.content.block,
            round,
            owner: secret.public(),
        };
        let signature = secret.sign(&content);
        Some(BlockProposal {
            content,
            signature,
            validated_block_certificate: None,
            fast_signature: Some(original.signature),
        })
    }

    /// The fast-round proposal by the block's author that this proposal is or re-proposes
    /// (from its [`BlockProposal::fast_signature`]), signatures not checked; `None` when it
    /// is neither.
    pub fn fast_original(&self) -> Option<BlockProposal> {
        let author = self.content.block.authenticated_owner;
        if self.content.round.is_fast() && self.content.owner == author {
            return Some(BlockProposal {
                validated_block_certificate: None,
                fast_signature: None,
                ..self.clone()
            });
        }
        let signature = self.fast_signature?;
        Some(BlockProposal {
            content: ProposalContent {
                block: self.content.block.clone(),
                round: Round::Fast,
                owner: author,
            },
            signature,
            validated_block_certificate: None,
            fast_signature: None,
        })
    }

    /// Checks the proposer's signature, and that a proposal by another owner than the block's
    /// is a re-proposal carrying the validated certificate of that very block.
    pub fn check_signature(&self) -> Result<(), CryptoError> {
        self.check_justified()?;
        self.content.owner.verify(&self.content, &self.signature)
    }

    /// [`BlockProposal::check_signature`] split for a node that verifies the signatures of
    /// several requests together: the justification is checked here, and the signature is
    /// returned to verify against `owner`, the proposer's key decoded
    /// ([`PreparedKey::decode`], which a node may keep from one proposal to the next). A key
    /// that is not the proposer's is refused. A proposer whose key cannot be prepared (not a
    /// strong key) is checked on its own, with `check_signature`, so that every node reaches
    /// the same verdict.
    pub fn signature_check(&self, owner: &PreparedKey) -> Result<SignatureCheck, CryptoError> {
        self.check_justified()?;
        if owner.public().as_bytes() != self.content.owner.as_bytes() {
            return Err(CryptoError::InvalidSignature);
        }
        Ok(SignatureCheck::new(
            *owner,
            CryptoHash::new(&self.content),
            self.signature,
        ))
    }

    /// A proposal by another owner than the block's must re-propose the block of the validated
    /// certificate it carries, or a block its author proposed in the fast round. A fast-round
    /// signature, when present, must be the author's over this block in the fast round.
    fn check_justified(&self) -> Result<(), CryptoError> {
        let by_fast_signature = match self.fast_signature {
            Some(_) => {
                let original = self.fast_original().ok_or(CryptoError::InvalidSignature)?;
                original
                    .content
                    .owner
                    .verify(&original.content, &original.signature)?;
                true
            }
            None => false,
        };
        if self.content.owner != self.content.block.authenticated_owner {
            let by_certificate = self
                .validated_block_certificate
                .as_ref()
                .is_some_and(|certificate| *certificate.value().block() == self.content.block);
            if !by_certificate && !by_fast_signature {
                return Err(CryptoError::InvalidSignature);
            }
        }
        Ok(())
    }

    /// The owner who made this proposal (for a re-proposal, not necessarily the block's).
    pub fn owner(&self) -> AccountPublicKey {
        self.content.owner
    }

    /// The block.
    pub fn block(&self) -> &Block {
        &self.content.block
    }

    /// The round.
    pub fn round(&self) -> Round {
        self.content.round
    }
}
