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
    #[error("PostgreSQL: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// A stored value does not decode, or a value cannot be encoded.
    #[error("stored value: {0}")]
    Codec(#[from] bcs::Error),
    /// A number out of the range the database stores (heights and indices up to 2^63 - 1).
    #[error("{0} is out of the stored range")]
    OutOfRange(u64),
    /// A write batch kept conflicting with others.
    #[error("write batch still conflicting after {0} attempts")]
    RetriesExhausted(u32),
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
