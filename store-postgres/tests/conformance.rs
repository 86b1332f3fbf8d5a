//! The storage conformance suite on [`PostgresStorage`] (each store in a schema of its own of
//! one test database), and what only this store can show: bad configurations refused at start,
//! a newer schema refused, data kept across connections, concurrent writers on one database.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::sync::{Arc, Mutex};

use quorum_core::{Batch, Storage, Write};
use quorum_store_postgres::{PostgresConfig, PostgresError, PostgresStorage};
use quorum_testkit::{rich_chain_state, storage_conformance, TestChain, TestCommittee};

use quorum_testkit::postgres::TestDatabase;

/// How many stores the conformance suite asks for.
const STORES: usize = 13;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_storage_conforms() {
    let Some(database) = TestDatabase::create("conformance").await else {
        return;
    };
    let mut stores = Vec::new();
    for index in 0..STORES {
        stores.push(
            PostgresStorage::connect(database.config(&format!("store_{index}")))
                .await
                .unwrap(),
        );
    }
    let stores = Mutex::new(stores);
    storage_conformance::run(|| stores.lock().unwrap().pop().expect("enough stores")).await;
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_new_connection_and_schemas_are_apart() {
    let Some(database) = TestDatabase::create("reopen").await else {
        return;
    };
    let committee = TestCommittee::new(4, 5);
    let mut chain = TestChain::new(1, 5);
    let certificate = chain.commit_blocks(&committee, 1).remove(0);
    let state = rich_chain_state(&chain, &committee);
    {
        let storage = PostgresStorage::connect(database.config("kept"))
            .await
            .unwrap();
        let mut batch = Batch::new();
        batch.push(Write::Certificate(Arc::new(certificate.clone())));
        batch.push(Write::ChainState(Arc::new(state.clone())));
        storage.write_batch(batch).await.unwrap();
    }
    let storage = PostgresStorage::connect(database.config("kept"))
        .await
        .unwrap();
    assert_eq!(
        storage.read_certificate(certificate.hash()).await.unwrap(),
        Some(certificate.clone())
    );
    assert_eq!(
        storage.read_chain_state(state.chain_id()).await.unwrap(),
        Some(state.clone())
    );
    let other = PostgresStorage::connect(database.config("other"))
        .await
        .unwrap();
    assert_eq!(
        other.read_certificate(certificate.hash()).await.unwrap(),
        None
    );
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_clear_errors_at_start() {
    let Some(database) = TestDatabase::create("config").await else {
        return;
    };
    // Nobody listens on port 1.
    let unreachable = PostgresConfig {
        connect_timeout: std::time::Duration::from_secs(2),
        ..PostgresConfig::new("postgres://quorum:quorum@127.0.0.1:1/postgres")
    };
    match PostgresStorage::connect(unreachable).await {
        Err(PostgresError::Connect { url, .. }) => assert!(!url.contains(":quorum@"), "{url}"),
        other => panic!("expected a connection error, got {other:?}"),
    }
    // Wrong credentials: the error names the server, never the password.
    let url = database
        .url()
        .replacen("quorum:quorum@", "quorum:wrong-password@", 1);
    match PostgresStorage::connect(PostgresConfig::new(url)).await {
        Err(error @ PostgresError::Connect { .. }) => {
            assert!(!error.to_string().contains("wrong-password"), "{error}");
        }
        other => panic!("expected refused credentials, got {other:?}"),
    }
    // No such database.
    let missing = database
        .url()
        .replace(&database.name, "quorum_no_such_database");
    assert!(matches!(
        PostgresStorage::connect(PostgresConfig::new(missing)).await,
        Err(PostgresError::Connect { .. })
    ));
    // A schema name that is not a plain identifier, an empty pool.
    assert!(matches!(
        PostgresStorage::connect(database.config("drop table x;")).await,
        Err(PostgresError::Config(_))
    ));
    let empty = PostgresConfig {
        pool_size: 0,
        ..database.config("public")
    };
    assert!(matches!(
        PostgresStorage::connect(empty).await,
        Err(PostgresError::Config(_))
    ));
    // A database written by a newer build.
    PostgresStorage::connect(database.config("future"))
        .await
        .unwrap();
    let (client, connection) = tokio_postgres::connect(&database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("UPDATE future.quorum_meta SET value = 99 WHERE key = 'schema_version'")
        .await
        .unwrap();
    match PostgresStorage::connect(database.config("future")).await {
        Err(PostgresError::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("expected a newer schema refused, got {other:?}"),
    }
    drop(client);
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_migrate_once_and_write_together() {
    let Some(database) = TestDatabase::create("together").await else {
        return;
    };
    let connects = (0..4).map(|_| PostgresStorage::connect(database.config("shared")));
    let stores: Vec<PostgresStorage> = futures::future::try_join_all(connects).await.unwrap();
    // Every store writes the blocks of a chain of its own, all at once, on the same tables.
    let committee = TestCommittee::new(4, 9);
    let writers = stores.iter().enumerate().map(|(index, storage)| {
        let mut chain = TestChain::new(index as u32, 9);
        let committee = &committee;
        async move {
            for certificate in chain.commit_blocks(committee, 10) {
                let mut batch = Batch::new();
                batch.push(Write::Certificate(Arc::new(certificate)));
                batch.push(Write::ChainState(Arc::new(chain.state.clone())));
                storage.write_batch(batch).await.unwrap();
            }
            chain
        }
    });
    let chains = futures::future::join_all(writers).await;
    for chain in &chains {
        let state = stores[0]
            .read_chain_state(chain.id())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.next_height(), chain.state.next_height());
    }
    database.drop_database().await;
}
