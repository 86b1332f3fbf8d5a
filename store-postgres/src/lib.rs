//! [`PostgresStorage`]: Quorum's [`Storage`](quorum_core::Storage) on any engine that speaks
//! the PostgreSQL wire protocol: PostgreSQL on one machine, CockroachDB and YugabyteDB across
//! many (DESIGN §7.1).
//!
//! * One serializable transaction per write batch (the Worker's group commit hands it every
//!   batch queued meanwhile), durable when it returns (the server's `synchronous_commit`, on
//!   by default).
//! * A batch that conflicts with another (SQLSTATE 40001 or 40P01) is tried again, up to
//!   [`PostgresConfig::max_retries`] times, with a doubling pause.
//! * A batch whose commit had an unknown outcome (the connection lost during `COMMIT`,
//!   CockroachDB's 40003) is never applied twice: each batch carries a random id, inserted in
//!   the same transaction; trying again finds the id (the batch landed) or applies it.
//! * A bounded pool of connections ([`PostgresConfig::pool_size`]).
//! * The crate creates and versions its tables itself; a database of a newer version is
//!   refused at start, as are an unreachable server, wrong credentials and a missing
//!   database: [`PostgresStorage::connect`] fails, with nothing half-initialised.
//!
//! Built on `tokio-postgres`: an asynchronous driver of the wire protocol alone, with no
//! compile-time database and no macros, on the tokio runtime the rest of Quorum uses.
//!
//! ```no_run
//! # async fn demo() -> Result<(), quorum_store_postgres::PostgresError> {
//! use quorum_store_postgres::{PostgresConfig, PostgresStorage};
//!
//! let storage = PostgresStorage::connect(PostgresConfig {
//!     pool_size: 8,
//!     ..PostgresConfig::new("postgres://quorum@127.0.0.1:5432/validator")
//! })
//! .await?;
//! # let _ = storage;
//! # Ok(())
//! # }
//! ```

#![warn(unreachable_pub)]

mod detached;
mod error;
mod pool;
mod postgres_config;
mod round_trips;
mod schema;
mod scratch;
mod shard;
mod storage;
mod write;

pub use error::PostgresError;
pub use postgres_config::{has_password, redacted, PostgresConfig};
pub use round_trips::{describe_metrics, round_trips, RoundTrips};
pub use scratch::ScratchDatabase;
pub use shard::{ShardClaim, ShardLease};
pub use storage::PostgresStorage;
