//! The pure core of Quorum.
//!
//! No I/O, no clocks, no threads: everything here is a value or a state machine fed with inputs
//! (answers, votes, the current time as an argument). It builds with `#![no_std]` and `alloc`;
//! the default `std` feature only adds `std::error::Error` integration.
//!
//! * [`crypto`]: ed25519 keys and signatures, batch verification with bisection.
//! * [`hash`] and [`encoding`]: domain-separated hashes over canonical BCS bytes.
//! * [`committee`]: weighted committees and the quorum / validity thresholds.
//! * [`tally`]: the quorum tally behind `communicate_with_quorum`.
//! * [`vote`], [`aggregator`], [`certificate`]: votes, aggregation and certificates.
//! * [`data`], [`block`], [`info`]: the protocol's data, blocks, proposals and chain queries.
//! * [`chain`] and [`manager`]: the pure chain rules (execution, inboxes) and per-chain
//!   consensus (rounds, locks, timeouts) that the validator applies.
//! * [`error`]: [`NodeError`], what validators answer instead of a result.
//! * [`limits`]: [`Limits`], every bound of the protocol, and the frame length derived from it.
//! * [`node`] and [`storage`]: the two plug-in traits, [`ValidatorNode`] and [`Storage`].

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod aggregator;
pub mod block;
pub mod certificate;
pub mod chain;
pub mod committee;
pub mod crypto;
pub mod data;
pub mod encoding;
pub mod error;
pub mod hash;
pub mod info;
pub mod limits;
pub mod manager;
pub mod node;
pub mod protocol;
pub mod round;
pub mod storage;
pub mod tally;
pub mod vote;

pub use aggregator::{AggregatorError, Equivocation, SignatureAggregator};
pub use block::{
    Block, BlockOutcome, BlockProposal, BlockValue, ConfirmedBlock, ConfirmedBlockCertificate,
    IncomingBundle, Message, Operation, OutgoingBundle, Timeout, TimeoutCertificate,
    ValidatedBlock, ValidatedBlockCertificate,
};
pub use certificate::{Certificate, CertificateError, LiteCertificate};
pub use chain::ChainState;
pub use committee::{Committee, CommitteeError, EncodedCommittee, Epoch, ValidatorInfo};
pub use crypto::{
    AccountPublicKey, AccountSecretKey, AccountSignature, CryptoError, PreparedKey, Signature,
    ValidatorPublicKey, ValidatorSecretKey, ValidatorSignature,
};
pub use data::{
    Blob, BlobId, BlobState, BlobType, BlockHeight, ChainDescription, ChainId, ChainOrigin,
    ConsensusConfig, Event, EventId, StreamId, StreamNamespace, TimeDelta, Timestamp,
};
pub use error::{ExecutionError, Limit, NodeError, TransportErrorKind, Violation};
pub use hash::{BcsHashable, CryptoHash, Hashed};
pub use info::{BatchOutcome, ChainInfo, ChainInfoQuery, ChainInfoResponse, CrossChainDelivery};
pub use limits::{Limits, LimitsError};
pub use node::ValidatorNode;
pub use round::Round;
pub use storage::{Batch, Storage, StorageError, Write};
pub use tally::{QuorumTally, QuorumValues, Rejected, TallyError, TallyOutcome};
pub use vote::{CertificateValue, LiteVote, Vote, VoteError, VoteKind};
