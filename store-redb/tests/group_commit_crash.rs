//! Crash test of the Worker's group commit (DESIGN §4.5.1, §7): a Worker over redb applies
//! blocks of many chains at once, so that several blocks share each commit, and is killed with
//! SIGKILL mid-run; reopening the database must find every block the Worker acknowledged, each
//! chain whole up to its state's height, and nothing beyond it.
//!
//! The writer is this same test binary, re-executed with `--exact group_commit_writer_child`
//! and the database path in [`WRITER_ENV`]: round after round it hands the next block of every
//! chain to the Worker at once (`handle_confirmed_certificate`) and prints one [`ACK`] line per
//! answer. The parent kills it after [`KILL_AFTER`] acknowledgements, reopens the file and
//! checks it; then a second writer resumes from the recovered state and is killed as well.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use quorum_core::{BlockHeight, CrossChainDelivery, Storage, Timestamp, ValidatorNode};
use quorum_node::{Genesis, SystemClock, Worker, WorkerConfig};
use quorum_store_redb::RedbStorage;
use quorum_testkit::{TestChain, TestCommittee};

/// Environment variable that turns [`group_commit_writer_child`] on, holding the database path.
const WRITER_ENV: &str = "QUORUM_GROUP_COMMIT_CRASH_DB";
/// Prefix of an acknowledgement line: `QUORUM-GROUP-ACK <chain> <height> <certificate hash>`.
const ACK: &str = "QUORUM-GROUP-ACK";
/// Chains driven at once.
const CHAINS: usize = 8;
/// Acknowledgements the parent waits for before killing the writer.
const KILL_AFTER: usize = 120;
/// Most rounds a writer runs (it is killed long before).
const MAX_ROUNDS: u64 = 10_000;
/// How many times the writer is started and killed.
const ROUNDS: usize = 2;
/// How long the parent waits for the writer's acknowledgements.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The committee and chains both processes derive the blocks from.
fn fixtures() -> (TestCommittee, Vec<TestChain>) {
    let chains = (0..CHAINS)
        .map(|index| TestChain::new(index as u32, 0x6C0 + index as u64))
        .collect();
    (TestCommittee::new(4, 0xC0FFEE), chains)
}

fn genesis(committee: &TestCommittee, chains: &[TestChain]) -> Genesis {
    Genesis {
        committee: committee.committee.clone(),
        chains: chains
            .iter()
            .map(|chain| chain.description.clone())
            .collect(),
    }
}

/// The writer process. Does nothing unless started by [`group_commit_loses_no_acknowledged_block`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the group commit crash test's writer, started by group_commit_loses_no_acknowledged_block"]
async fn group_commit_writer_child() {
    let Some(path) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let storage = RedbStorage::open(path).unwrap();
    let (committee, mut chains) = fixtures();
    let admin = genesis(&committee, &chains)
        .initialize(&storage, Timestamp(0))
        .await
        .unwrap();
    // Resume after what an earlier writer committed.
    for chain in &mut chains {
        let state = storage.read_chain_state(chain.id()).await.unwrap().unwrap();
        while chain.state.next_height() < state.next_height() {
            chain.commit_blocks(&committee, 1).remove(0);
        }
        assert_eq!(
            chain.state.tip_hash(),
            state.tip_hash(),
            "the recovered tip"
        );
    }
    let worker = Arc::new(Worker::new(
        storage,
        None,
        Arc::new(SystemClock),
        WorkerConfig::new(admin),
    ));
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    for _ in 0..MAX_ROUNDS {
        // The next block of every chain, handed over at once: they share commits.
        let mut handles = Vec::new();
        for (index, chain) in chains.iter_mut().enumerate() {
            let certificate = chain.commit_blocks(&committee, 1).remove(0);
            let worker = worker.clone();
            let stdout = stdout.clone();
            handles.push(tokio::spawn(async move {
                let height = certificate.value().block().height.0;
                let hash = certificate.hash();
                worker
                    .handle_confirmed_certificate(certificate, CrossChainDelivery::NonBlocking)
                    .await
                    .unwrap();
                // Written straight to the file descriptor: the harness does not capture it.
                let mut out = stdout.lock().unwrap();
                writeln!(out, "{ACK} {index} {height} {hash}").unwrap();
                out.flush().unwrap();
            }));
        }
        for handle in handles {
            handle.await.unwrap();
        }
    }
}

/// An acknowledged block: chain index, height and certificate hash (as printed).
#[derive(Debug, PartialEq, Eq)]
struct Ack {
    chain: usize,
    height: u64,
    hash: String,
}

/// An acknowledgement line: `<ACK> <chain> <height> <certificate hash>`.
fn parse_chain_ack(line: &str) -> Option<Ack> {
    let [chain, height, hash] = quorum_testkit::crash::ack_fields(line, ACK)?[..] else {
        return None;
    };
    let chain = chain.parse().ok()?;
    let height = height.parse().ok()?;
    (chain < CHAINS && hash.len() == 64).then(|| Ack {
        chain,
        height,
        hash: hash.to_owned(),
    })
}

/// Starts a writer on `path`, kills it after [`KILL_AFTER`] acknowledgements, and returns every
/// acknowledgement it printed before dying.
fn run_group_writer_until_killed(path: &std::path::Path) -> Vec<Ack> {
    quorum_testkit::crash::run_until_killed(
        "group_commit_writer_child",
        WRITER_ENV,
        path,
        KILL_AFTER,
        TIMEOUT,
        parse_chain_ack,
    )
}

/// Reopens the database and checks it against every acknowledgement so far; returns the
/// recovered height of each chain.
async fn check_recovered(path: &std::path::Path, acks: &[Ack]) -> Vec<u64> {
    let storage = RedbStorage::open(path).unwrap();
    let (committee, chains) = fixtures();
    let mut recovered = Vec::new();
    for (index, mut chain) in chains.into_iter().enumerate() {
        let state = storage.read_chain_state(chain.id()).await.unwrap().unwrap();
        let next = state.next_height().0;
        // Every block below the state's height is there and is the fixture's.
        let heights: Vec<BlockHeight> = (0..next).map(BlockHeight).collect();
        let found = storage
            .read_certificates_by_heights(chain.id(), &heights)
            .await
            .unwrap();
        let mut hashes = Vec::new();
        for (height, found) in found.into_iter().enumerate() {
            let expected = chain.commit_blocks(&committee, 1).remove(0);
            let found = found
                .unwrap_or_else(|| panic!("chain {index}: certificate at height {height} lost"));
            assert_eq!(
                found, expected,
                "chain {index}: certificate at height {height}"
            );
            hashes.push(found.hash().to_string());
        }
        assert_eq!(
            state.tip_hash().map(|hash| hash.to_string()),
            hashes.last().cloned(),
            "chain {index}: the tip is the last certificate"
        );
        assert_eq!(
            state.balance(),
            chain.state.balance(),
            "chain {index}: balance"
        );
        let beyond = storage
            .read_certificate_hashes(chain.id(), &[BlockHeight(next)])
            .await
            .unwrap();
        assert_eq!(
            beyond,
            vec![None],
            "chain {index}: a certificate beyond the state"
        );
        // Every acknowledged block of the chain survived.
        for ack in acks.iter().filter(|ack| ack.chain == index) {
            assert_eq!(
                hashes.get(ack.height as usize),
                Some(&ack.hash),
                "chain {index}: acknowledged block at height {} lost",
                ack.height
            );
        }
        recovered.push(next);
    }
    recovered
}

#[test]
fn group_commit_loses_no_acknowledged_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group-commit-crash.redb");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut acks: Vec<Ack> = Vec::new();
    for round in 0..ROUNDS {
        let new = run_group_writer_until_killed(&path);
        assert!(new.len() >= KILL_AFTER, "round {round}");
        acks.extend(new);
        let recovered = runtime.block_on(check_recovered(&path, &acks));
        eprintln!(
            "round {round}: {} blocks acknowledged, recovered heights {recovered:?}",
            acks.len()
        );
    }
}

#[test]
fn group_acks_parse() {
    let hash = "ab".repeat(32);
    assert_eq!(
        parse_chain_ack(&format!(
            "test group_commit_writer_child ... {ACK} 3 7 {hash}"
        )),
        Some(Ack {
            chain: 3,
            height: 7,
            hash: hash.clone()
        })
    );
    assert_eq!(parse_chain_ack(&format!("{ACK} 99 7 {hash}")), None);
    assert_eq!(parse_chain_ack("running 1 test"), None);
}
