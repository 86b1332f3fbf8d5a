//! The tables and their versions. The store creates its schema and tables on first use and
//! records the version in `quorum_meta`; a later build adds migrations after the last one. A
//! database of a newer version than this build knows is refused at start.
//!
//! Only what PostgreSQL, CockroachDB and YugabyteDB all speak: `BYTEA` and `BIGINT` columns,
//! primary keys, `INSERT … ON CONFLICT`, `= ANY($1)` over arrays, serializable transactions.
//!
//! Keys are the values' canonical BCS bytes (hashes and chain ids are their 32 bytes); heights,
//! indices and epochs are `BIGINT`. `quorum_batches` holds the id of every write batch applied,
//! so that a batch whose commit had an unknown outcome is never applied twice.
//! `quorum_outbox` holds a sharded validator's deliveries between shards, `quorum_shards` the
//! lease of each shard index, and `quorum_meta`'s `shard_count` the number of shards.

use tokio_postgres::Client;

use crate::error::PostgresError;

/// The newest schema version this build knows.
pub(crate) const VERSION: i64 = 2;

/// Each migration, in order: migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: [&str; VERSION as usize] = [
    "CREATE TABLE IF NOT EXISTS quorum_certificates (
         hash BYTEA PRIMARY KEY,
         value BYTEA NOT NULL
     );
     CREATE TABLE IF NOT EXISTS quorum_certificate_heights (
         chain BYTEA NOT NULL,
         height BIGINT NOT NULL,
         hash BYTEA NOT NULL,
         PRIMARY KEY (chain, height)
     );
     CREATE TABLE IF NOT EXISTS quorum_blobs (
         id BYTEA PRIMARY KEY,
         content BYTEA NOT NULL
     );
     CREATE TABLE IF NOT EXISTS quorum_blob_states (
         id BYTEA PRIMARY KEY,
         state BYTEA NOT NULL
     );
     CREATE TABLE IF NOT EXISTS quorum_events (
         id BYTEA PRIMARY KEY,
         payload BYTEA NOT NULL
     );
     CREATE TABLE IF NOT EXISTS quorum_chain_states (
         chain BYTEA PRIMARY KEY,
         state BYTEA NOT NULL
     );
     CREATE TABLE IF NOT EXISTS quorum_committees (
         epoch BIGINT PRIMARY KEY,
         committee BYTEA NOT NULL
     );
     CREATE TABLE IF NOT EXISTS quorum_received_logs (
         chain BYTEA NOT NULL,
         idx BIGINT NOT NULL,
         entry BYTEA NOT NULL,
         PRIMARY KEY (chain, idx)
     );
     CREATE TABLE IF NOT EXISTS quorum_batches (
         id BYTEA PRIMARY KEY,
         created BIGINT NOT NULL
     );",
    // Version 2: a sharded validator's outbox and its shards' leases (DESIGN §7.1).
    "CREATE TABLE IF NOT EXISTS quorum_outbox (
         lane BIGINT NOT NULL,
         recipient BYTEA NOT NULL,
         certificate BYTEA NOT NULL,
         PRIMARY KEY (lane, recipient, certificate)
     );
     CREATE TABLE IF NOT EXISTS quorum_shards (
         shard_index BIGINT PRIMARY KEY,
         holder BYTEA NOT NULL,
         expires_ms BIGINT NOT NULL
     );",
];

/// Creates the schema `schema` and brings its tables to [`VERSION`], in serializable
/// transactions (several processes may start at once: a conflict is retried by the caller);
/// refuses a newer version.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<(), PostgresError> {
    // The name was checked to be a plain identifier.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.quorum_meta (
                 key TEXT PRIMARY KEY,
                 value BIGINT NOT NULL
             );"
        ))
        .await?;
    loop {
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::Serializable)
            .start()
            .await?;
        let row = transaction
            .query_opt(
                "SELECT value FROM quorum_meta WHERE key = 'schema_version'",
                &[],
            )
            .await?;
        let version: i64 = row.map(|row| row.get(0)).unwrap_or(0);
        if version > VERSION {
            return Err(PostgresError::SchemaTooNew {
                found: version,
                supported: VERSION,
            });
        }
        let Some(migration) = usize::try_from(version)
            .ok()
            .and_then(|index| MIGRATIONS.get(index))
        else {
            return Ok(());
        };
        transaction.batch_execute(migration).await?;
        transaction
            .execute(
                "INSERT INTO quorum_meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&(version + 1)],
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(schema, version = version + 1, "database schema migrated");
    }
}

/// Whether `name` is a plain lower-case identifier (letters, digits, underscores, not starting
/// with a digit, at most 63 bytes), safe to splice into a statement.
pub(crate) fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}
