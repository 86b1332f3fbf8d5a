//! Quorum's [`Storage`](quorum_core::Storage) on [redb](https://docs.rs/redb): atomic, durable
//! write batches in one file (DESIGN §7).
//!
//! * [`RedbStorage`]: the storage. [`RedbStorage::open`] creates or opens a database file;
//!   [`RedbStorage::open_with`] takes [`RedbOptions`].
//! * Each `write_batch` is one redb write transaction, committed durably by default
//!   ([`Durability::Immediate`]): a crash, `kill -9` included, loses nothing acknowledged and
//!   never leaves half a batch.
//! * [`Error`]: what failed (opening, transaction, table, storage, commit, encoding, a corrupt
//!   value); it converts into [`StorageError`](quorum_core::StorageError) with the matching
//!   [`StorageErrorKind`](quorum_core::StorageErrorKind).
//!
//! The tables and their encodings are described in one place, the private `tables` module:
//! structured values are BCS, blob contents and event payloads raw bytes.

mod error;
mod redb_options;
mod storage;
mod tables;

pub use error::{Access, Error};
pub use redb_options::{Durability, RedbOptions};
pub use storage::RedbStorage;
