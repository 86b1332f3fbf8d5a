//! `NodeError`: what a validator (or the way to it) can answer instead of a result (DESIGN §4.6).

use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::certificate::CertificateError;
use crate::committee::{CommitteeError, Epoch};
use crate::crypto::CryptoError;
use crate::hash::CryptoHash;
use crate::round::Round;
use crate::{BlobId, BlockHeight, ChainId, EventId, StreamId, Timestamp};

/// Why a block could not be executed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum ExecutionError {
    /// The chain's balance is too low for a transfer.
    #[error("insufficient balance: {balance} < {amount}")]
    InsufficientBalance {
        /// The balance.
        balance: u64,
        /// The amount asked.
        amount: u64,
    },
    /// A transfer to the chain itself or of nothing.
    #[error("invalid transfer")]
    InvalidTransfer,
    /// An `EmitEvent` operation named a system stream, which only the protocol writes.
    #[error("stream {0:?} is a system stream: blocks cannot emit on it")]
    SystemStream(StreamId),
    /// A committee was created outside the admin chain.
    #[error("only the admin chain can create committees")]
    NotAdminChain,
    /// An opened chain's description does not name this block as its origin, or starts with a
    /// balance.
    #[error("invalid chain description for a chain opened here")]
    InvalidOpenChain,
    /// A blob read or published has a type that the operation does not accept.
    #[error("blob {0:?} has the wrong type for this operation")]
    WrongBlobType(BlobId),
    /// `ProcessNewEpoch` for an epoch that is not after the chain's.
    #[error("epoch {found:?} does not follow the chain's {current:?}")]
    EpochNotNext {
        /// The chain's epoch.
        current: Epoch,
        /// The epoch asked for.
        found: Epoch,
    },
    /// A bundle is consumed twice, out of order, or with other messages than were sent.
    #[error("incoming bundle from {origin:?} at {height:?} is out of order or altered")]
    InvalidIncomingBundle {
        /// The sending chain.
        origin: ChainId,
        /// The sending block's height.
        height: BlockHeight,
    },
    /// An arithmetic bound was exceeded (balance, event index, height).
    #[error("arithmetic overflow")]
    Overflow,
    /// The block is larger than the node accepts.
    #[error("block exceeds the limit on {0:?}")]
    TooLarge(Limit),
    /// A committee created by the block does not decode or is not acceptable.
    #[error("invalid committee: {0}")]
    InvalidCommittee(CommitteeError),
    /// The chain is closed: its blocks may only consume what arrives (returning credits).
    #[error("the chain is closed")]
    ChainClosed,
    /// Closing a chain whose balance is not zero, without naming who receives it.
    #[error("the chain still holds {balance}: name the chain that receives it")]
    NonZeroBalance {
        /// The balance left.
        balance: u64,
    },
}

/// A bound that protects a node's memory or time from what a peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Limit {
    /// Operations per block.
    Operations,
    /// Incoming bundles per block.
    IncomingBundles,
    /// Size of one blob, in bytes.
    BlobSize,
    /// Pending blobs held for one chain.
    PendingBlobs,
    /// Blobs uploaded and held until a certificate needs them.
    UploadedBlobs,
    /// Certificates in one batch or one download.
    BatchSize,
    /// Size of an event payload, in bytes.
    EventSize,
    /// Committees created by one block (one).
    Committees,
    /// Size of a block's encoding, in bytes.
    BlockSize,
    /// Length of an event stream's name, in bytes.
    StreamName,
}

/// How a remote broke the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Violation {
    /// It claimed to lack blobs that the certificate or proposal does not need.
    FalseBlobsNotFound,
    /// It claimed to lack events that the block does not read (nor its committee needs).
    FalseEventsNotFound,
    /// It claimed to lack a cross-chain bundle that the block does not consume.
    FalseCrossChainClaim,
    /// It answered about another chain than asked.
    WrongChain,
    /// Its vote or response is not signed by it, or is about another value.
    WrongVote,
    /// It sent a certificate that does not verify or does not fit.
    BadCertificate,
    /// It kept asking for the same repair.
    RepeatedRecovery,
}

/// Which transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransportErrorKind {
    /// Could not connect, or an I/O error on the connection.
    Io,
    /// The connection closed before the answer arrived.
    ConnectionClosed,
    /// A frame was larger than allowed.
    FrameTooLarge,
    /// A message could not be encoded or decoded.
    Codec,
    /// The node is not reachable (offline, shut down).
    Unavailable,
}

/// Which storage operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StorageErrorKind {
    /// Reading failed.
    Read,
    /// Writing or committing failed.
    Write,
    /// Stored bytes could not be decoded.
    Corrupted,
}

/// What a validator answers instead of a result, and what can go wrong on the way to it.
///
/// Serialisable (it crosses the wire) and `Clone + Eq + Hash` (the quorum tally groups errors).
/// [`NodeError::is_expected`] separates the protocol's normal refusals, which the updater
/// repairs, from real faults.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum NodeError {
    // ---- Expected: part of the protocol's normal flow ----
    /// The proposal is for another round than the node's current one.
    #[error("the node is in {0}")]
    WrongRound(Round),
    /// The node expected another height for this chain.
    #[error("expected block height {expected_block_height:?}, found {found_block_height:?}")]
    UnexpectedBlockHeight {
        /// The chain's next height on the node.
        expected_block_height: BlockHeight,
        /// The height received.
        found_block_height: BlockHeight,
    },
    /// The block consumes a bundle the node has not received yet.
    #[error("{chain_id:?} is missing the bundle from {origin:?} at {height:?}")]
    MissingCrossChainUpdate {
        /// The receiving chain.
        chain_id: ChainId,
        /// The sending chain.
        origin: ChainId,
        /// The sending block's height.
        height: BlockHeight,
    },
    /// Events the node does not have.
    #[error("events not found: {0:?}")]
    EventsNotFound(Vec<EventId>),
    /// Blobs the node does not have.
    #[error("blobs not found: {0:?}")]
    BlobsNotFound(Vec<BlobId>),
    /// The node does not know the chain (its description blob is missing).
    #[error("{0:?} is not active on this node")]
    InactiveChain(ChainId),
    /// The block's timestamp is beyond the node's clock plus its grace.
    #[error("block timestamp {block_timestamp} is ahead of the node's time {local_time}")]
    InvalidTimestamp {
        /// The block's timestamp.
        block_timestamp: Timestamp,
        /// The node's time.
        local_time: Timestamp,
    },
    /// A lite certificate for a value the node does not hold.
    #[error("the node does not hold the certified value")]
    MissingCertificateValue,

    // ---- Unexpected ----
    /// A certificate failed its checks.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(CertificateError),
    /// A proposal's, vote's or response's signature failed.
    #[error("invalid signature: {0}")]
    InvalidSignature(CryptoError),
    /// The block's or certificate's epoch is not the chain's.
    #[error("wrong epoch: chain is in {expected:?}, found {found:?}")]
    WrongEpoch {
        /// The chain's epoch.
        expected: Epoch,
        /// The epoch found.
        found: Epoch,
    },
    /// The proposer is not an owner allowed to propose in this round.
    #[error("the proposer may not propose in this round")]
    UnauthorizedOwner,
    /// The block does not extend the chain's tip.
    #[error("block does not extend the chain's tip")]
    InvalidChaining,
    /// The block's timestamp is before the previous block's.
    #[error("block timestamp goes backwards")]
    TimestampGoesBackwards,
    /// The node is locked on another block at this height.
    #[error("the node is locked on another block at this height")]
    HasLockedBlock,
    /// The node already voted for another proposal in this round.
    #[error("already voted for another proposal in this round")]
    AlreadyVoted,
    /// Executing the block failed.
    #[error("execution failed: {0}")]
    Execution(ExecutionError),
    /// A certified outcome differs from this node's execution of the block.
    #[error("certified outcome differs from local execution")]
    OutcomeMismatch,
    /// A certificate's height or round is not one the node can act on.
    #[error("certificate {0:?} is stale or does not apply")]
    CertificateNotApplicable(CryptoHash),
    /// Too much data for a bounded buffer (pending blobs, uploads, batch sizes).
    #[error("resource limit reached: {0:?}")]
    LimitExceeded(Limit),
    /// A blob nobody asked for was uploaded.
    #[error("blob {0:?} is not expected")]
    UnexpectedBlob(BlobId),
    /// The node gives no timeout vote for the round asked (its deadline has not passed at the
    /// node, or the node is in another round).
    #[error("no timeout vote yet (the node's round deadline: {deadline:?})")]
    TimeoutNotDue {
        /// When the node's current round may be timed out.
        deadline: Option<Timestamp>,
    },
    /// A certificate, blob or value asked for is not there.
    #[error("not found")]
    NotFound,
    /// The remote broke the protocol (a false claim, a response about another chain, …).
    #[error("protocol violation: {0:?}")]
    ProtocolViolation(Violation),
    /// A response could not be understood or did not match the request.
    #[error("malformed response")]
    MalformedResponse,
    /// Transport failure.
    #[error("transport error: {0:?}")]
    Transport(TransportErrorKind),
    /// No answer in time.
    #[error("request timed out")]
    Timeout,
    /// Storage failure on the node.
    #[error("storage error: {0:?}")]
    Storage(StorageErrorKind),
    /// The node does not push notifications (a node without a validator key, or a carrier
    /// that cannot carry a stream).
    #[error("this node does not push notifications")]
    NotificationsUnavailable,
    /// A subscription, or a change of one, would pass a cap of the node or of its transport.
    #[error("subscription refused: the cap on {0} is reached")]
    SubscriptionLimit(SubscriptionLimit),
    /// The subscription named is not open (here: it may belong to another connection).
    #[error("unknown subscription {0:?}")]
    UnknownSubscription(crate::SubscriptionId),
}

/// Which cap refused a subscription ([`NodeError::SubscriptionLimit`]); each is a documented
/// setting of the node or its transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SubscriptionLimit {
    /// Chains in one subscription.
    ChainsPerSubscription,
    /// Subscriptions open at the node, all subscribers together.
    Subscriptions,
    /// Chains followed at the node, all subscriptions together.
    Chains,
    /// Subscriptions open on one connection.
    SubscriptionsPerConnection,
    /// Subscriptions open from one address.
    SubscriptionsPerAddress,
    /// Chains followed by the subscriptions of one connection.
    ChainsPerConnection,
    /// Chains followed by the subscriptions of one address.
    ChainsPerAddress,
}

impl SubscriptionLimit {
    /// The cap's name, as metric labels and error messages show it (`chains_per_address`).
    pub fn name(self) -> &'static str {
        match self {
            SubscriptionLimit::ChainsPerSubscription => "chains_per_subscription",
            SubscriptionLimit::Subscriptions => "subscriptions",
            SubscriptionLimit::Chains => "chains",
            SubscriptionLimit::SubscriptionsPerConnection => "subscriptions_per_connection",
            SubscriptionLimit::SubscriptionsPerAddress => "subscriptions_per_address",
            SubscriptionLimit::ChainsPerConnection => "chains_per_connection",
            SubscriptionLimit::ChainsPerAddress => "chains_per_address",
        }
    }
}

impl fmt::Display for SubscriptionLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl NodeError {
    /// Whether this error is part of the protocol's normal flow (the updater repairs it) rather
    /// than a fault.
    pub fn is_expected(&self) -> bool {
        matches!(
            self,
            NodeError::WrongRound(_)
                | NodeError::UnexpectedBlockHeight { .. }
                | NodeError::MissingCrossChainUpdate { .. }
                | NodeError::EventsNotFound(_)
                | NodeError::BlobsNotFound(_)
                | NodeError::InactiveChain(_)
                | NodeError::InvalidTimestamp { .. }
                | NodeError::MissingCertificateValue
        )
    }
}

impl From<CertificateError> for NodeError {
    fn from(error: CertificateError) -> Self {
        NodeError::InvalidCertificate(error)
    }
}

impl From<ExecutionError> for NodeError {
    fn from(error: ExecutionError) -> Self {
        NodeError::Execution(error)
    }
}
