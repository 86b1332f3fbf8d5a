//! Quorum's reference validator.
//!
//! * [`Worker`]: applies the pure chain rules of `quorum-core` over a [`Storage`], signing votes
//!   when it holds a validator key. Without a key, the same Worker is a client's local node.
//! * [`MemoryStorage`]: a [`Storage`] in memory.
//! * [`Notifier`]: the subscriptions to a validator's notifications, bounded by a
//!   [`NotificationConfig`] (DESIGN §4.7.1); the Worker announces each commit's blocks,
//!   bundles and rounds once durable.
//! * [`Clock`]: the time source, with [`SystemClock`] and [`ManualClock`] for tests.
//! * [`Shard`]: a Worker as one shard of a validator split over several processes.
//!
//! [`Storage`]: quorum_core::Storage

#![warn(unreachable_pub)]

mod clock;
mod genesis;
mod memory;
mod metrics;
mod notifier;
mod overlay;
mod shard;
mod worker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use genesis::{Genesis, GenesisError};
pub use memory::MemoryStorage;
pub use metrics::describe_metrics;
pub use notifier::{NotificationConfig, Notifier};
pub use shard::Shard;
pub use worker::{Worker, WorkerConfig};
