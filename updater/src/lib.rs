//! The client side of Quorum.
//!
//! * [`communicate_with_quorum`]: ask every validator at once, stop at a quorum plus a grace
//!   period, or as soon as no quorum is possible.
//! * [`ValidatorUpdater`]: obtain a vote from one validator while bringing it up to date with
//!   exactly what it lacks (blocks, rounds, blobs, events, cross-chain messages, committees,
//!   clock skew).
//! * [`ChainClient`]: the full life cycle of blocks on one chain.
//! * [`Listener`]: follows chains on what validators push (DESIGN §5.8 "Listening"): one
//!   subscription per validator, a sync on each hint, signed false hints marked Byzantine.
//! * [`Options`]: every policy, with documented defaults.
//!
//! Using it with your own transport: implement [`quorum_core::ValidatorNode`] for it, register
//! one per validator, and drive a chain.
//!
//! ```no_run
//! use std::sync::Arc;
//! use quorum_core::{AccountSecretKey, ChainId, ValidatorNode, ValidatorPublicKey};
//! use quorum_node::{Clock, Genesis, MemoryStorage, SystemClock, Worker, WorkerConfig};
//! use quorum_updater::{ChainClient, Options, ValidatorSet};
//!
//! async fn pay(
//!     genesis: &Genesis,
//!     my_transport: Vec<(ValidatorPublicKey, Arc<dyn ValidatorNode>)>,
//!     chain: ChainId,
//!     owner: AccountSecretKey,
//!     recipient: ChainId,
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     // The client's local node: a Worker without a key, the source of everything it sends.
//!     let storage = MemoryStorage::new();
//!     let admin = genesis.initialize(&storage, SystemClock.now()).await?;
//!     let local = Arc::new(Worker::new(storage, None, Arc::new(SystemClock), WorkerConfig::new(admin)));
//!     let validators = ValidatorSet::new();
//!     for (key, node) in my_transport {
//!         validators.insert(key, node);
//!     }
//!     let client = ChainClient::new(chain, Some(owner), local, validators, Options::default());
//!     let certificate = client.transfer(recipient, 10).await?; // quorum, repairs, broadcast
//!     println!("committed at height {:?}", certificate.value().block().height);
//!     Ok(())
//! }
//! ```

#![warn(unreachable_pub)]

mod catch_up;
mod chain_client;
mod health;
mod hedge;
mod listener;
mod metrics;
mod options;
mod quorum;
mod recovery_stats;
mod remote;
mod shared_reads;
mod updater;

pub use catch_up::CatchUp;
pub use chain_client::{ChainClient, ChainClientError, HeldLock, ReceivedLogSync, ValidatorSet};
pub use health::{Health, HealthPolicy, HealthRecord, HealthState, SavedHealth};
pub use listener::{ListenEvent, Listener};
pub use metrics::describe_metrics;
pub use options::{ListenOptions, Options, RetryPolicy};
pub use quorum::{communicate_with_quorum, QuorumError, QuorumTiming};
pub use recovery_stats::{RecoveryKind, RecoveryStats};
pub use remote::RemoteNode;
pub use updater::{CommunicateAction, ValidatorUpdater};
