//! Quorum's reference validator.
//!
//! * [`Worker`]: applies the pure chain rules of `quorum-core` over a [`Storage`], signing votes
//!   when it holds a validator key. Without a key, the same Worker is a client's local node.
//! * [`MemoryStorage`]: a [`Storage`] in memory.
//! * [`Clock`]: the time source, with [`SystemClock`] and [`ManualClock`] for tests.
//!
//! [`Storage`]: quorum_core::Storage

pub mod clock;
pub mod genesis;
pub mod memory;
mod overlay;
pub mod worker;

pub use clock::{Clock, ManualClock, Sleep, SystemClock, TokioClock};
pub use genesis::{Genesis, GenesisError};
pub use memory::MemoryStorage;
pub use worker::{Worker, WorkerConfig};
