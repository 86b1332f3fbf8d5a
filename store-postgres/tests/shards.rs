//! What a sharded validator needs of its database (DESIGN §7.1): shard leases (the count
//! recorded, an index held by one live process only, a lost lease fencing off every later
//! write) and writers racing on the same rows ending in serializable outcomes, not errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::sync::Arc;
use std::time::Duration;

use quorum_core::{Batch, Blob, ChainId, CryptoHash, OutboxEntry, Storage, Write};
use quorum_store_postgres::{PostgresError, PostgresStorage, ShardClaim};
use quorum_testkit::postgres::TestDatabase;
use quorum_testkit::{TestChain, TestCommittee};

fn claim(index: u32, count: u32, lease_ms: u64) -> ShardClaim {
    ShardClaim {
        index,
        count,
        lease: Duration::from_millis(lease_ms),
    }
}

fn outbox_write(certificate: u8) -> Batch {
    Batch {
        writes: vec![Write::Outbox(OutboxEntry {
            lane: 0,
            recipient: ChainId(CryptoHash([1; 32])),
            certificate: CryptoHash([certificate; 32]),
        })],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_leases_refuse_a_second_holder_another_count_and_fence_a_lost_one() {
    let Some(database) = TestDatabase::create("leases").await else {
        return;
    };
    let first = PostgresStorage::connect(database.config("validator"))
        .await
        .unwrap();
    let second = PostgresStorage::connect(database.config("validator"))
        .await
        .unwrap();
    let lease = first.claim_shard(claim(0, 3, 60_000)).await.unwrap();
    assert_eq!(lease.index(), 0);
    first.write_batch(outbox_write(1)).await.unwrap();
    match second.claim_shard(claim(0, 3, 60_000)).await {
        Err(PostgresError::ShardHeld { index: 0, .. }) => {}
        other => panic!("expected the index refused while held, got {other:?}"),
    }
    match second.claim_shard(claim(1, 2, 60_000)).await {
        Err(PostgresError::ShardCount {
            recorded: 3,
            asked: 2,
        }) => {}
        other => panic!("expected another shard count refused, got {other:?}"),
    }
    match second.claim_shard(claim(3, 3, 60_000)).await {
        Err(PostgresError::ShardIndex { index: 3, count: 3 }) => {}
        other => panic!("expected an index out of range refused, got {other:?}"),
    }
    // Released on a clean stop: the next process takes the index at once.
    lease.release().await.unwrap();
    let mut taken = second.claim_shard(claim(0, 3, 300)).await.unwrap();
    let refused = first.write_batch(outbox_write(2)).await;
    assert!(
        refused.is_err(),
        "a store whose lease is gone writes nothing"
    );
    second.write_batch(outbox_write(3)).await.unwrap();
    let owed = second.read_outbox(0, 10).await.unwrap();
    let certificates: Vec<u8> = owed.iter().map(|entry| entry.certificate.0[0]).collect();
    assert_eq!(certificates, vec![1, 3], "the fenced write never landed");

    // A holder that cannot renew (here: its index is taken over by force) learns it lost
    // the lease and writes nothing more.
    let (client, connection) = tokio_postgres::connect(&database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("UPDATE validator.quorum_shards SET holder = '\\x00'::BYTEA")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), taken.lost())
        .await
        .expect("the loss is noticed within the lease");
    assert!(second.write_batch(outbox_write(4)).await.is_err());
    drop(client);
    database.drop_database().await;
}

/// Two writers, each its own pool, racing batches over the same rows: every batch lands
/// (conflicts are retried), and what is left is what one batch wrote as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_racing_on_the_same_rows_end_serializable() {
    let Some(database) = TestDatabase::create("race").await else {
        return;
    };
    let stores = [
        PostgresStorage::connect(database.config("race"))
            .await
            .unwrap(),
        PostgresStorage::connect(database.config("race"))
            .await
            .unwrap(),
    ];
    let committee = TestCommittee::new(4, 11);
    let mut chain = TestChain::new(0, 11);
    chain.commit_blocks(&committee, 1);
    let writers = stores.iter().enumerate().map(|(writer, storage)| {
        let state = chain.state.clone();
        async move {
            for round in 0..40u8 {
                // The same three rows, told apart only by which batch wrote them.
                let tag = Blob::data(vec![writer as u8, round]);
                let mut batch = Batch::new();
                batch.push(Write::ChainState(Arc::new(state.clone())));
                batch.push(Write::Event(event(0), tag.content.clone()));
                batch.push(Write::Event(event(1), tag.content.clone()));
                batch.push(Write::Event(event(2), tag.content));
                storage.write_batch(batch).await.unwrap();
            }
        }
    });
    futures::future::join_all(writers).await;
    let mut last = Vec::new();
    for index in 0..3 {
        last.push(stores[0].read_event(&event(index)).await.unwrap().unwrap());
    }
    assert!(
        last.iter().all(|payload| *payload == last[0]),
        "all three rows from one batch: {last:?}"
    );
    assert_eq!(
        last[0][1], 39,
        "the last batch of one writer is the last applied"
    );
    database.drop_database().await;
}

fn event(index: u32) -> quorum_core::EventId {
    quorum_core::EventId {
        chain_id: ChainId(CryptoHash([5; 32])),
        stream: quorum_core::StreamId::user("race"),
        index,
    }
}
