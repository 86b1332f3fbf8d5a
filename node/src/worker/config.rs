//! [`WorkerConfig`]: the Worker's settings and their defaults, with units: the protocol's
//! [`Limits`], which the whole committee shares, and this node's own memory budgets.

use quorum_core::{ChainId, Limits, TimeDelta};

use super::held_blobs::HeldBlobCaps;
use crate::notifier::NotificationConfig;
use crate::shard::Shard;

/// Default for [`WorkerConfig::timestamp_grace`]: how far ahead of the node's clock a block's
/// timestamp may be, in microseconds (500 ms).
const DEFAULT_TIMESTAMP_GRACE: TimeDelta = TimeDelta::from_millis(500);
/// Default for [`WorkerConfig::max_pending_blobs_per_chain`].
const DEFAULT_MAX_PENDING_BLOBS_PER_CHAIN: usize = 64;
/// Default for [`WorkerConfig::max_pending_chains`].
const DEFAULT_MAX_PENDING_CHAINS: usize = 4_096;
/// Default for [`WorkerConfig::max_uploaded_blobs`].
const DEFAULT_MAX_UPLOADED_BLOBS: usize = 1_024;
/// Default for [`WorkerConfig::max_held_blob_bytes`]: 256 MiB.
const DEFAULT_MAX_HELD_BLOB_BYTES: usize = 256 << 20;
/// Default for [`WorkerConfig::max_pending_bytes_per_chain`]: 16 MiB.
const DEFAULT_MAX_PENDING_BYTES_PER_CHAIN: usize = 16 << 20;
/// Default for [`WorkerConfig::max_wanted_blobs`].
const DEFAULT_MAX_WANTED_BLOBS: usize = 4_096;
/// Default for [`WorkerConfig::held_blob_expiry`]: 5 minutes.
const DEFAULT_HELD_BLOB_EXPIRY: TimeDelta = TimeDelta::from_secs(300);

/// Settings of a [`Worker`](super::Worker).
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The admin chain, whose `epoch` stream announces committees.
    pub admin_chain: ChainId,
    /// How far ahead of the node's clock a proposed block's timestamp may be (default 500 ms).
    pub timestamp_grace: TimeDelta,
    /// The protocol's bounds, the same on every node of the committee (default
    /// [`Limits::DEFAULT`]): block sizes, batches, queries, blob bytes
    /// ([`Limits::max_blob_bytes`]) and download answer bytes ([`Limits::max_download_bytes`]).
    pub limits: Limits,
    /// Most pending blobs held for one chain (default 64).
    pub max_pending_blobs_per_chain: usize,
    /// Most chains with pending blobs at once (default 4,096).
    pub max_pending_chains: usize,
    /// Most uploaded blobs held until a certificate uses them; beyond it uploads are refused,
    /// nothing held is dropped for them (default 1,024).
    pub max_uploaded_blobs: usize,
    /// Bytes of pending and uploaded blobs held in all (default 256 MiB).
    pub max_held_blob_bytes: usize,
    /// Bytes of pending blobs held for one chain (default 16 MiB).
    pub max_pending_bytes_per_chain: usize,
    /// Most blob ids the node waits for after answering a certificate with `BlobsNotFound`;
    /// only those may be uploaded (default 4,096).
    pub max_wanted_blobs: usize,
    /// How long a held blob, or a wanted id, is kept, in microseconds (default 5 minutes).
    pub held_blob_expiry: TimeDelta,
    /// Bounds of the subscriptions to this node's notifications (DESIGN §4.7.1).
    pub notifications: NotificationConfig,
    /// This Worker's place as one shard of a sharded validator (DESIGN §7.1); `None` (the
    /// default): it owns every chain.
    pub shard: Option<Shard>,
    /// Most outbox entries one [`Worker::deliver_outbox`](super::Worker::deliver_outbox)
    /// takes in, in one batch (default 256).
    pub outbox_batch: usize,
}

impl WorkerConfig {
    /// Default settings for a committee whose admin chain is `admin_chain`.
    pub fn new(admin_chain: ChainId) -> Self {
        WorkerConfig {
            admin_chain,
            timestamp_grace: DEFAULT_TIMESTAMP_GRACE,
            limits: Limits::DEFAULT,
            max_pending_blobs_per_chain: DEFAULT_MAX_PENDING_BLOBS_PER_CHAIN,
            max_pending_chains: DEFAULT_MAX_PENDING_CHAINS,
            max_uploaded_blobs: DEFAULT_MAX_UPLOADED_BLOBS,
            max_held_blob_bytes: DEFAULT_MAX_HELD_BLOB_BYTES,
            max_pending_bytes_per_chain: DEFAULT_MAX_PENDING_BYTES_PER_CHAIN,
            max_wanted_blobs: DEFAULT_MAX_WANTED_BLOBS,
            held_blob_expiry: DEFAULT_HELD_BLOB_EXPIRY,
            notifications: NotificationConfig::default(),
            shard: None,
            outbox_batch: 256,
        }
    }

    /// The bounds of the blobs held in memory.
    pub(super) fn held_limits(&self) -> HeldBlobCaps {
        HeldBlobCaps {
            total_bytes: self.max_held_blob_bytes,
            chain_bytes: self.max_pending_bytes_per_chain,
            chain_blobs: self.max_pending_blobs_per_chain,
            chains: self.max_pending_chains,
            uploaded: self.max_uploaded_blobs,
            wanted: self.max_wanted_blobs,
            expiry: self.held_blob_expiry,
        }
    }
}
