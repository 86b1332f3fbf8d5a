//! The client side of Quorum.
//!
//! * [`communicate_with_quorum`]: ask every validator at once, stop at a quorum plus a grace
//!   period, or as soon as no quorum is possible.
//! * [`ValidatorUpdater`]: obtain a vote from one validator while bringing it up to date with
//!   exactly what it lacks (blocks, rounds, blobs, events, cross-chain messages, committees,
//!   clock skew).
//! * [`ChainClient`]: the full life cycle of blocks on one chain.
//! * [`Options`]: every policy, with documented defaults.

pub mod client;
pub mod options;
pub mod quorum;
pub mod remote;
pub mod stats;
pub mod updater;

pub use client::{ChainClient, ChainClientError, ValidatorSet};
pub use options::{Options, RetryPolicy};
pub use quorum::{communicate_with_quorum, QuorumError, QuorumTiming};
pub use remote::RemoteNode;
pub use stats::{RecoveryKind, RecoveryStats};
pub use updater::{CommunicateAction, SkewReport, ValidatorUpdater};
