//! [`PostgresStorage`]: the [`Storage`] implementation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row as DbRow;

use quorum_core::{
    Batch, Blob, BlobId, BlobState, BlockHeight, ChainId, ChainState, Committee,
    ConfirmedBlockCertificate, CryptoHash, Epoch, EventId, OutboxEntry, ReceivedEntry, Storage,
    StorageError, StorageErrorKind,
};

use crate::detached::Detached;
use crate::error::PostgresError;
use crate::pool::Pool;
use crate::postgres_config::PostgresConfig;
use crate::schema::{is_identifier, migrate};
use crate::write::{apply, encode, fence, stored};

/// The fence a store checks in every write batch: the holder and index of its lease (see
/// `shard.rs`), `None` for a store that is not a shard.
pub(crate) type Fence = Option<([u8; 16], u32)>;

/// A [`Storage`] on a PostgreSQL-wire database (see the [crate documentation](crate)). Cheap
/// to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresStorage {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    detached: Arc<Detached>,
    batches: AtomicU64,
    /// The shard lease every batch checks, once one is claimed.
    fence: std::sync::Mutex<Fence>,
}

impl Inner {
    /// Sets the lease every later batch checks (`None`: none).
    pub(crate) fn set_fence(&self, fence: Fence) {
        *self
            .fence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fence;
    }

    fn fence(&self) -> Fence {
        *self
            .fence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("config", self.inner.pool.config())
            .finish_non_exhaustive()
    }
}

impl PostgresStorage {
    /// Connects to the database of `config`, creates or upgrades its tables, and returns the
    /// store. Fails, with nothing left half-done, on a bad configuration, an unreachable
    /// server, refused credentials, a missing database or a schema of a newer version.
    pub async fn connect(config: PostgresConfig) -> Result<PostgresStorage, PostgresError> {
        if config.url.trim().is_empty() {
            return Err(PostgresError::Config("the database URL is empty".into()));
        }
        if config.pool_size == 0 {
            return Err(PostgresError::Config("pool_size must be at least 1".into()));
        }
        if !is_identifier(&config.schema) {
            return Err(PostgresError::Config(format!(
                "schema {:?} is not a plain lower-case identifier",
                config.schema
            )));
        }
        let pool = Pool::new(config);
        let mut backoff = pool.config().retry_backoff;
        for attempt in 0..=pool.config().max_retries {
            let mut connection = pool.get().await?;
            let schema = pool.config().schema.clone();
            match migrate(connection.client_mut(), &schema).await {
                Ok(()) => break,
                Err(PostgresError::Query(error))
                    if attempt < pool.config().max_retries
                        && matches!(
                            error.code(),
                            Some(code) if *code == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                                || *code == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                        ) =>
                {
                    // Another process migrating at the same moment: look again.
                    connection.discard();
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(PostgresStorage {
            inner: Arc::new(Inner {
                pool,
                detached: Arc::new(Detached::default()),
                batches: AtomicU64::new(0),
                fence: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The shared state, for the shard leases.
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// One query's rows, after every detached batch landed, within the statement timeout.
    async fn query(
        &self,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<DbRow>, StorageError> {
        let read = |error: PostgresError| error.storage(StorageErrorKind::Read);
        self.inner.detached.settled().await;
        let connection = self.inner.pool.get().await.map_err(read)?;
        let timeout = self.inner.pool.config().statement_timeout;
        crate::round_trips::count_read();
        match tokio::time::timeout(timeout, connection.client().query(statement, params)).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(error)) => Err(read(error.into())),
            Err(_) => {
                connection.discard();
                Err(read(PostgresError::Timeout(timeout)))
            }
        }
    }

    /// The one value column of the row keyed `key` in `statement`, decoded.
    async fn read_one<T: DeserializeOwned>(
        &self,
        statement: &str,
        key: &(dyn ToSql + Sync),
    ) -> Result<Option<T>, StorageError> {
        let rows = self.query(statement, &[key]).await?;
        rows.first().map(|row| decode(row, 0)).transpose()
    }
}

/// Column `column` of `row`, BCS-decoded.
fn decode<T: DeserializeOwned>(row: &DbRow, column: usize) -> Result<T, StorageError> {
    let bytes: &[u8] = row
        .try_get(column)
        .map_err(|error| PostgresError::from(error).storage(StorageErrorKind::Corrupted))?;
    bcs::from_bytes(bytes)
        .map_err(|error| PostgresError::from(error).storage(StorageErrorKind::Corrupted))
}

/// Column `column` of `row`: 32 bytes of a hash or chain id.
fn hash_column(row: &DbRow, column: usize) -> Result<CryptoHash, StorageError> {
    let corrupted = |error: PostgresError| error.storage(StorageErrorKind::Corrupted);
    let bytes: &[u8] = row
        .try_get(column)
        .map_err(|error| corrupted(PostgresError::from(error)))?;
    let hash: [u8; 32] = bytes
        .try_into()
        .map_err(|_| corrupted(PostgresError::OutOfRange(bytes.len() as u64)))?;
    Ok(CryptoHash(hash))
}

/// Column `column` of `row` as a stored number.
fn number(row: &DbRow, column: usize) -> Result<u64, StorageError> {
    let value: i64 = row
        .try_get(column)
        .map_err(|error| PostgresError::from(error).storage(StorageErrorKind::Corrupted))?;
    u64::try_from(value).map_err(|_| {
        PostgresError::OutOfRange(value.unsigned_abs()).storage(StorageErrorKind::Corrupted)
    })
}

/// `heights` as stored numbers.
fn stored_heights(heights: &[BlockHeight]) -> Result<Vec<i64>, StorageError> {
    heights
        .iter()
        .map(|height| stored(height.0).map_err(|error| error.storage(StorageErrorKind::Read)))
        .collect()
}

/// `value`'s BCS bytes, for a key.
fn key_bytes<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    bcs::to_bytes(value).map_err(|error| PostgresError::from(error).storage(StorageErrorKind::Read))
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn read_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<Option<ConfirmedBlockCertificate>, StorageError> {
        let key: &[u8] = &hash.0;
        self.read_one(
            "SELECT value FROM quorum_certificates WHERE hash = $1",
            &key,
        )
        .await
    }

    async fn read_certificate_hashes(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<CryptoHash>>, StorageError> {
        let chain: &[u8] = &chain_id.0 .0;
        let wanted = stored_heights(heights)?;
        let rows = self
            .query(
                "SELECT height, hash FROM quorum_certificate_heights
                 WHERE chain = $1 AND height = ANY($2)",
                &[&chain, &wanted],
            )
            .await?;
        let mut found = BTreeMap::new();
        for row in &rows {
            let bytes: &[u8] = row
                .try_get(1)
                .map_err(|error| PostgresError::from(error).storage(StorageErrorKind::Corrupted))?;
            let hash = <[u8; 32]>::try_from(bytes).map_err(|_| {
                PostgresError::OutOfRange(bytes.len() as u64).storage(StorageErrorKind::Corrupted)
            })?;
            found.insert(number(row, 0)?, CryptoHash(hash));
        }
        Ok(heights
            .iter()
            .map(|height| found.get(&height.0).copied())
            .collect())
    }

    async fn read_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<ConfirmedBlockCertificate>>, StorageError> {
        let chain: &[u8] = &chain_id.0 .0;
        let wanted = stored_heights(heights)?;
        let rows = self
            .query(
                "SELECT h.height, c.value FROM quorum_certificate_heights h
                 JOIN quorum_certificates c ON c.hash = h.hash
                 WHERE h.chain = $1 AND h.height = ANY($2)",
                &[&chain, &wanted],
            )
            .await?;
        let mut found = BTreeMap::new();
        for row in &rows {
            found.insert(
                number(row, 0)?,
                decode::<ConfirmedBlockCertificate>(row, 1)?,
            );
        }
        Ok(heights
            .iter()
            .map(|height| found.get(&height.0).cloned())
            .collect())
    }

    async fn read_blob(&self, id: BlobId) -> Result<Option<Blob>, StorageError> {
        let key = key_bytes(&id)?;
        self.read_one("SELECT content FROM quorum_blobs WHERE id = $1", &key)
            .await
    }

    async fn missing_blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobId>, StorageError> {
        let keys = ids.iter().map(key_bytes).collect::<Result<Vec<_>, _>>()?;
        let rows = self
            .query("SELECT id FROM quorum_blobs WHERE id = ANY($1)", &[&keys])
            .await?;
        let present: BTreeSet<Vec<u8>> = rows
            .iter()
            .map(|row| row.try_get::<_, Vec<u8>>(0))
            .collect::<Result<_, _>>()
            .map_err(|error| PostgresError::from(error).storage(StorageErrorKind::Corrupted))?;
        Ok(ids
            .iter()
            .zip(&keys)
            .filter(|(_, key)| !present.contains(*key))
            .map(|(id, _)| *id)
            .collect())
    }

    async fn read_blob_state(&self, id: BlobId) -> Result<Option<BlobState>, StorageError> {
        let key = key_bytes(&id)?;
        self.read_one("SELECT state FROM quorum_blob_states WHERE id = $1", &key)
            .await
    }

    async fn read_event(&self, id: &EventId) -> Result<Option<Vec<u8>>, StorageError> {
        let key = key_bytes(id)?;
        let rows = self
            .query("SELECT payload FROM quorum_events WHERE id = $1", &[&key])
            .await?;
        rows.first()
            .map(|row| row.try_get::<_, Vec<u8>>(0))
            .transpose()
            .map_err(|error| PostgresError::from(error).storage(StorageErrorKind::Corrupted))
    }

    async fn read_chain_state(
        &self,
        chain_id: ChainId,
    ) -> Result<Option<ChainState>, StorageError> {
        let key: &[u8] = &chain_id.0 .0;
        self.read_one(
            "SELECT state FROM quorum_chain_states WHERE chain = $1",
            &key,
        )
        .await
    }

    async fn read_committee(&self, epoch: Epoch) -> Result<Option<Committee>, StorageError> {
        let key = i64::from(epoch.0);
        self.read_one(
            "SELECT committee FROM quorum_committees WHERE epoch = $1",
            &key,
        )
        .await
    }

    async fn read_received_log(
        &self,
        chain_id: ChainId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ReceivedEntry>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let chain: &[u8] = &chain_id.0 .0;
        let start = stored(from).map_err(|error| error.storage(StorageErrorKind::Read))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT idx, entry FROM quorum_received_logs
                 WHERE chain = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
                &[&chain, &start, &limit],
            )
            .await?;
        let mut entries = Vec::new();
        for (offset, row) in rows.iter().enumerate() {
            // Stop before the first index not stored.
            if number(row, 0)? != from + offset as u64 {
                break;
            }
            entries.push(decode(row, 1)?);
        }
        Ok(entries)
    }

    async fn read_outbox(&self, lane: u32, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lane_key = i64::from(lane);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT recipient, certificate FROM quorum_outbox
                 WHERE lane = $1 ORDER BY recipient, certificate LIMIT $2",
                &[&lane_key, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxEntry {
                    lane,
                    recipient: ChainId(hash_column(row, 0)?),
                    certificate: hash_column(row, 1)?,
                })
            })
            .collect()
    }

    async fn write_batch(&self, batch: Batch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut rows = encode(&batch).map_err(|error| error.storage(StorageErrorKind::Write))?;
        if let Some((holder, index)) = self.inner.fence() {
            rows.push(fence(&holder, index));
        }
        let sequence = self.inner.batches.fetch_add(1, Ordering::Relaxed);
        let (guard, done) = self.inner.detached.track();
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(async move {
            let _done = done;
            apply(&inner.pool, &rows, sequence).await
        });
        let joined = task.await;
        drop(guard);
        match joined {
            Ok(result) => result.map_err(|error| error.storage(StorageErrorKind::Write)),
            Err(error) => Err(StorageError::new(StorageErrorKind::Write, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use quorum_core::Write;
    use quorum_testkit::postgres::TestDatabase;
    use quorum_testkit::{TestChain, TestCommittee};

    use quorum_core::Batch;

    use super::*;
    use crate::pool::Pool;
    use crate::write::apply_as;

    /// A batch whose commit landed but whose writer could not tell (and so tries it again
    /// after a later batch) is not applied a second time: the later batch's state stays.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_tried_again_after_it_landed_is_not_applied_twice() {
        let Some(database) = TestDatabase::create("twice").await else {
            return;
        };
        // The test kit's configuration type is another build of this crate's: only the URL
        // crosses over.
        let config = crate::PostgresConfig::new(database.url());
        PostgresStorage::connect(config.clone()).await.unwrap();
        let pool = Pool::new(config.clone());
        let committee = TestCommittee::new(4, 3);
        let mut chain = TestChain::new(0, 3);
        let state_at = |chain: &TestChain| Write::ChainState(Arc::new(chain.state.clone()));
        chain.commit_blocks(&committee, 1);
        let first = encode(&Batch {
            writes: vec![state_at(&chain)],
        })
        .unwrap();
        chain.commit_blocks(&committee, 1);
        let second = encode(&Batch {
            writes: vec![state_at(&chain)],
        })
        .unwrap();
        let id = [7u8; 16];
        apply_as(&pool, id, &first, 0).await.unwrap();
        apply(&pool, &second, 1).await.unwrap();
        // The first batch again, as a writer unsure of its commit would send it.
        apply_as(&pool, id, &first, 2).await.unwrap();
        let storage = PostgresStorage::connect(config).await.unwrap();
        let stored = storage.read_chain_state(chain.id()).await.unwrap().unwrap();
        assert_eq!(stored, chain.state, "the later batch's state stays");
        drop(pool);
        database.drop_database().await;
    }
}
