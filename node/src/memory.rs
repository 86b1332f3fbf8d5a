//! [`MemoryStorage`]: a [`Storage`] held in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use quorum_core::{
    Batch, Blob, BlobId, BlobState, BlockHeight, ChainId, ChainState, Committee,
    ConfirmedBlockCertificate, CryptoHash, Epoch, EventId, OutboxEntry, ReceivedEntry, Storage,
    StorageError, Write,
};

/// A [`Storage`] that keeps everything in memory, for tests, simulations and clients that need
/// no persistence.
///
/// * Certificates are indexed by their value's hash ([`ConfirmedBlockCertificate::hash`]) and
///   by the chain and height of their block; a later certificate at the same chain and height
///   replaces the earlier one in the height index (the earlier stays readable by its hash).
/// * [`Storage::write_batch`] applies the whole batch under one write lock, so readers see
///   either none or all of it; writes apply in order, a later write of a key replacing an
///   earlier one.
/// * Nothing survives the process: "durable" here means visible to every later read.
///
/// Cloning is cheap and shares the data (an [`Arc`] inside), so a test can hand the same
/// storage to a worker and keep a handle to inspect it.
///
/// Locks are held only for plain map operations that cannot panic half-way, so a poisoned lock
/// (a panic elsewhere while holding it) is recovered rather than reported.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    tables: Arc<RwLock<Tables>>,
}

/// Everything a [`MemoryStorage`] holds.
#[derive(Debug, Default)]
struct Tables {
    /// Certificates by value hash.
    certificates: HashMap<CryptoHash, Arc<ConfirmedBlockCertificate>>,
    /// Certificate hashes by chain and height.
    certificate_hashes: BTreeMap<(ChainId, BlockHeight), CryptoHash>,
    /// Blobs by id.
    blobs: HashMap<BlobId, Blob>,
    /// Where each blob was published.
    blob_states: HashMap<BlobId, BlobState>,
    /// Event payloads.
    events: HashMap<EventId, Vec<u8>>,
    /// Chain states.
    chain_states: HashMap<ChainId, Arc<ChainState>>,
    /// Committees by epoch.
    committees: BTreeMap<Epoch, Committee>,
    /// Received-log entries by chain and index.
    received_logs: BTreeMap<(ChainId, u64), ReceivedEntry>,
    /// Outbox entries: `true` while owed; `false` marks one done that this storage never
    /// held (as a layer over another storage, it hides the one below).
    outbox: BTreeMap<OutboxEntry, bool>,
}

/// A write with its keys computed, ready to apply under the lock.
enum Keyed {
    Certificate(Arc<ConfirmedBlockCertificate>),
    Blob(BlobId, Blob),
    BlobState(BlobId, BlobState),
    Event(EventId, Vec<u8>),
    ChainState(Arc<ChainState>),
    Committee(Epoch, Committee),
    ReceivedLog(ChainId, u64, ReceivedEntry),
    Outbox(OutboxEntry),
    OutboxDone(OutboxEntry),
}

impl Keyed {
    /// Computes the write's key outside the lock (a blob's id hashes its content).
    fn new(write: Write) -> Self {
        match write {
            Write::Certificate(certificate) => Keyed::Certificate(certificate),
            Write::Blob(blob) => Keyed::Blob(blob.id(), blob),
            Write::BlobState(id, state) => Keyed::BlobState(id, state),
            Write::Event(id, payload) => Keyed::Event(id, payload),
            Write::ChainState(state) => Keyed::ChainState(state),
            Write::Committee(epoch, committee) => Keyed::Committee(epoch, committee),
            Write::ReceivedLog(chain_id, index, entry) => {
                Keyed::ReceivedLog(chain_id, index, entry)
            }
            Write::Outbox(entry) => Keyed::Outbox(entry),
            Write::OutboxDone(entry) => Keyed::OutboxDone(entry),
        }
    }
}

impl MemoryStorage {
    /// A chain's state, shared with the storage (no copy).
    pub(crate) fn shared_chain_state(&self, chain_id: ChainId) -> Option<Arc<ChainState>> {
        self.read().chain_states.get(&chain_id).cloned()
    }

    /// The outbox entries of `lane` this storage knows of, owed (`true`) or marked done
    /// (`false`): what it changes as a layer over another storage.
    pub(crate) fn outbox_layer(&self, lane: u32) -> Vec<(OutboxEntry, bool)> {
        self.read()
            .outbox
            .range(lane_start(lane)..)
            .take_while(|(entry, _)| entry.lane == lane)
            .map(|(entry, owed)| (*entry, *owed))
            .collect()
    }

    /// Applies a copy of `batch` at once (what `write_batch` does, without an `await`).
    pub(crate) fn apply(&self, batch: &Batch) {
        let writes: Vec<Keyed> = batch.writes.iter().cloned().map(Keyed::new).collect();
        let mut tables = self.write();
        for write in writes {
            tables.apply(write);
        }
    }
}

/// The first possible entry of `lane`, in key order.
pub(crate) fn lane_start(lane: u32) -> OutboxEntry {
    OutboxEntry {
        lane,
        recipient: ChainId(CryptoHash([0; 32])),
        certificate: CryptoHash([0; 32]),
    }
}

impl Tables {
    fn apply(&mut self, write: Keyed) {
        match write {
            Keyed::Certificate(certificate) => {
                let hash = certificate.hash();
                let block = certificate.value().block();
                self.certificate_hashes
                    .insert((block.chain_id, block.height), hash);
                self.certificates.insert(hash, certificate);
            }
            Keyed::Blob(id, blob) => {
                self.blobs.insert(id, blob);
            }
            Keyed::BlobState(id, state) => {
                self.blob_states.insert(id, state);
            }
            Keyed::Event(id, payload) => {
                self.events.insert(id, payload);
            }
            Keyed::ChainState(state) => {
                self.chain_states.insert(state.chain_id(), state);
            }
            Keyed::Committee(epoch, committee) => {
                self.committees.insert(epoch, committee);
            }
            Keyed::ReceivedLog(chain_id, index, entry) => {
                self.received_logs.insert((chain_id, index), entry);
            }
            Keyed::Outbox(entry) => {
                self.outbox.insert(entry, true);
            }
            Keyed::OutboxDone(entry) => {
                if self.outbox.remove(&entry) != Some(true) {
                    self.outbox.insert(entry, false);
                }
            }
        }
    }

    fn certificate_hash(&self, chain_id: ChainId, height: BlockHeight) -> Option<CryptoHash> {
        self.certificate_hashes.get(&(chain_id, height)).copied()
    }
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        MemoryStorage::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Storage for MemoryStorage {
    async fn read_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<Option<ConfirmedBlockCertificate>, StorageError> {
        Ok(self.read().certificates.get(&hash).map(|c| (**c).clone()))
    }

    async fn read_certificate_hashes(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<CryptoHash>>, StorageError> {
        let tables = self.read();
        Ok(heights
            .iter()
            .map(|height| tables.certificate_hash(chain_id, *height))
            .collect())
    }

    async fn read_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<ConfirmedBlockCertificate>>, StorageError> {
        let tables = self.read();
        Ok(heights
            .iter()
            .map(|height| {
                let hash = tables.certificate_hash(chain_id, *height)?;
                tables.certificates.get(&hash).map(|c| (**c).clone())
            })
            .collect())
    }

    async fn read_blob(&self, id: BlobId) -> Result<Option<Blob>, StorageError> {
        Ok(self.read().blobs.get(&id).cloned())
    }

    async fn missing_blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobId>, StorageError> {
        let tables = self.read();
        Ok(ids
            .iter()
            .filter(|id| !tables.blobs.contains_key(id))
            .copied()
            .collect())
    }

    async fn read_blob_state(&self, id: BlobId) -> Result<Option<BlobState>, StorageError> {
        Ok(self.read().blob_states.get(&id).copied())
    }

    async fn read_event(&self, id: &EventId) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.read().events.get(id).cloned())
    }

    async fn read_chain_state(
        &self,
        chain_id: ChainId,
    ) -> Result<Option<ChainState>, StorageError> {
        Ok(self.shared_chain_state(chain_id).map(Arc::unwrap_or_clone))
    }

    async fn read_committee(&self, epoch: Epoch) -> Result<Option<Committee>, StorageError> {
        Ok(self.read().committees.get(&epoch).cloned())
    }

    async fn read_received_log(
        &self,
        chain_id: ChainId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ReceivedEntry>, StorageError> {
        let tables = self.read();
        Ok(tables
            .received_logs
            .range((chain_id, from)..)
            .zip(from..)
            .take(limit)
            .map_while(|(((chain, index), entry), expected)| {
                (*chain == chain_id && *index == expected).then_some(*entry)
            })
            .collect())
    }

    async fn read_outbox(&self, lane: u32, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        Ok(self
            .outbox_layer(lane)
            .into_iter()
            .filter_map(|(entry, owed)| owed.then_some(entry))
            .take(limit)
            .collect())
    }

    async fn write_batch(&self, batch: Batch) -> Result<(), StorageError> {
        let writes: Vec<Keyed> = batch.writes.into_iter().map(Keyed::new).collect();
        let count = writes.len();
        let mut tables = self.write();
        for write in writes {
            tables.apply(write);
        }
        drop(tables);
        tracing::trace!(writes = count, "memory storage applied a batch");
        Ok(())
    }
}
