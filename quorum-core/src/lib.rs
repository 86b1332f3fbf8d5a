//! The pure core of Quorum.
//!
//! No I/O, no clocks, no threads: everything here is a value or a state machine fed with inputs
//! (answers, votes, the current time as an argument). It builds with `#![no_std]` and `alloc`;
//! the default `std` feature only adds `std::error::Error` integration.
//!
//! Every item has one path: the crate root, except the messages of the protocol, which live in
//! [`protocol`]. What the root holds, by concept:
//!
//! * Keys and signatures: [`ValidatorSecretKey`], [`AccountSecretKey`], [`PreparedKey`]; batch
//!   verification with bisection.
//! * Hashes over canonical BCS bytes, domain-separated: [`CryptoHash`], [`Hashed`],
//!   [`encoded_len`].
//! * Weighted committees and their quorum / validity thresholds: [`Committee`],
//!   [`EncodedCommittee`].
//! * The quorum tally behind `communicate_with_quorum`: [`QuorumTally`].
//! * Votes, aggregation and certificates: [`LiteVote`], [`SignatureAggregator`],
//!   [`Certificate`].
//! * The protocol's data: heights and time ([`BlockHeight`], [`Timestamp`]), chains
//!   ([`ChainDescription`]), blobs ([`Blob`]), events ([`Event`]), blocks and proposals
//!   ([`Block`], [`BlockProposal`]), chain queries ([`ChainInfoQuery`]).
//! * The pure chain rules the validator applies: a chain's state ([`ChainState`]), the
//!   execution of blocks ([`execute_block`]), per-chain consensus ([`ChainManager`]: rounds,
//!   locks, timeouts).
//! * What validators push to subscribers, signed once per event: [`Notification`],
//!   [`SignedNotification`], [`NotificationEnvelope`], [`Subscription`].
//! * The received log of a chain, which names every block that paid it: [`ReceivedEntry`].
//! * [`Limits`]: every bound of the protocol, and the frame length derived from it.
//! * [`NodeError`]: what validators answer instead of a result.
//! * The two plug-in traits, [`ValidatorNode`] and [`Storage`].

#![no_std]
#![warn(unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod aggregator;
mod blob;
mod block;
mod certificate;
mod chain_description;
mod chain_id;
mod chain_state;
mod committee;
mod crypto;
mod encoding;
mod error;
mod event;
mod execution;
mod hash;
mod info;
mod limits;
mod manager;
mod memory_budget;
mod notification;
pub mod protocol;
mod received_log;
mod round;
mod storage;
mod tally;
mod timeout;
mod units;
mod validator_node;
mod vote;

pub use aggregator::{AggregatorError, Equivocation, SignatureAggregator};
pub use blob::{Blob, BlobId, BlobState, BlobType};
pub use block::{
    committee_blob, epoch_event_id, Block, BlockOutcome, BlockProposal, BlockValue, ConfirmedBlock,
    ConfirmedBlockCertificate, IncomingBundle, Message, Operation, OutgoingBundle,
    TimeoutCertificate, ValidatedBlock, ValidatedBlockCertificate,
};
pub use certificate::{Certificate, CertificateError, LiteCertificate, PendingSignatures};
pub use chain_description::{ChainDescription, ChainOrigin, ConsensusConfig};
pub use chain_id::ChainId;
pub use chain_state::{ChainState, Inbox};
pub use committee::{
    Committee, CommitteeError, EncodedCommittee, Epoch, NetworkKeyError, NetworkPublicKey,
    ValidatorInfo,
};
pub use crypto::{
    verify_signatures, AccountPublicKey, AccountSecretKey, AccountSignature, CryptoError,
    PreparedKey, Signature, SignatureCheck, ValidatorPublicKey, ValidatorSecretKey,
    ValidatorSignature, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH,
};
pub use encoding::{encoded_len, to_bytes, EncodeError};
pub use error::{
    ExecutionError, Limit, NodeError, StorageErrorKind, SubscriptionLimit, TransportErrorKind,
    Violation,
};
pub use event::{Event, EventId, StreamId, StreamNamespace};
pub use execution::{check_block_bounds, execute_block, Execution, ExecutionInputs};
pub use hash::{BcsHashable, CryptoHash, Hashed, HASH_LENGTH};
pub use info::{
    BatchOutcome, ChainInfo, ChainInfoQuery, ChainInfoResponse, CrossChainDelivery, ManagerInfo,
};
pub use limits::{Limits, LimitsError};
pub use manager::{
    first_round, leader, round_duration, ChainManager, Lock, ProposalDecision, VoteValue,
};
pub use memory_budget::{ConnectionMemory, MemoryBudget, MemoryCharge};
pub use notification::{
    Notification, NotificationEnvelope, NotificationKind, NotificationStream, SequenceCheck,
    SequenceVerdict, SignedNotification, StreamEvent, Subscription, SubscriptionChange,
    SubscriptionId,
};
pub use received_log::ReceivedEntry;
pub use round::Round;
pub use storage::{Batch, OutboxEntry, Storage, StorageError, Write};
pub use tally::{QuorumTally, QuorumValues, Rejected, TallyError, TallyOutcome};
pub use timeout::Timeout;
pub use units::{BlockHeight, TimeDelta, Timestamp};
pub use validator_node::ValidatorNode;
pub use vote::{vote_message, CertificateValue, LiteVote, Vote, VoteError, VoteKind};
