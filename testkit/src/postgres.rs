//! What the PostgreSQL tests share: the server named by `QUORUM_POSTGRES_URL` (default the
//! local server, as `.ci/run` sets it up), and a database of each test's own, dropped at the
//! end ([`TestDatabase`]).
//!
//! Without a server, a test says loudly that it was skipped and how to run it, and passes;
//! under CI (`CI=true`) a missing server is a failure.
//!
//! A helper of tests: it panics, naming what failed, when anything else goes wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)] // panicking is how a test helper fails

use std::io::Write as _;

use quorum_store_postgres::{redacted, PostgresConfig, PostgresError, ScratchDatabase};

/// The server the tests use when `QUORUM_POSTGRES_URL` is not set: the local one, with the
/// role `.ci/run` creates (and the README says how to create by hand).
pub const DEFAULT_URL: &str = "postgres://quorum:quorum@127.0.0.1:5432/postgres";

/// A database made for one test on the test server.
pub struct TestDatabase {
    scratch: ScratchDatabase,
    /// The database's name.
    pub name: String,
}

/// The test server's URL.
pub fn server_url() -> String {
    std::env::var("QUORUM_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

impl TestDatabase {
    /// A fresh database named after `test` (and this process), or `None` when no server
    /// answers outside CI (after saying so on standard error).
    pub async fn create(test: &str) -> Option<TestDatabase> {
        let server = server_url();
        let name = format!("quorum_test_{test}_{}", std::process::id());
        let error = match ScratchDatabase::create(&PostgresConfig::new(server.clone()), &name).await
        {
            Ok(scratch) => return Some(TestDatabase { scratch, name }),
            Err(error @ (PostgresError::Connect { .. } | PostgresError::Timeout(_))) => error,
            Err(error) => panic!("making the test database {name}: {error}"),
        };
        let message = format!(
            "SKIPPED {test}: no PostgreSQL at {} ({error}). Start one and create the role (see \
             README.md, \"PostgreSQL\"), or set QUORUM_POSTGRES_URL.",
            redacted(&server)
        );
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("{message} Under CI a missing server is a failure.");
        }
        // Straight to the file descriptor: the test harness does not capture it, so
        // `cargo test` shows it even for a passing test.
        let _ = writeln!(std::io::stderr(), "\n!!!!! {message}\n");
        None
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        self.scratch.url()
    }

    /// A store configuration on this database, in `schema`.
    pub fn config(&self, schema: &str) -> PostgresConfig {
        self.scratch.config(schema)
    }

    /// Drops the database (every connection to it first).
    pub async fn drop_database(self) {
        self.scratch.drop_database().await.unwrap();
    }
}
