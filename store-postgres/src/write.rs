//! A write batch: encoded into rows, then applied in one serializable transaction, tried again
//! on conflicts and lost connections, never applied twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use quorum_core::{Batch, Write};

use crate::error::PostgresError;
use crate::pool::Pool;
use crate::round_trips;

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Batch ids are kept this long, for a writer that lost its connection during a commit to
/// learn whether its batch landed (seconds).
const BATCH_ID_KEPT_SECS: i64 = 3_600;
/// One batch in this many also deletes the batch ids older than [`BATCH_ID_KEPT_SECS`].
const PRUNE_EVERY: u64 = 4_096;

/// One statement of a batch, with its parameters.
pub(crate) struct Row {
    statement: &'static str,
    bytes: Vec<Vec<u8>>,
    number: Option<i64>,
    /// A check rather than a write: the batch is refused unless the statement counts exactly
    /// one row.
    check: bool,
}

const CERTIFICATE: &str = "INSERT INTO quorum_certificates (hash, value) VALUES ($1, $2)
     ON CONFLICT (hash) DO UPDATE SET value = EXCLUDED.value";
const CERTIFICATE_HEIGHT: &str =
    "INSERT INTO quorum_certificate_heights (chain, hash, height) VALUES ($1, $2, $3)
     ON CONFLICT (chain, height) DO UPDATE SET hash = EXCLUDED.hash";
const BLOB: &str = "INSERT INTO quorum_blobs (id, content) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content";
const BLOB_STATE: &str = "INSERT INTO quorum_blob_states (id, state) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state";
const EVENT: &str = "INSERT INTO quorum_events (id, payload) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload";
const CHAIN_STATE: &str = "INSERT INTO quorum_chain_states (chain, state) VALUES ($1, $2)
     ON CONFLICT (chain) DO UPDATE SET state = EXCLUDED.state";
const COMMITTEE: &str = "INSERT INTO quorum_committees (committee, epoch) VALUES ($1, $2)
     ON CONFLICT (epoch) DO UPDATE SET committee = EXCLUDED.committee";
const OUTBOX: &str = "INSERT INTO quorum_outbox (recipient, certificate, lane) VALUES ($1, $2, $3)
     ON CONFLICT (lane, recipient, certificate) DO NOTHING";
const OUTBOX_DONE: &str =
    "DELETE FROM quorum_outbox WHERE recipient = $1 AND certificate = $2 AND lane = $3";
const FENCE: &str = "SELECT 1 FROM quorum_shards
     WHERE holder = $1 AND shard_index = $2
     AND expires_ms > CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)";

/// The row that refuses a batch unless `holder` still holds the lease of shard `index`: a
/// shard whose lease another process took over never commits again (DESIGN §7.1). Read in
/// the batch's serializable transaction, so a takeover and the batch cannot both land as if
/// the other had not happened.
pub(crate) fn fence(holder: &[u8; 16], index: u32) -> Row {
    Row {
        statement: FENCE,
        bytes: vec![holder.to_vec()],
        number: Some(i64::from(index)),
        check: true,
    }
}

const RECEIVED_LOG: &str =
    "INSERT INTO quorum_received_logs (chain, entry, idx) VALUES ($1, $2, $3)
     ON CONFLICT (chain, idx) DO UPDATE SET entry = EXCLUDED.entry";

/// `value` as a stored `BIGINT`.
pub(crate) fn stored(value: u64) -> Result<i64, PostgresError> {
    i64::try_from(value).map_err(|_| PostgresError::OutOfRange(value))
}

/// The rows of `batch`, in its order (later writes of a key win).
pub(crate) fn encode(batch: &Batch) -> Result<Vec<Row>, PostgresError> {
    let mut rows = Vec::with_capacity(batch.writes.len() + 1);
    let row = |statement, bytes, number| Row {
        statement,
        bytes,
        number,
        check: false,
    };
    let outbox = |entry: &quorum_core::OutboxEntry| {
        vec![entry.recipient.0 .0.to_vec(), entry.certificate.0.to_vec()]
    };
    for write in &batch.writes {
        match write {
            Write::Certificate(certificate) => {
                let hash = certificate.hash().0.to_vec();
                let block = certificate.value().inner().block();
                rows.push(row(
                    CERTIFICATE,
                    vec![hash.clone(), bcs::to_bytes(&**certificate)?],
                    None,
                ));
                rows.push(row(
                    CERTIFICATE_HEIGHT,
                    vec![block.chain_id.0 .0.to_vec(), hash],
                    Some(stored(block.height.0)?),
                ));
            }
            Write::Blob(blob) => rows.push(row(
                BLOB,
                vec![bcs::to_bytes(&blob.id())?, bcs::to_bytes(blob)?],
                None,
            )),
            Write::BlobState(id, state) => rows.push(row(
                BLOB_STATE,
                vec![bcs::to_bytes(id)?, bcs::to_bytes(state)?],
                None,
            )),
            Write::Event(id, payload) => {
                rows.push(row(EVENT, vec![bcs::to_bytes(id)?, payload.clone()], None))
            }
            Write::ChainState(state) => rows.push(row(
                CHAIN_STATE,
                vec![state.chain_id().0 .0.to_vec(), bcs::to_bytes(&**state)?],
                None,
            )),
            Write::Committee(epoch, committee) => rows.push(row(
                COMMITTEE,
                vec![bcs::to_bytes(committee)?],
                Some(i64::from(epoch.0)),
            )),
            Write::ReceivedLog(chain, index, entry) => rows.push(row(
                RECEIVED_LOG,
                vec![chain.0 .0.to_vec(), bcs::to_bytes(entry)?],
                Some(stored(*index)?),
            )),
            Write::Outbox(entry) => {
                rows.push(row(OUTBOX, outbox(entry), Some(i64::from(entry.lane))))
            }
            Write::OutboxDone(entry) => {
                rows.push(row(OUTBOX_DONE, outbox(entry), Some(i64::from(entry.lane))))
            }
        }
    }
    Ok(rows)
}

/// Why one attempt did not land.
enum Failed {
    /// Nothing of it landed: try again.
    Retry(PostgresError),
    /// The commit may or may not have landed: look, then try again if it did not.
    Unknown(PostgresError),
    /// It cannot land.
    Fatal(PostgresError),
}

/// Applies `rows` as one batch (see the [module documentation](self)); `sequence` numbers the
/// batches of this store, to prune old batch ids now and then.
pub(crate) async fn apply(pool: &Pool, rows: &[Row], sequence: u64) -> Result<(), PostgresError> {
    apply_as(pool, rand::random(), rows, sequence).await
}

/// [`apply`] under the batch id `id`: a batch of an id that already landed is not applied
/// again.
pub(crate) async fn apply_as(
    pool: &Pool,
    id: [u8; 16],
    rows: &[Row],
    sequence: u64,
) -> Result<(), PostgresError> {
    let config = pool.config();
    let mut backoff = config.retry_backoff;
    let attempts = config.max_retries.saturating_add(1);
    for attempt in 1..=attempts {
        let failure = match try_once(pool, &id, rows).await {
            Ok(()) => {
                if sequence % PRUNE_EVERY == PRUNE_EVERY - 1 {
                    prune(pool).await;
                }
                return Ok(());
            }
            Err(Failed::Fatal(error)) => return Err(error),
            Err(Failed::Retry(error)) => error,
            Err(Failed::Unknown(error)) => match landed(pool, &id).await {
                Ok(true) => return Ok(()),
                Ok(false) => error,
                // Still unknown: trying again is safe, the id refuses a second landing.
                Err(_) => error,
            },
        };
        tracing::debug!(attempt, error = %failure, "write batch tried again");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    Err(PostgresError::RetriesExhausted(attempts))
}

/// Whether `error` leaves nothing of the transaction landed and may pass if tried again: a
/// serialization conflict or deadlock, or a connection that broke before `COMMIT`.
fn retryable(error: &tokio_postgres::Error) -> bool {
    match error.code() {
        Some(code) => {
            *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        }
        None => error.is_closed() || error.as_db_error().is_none(),
    }
}

/// `future` within the statement timeout.
async fn timed<T>(
    timeout: Duration,
    future: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, PostgresError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(PostgresError::Timeout(timeout)),
    }
}

/// One attempt: a serializable transaction with the batch's id and rows.
async fn try_once(pool: &Pool, id: &[u8; 16], rows: &[Row]) -> Result<(), Failed> {
    let timeout = pool.config().statement_timeout;
    let connection = pool.get().await.map_err(Failed::Retry)?;
    let outcome = transaction(connection.client(), timeout, id, rows).await;
    if !matches!(outcome, Ok(Landed::Now)) {
        // Mid-transaction, perhaps: never hand it to another batch.
        connection.discard();
    }
    outcome.map(|_| ())
}

/// How an attempt landed.
enum Landed {
    /// Committed by this attempt.
    Now,
    /// An earlier attempt of the same batch had landed (this one was left open).
    Before,
}

/// The first failure among `results`, in order.
fn first_failure<T>(
    results: Vec<Result<T, tokio_postgres::Error>>,
) -> Result<Vec<T>, tokio_postgres::Error> {
    results.into_iter().collect()
}

/// The transaction in two round trips: `BEGIN`, the batch id and every row sent back to back
/// (pipelined) and answered together, then `COMMIT`.
async fn transaction(
    client: &tokio_postgres::Client,
    timeout: Duration,
    id: &[u8; 16],
    rows: &[Row],
) -> Result<Landed, Failed> {
    let before_commit = |error: PostgresError| match &error {
        PostgresError::Query(inner) if !retryable(inner) => Failed::Fatal(error),
        _ => Failed::Retry(error),
    };
    let now = unix_secs();
    let id_bytes: &[u8] = id;
    let begin = client.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE");
    let id_params: [&(dyn ToSql + Sync); 2] = [&id_bytes, &now];
    let inserted = client.execute(
        "INSERT INTO quorum_batches (id, created) VALUES ($1, $2)",
        &id_params,
    );
    let statements = rows.iter().map(|row| {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(3);
        for bytes in &row.bytes {
            params.push(bytes);
        }
        if let Some(number) = &row.number {
            params.push(number);
        }
        async move { client.execute(row.statement, &params).await }
    });
    let sent = async { futures::join!(begin, inserted, futures::future::join_all(statements)) };
    let (begun, inserted, counts) = match tokio::time::timeout(timeout, sent).await {
        Ok(answers) => answers,
        Err(_) => return Err(Failed::Retry(PostgresError::Timeout(timeout))),
    };
    round_trips::count_write();
    begun.map_err(|error| before_commit(error.into()))?;
    if let Err(error) = &inserted {
        if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            // An earlier attempt of this very batch landed.
            return Ok(Landed::Before);
        }
    }
    inserted.map_err(|error| before_commit(error.into()))?;
    let counts = first_failure(counts).map_err(|error| before_commit(error.into()))?;
    if rows
        .iter()
        .zip(&counts)
        .any(|(row, count)| row.check && *count != 1)
    {
        return Err(Failed::Fatal(PostgresError::LeaseLost));
    }
    let committed = timed(timeout, client.batch_execute("COMMIT")).await;
    round_trips::count_write();
    match committed {
        Ok(()) => Ok(Landed::Now),
        Err(PostgresError::Query(error))
            if error.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) =>
        {
            Err(Failed::Retry(PostgresError::Query(error)))
        }
        Err(PostgresError::Query(error))
            if error.as_db_error().is_some()
                && error.code() != Some(&SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN) =>
        {
            Err(Failed::Fatal(PostgresError::Query(error)))
        }
        // A lost connection, a timeout, CockroachDB's 40003: the outcome is unknown.
        Err(error) => Err(Failed::Unknown(error)),
    }
}

/// This machine's clock, in seconds since the Unix epoch (0 before it).
fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Whether the batch `id` landed.
async fn landed(pool: &Pool, id: &[u8; 16]) -> Result<bool, PostgresError> {
    let connection = pool.get().await?;
    let id_bytes: &[u8] = id;
    let row = timed(
        pool.config().statement_timeout,
        connection
            .client()
            .query_opt("SELECT 1 FROM quorum_batches WHERE id = $1", &[&id_bytes]),
    )
    .await?;
    Ok(row.is_some())
}

/// Deletes batch ids older than [`BATCH_ID_KEPT_SECS`]; a failure is only logged.
async fn prune(pool: &Pool) {
    let cutoff = unix_secs().saturating_sub(BATCH_ID_KEPT_SECS);
    let pruned = async {
        let connection = pool.get().await?;
        timed(
            pool.config().statement_timeout,
            connection
                .client()
                .execute("DELETE FROM quorum_batches WHERE created < $1", &[&cutoff]),
        )
        .await
    };
    if let Err(error) = pruned.await {
        tracing::warn!(%error, "could not prune old batch ids");
    }
}
