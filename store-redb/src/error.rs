//! [`Error`]: what can fail in the redb store, split by what failed, and its mapping to
//! [`StorageError`].

use std::fmt;
use std::path::PathBuf;

use quorum_core::{StorageError, StorageErrorKind};

/// Whether a failed operation was reading or writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A read (a read transaction, or a look-up).
    Read,
    /// A write (a write transaction, an insertion, a commit).
    Write,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
        })
    }
}

impl From<Access> for StorageErrorKind {
    fn from(access: Access) -> Self {
        match access {
            Access::Read => StorageErrorKind::Read,
            Access::Write => StorageErrorKind::Write,
        }
    }
}

/// A failure of the redb store. Converts into a [`StorageError`] whose kind is
/// [`Error::kind`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database file could not be opened (or created, or repaired after a crash).
    #[error("cannot open the database at {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: redb::DatabaseError,
    },
    /// The database was written with a layout this build does not read.
    #[error(
        "the database at {} has schema version {found}; this build reads version {expected}",
        path.display()
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u64,
        /// The version this build reads and writes.
        expected: u64,
    },
    /// A transaction could not begin.
    #[error("cannot begin a {access} transaction: {source}")]
    Transaction {
        /// The transaction's kind.
        access: Access,
        /// redb's error (boxed: it can carry a whole read transaction).
        #[source]
        source: Box<redb::TransactionError>,
    },
    /// A table could not be opened.
    #[error("cannot open table `{table}` to {access}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// What the table was opened for.
        access: Access,
        /// redb's error.
        #[source]
        source: redb::TableError,
    },
    /// Reading or writing an entry of a table failed in redb's storage layer.
    #[error("cannot {access} table `{table}`: {source}")]
    Storage {
        /// The table.
        table: &'static str,
        /// What was done.
        access: Access,
        /// redb's error.
        #[source]
        source: redb::StorageError,
    },
    /// A write transaction could not commit; none of its writes were applied.
    #[error("cannot commit: {0}")]
    Commit(#[source] redb::CommitError),
    /// A value could not be encoded for a table.
    #[error("cannot encode a value for table `{table}`: {source}")]
    Encode {
        /// The table.
        table: &'static str,
        /// The encoder's error.
        #[source]
        source: bcs::Error,
    },
    /// A stored value could not be decoded.
    #[error("undecodable value in table `{table}`: {source}")]
    Decode {
        /// The table.
        table: &'static str,
        /// The decoder's error.
        #[source]
        source: bcs::Error,
    },
    /// A stored value decodes but does not belong under its key (or an index points nowhere).
    #[error("inconsistent entry in table `{table}`: {reason}")]
    Inconsistent {
        /// The table.
        table: &'static str,
        /// What does not match.
        reason: String,
    },
    /// The blocking task that ran the operation panicked or was cancelled.
    #[error("the blocking {access} task failed: {source}")]
    Task {
        /// What the task did.
        access: Access,
        /// tokio's error.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Whether redb reports corrupted data.
fn is_corrupted(error: &redb::StorageError) -> bool {
    matches!(error, redb::StorageError::Corrupted(_))
}

impl Error {
    /// What failed, for [`StorageError::kind`]: [`StorageErrorKind::Corrupted`] when stored
    /// bytes are unreadable (undecodable or inconsistent values, redb's own corruption
    /// reports, tables of the wrong type, an unknown schema), otherwise `Read` or `Write` after
    /// the operation. Failing to open a database is a `Read` failure.
    pub fn kind(&self) -> StorageErrorKind {
        match self {
            Error::Open { source, .. } => match source {
                redb::DatabaseError::Storage(storage) if is_corrupted(storage) => {
                    StorageErrorKind::Corrupted
                }
                redb::DatabaseError::UpgradeRequired(_) => StorageErrorKind::Corrupted,
                _ => StorageErrorKind::Read,
            },
            Error::SchemaVersion { .. } | Error::Decode { .. } | Error::Inconsistent { .. } => {
                StorageErrorKind::Corrupted
            }
            Error::Transaction { access, source } => match source.as_ref() {
                redb::TransactionError::Storage(storage) if is_corrupted(storage) => {
                    StorageErrorKind::Corrupted
                }
                _ => (*access).into(),
            },
            Error::Table { access, source, .. } => match source {
                redb::TableError::Storage(storage) if is_corrupted(storage) => {
                    StorageErrorKind::Corrupted
                }
                redb::TableError::TableTypeMismatch { .. }
                | redb::TableError::TableIsMultimap(_)
                | redb::TableError::TableIsNotMultimap(_)
                | redb::TableError::TypeDefinitionChanged { .. }
                | redb::TableError::TableDoesNotExist(_) => StorageErrorKind::Corrupted,
                _ => (*access).into(),
            },
            Error::Storage { access, source, .. } => {
                if is_corrupted(source) {
                    StorageErrorKind::Corrupted
                } else {
                    (*access).into()
                }
            }
            Error::Commit(redb::CommitError::Storage(storage)) if is_corrupted(storage) => {
                StorageErrorKind::Corrupted
            }
            Error::Commit(_) | Error::Encode { .. } => StorageErrorKind::Write,
            Error::Task { access, .. } => (*access).into(),
        }
    }
}

impl From<Error> for StorageError {
    fn from(error: Error) -> Self {
        if error.kind() == StorageErrorKind::Corrupted {
            tracing::error!(%error, "redb store: corrupted data");
        }
        StorageError::new(error.kind(), error)
    }
}
