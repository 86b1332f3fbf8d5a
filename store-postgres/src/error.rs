//! [`PostgresError`]: what can go wrong between the store and its database.

use std::time::Duration;

use quorum_core::{StorageError, StorageErrorKind};

/// A failure of the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The configuration is unusable (an empty URL, a pool of no connection, a schema name
    /// that is not a plain identifier).
    #[error("PostgreSQL configuration: {0}")]
    Config(String),
    /// The server could not be reached, refused the credentials, or has no such database.
    #[error("cannot connect to PostgreSQL at {url}: {source}")]
    Connect {
        /// The URL, its password hidden.
        url: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The server did not answer in time.
    #[error("PostgreSQL did not answer within {0:?}")]
    Timeout(Duration),
    /// The database holds a schema of a newer version than this build knows.
    #[error("the database schema is version {found}, newer than the {supported} this build knows: upgrade the program (downgrading a database is not supported)")]
    SchemaTooNew {
        /// The version found.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// A statement failed.
    #[error("PostgreSQL: {}", detail(.0))]
    Query(#[from] tokio_postgres::Error),
    /// A stored value does not decode, or a value cannot be encoded.
    #[error("stored value: {0}")]
    Codec(#[from] bcs::Error),
    /// A number out of the range the database stores (heights and indices up to 2^63 - 1).
    #[error("{0} is out of the stored range")]
    OutOfRange(u64),
    /// This shard's lease is gone (expired, or another process holds its index): it must
    /// stop, since another process may now sign for its chains (DESIGN §7.1).
    #[error("this shard's lease is lost: another process may hold its index; stopping")]
    LeaseLost,
    /// The database records a different number of shards than asked: resharding is not
    /// supported.
    #[error("the database was set up for {recorded} shard(s), not {asked}: resharding a validator is not supported")]
    ShardCount {
        /// The number recorded.
        recorded: u32,
        /// The number this shard was started with.
        asked: u32,
    },
    /// A shard index out of `0..count`.
    #[error("shard index {index} is out of range for {count} shard(s)")]
    ShardIndex {
        /// The index asked.
        index: u32,
        /// The number of shards.
        count: u32,
    },
    /// Another live process holds this shard index: one key must never sign in two processes.
    #[error("shard {index} is held by another live process (its lease runs for up to {lease:?} more); stop that one or wait for its lease to expire")]
    ShardHeld {
        /// The index.
        index: u32,
        /// The lease's length.
        lease: Duration,
    },
    /// A write batch kept conflicting with others.
    #[error("write batch still conflicting after {0} attempts")]
    RetriesExhausted(u32),
}

/// The driver's error with the server's message when there is one (the driver's own text says
/// only "db error").
fn detail(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

impl PostgresError {
    /// As a [`StorageError`] of `kind` (a stored value that does not decode is
    /// [`StorageErrorKind::Corrupted`] whatever `kind` says).
    pub(crate) fn storage(self, kind: StorageErrorKind) -> StorageError {
        let kind = match self {
            PostgresError::Codec(_) => StorageErrorKind::Corrupted,
            _ => kind,
        };
        StorageError::new(kind, self)
    }
}
