//! The `Storage` trait: what a node persists (DESIGN §7).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::block::ConfirmedBlockCertificate;
use crate::committee::{Committee, Epoch};
use crate::error::{NodeError, StorageErrorKind};
use crate::hash::CryptoHash;
use crate::ChainState;
use crate::{Blob, BlobId, BlobState, BlockHeight, ChainId, EventId, ReceivedEntry};
use serde::{Deserialize, Serialize};

/// A storage failure, with the back end's own error as its source.
#[derive(Debug, thiserror::Error)]
#[error("storage {kind:?} failure: {source}")]
pub struct StorageError {
    /// What failed.
    pub kind: StorageErrorKind,
    /// The back end's error.
    #[source]
    pub source: Box<dyn core::error::Error + Send + Sync + 'static>,
}

impl StorageError {
    /// Wraps a back end error.
    pub fn new(
        kind: StorageErrorKind,
        source: impl core::error::Error + Send + Sync + 'static,
    ) -> Self {
        StorageError {
            kind,
            source: Box::new(source),
        }
    }
}

impl From<StorageError> for NodeError {
    fn from(error: StorageError) -> Self {
        NodeError::Storage(error.kind)
    }
}

/// One write of a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// A confirmed certificate, indexed by its value's hash and by its block's chain and height.
    /// Shared, so that a node can keep the value it wrote (in a cache, or for its answer)
    /// without copying it.
    Certificate(Arc<ConfirmedBlockCertificate>),
    /// A blob, indexed by its id.
    Blob(Blob),
    /// Where a blob was published.
    BlobState(BlobId, BlobState),
    /// An event's payload.
    Event(EventId, Vec<u8>),
    /// A chain's state (replaces the previous one). Shared, as certificates are.
    ChainState(Arc<ChainState>),
    /// The committee of an epoch.
    Committee(Epoch, Committee),
    /// The entry at an index of a chain's received log (DESIGN §4.2.1). Entries are written
    /// once each, at the index the chain's state counted for them.
    ReceivedLog(ChainId, u64, ReceivedEntry),
    /// A delivery owed to a chain another shard of the validator owns (DESIGN §7.1): written
    /// in the sending block's batch, so that it is durable exactly when the block is.
    Outbox(OutboxEntry),
    /// The delivery is done: written in the batch that delivered it. Removing an entry that
    /// is not there is no error.
    OutboxDone(OutboxEntry),
}

/// One delivery of a validator's durable outbox (DESIGN §7.1): the block of `certificate`
/// sent something (a bundle, or the opening of a chain) to `recipient`, a chain the shard of
/// index `lane` owns. Entries are kept in key order: `lane`, then `recipient`, then
/// `certificate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The index of the shard that owns `recipient`.
    pub lane: u32,
    /// The chain the delivery is for.
    pub recipient: ChainId,
    /// The hash of the sending block's confirmed certificate.
    pub certificate: CryptoHash,
}

/// Writes applied atomically: all or none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The writes, applied in order.
    pub writes: Vec<Write>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a write.
    pub fn push(&mut self, write: Write) {
        self.writes.push(write);
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// Persistent storage of a node. Implementations must apply [`Storage::write_batch`]
/// atomically and durably (once it returns, a crash loses nothing of it).
#[async_trait::async_trait]
pub trait Storage: Send + Sync {
    /// The confirmed certificate whose value has this hash.
    async fn read_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<Option<ConfirmedBlockCertificate>, StorageError>;

    /// The hashes of a chain's confirmed certificates at `heights`, in the order asked.
    async fn read_certificate_hashes(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<CryptoHash>>, StorageError>;

    /// A chain's confirmed certificates at `heights`, in the order asked.
    async fn read_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<ConfirmedBlockCertificate>>, StorageError>;

    /// A blob.
    async fn read_blob(&self, id: BlobId) -> Result<Option<Blob>, StorageError>;

    /// Which of `ids` are not stored.
    async fn missing_blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobId>, StorageError>;

    /// Where a blob was published.
    async fn read_blob_state(&self, id: BlobId) -> Result<Option<BlobState>, StorageError>;

    /// An event's payload.
    async fn read_event(&self, id: &EventId) -> Result<Option<Vec<u8>>, StorageError>;

    /// A chain's state.
    async fn read_chain_state(&self, chain_id: ChainId)
        -> Result<Option<ChainState>, StorageError>;

    /// The committee of an epoch.
    async fn read_committee(&self, epoch: Epoch) -> Result<Option<Committee>, StorageError>;

    /// Entries of a chain's received log from index `from`: at most `limit` of them, in
    /// order, stopping before the first index not stored.
    async fn read_received_log(
        &self,
        chain_id: ChainId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ReceivedEntry>, StorageError>;

    /// Entries of the outbox lane `lane` ([`Write::Outbox`]), in key order: at most `limit`.
    async fn read_outbox(&self, lane: u32, limit: usize) -> Result<Vec<OutboxEntry>, StorageError>;

    /// Applies all writes atomically and durably.
    ///
    /// Cancellation: once the returned future has been polled, dropping it must not leave a
    /// window in which a later read sees the state from before the batch while the batch
    /// still lands afterwards: either the batch is abandoned, or every read that starts after
    /// the drop sees it. (A caller whose request timed out may have released its locks; a
    /// second caller must not read the old state and then overwrite the first one's writes.)
    async fn write_batch(&self, batch: Batch) -> Result<(), StorageError>;
}
