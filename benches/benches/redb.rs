//! Target 6: committing a block's write batch with `RedbStorage::write_batch`, beside the raw
//! redb write transaction that inserts the same bytes.
//!
//! A block's batch is what the Worker writes when it commits a block of the test chain: the
//! block's event, its certificate (indexed by hash and by height) and the chain's new state.
//! Ours takes the `Batch` (BCS-encodes the certificate and the state, hops to tokio's blocking
//! pool, opens the tables, inserts, commits), called from a task on the runtime's workers as the
//! Worker calls it; the floor gets the bytes already encoded and runs the same transaction
//! directly on the bench thread: the same tables, keys and values.
//!
//! Two partial paths show where our overhead goes: `part_encode_and_raw_redb` (the floor plus
//! the BCS encoding, on the bench thread) and `part_raw_redb_via_spawn_blocking` (the floor's
//! transaction run on tokio's blocking pool from a task, as ours runs, without the encoding).
//!
//! Commits wait on the disk, whose latency drifts (other processes write too): after the
//! criterion benches, 1,000 interleaved pairs (ours, then the floor, then the floor, then ours,
//! …) give each side's median under the same conditions; that ratio is the one BENCHMARKS.md
//! judges (`<target>/criterion/redb_block_batch/paired.json`).
//!
//! Both durabilities our storage offers are measured: `immediate` (the default: fsync on every
//! commit) and `eventual`. Each side writes into its own database in the same temporary
//! directory, cycling through the same 1,000 blocks.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use quorum_benches::fixtures::committee;
use quorum_benches::{criterion_dir, run_spawned, runtime, settings};
use quorum_core::{
    Batch, ChainState, ConfirmedBlockCertificate, EventId, Operation, Storage, StreamId, Write,
};
use quorum_store_redb::{Durability, RedbOptions, RedbStorage};
use quorum_testkit::must;
use quorum_testkit::TestChain;
use redb::{Database, TableDefinition};

/// Blocks prepared (and cycled through).
const BLOCKS: usize = 1_000;
/// Pairs of the interleaved measurement.
const PAIRS: usize = 1_000;

// The tables of `quorum-store-redb` that a block's batch writes, with the same names and types.
const CERTIFICATES: TableDefinition<'static, &[u8; 32], &[u8]> =
    TableDefinition::new("certificates");
const CERTIFICATE_HASHES: TableDefinition<'static, (&[u8; 32], u64), &[u8; 32]> =
    TableDefinition::new("certificate_hashes");
const EVENTS: TableDefinition<'static, (&[u8; 32], u8, &str, u32), &[u8]> =
    TableDefinition::new("events");
const CHAIN_STATES: TableDefinition<'static, &[u8; 32], &[u8]> =
    TableDefinition::new("chain_states");

/// One block's writes, as a `Batch` and as the bytes they put in the tables.
struct Block {
    batch: Batch,
    hash: [u8; 32],
    chain: [u8; 32],
    height: u64,
    event: EventId,
    payload: Vec<u8>,
    certificate: Vec<u8>,
    state: Vec<u8>,
}

fn blocks() -> Vec<Block> {
    let committee = committee(4);
    let mut chain = TestChain::new(1, 30);
    (0..BLOCKS)
        .map(|index| {
            let stream = StreamId::user("test");
            let payload = format!("block {index}").into_bytes();
            let operations = vec![Operation::EmitEvent {
                stream: stream.clone(),
                payload: payload.clone(),
            }];
            let certificate: ConfirmedBlockCertificate = chain.commit_next(&committee, operations);
            let state: ChainState = chain.state.clone();
            let event = EventId {
                chain_id: chain.id(),
                stream,
                index: must(u32::try_from(index), "event index"),
            };
            let batch = Batch {
                writes: vec![
                    Write::Event(event.clone(), payload.clone()),
                    Write::Certificate(Arc::new(certificate.clone())),
                    Write::ChainState(Arc::new(state.clone())),
                ],
            };
            Block {
                batch,
                hash: certificate.hash().0,
                chain: chain.id().0 .0,
                height: certificate.value().block().height.0,
                event,
                payload,
                certificate: must(bcs::to_bytes(&certificate), "encoding a certificate"),
                state: must(bcs::to_bytes(&state), "encoding a chain state"),
            }
        })
        .collect()
}

/// The floor: one raw write transaction inserting `block`'s bytes.
fn raw_commit(database: &Database, durability: redb::Durability, block: &Block) {
    let mut transaction = must(database.begin_write(), "beginning a transaction");
    transaction.set_durability(durability);
    {
        let mut events = must(transaction.open_table(EVENTS), "opening events");
        let key = (
            &block.chain,
            1u8, // the user namespace's tag, as the storage writes it
            block.event.stream.name.as_str(),
            block.event.index,
        );
        must(events.insert(key, block.payload.as_slice()), "inserting");
        let mut certificates = must(transaction.open_table(CERTIFICATES), "opening certificates");
        must(
            certificates.insert(&block.hash, block.certificate.as_slice()),
            "inserting",
        );
        let mut hashes = must(
            transaction.open_table(CERTIFICATE_HASHES),
            "opening certificate hashes",
        );
        must(
            hashes.insert((&block.chain, block.height), &block.hash),
            "inserting",
        );
        let mut states = must(transaction.open_table(CHAIN_STATES), "opening chain states");
        must(
            states.insert(&block.chain, block.state.as_slice()),
            "inserting",
        );
    }
    must(transaction.commit(), "committing");
}

/// The floor's bytes of `block`, encoded now (as ours encodes them).
fn encode(block: &Block) -> Block {
    let writes = &block.batch.writes;
    let (Some(Write::Certificate(certificate)), Some(Write::ChainState(state))) =
        (writes.get(1), writes.get(2))
    else {
        panic!("a block's batch is event, certificate, chain state");
    };
    Block {
        batch: Batch::new(),
        hash: block.hash,
        chain: block.chain,
        height: block.height,
        event: block.event.clone(),
        payload: block.payload.clone(),
        certificate: must(bcs::to_bytes(&**certificate), "encoding a certificate"),
        state: must(bcs::to_bytes(&**state), "encoding a chain state"),
    }
}

/// Creates the floor's database with its tables.
fn raw_database(path: &Path) -> Database {
    let database = must(Database::create(path), "creating the raw database");
    let transaction = must(database.begin_write(), "beginning a transaction");
    must(transaction.open_table(EVENTS), "creating a table");
    must(transaction.open_table(CERTIFICATES), "creating a table");
    must(
        transaction.open_table(CERTIFICATE_HASHES),
        "creating a table",
    );
    must(transaction.open_table(CHAIN_STATES), "creating a table");
    must(transaction.commit(), "committing");
    database
}

fn redb_batches(c: &mut Criterion) {
    let rt = runtime();
    let blocks = Arc::new(blocks());
    let directory = must(tempfile::tempdir(), "a temporary directory");
    let mut paired_results = serde_json::Map::new();
    let mut group = c.benchmark_group("redb_block_batch");
    settings::fast(&mut group);
    // Commits wait on the disk: more samples to steady the figures.
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    for (name, durability, raw_durability) in [
        (
            "immediate",
            Durability::Immediate,
            redb::Durability::Immediate,
        ),
        ("eventual", Durability::Eventual, redb::Durability::Eventual),
    ] {
        let options = RedbOptions {
            durability,
            ..RedbOptions::default()
        };
        let storage = must(
            RedbStorage::open_with(directory.path().join(format!("ours-{name}.redb")), options),
            "opening our storage",
        );
        let database = raw_database(&directory.path().join(format!("raw-{name}.redb")));
        let mut next = 0;
        group.bench_function(format!("ours_write_batch_{name}"), |b| {
            b.iter_custom(|iters| {
                let (storage, blocks) = (storage.clone(), blocks.clone());
                let first = next;
                next += iters as usize;
                run_spawned(&rt, async move {
                    let mut total = Duration::ZERO;
                    for index in first..first + iters as usize {
                        let batch = blocks[index % BLOCKS].batch.clone();
                        let start = Instant::now();
                        must(storage.write_batch(batch).await, "writing a batch");
                        total += start.elapsed();
                    }
                    total
                })
            })
        });
        let database = Arc::new(database);
        let mut next = 0;
        group.bench_function(format!("part_encode_and_raw_redb_{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let block = &blocks[next % BLOCKS];
                    next += 1;
                    let start = Instant::now();
                    raw_commit(&database, raw_durability, &encode(block));
                    total += start.elapsed();
                }
                total
            })
        });
        group.bench_function(format!("part_raw_redb_via_spawn_blocking_{name}"), |b| {
            b.iter_custom(|iters| {
                let (database, blocks) = (database.clone(), blocks.clone());
                let first = next;
                next += iters as usize;
                run_spawned(&rt, async move {
                    let mut total = Duration::ZERO;
                    for index in first..first + iters as usize {
                        let (database, blocks) = (database.clone(), blocks.clone());
                        let start = Instant::now();
                        let commit = tokio::task::spawn_blocking(move || {
                            raw_commit(&database, raw_durability, &blocks[index % BLOCKS]);
                        });
                        must(commit.await, "a blocking commit");
                        total += start.elapsed();
                    }
                    total
                })
            })
        });
        group.bench_function(format!("floor_raw_redb_{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let block = &blocks[next % BLOCKS];
                    next += 1;
                    let start = Instant::now();
                    raw_commit(&database, raw_durability, block);
                    total += start.elapsed();
                }
                total
            })
        });
        let (ours, floor) = paired(&rt, &storage, &database, raw_durability, &blocks);
        paired_results.insert(
            name.to_owned(),
            serde_json::json!({ "pairs": PAIRS, "ours_median_ns": ours, "floor_median_ns": floor }),
        );
    }
    group.finish();
    println!("\nredb paired (interleaved) medians, {PAIRS} pairs per durability:");
    for (name, result) in &paired_results {
        let (ours, floor) = (
            result["ours_median_ns"].as_f64().unwrap_or(f64::NAN),
            result["floor_median_ns"].as_f64().unwrap_or(f64::NAN),
        );
        println!(
            "  {name}: ours {:.1} µs, floor {:.1} µs, ratio {:.2}",
            ours / 1e3,
            floor / 1e3,
            ours / floor
        );
    }
    let path = criterion_dir().join("redb_block_batch").join("paired.json");
    let written =
        std::fs::create_dir_all(criterion_dir().join("redb_block_batch")).and_then(|()| {
            std::fs::write(&path, serde_json::Value::Object(paired_results).to_string())
        });
    must(written, "writing the paired results");
}

/// Interleaved pairs (dozens of milliseconds in all): ours and the floor alternately on the
/// same block, the order swapped every pair, so that the disk's ups and downs hit both alike.
/// Returns the median time of each side, in nanoseconds.
fn paired(
    rt: &tokio::runtime::Runtime,
    storage: &RedbStorage,
    database: &Arc<Database>,
    durability: redb::Durability,
    blocks: &Arc<Vec<Block>>,
) -> (f64, f64) {
    let (storage, database, blocks) = (storage.clone(), database.clone(), blocks.clone());
    let (mut ours, mut floor) = run_spawned(rt, async move {
        let (mut ours, mut floor) = (Vec::with_capacity(PAIRS), Vec::with_capacity(PAIRS));
        for index in 0..PAIRS {
            let block = &blocks[index % BLOCKS];
            for side in [index % 2, 1 - index % 2] {
                if side == 0 {
                    let batch = block.batch.clone();
                    let start = Instant::now();
                    must(storage.write_batch(batch).await, "writing a batch");
                    ours.push(start.elapsed().as_nanos() as f64);
                } else {
                    let start = Instant::now();
                    raw_commit(&database, durability, block);
                    floor.push(start.elapsed().as_nanos() as f64);
                }
            }
        }
        (ours, floor)
    });
    (median(&mut ours), median(&mut floor))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let mut criterion = settings::criterion();
    redb_batches(&mut criterion);
    criterion.final_summary();
}
