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

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod aggregator;
pub mod certificate;
pub mod committee;
pub mod crypto;
pub mod encoding;
pub mod hash;
pub mod round;
pub mod tally;
pub mod vote;

pub use aggregator::{AggregatorError, Equivocation, SignatureAggregator};
pub use certificate::{Certificate, CertificateError, LiteCertificate};
pub use committee::{Committee, CommitteeError, Epoch, ValidatorInfo};
pub use crypto::{
    AccountPublicKey, AccountSecretKey, AccountSignature, CryptoError, PreparedKey, Signature,
    ValidatorPublicKey, ValidatorSecretKey, ValidatorSignature,
};
pub use hash::{BcsHashable, CryptoHash, Hashed};
pub use round::Round;
pub use tally::{QuorumTally, QuorumValues, Rejected, TallyError, TallyOutcome};
pub use vote::{CertificateValue, LiteVote, Vote, VoteError, VoteKind};
