//! [`RedbStorage`]: the [`Storage`] trait on a redb database file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use quorum_core::{
    Batch, Blob, BlobId, BlobState, BlockHeight, ChainId, ChainState, Committee,
    ConfirmedBlockCertificate, CryptoHash, Epoch, EventId, OutboxEntry, ReceivedEntry, Storage,
    StorageError, Write,
};
use redb::{
    Database, Key, ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, Value,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Access, Error};
use crate::redb_options::{Durability, RedbOptions};
use crate::tables::{
    blob_key, event_key, hash_key, height_key, names, outbox_key, BlobKey, Bytes, EventKey,
    HashKey, HeightKey, OutboxKey, BLOBS, BLOB_STATES, CERTIFICATES, CERTIFICATE_HASHES,
    CHAIN_STATES, COMMITTEES, EVENTS, META, OUTBOX, RECEIVED_LOGS, SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
};

/// A [`Storage`] on a redb database file.
///
/// * Each [`Storage::write_batch`] is one redb write transaction: all of the batch or none of
///   it is ever visible, to readers and after a crash. Writes apply in order, a later write of
///   a key replacing an earlier one. Commits are durable by default
///   ([`Durability::Immediate`]): once `write_batch` returns, a crash loses nothing of it.
/// * Each read runs in one read transaction, so a multi-key read such as
///   [`Storage::read_certificates_by_heights`] sees a single consistent snapshot.
/// * redb is blocking: every operation runs on tokio's blocking thread pool
///   ([`tokio::task::spawn_blocking`]), so the trait's methods must be called within a tokio
///   runtime. A `write_batch` whose future is dropped once started still completes (all or
///   nothing) in the background.
/// * Stored values are checked when read: a value that does not decode, or does not belong
///   under its key, is a [`StorageErrorKind::Corrupted`](quorum_core::StorageErrorKind)
///   error, never a panic.
///
/// Cloning is cheap and shares the open database. The file is locked while open: opening it a
/// second time (in this process or another) fails until every clone is dropped.
#[derive(Clone)]
pub struct RedbStorage {
    inner: Arc<Inner>,
}

/// What the clones of a [`RedbStorage`] share.
struct Inner {
    database: Database,
    path: PathBuf,
    durability: Durability,
    /// Commits whose caller stopped waiting before they were done: reads wait for them, so a
    /// caller cancelled mid-commit (a request that timed out) can never let another caller
    /// read the state from before and write over it. Commits whose callers wait block nobody:
    /// reads meanwhile see the last committed state (redb's snapshots).
    detached: Arc<Detached>,
}

impl fmt::Debug for RedbStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStorage")
            .field("path", &self.inner.path)
            .field("durability", &self.inner.durability)
            .finish_non_exhaustive()
    }
}

impl RedbStorage {
    /// Opens the database at `path` with [`RedbOptions::default`]: creates it if the file does
    /// not exist (or is empty), opens it if it holds a database of this layout, and fails
    /// otherwise. See [`RedbStorage::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, RedbOptions::default())
    }

    /// Opens the database at `path`.
    ///
    /// With `options.create` (the default) a missing or empty file becomes a new, empty
    /// database; without it, a missing file is an [`Error::Open`]. An existing file must be a
    /// redb database of this crate's layout ([`Error::SchemaVersion`] otherwise). The parent
    /// directory must exist. The file stays locked until every clone of the storage is
    /// dropped.
    ///
    /// This call blocks: after a crash, redb repairs the file on opening, which reads all of
    /// it. Call it at start-up or from [`tokio::task::spawn_blocking`].
    pub fn open_with(path: impl AsRef<Path>, options: RedbOptions) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let mut builder = Database::builder();
        if let Some(bytes) = options.cache_size {
            builder.set_cache_size(bytes);
        }
        let opened = if options.create {
            builder.create(&path)
        } else {
            builder.open(&path)
        };
        let database = opened.map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        prepare(&database, &path)?;
        tracing::debug!(path = %path.display(), durability = ?options.durability, "redb store open");
        Ok(RedbStorage {
            inner: Arc::new(Inner {
                database,
                path,
                durability: options.durability,
                detached: Arc::new(Detached::default()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The durability of write batches.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Runs `read` in a read transaction on the blocking pool.
    async fn read<T, F>(&self, read: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        // No commit whose caller gave up is in flight past this point (see `Inner::detached`).
        self.inner.detached.settled().await;
        let task = tokio::task::spawn_blocking(move || {
            let transaction = inner
                .database
                .begin_read()
                .map_err(|source| Error::Transaction {
                    access: Access::Read,
                    source: Box::new(source),
                })?;
            read(&transaction)
        });
        let result = task.await.map_err(|source| Error::Task {
            access: Access::Read,
            source,
        })?;
        Ok(result?)
    }
}

/// Creates the tables of a new database and checks the schema version of an existing one.
fn prepare(database: &Database, path: &Path) -> Result<(), Error> {
    let transaction = database
        .begin_write()
        .map_err(|source| Error::Transaction {
            access: Access::Write,
            source: Box::new(source),
        })?;
    {
        let mut tables = WriteTables::new(&transaction);
        tables.create_all()?;
        let meta = tables.meta()?;
        let found = meta
            .get(SCHEMA_VERSION_KEY)
            .map_err(storage_error(names::META, Access::Read))?
            .map(|guard| guard.value());
        match found {
            Some(found) if found != SCHEMA_VERSION => {
                return Err(Error::SchemaVersion {
                    path: path.to_path_buf(),
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
            Some(_) => {}
            None => {
                meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                    .map_err(storage_error(names::META, Access::Write))?;
            }
        }
    }
    transaction.commit().map_err(Error::Commit)
}

/// Maps a storage-layer error of `table`.
fn storage_error(table: &'static str, access: Access) -> impl FnOnce(redb::StorageError) -> Error {
    move |source| Error::Storage {
        table,
        access,
        source,
    }
}

/// BCS-encodes a value for `table`.
fn encode<T: Serialize + ?Sized>(table: &'static str, value: &T) -> Result<Vec<u8>, Error> {
    bcs::to_bytes(value).map_err(|source| Error::Encode { table, source })
}

/// Decodes a value of `table`.
fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, Error> {
    bcs::from_bytes(bytes).map_err(|source| Error::Decode { table, source })
}

/// Opens a table for reading.
fn open_read<K: Key + 'static, V: Value + 'static>(
    transaction: &ReadTransaction,
    definition: TableDefinition<'static, K, V>,
    name: &'static str,
) -> Result<ReadOnlyTable<K, V>, Error> {
    transaction
        .open_table(definition)
        .map_err(|source| Error::Table {
            table: name,
            access: Access::Read,
            source,
        })
}

type HashTable = ReadOnlyTable<HashKey, Bytes>;
type HeightTable = ReadOnlyTable<HeightKey, HashKey>;

/// The certificate whose value hashes to `hash`, checked.
fn certificate_by_hash(
    table: &HashTable,
    hash: CryptoHash,
) -> Result<Option<ConfirmedBlockCertificate>, Error> {
    let Some(guard) = table
        .get(hash_key(&hash))
        .map_err(storage_error(names::CERTIFICATES, Access::Read))?
    else {
        return Ok(None);
    };
    let certificate: ConfirmedBlockCertificate = decode(names::CERTIFICATES, guard.value())?;
    if certificate.hash() != hash {
        return Err(Error::Inconsistent {
            table: names::CERTIFICATES,
            reason: format!(
                "the certificate stored under {hash} certifies {}",
                certificate.hash()
            ),
        });
    }
    Ok(Some(certificate))
}

/// The hash of `chain_id`'s certificate at `height`.
fn hash_at(
    table: &HeightTable,
    chain_id: ChainId,
    height: BlockHeight,
) -> Result<Option<CryptoHash>, Error> {
    let guard = table
        .get(height_key(&chain_id, height))
        .map_err(storage_error(names::CERTIFICATE_HASHES, Access::Read))?;
    Ok(guard.map(|guard| CryptoHash(*guard.value())))
}

/// The value of a BCS-encoded entry.
fn bcs_value<K: Key + 'static, T: DeserializeOwned>(
    table: &ReadOnlyTable<K, Bytes>,
    name: &'static str,
    key: K::SelfType<'_>,
) -> Result<Option<T>, Error> {
    match table.get(key).map_err(storage_error(name, Access::Read))? {
        Some(guard) => decode(name, guard.value()).map(Some),
        None => Ok(None),
    }
}

#[async_trait::async_trait]
impl Storage for RedbStorage {
    async fn read_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<Option<ConfirmedBlockCertificate>, StorageError> {
        self.read(move |transaction| {
            let table = open_read(transaction, CERTIFICATES, names::CERTIFICATES)?;
            certificate_by_hash(&table, hash)
        })
        .await
    }

    async fn read_certificate_hashes(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<CryptoHash>>, StorageError> {
        let heights = heights.to_vec();
        self.read(move |transaction| {
            let table = open_read(transaction, CERTIFICATE_HASHES, names::CERTIFICATE_HASHES)?;
            heights
                .into_iter()
                .map(|height| hash_at(&table, chain_id, height))
                .collect()
        })
        .await
    }

    async fn read_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<ConfirmedBlockCertificate>>, StorageError> {
        let heights = heights.to_vec();
        self.read(move |transaction| {
            let hashes = open_read(transaction, CERTIFICATE_HASHES, names::CERTIFICATE_HASHES)?;
            let certificates = open_read(transaction, CERTIFICATES, names::CERTIFICATES)?;
            heights
                .into_iter()
                .map(|height| {
                    let Some(hash) = hash_at(&hashes, chain_id, height)? else {
                        return Ok(None);
                    };
                    let certificate = certificate_by_hash(&certificates, hash)?;
                    match certificate {
                        Some(certificate)
                            if certificate.value().block().chain_id == chain_id
                                && certificate.value().block().height == height =>
                        {
                            Ok(Some(certificate))
                        }
                        Some(_) => Err(Error::Inconsistent {
                            table: names::CERTIFICATE_HASHES,
                            reason: format!(
                                "{chain_id} at {height} points at a certificate of another block"
                            ),
                        }),
                        None => Err(Error::Inconsistent {
                            table: names::CERTIFICATE_HASHES,
                            reason: format!(
                                "{chain_id} at {height} points at {hash}, which is not stored"
                            ),
                        }),
                    }
                })
                .collect()
        })
        .await
    }

    async fn read_blob(&self, id: BlobId) -> Result<Option<Blob>, StorageError> {
        self.read(move |transaction| {
            let table = open_read(transaction, BLOBS, names::BLOBS)?;
            let Some(guard) = table
                .get(blob_key(&id))
                .map_err(storage_error(names::BLOBS, Access::Read))?
            else {
                return Ok(None);
            };
            let blob = Blob::new(id.blob_type, guard.value().to_vec());
            if blob.id() != id {
                return Err(Error::Inconsistent {
                    table: names::BLOBS,
                    reason: format!("the content stored for {id:?} hashes to {:?}", blob.id()),
                });
            }
            Ok(Some(blob))
        })
        .await
    }

    async fn missing_blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobId>, StorageError> {
        let ids = ids.to_vec();
        self.read(move |transaction| {
            let table = open_read(transaction, BLOBS, names::BLOBS)?;
            let mut missing = Vec::new();
            for id in ids {
                let present = table
                    .get(blob_key(&id))
                    .map_err(storage_error(names::BLOBS, Access::Read))?
                    .is_some();
                if !present {
                    missing.push(id);
                }
            }
            Ok(missing)
        })
        .await
    }

    async fn read_blob_state(&self, id: BlobId) -> Result<Option<BlobState>, StorageError> {
        self.read(move |transaction| {
            let table = open_read(transaction, BLOB_STATES, names::BLOB_STATES)?;
            bcs_value(&table, names::BLOB_STATES, blob_key(&id))
        })
        .await
    }

    async fn read_event(&self, id: &EventId) -> Result<Option<Vec<u8>>, StorageError> {
        let id = id.clone();
        self.read(move |transaction| {
            let table = open_read(transaction, EVENTS, names::EVENTS)?;
            let guard = table
                .get(event_key(&id))
                .map_err(storage_error(names::EVENTS, Access::Read))?;
            Ok(guard.map(|guard| guard.value().to_vec()))
        })
        .await
    }

    async fn read_chain_state(
        &self,
        chain_id: ChainId,
    ) -> Result<Option<ChainState>, StorageError> {
        self.read(move |transaction| {
            let table = open_read(transaction, CHAIN_STATES, names::CHAIN_STATES)?;
            let state: Option<ChainState> =
                bcs_value(&table, names::CHAIN_STATES, hash_key(&chain_id.0))?;
            match state {
                Some(state) if state.chain_id() != chain_id => Err(Error::Inconsistent {
                    table: names::CHAIN_STATES,
                    reason: format!("the state stored for {chain_id} is {}'s", state.chain_id()),
                }),
                state => Ok(state),
            }
        })
        .await
    }

    async fn read_committee(&self, epoch: Epoch) -> Result<Option<Committee>, StorageError> {
        self.read(move |transaction| {
            let table = open_read(transaction, COMMITTEES, names::COMMITTEES)?;
            bcs_value(&table, names::COMMITTEES, epoch.0)
        })
        .await
    }

    async fn read_received_log(
        &self,
        chain_id: ChainId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ReceivedEntry>, StorageError> {
        self.read(move |transaction| {
            let table = open_read(transaction, RECEIVED_LOGS, names::RECEIVED_LOGS)?;
            let start = (hash_key(&chain_id.0), from);
            let range = table
                .range(start..)
                .map_err(storage_error(names::RECEIVED_LOGS, Access::Read))?;
            let mut entries = Vec::new();
            for (item, expected) in range.zip(from..) {
                if entries.len() >= limit {
                    break;
                }
                let (key, value) =
                    item.map_err(storage_error(names::RECEIVED_LOGS, Access::Read))?;
                let (chain, index) = key.value();
                if chain != chain_id.0.as_bytes() || index != expected {
                    break;
                }
                let (origin, height) = value.value();
                entries.push(ReceivedEntry {
                    origin: ChainId(CryptoHash(*origin)),
                    height: BlockHeight(height),
                });
            }
            Ok(entries)
        })
        .await
    }

    async fn read_outbox(&self, lane: u32, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        self.read(move |transaction| {
            let table = open_read(transaction, OUTBOX, names::OUTBOX)?;
            let zero = [0u8; 32];
            let range = table
                .range((lane, &zero, &zero)..)
                .map_err(storage_error(names::OUTBOX, Access::Read))?;
            let mut entries = Vec::new();
            for item in range {
                if entries.len() >= limit {
                    break;
                }
                let (key, _) = item.map_err(storage_error(names::OUTBOX, Access::Read))?;
                let (entry_lane, recipient, certificate) = key.value();
                if entry_lane != lane {
                    break;
                }
                entries.push(OutboxEntry {
                    lane,
                    recipient: ChainId(CryptoHash(*recipient)),
                    certificate: CryptoHash(*certificate),
                });
            }
            Ok(entries)
        })
        .await
    }

    async fn write_batch(&self, batch: Batch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let inner = self.inner.clone();
        let state = Arc::new(AtomicU8::new(RUNNING));
        // Dropped with this future: if the commit is not done by then, reads wait for it.
        let guard = CommitGuard {
            state: state.clone(),
            detached: self.inner.detached.clone(),
        };
        let task = tokio::task::spawn_blocking(move || {
            // Even a commit that panics (its transaction dropped: nothing of it lands) is done:
            // nobody may wait for it forever.
            let committed =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.commit(batch)));
            if state.swap(DONE, Ordering::AcqRel) == DETACHED {
                inner.detached.count.fetch_sub(1, Ordering::AcqRel);
                inner.detached.landed.notify_waiters();
            }
            match committed {
                Ok(committed) => committed,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        let joined = task.await;
        drop(guard);
        let result = joined.map_err(|source| Error::Task {
            access: Access::Write,
            source,
        })?;
        Ok(result?)
    }
}

mod detached;
mod write;
use detached::{CommitGuard, Detached, DETACHED, DONE, RUNNING};
use write::WriteTables;

#[cfg(test)]
mod tests;
