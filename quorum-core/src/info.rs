//! Chain information queries and responses (DESIGN §4.2).

use alloc::boxed::Box;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::block::{BlockProposal, TimeoutCertificate, ValidatedBlockCertificate};
use crate::committee::Epoch;
use crate::crypto::{
    CryptoError, PreparedKey, ValidatorPublicKey, ValidatorSecretKey, ValidatorSignature,
};
use crate::hash::{BcsHashable, CryptoHash};
use crate::round::Round;
use crate::vote::LiteVote;
use crate::{BlockHeight, ChainDescription, ChainId, ReceivedEntry, Timestamp};

/// Whether a confirmed certificate's messages must reach their recipients' inboxes before the
/// node answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CrossChainDelivery {
    /// Answer only after delivery.
    Blocking,
    /// The node may answer before delivery.
    NonBlocking,
}

/// What a client asks about a chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainInfoQuery {
    /// The chain.
    pub chain_id: ChainId,
    /// If set, the node answers `UnexpectedBlockHeight` unless its next height is this one.
    pub test_next_block_height: Option<BlockHeight>,
    /// Include the proposal, locking block and timeout certificate the node holds.
    pub request_manager_values: bool,
    /// Ask for a timeout vote for this height and round (given only past the round's deadline).
    pub request_timeout: Option<(BlockHeight, Round)>,
    /// Ask for the hashes of the certificates at heights `start..end` (at most the
    /// [`Limits`](crate::Limits)' `max_certificate_hashes_per_query`).
    pub request_certificate_hashes: Option<(BlockHeight, BlockHeight)>,
    /// Ask for the chain's received log (DESIGN §4.2.1) from this index: at most the
    /// [`Limits`](crate::Limits)' `max_received_log_entries_per_query` entries.
    pub request_received_log_from: Option<u64>,
}

impl ChainInfoQuery {
    /// A plain query about `chain_id`.
    pub fn new(chain_id: ChainId) -> Self {
        ChainInfoQuery {
            chain_id,
            test_next_block_height: None,
            request_manager_values: false,
            request_timeout: None,
            request_certificate_hashes: None,
            request_received_log_from: None,
        }
    }

    /// Also asks for the manager's values.
    pub fn with_manager_values(mut self) -> Self {
        self.request_manager_values = true;
        self
    }

    /// Also asks for a timeout vote.
    pub fn with_timeout(mut self, height: BlockHeight, round: Round) -> Self {
        self.request_timeout = Some((height, round));
        self
    }

    /// Also asks for the received log from index `from`.
    pub fn with_received_log_from(mut self, from: u64) -> Self {
        self.request_received_log_from = Some(from);
        self
    }

    /// Also asks for certificate hashes in `start..end`.
    pub fn with_certificate_hashes(mut self, start: BlockHeight, end: BlockHeight) -> Self {
        self.request_certificate_hashes = Some((start, end));
        self
    }
}

/// The consensus state of a chain's current height on a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerInfo {
    /// The node's current round.
    pub current_round: Round,
    /// When the current round may be timed out (`None`: never, e.g. no owners).
    pub round_timeout: Option<Timestamp>,
    /// The node's vote in the current round, if any.
    pub pending: Option<LiteVote>,
    /// The node's timeout vote, when one was requested and is due.
    pub timeout_vote: Option<LiteVote>,
    /// The proposal the node voted for at this height (with `request_manager_values`).
    pub requested_proposed: Option<Box<BlockProposal>>,
    /// The highest validated certificate the node holds at this height (with
    /// `request_manager_values`).
    pub requested_locking: Option<Box<ValidatedBlockCertificate>>,
    /// The highest timeout certificate the node holds at this height.
    pub timeout_certificate: Option<Box<TimeoutCertificate>>,
}

/// What a node tells about a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// The chain.
    pub chain_id: ChainId,
    /// The chain's epoch on the node (`None`: the chain is not active there).
    pub epoch: Option<Epoch>,
    /// The chain's description, when active.
    pub description: Option<ChainDescription>,
    /// The next height the node expects.
    pub next_block_height: BlockHeight,
    /// Hash of the latest confirmed block.
    pub block_hash: Option<CryptoHash>,
    /// Timestamp of the latest block.
    pub timestamp: Timestamp,
    /// Hash of the chain's execution state.
    pub state_hash: Option<CryptoHash>,
    /// The chain's balance.
    pub balance: u64,
    /// Consensus state at the current height.
    pub manager: ManagerInfo,
    /// Certificate hashes asked for with `request_certificate_hashes`.
    pub requested_certificate_hashes: Vec<CryptoHash>,
    /// The received log's entries asked for with `request_received_log_from`, in order from
    /// that index.
    pub requested_received_log: Vec<ReceivedEntry>,
    /// How many entries the chain's received log holds on the node.
    pub received_log_len: u64,
}

impl BcsHashable for ChainInfo {
    const DOMAIN: &'static str = "ChainInfo";
}

/// A [`ChainInfo`] as a validator gave it. The reference validator signs its answers to
/// chain-info queries, so a relayed answer can be attributed (DESIGN §4.2); its answers to
/// proposals, certificates and blobs are unsigned, since the votes they carry are signed each
/// on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfoResponse {
    /// The information.
    pub info: Box<ChainInfo>,
    /// The validator's signature over it (absent from a node without a key, and from answers
    /// other than to chain-info queries).
    pub signature: Option<ValidatorSignature>,
}

impl ChainInfoResponse {
    /// A response, signed if `key` is given.
    pub fn new(info: ChainInfo, key: Option<&ValidatorSecretKey>) -> Self {
        let signature = key.map(|key| key.sign(&info));
        ChainInfoResponse {
            info: Box::new(info),
            signature,
        }
    }

    /// Checks that `validator` signed this response.
    pub fn check(&self, validator: &ValidatorPublicKey) -> Result<(), CryptoError> {
        self.check_prepared(&PreparedKey::decode(validator.as_bytes())?)
    }

    /// [`ChainInfoResponse::check`] with the validator's key decoded once (a committee keeps
    /// one per member), which saves decoding and testing the key for every response.
    pub fn check_prepared(&self, validator: &PreparedKey) -> Result<(), CryptoError> {
        let signature = self
            .signature
            .as_ref()
            .ok_or(CryptoError::InvalidSignature)?;
        validator.verify_hash(&CryptoHash::new(&*self.info), signature)
    }
}

/// How far a batch of confirmed certificates got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// How many certificates, from the first, were processed (or were already there).
    pub processed: usize,
    /// The chain's information after the last processed certificate, if any was.
    pub info: Option<ChainInfoResponse>,
    /// The error that stopped the batch, if it stopped early.
    pub error: Option<crate::error::NodeError>,
}
