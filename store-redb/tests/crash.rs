//! Crash test (DESIGN §7, §10): a writer process is killed with SIGKILL in the middle of a run
//! of durable write batches; reopening the database must find every acknowledged batch, whole,
//! and nothing half-written.
//!
//! The writer is this same test binary, re-executed with `--exact crash_writer_child` and the
//! database path in [`WRITER_ENV`]: it commits the blocks of one chain (each block one
//! `write_batch` of its certificate, a blob and the chain state advanced to it) and prints one
//! [`ACK`] line per batch once `write_batch` has returned. The parent kills it after
//! [`KILL_AFTER`] acknowledgements, reopens the file and checks it; then runs a second writer
//! that resumes from the recovered state and is killed as well.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use quorum_core::{Batch, BlockHeight, CryptoHash, Storage, Write};
use quorum_store_redb::RedbStorage;
use quorum_testkit::crash::{blob, fixtures};

/// Environment variable that turns [`crash_writer_child`] on, holding the database path.
const WRITER_ENV: &str = "QUORUM_STORE_REDB_CRASH_WRITER_DB";
/// Prefix of an acknowledgement line: `QUORUM-ACK <height> <certificate hash>`.
const ACK: &str = "QUORUM-ACK";
/// Acknowledgements the parent waits for before killing the writer.
const KILL_AFTER: usize = 40;
/// Most blocks a writer commits (it is killed long before).
const MAX_BLOCKS: u64 = 100_000;
/// How many times the writer is started and killed.
const ROUNDS: usize = 2;
/// How long the parent waits for the writer's acknowledgements.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The writer process. Does nothing unless started by [`crash_loses_no_acknowledged_write`].
#[tokio::test]
#[ignore = "the crash test's writer process, started by crash_loses_no_acknowledged_write"]
async fn crash_writer_child() {
    let Some(path) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let storage = RedbStorage::open(path).unwrap();
    let (committee, mut chain) = fixtures();
    // Resume after what an earlier writer committed.
    if let Some(state) = storage.read_chain_state(chain.id()).await.unwrap() {
        while chain.state.next_height() < state.next_height() {
            chain.commit_blocks(&committee, 1).remove(0);
        }
        assert_eq!(chain.state, state, "the recovered state is the fixture's");
    }
    // Written straight to the file descriptor: the test harness does not capture it.
    let mut stdout = std::io::stdout();
    while chain.state.next_height().0 < MAX_BLOCKS {
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

/// An acknowledged block: height and certificate hash (as printed).
#[derive(Debug, PartialEq, Eq)]
struct Ack {
    height: u64,
    hash: String,
}

/// An acknowledgement line: `<ACK> <height> <certificate hash>`.
fn parse_block_ack(line: &str) -> Option<Ack> {
    let [height, hash] = quorum_testkit::crash::ack_fields(line, ACK)?[..] else {
        return None;
    };
    let height = height.parse().ok()?;
    (hash.len() == 64).then(|| Ack {
        height,
        hash: hash.to_owned(),
    })
}

/// Starts a writer on `path`, kills it after [`KILL_AFTER`] acknowledgements, and returns
/// every acknowledgement it printed before dying.
fn run_block_writer_until_killed(path: &std::path::Path) -> Vec<Ack> {
    let acks = quorum_testkit::crash::run_until_killed(
        "crash_writer_child",
        WRITER_ENV,
        path,
        KILL_AFTER,
        TIMEOUT,
        parse_block_ack,
    );
    for pair in acks.windows(2) {
        assert_eq!(pair[1].height, pair[0].height + 1, "consecutive heights");
    }
    acks
}

/// Reopens the database and checks it against every acknowledgement so far; returns the
/// recovered chain's next height.
async fn check_recovered(path: &std::path::Path, acks: &[Ack]) -> u64 {
    let storage = RedbStorage::open(path).unwrap();
    let (committee, mut chain) = fixtures();
    let state = storage
        .read_chain_state(chain.id())
        .await
        .unwrap()
        .expect("the chain state survived");
    let next_height = state.next_height().0;
    let last_acked = acks.last().map_or(0, |ack| ack.height);
    assert!(
        next_height > last_acked,
        "acknowledged up to height {last_acked}, recovered only up to {next_height}"
    );

    // Every block below the state's height is there, whole, and is the fixture's.
    let heights: Vec<BlockHeight> = (0..next_height).map(BlockHeight).collect();
    let certificates = storage
        .read_certificates_by_heights(chain.id(), &heights)
        .await
        .unwrap();
    let mut hashes = Vec::new();
    for (height, found) in certificates.into_iter().enumerate() {
        let expected = chain.commit_blocks(&committee, 1).remove(0);
        let found = found.unwrap_or_else(|| panic!("certificate at height {height} lost"));
        assert_eq!(found, expected, "certificate at height {height}");
        found.check(&committee.committee).unwrap();
        hashes.push(found.hash());
        let blob = blob(height as u64);
        assert_eq!(storage.read_blob(blob.id()).await.unwrap(), Some(blob));
    }
    for ack in acks {
        let stored: Option<CryptoHash> = hashes.get(ack.height as usize).copied();
        assert_eq!(
            stored.map(|hash| hash.to_string()),
            Some(ack.hash.clone()),
            "acknowledged block at height {}",
            ack.height
        );
    }
    // The state matches its last certificate, and nothing was committed beyond it.
    assert_eq!(state.tip_hash(), hashes.last().copied(), "tip hash");
    assert_eq!(state, chain.state, "the recovered chain state");
    let beyond = storage
        .read_certificate_hashes(chain.id(), &[BlockHeight(next_height)])
        .await
        .unwrap();
    assert_eq!(beyond, vec![None], "a certificate beyond the chain state");
    next_height
}

#[test]
fn crash_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut acks: Vec<Ack> = Vec::new();
    let mut recovered = 0;
    for round in 0..ROUNDS {
        let new = run_block_writer_until_killed(&path);
        assert!(new.len() >= KILL_AFTER, "round {round}");
        assert_eq!(
            new.first().map(|ack| ack.height),
            Some(recovered),
            "round {round}: the writer resumes at the recovered height"
        );
        acks.extend(new);
        recovered = runtime.block_on(check_recovered(&path, &acks));
        eprintln!(
            "round {round}: {} blocks acknowledged, {recovered} recovered",
            acks.len()
        );
    }
}

#[test]
fn acks_parse() {
    let hash = "ab".repeat(32);
    assert_eq!(
        parse_block_ack(&format!("test crash_writer_child ... {ACK} 7 {hash}")),
        Some(Ack { height: 7, hash })
    );
    assert_eq!(parse_block_ack("running 1 test"), None);
    assert_eq!(parse_block_ack(&format!("{ACK} 7 abc")), None);
}
