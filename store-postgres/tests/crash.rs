//! Crash test on PostgreSQL (DESIGN §7, §7.1): a writer process is killed with SIGKILL in the
//! middle of a run of write batches; a new connection must find every acknowledged batch,
//! whole, and nothing half-written. Twice: the second writer resumes from what the first left.
//!
//! The writer is this same test binary, re-executed to run [`crash_writer_child`] with the
//! database URL in [`WRITER_ENV`]; it prints one [`ACK`] line per batch once `write_batch` has
//! returned.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use quorum_core::{Batch, BlockHeight, Storage, Write};
use quorum_store_postgres::{PostgresConfig, PostgresStorage};
use quorum_testkit::crash::{ack_fields, blob, fixtures, run_until_killed};

use quorum_testkit::postgres::TestDatabase;

/// Environment variable that turns [`crash_writer_child`] on, holding the database URL.
const WRITER_ENV: &str = "QUORUM_STORE_POSTGRES_CRASH_WRITER_URL";
/// Prefix of an acknowledgement line: `QUORUM-ACK <height> <certificate hash>`.
const ACK: &str = "QUORUM-ACK";
/// Acknowledgements the parent waits for before killing the writer.
const KILL_AFTER: usize = 40;
/// How many times a writer is started and killed.
const ROUNDS: usize = 2;
/// How long the parent waits for the writer's acknowledgements.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The writer process. Does nothing unless started by the crash test.
#[tokio::test]
#[ignore = "the crash test's writer process, started by crash_loses_no_acknowledged_write"]
async fn crash_writer_child() {
    let Ok(url) = std::env::var(WRITER_ENV) else {
        return;
    };
    let storage = PostgresStorage::connect(PostgresConfig::new(url))
        .await
        .unwrap();
    let (committee, mut chain) = fixtures();
    if let Some(state) = storage.read_chain_state(chain.id()).await.unwrap() {
        while chain.state.next_height() < state.next_height() {
            chain.commit_blocks(&committee, 1);
        }
        assert_eq!(chain.state, state, "the recovered state is the fixture's");
    }
    let mut stdout = std::io::stdout();
    loop {
        let height = chain.state.next_height().0;
        let certificate = chain.commit_blocks(&committee, 1).remove(0);
        let mut batch = Batch::new();
        batch.push(Write::Certificate(Arc::new(certificate.clone())));
        batch.push(Write::Blob(blob(height)));
        batch.push(Write::ChainState(Arc::new(chain.state.clone())));
        storage.write_batch(batch).await.unwrap();
        writeln!(stdout, "{ACK} {height} {}", certificate.hash()).unwrap();
        stdout.flush().unwrap();
    }
}

/// `<ACK> <height> <hash>`: the height and hash.
fn parse_ack(line: &str) -> Option<(u64, String)> {
    let [height, hash] = ack_fields(line, ACK)?[..] else {
        return None;
    };
    Some((height.parse().ok()?, hash.to_owned()))
}

/// Checks the database against every acknowledgement; returns the recovered next height.
async fn check_recovered(url: &str, acks: &[(u64, String)]) -> u64 {
    let storage = PostgresStorage::connect(PostgresConfig::new(url))
        .await
        .unwrap();
    let (committee, mut chain) = fixtures();
    let state = storage.read_chain_state(chain.id()).await.unwrap().unwrap();
    let next = state.next_height().0;
    let last = acks.last().map_or(0, |(height, _)| *height);
    assert!(
        next > last,
        "acknowledged up to {last}, recovered up to {next}"
    );
    let heights: Vec<BlockHeight> = (0..next).map(BlockHeight).collect();
    let found = storage
        .read_certificates_by_heights(chain.id(), &heights)
        .await
        .unwrap();
    for (height, certificate) in found.into_iter().enumerate() {
        let expected = chain.commit_blocks(&committee, 1).remove(0);
        assert_eq!(certificate.as_ref(), Some(&expected), "height {height}");
        let blob = blob(height as u64);
        assert_eq!(storage.read_blob(blob.id()).await.unwrap(), Some(blob));
    }
    for (height, hash) in acks {
        let stored = storage
            .read_certificate_hashes(chain.id(), &[BlockHeight(*height)])
            .await
            .unwrap();
        assert_eq!(
            stored[0].map(|h| h.to_string()).as_ref(),
            Some(hash),
            "ack {height}"
        );
    }
    assert_eq!(
        state, chain.state,
        "the chain state is its last certificate's"
    );
    let beyond = storage
        .read_certificate_hashes(chain.id(), &[BlockHeight(next)])
        .await
        .unwrap();
    assert_eq!(beyond, vec![None], "nothing beyond the chain state");
    next
}

#[test]
fn crash_loses_no_acknowledged_write() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(database) = runtime.block_on(TestDatabase::create("crash")) else {
        return;
    };
    let url = database.url();
    let mut acks = Vec::new();
    let mut recovered = 0;
    for round in 0..ROUNDS {
        let new = run_until_killed(
            "crash_writer_child",
            WRITER_ENV,
            std::path::Path::new(&url),
            KILL_AFTER,
            TIMEOUT,
            parse_ack,
        );
        assert!(new.len() >= KILL_AFTER, "round {round}");
        assert_eq!(new.first().map(|(height, _)| *height), Some(recovered));
        acks.extend(new);
        recovered = runtime.block_on(check_recovered(&url, &acks));
    }
    runtime.block_on(database.drop_database());
}
