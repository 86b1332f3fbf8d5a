//! Shard leases (DESIGN §7.1): the database records how many shards a sharded validator has
//! and which process holds each shard index, so that one validator key never signs in two
//! processes for the same chains.
//!
//! A shard claims its index at start ([`PostgresStorage::claim_shard`]): refused if the
//! database was set up for another number of shards (resharding is not supported) or if a
//! live process holds the index. The lease runs for [`ShardClaim::lease`] and is renewed every
//! third of it; while it is held, every write batch of the store checks it in its own
//! serializable transaction, so a process whose lease was taken over can never commit (and so
//! never answers, or lets a vote out) again. Lease times are the database's clock, never the
//! shards' own.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::PostgresError;
use crate::pool::Pool;
use crate::storage::PostgresStorage;

/// The database's clock, in milliseconds since the Unix epoch.
const DB_NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)";

/// What a shard asks for at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardClaim {
    /// Its index, in `0..count`.
    pub index: u32,
    /// How many shards the validator has (recorded by the first shard to start).
    pub count: u32,
    /// How long the lease lasts without renewal: how long a restarted shard may have to wait
    /// after its predecessor was killed, and how long a hung holder keeps the index.
    pub lease: Duration,
}

/// The lease of a shard index, renewed in the background until dropped or released.
#[derive(Debug)]
pub struct ShardLease {
    index: u32,
    holder: [u8; 16],
    lost: watch::Receiver<bool>,
    renewal: JoinHandle<()>,
    storage: PostgresStorage,
}

impl ShardLease {
    /// The shard index held.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Resolves once the lease is lost (not renewed in time, or taken over): the process must
    /// stop serving, as its writes are refused from then on.
    pub async fn lost(&mut self) {
        // An error means the renewal task ended, which it does only once the lease is lost.
        let _ = self.lost.wait_for(|lost| *lost).await;
    }

    /// Gives the index up at once (a clean shutdown), so that a successor need not wait for
    /// the lease to expire. Only this holder's lease is touched; the store writes nothing
    /// more (its fence stays, and no longer holds).
    pub async fn release(self) -> Result<(), PostgresError> {
        self.renewal.abort();
        let pool = &self.storage.inner().pool;
        let connection = pool.get().await?;
        let holder: &[u8] = &self.holder;
        let index = i64::from(self.index);
        connection
            .client()
            .execute(
                "UPDATE quorum_shards SET expires_ms = 0 WHERE shard_index = $1 AND holder = $2",
                &[&index, &holder],
            )
            .await?;
        Ok(())
    }
}

impl Drop for ShardLease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

impl PostgresStorage {
    /// Claims the shard index of `claim` for this process: refused if the database records
    /// another number of shards (resharding is not supported) or a live process holds the
    /// index. The lease is renewed every third of its length, on the database's clock. From
    /// then on every write batch of this store (and its clones) reads the lease in its own
    /// serializable transaction and is refused unless it is still held, so a process whose
    /// lease was taken over never commits again.
    pub async fn claim_shard(&self, claim: ShardClaim) -> Result<ShardLease, PostgresError> {
        if claim.count == 0 || claim.index >= claim.count {
            return Err(PostgresError::ShardIndex {
                index: claim.index,
                count: claim.count,
            });
        }
        if claim.lease < Duration::from_millis(30) {
            return Err(PostgresError::Config(
                "a shard lease must last at least 30 ms".into(),
            ));
        }
        let holder: [u8; 16] = rand::random();
        let pool = &self.inner().pool;
        let mut backoff = pool.config().retry_backoff;
        let mut attempt = 0;
        loop {
            match try_claim(pool, &claim, &holder).await {
                Err(PostgresError::Query(error))
                    if attempt < pool.config().max_retries
                        && error.code()
                            == Some(
                                &tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE,
                            ) =>
                {
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                other => break other?,
            }
        }
        self.inner().set_fence(Some((holder, claim.index)));
        let (report, lost) = watch::channel(false);
        let storage = self.clone();
        let renewal = tokio::spawn(renew(storage.clone(), claim, holder, report));
        tracing::info!(
            index = claim.index,
            count = claim.count,
            "shard lease claimed"
        );
        Ok(ShardLease {
            index: claim.index,
            holder,
            lost,
            renewal,
            storage,
        })
    }
}

/// One attempt at claiming, in a serializable transaction.
async fn try_claim(
    pool: &Pool,
    claim: &ShardClaim,
    holder: &[u8; 16],
) -> Result<(), PostgresError> {
    let mut connection = pool.get().await?;
    let outcome = claim_in(connection.client_mut(), claim, holder).await;
    if outcome.is_err() {
        connection.discard();
    }
    outcome
}

async fn claim_in(
    client: &mut tokio_postgres::Client,
    claim: &ShardClaim,
    holder: &[u8; 16],
) -> Result<(), PostgresError> {
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::Serializable)
        .start()
        .await?;
    let recorded = transaction
        .query_opt(
            "SELECT value FROM quorum_meta WHERE key = 'shard_count'",
            &[],
        )
        .await?;
    let asked = i64::from(claim.count);
    match recorded.map(|row| row.get::<_, i64>(0)) {
        None => {
            transaction
                .execute(
                    "INSERT INTO quorum_meta (key, value) VALUES ('shard_count', $1)",
                    &[&asked],
                )
                .await?;
        }
        Some(recorded) if recorded != asked => {
            return Err(PostgresError::ShardCount {
                recorded: u32::try_from(recorded).unwrap_or(u32::MAX),
                asked: claim.count,
            });
        }
        Some(_) => {}
    }
    let index = i64::from(claim.index);
    let holder: &[u8] = holder;
    let lease = lease_ms(claim.lease);
    let taken = transaction
        .execute(
            &format!(
                "INSERT INTO quorum_shards (shard_index, holder, expires_ms)
                 VALUES ($1, $2, {DB_NOW_MS} + $3)
                 ON CONFLICT (shard_index) DO UPDATE
                 SET holder = EXCLUDED.holder, expires_ms = EXCLUDED.expires_ms
                 WHERE quorum_shards.expires_ms <= {DB_NOW_MS}"
            ),
            &[&index, &holder, &lease],
        )
        .await?;
    if taken != 1 {
        return Err(PostgresError::ShardHeld {
            index: claim.index,
            lease: claim.lease,
        });
    }
    transaction.commit().await?;
    Ok(())
}

/// `lease` in whole milliseconds.
fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Renews the lease every third of its length until it is lost: taken over, or not renewed
/// within the lease (the database unreachable meanwhile). Then says so and ends.
async fn renew(
    storage: PostgresStorage,
    claim: ShardClaim,
    holder: [u8; 16],
    report: watch::Sender<bool>,
) {
    let period = claim.lease / 3;
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(period).await;
        let outcome = tokio::time::timeout(period, renew_once(&storage, &claim, &holder)).await;
        match outcome {
            Ok(Ok(true)) => renewed = tokio::time::Instant::now(),
            Ok(Ok(false)) => {
                tracing::error!(index = claim.index, "shard lease taken over");
                break;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, index = claim.index, "shard lease renewal failed")
            }
            Err(_) => tracing::warn!(index = claim.index, "shard lease renewal timed out"),
        }
        // Two thirds of the lease gone without renewal: treat it as lost before it is.
        if renewed.elapsed() >= period * 2 {
            tracing::error!(
                index = claim.index,
                "shard lease could not be renewed in time"
            );
            break;
        }
    }
    // The fence stays: the database refuses this holder's batches from now on.
    let _ = report.send(true);
}

/// One renewal: whether this holder still held the lease (and now holds it longer).
async fn renew_once(
    storage: &PostgresStorage,
    claim: &ShardClaim,
    holder: &[u8; 16],
) -> Result<bool, PostgresError> {
    let pool: &Pool = &storage.inner().pool;
    let connection = pool.get().await?;
    let index = i64::from(claim.index);
    let holder: &[u8] = holder;
    let lease = lease_ms(claim.lease);
    let renewed = connection
        .client()
        .execute(
            &format!(
                "UPDATE quorum_shards SET expires_ms = {DB_NOW_MS} + $3
                 WHERE shard_index = $1 AND holder = $2 AND expires_ms > {DB_NOW_MS}"
            ),
            &[&index, &holder, &lease],
        )
        .await?;
    Ok(renewed == 1)
}
