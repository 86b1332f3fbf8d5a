//! validator.toml's `[shards]` (DESIGN §7.1): where each shard of a sharded validator listens,
//! and its leases and delivery polls (see `validator/sharded.rs` for how they run).

use serde::{Deserialize, Serialize};

use std::num::NonZeroU32;

use quorum_node::Shard;

use crate::error::CliError;

/// validator.toml's `[shards]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardsConfig {
    /// Where shard `i` listens for the proxy, at index `i`; how many there are is the number
    /// of shards.
    pub addresses: Vec<String>,
    /// How long a shard's lease lasts without renewal, in milliseconds (default 10,000): how
    /// long a restarted shard may wait after its predecessor was killed.
    pub lease_ms: u64,
    /// How soon a shard that just delivered looks again for deliveries other shards owe its
    /// chains, in milliseconds (default 10).
    pub outbox_poll_ms: u64,
    /// The longest a shard with nothing to deliver waits before looking again, in
    /// milliseconds (default 200): the most a payment between shards waits at this validator
    /// before its recipient's inbox shows it (a block that needs it takes it in at once).
    pub outbox_idle_poll_ms: u64,
    /// Most notifications the proxy queues for one subscription (default 1,024).
    pub subscription_queue: usize,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        ShardsConfig {
            addresses: Vec::new(),
            lease_ms: 10_000,
            outbox_poll_ms: 10,
            outbox_idle_poll_ms: 200,
            subscription_queue: 1_024,
        }
    }
}

impl ShardsConfig {
    /// How many shards: one per address.
    pub fn count(&self) -> Result<NonZeroU32, CliError> {
        let count = u32::try_from(self.addresses.len()).unwrap_or(0);
        NonZeroU32::new(count).ok_or(CliError::NoShards)
    }

    /// Shard `index`, if in range.
    pub(crate) fn shard(&self, index: u32) -> Result<Shard, CliError> {
        Shard::new(self.count()?, index).ok_or(CliError::ShardOutOfRange {
            index,
            count: self.addresses.len(),
        })
    }
}
