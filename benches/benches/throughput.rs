//! Throughput (issue 12, DESIGN §9): blocks per second of a committee of four over loopback TCP
//! with durable redb, with 1, 4, 16, 64 and 256 chains driven at once by one client, their
//! blocks agreed in the fast round of their single owner and in two phases; beside each, in
//! the same run, the floor on one core (`quorum_benches::throughput::Floor`): the signatures
//! and hashes of 64 such blocks and all their verifications in one batch, so that no run can
//! beat it; and apart, their storage in one group commit per validator. The floor in blocks
//! per second for the machine is the floor's rate times the cores; the report
//! (`cargo run --release -p quorum-benches --bin report`) checks that no run beat it.
//!
//! Each iteration commits one block on every chain at once (criterion's throughput is in
//! blocks). Reduced mode: `QUORUM_THROUGHPUT_CHAINS=1,4 QUORUM_THROUGHPUT_ROUNDS=fast cargo
//! bench -p quorum-benches --bench throughput -- --quick`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use quorum_benches::throughput::{Floor, Network, Rounds, CHAIN_COUNTS, FLOOR_BLOCKS};
use quorum_benches::{run_spawned, runtime, settings};

/// [`CHAIN_COUNTS`], unless `QUORUM_THROUGHPUT_CHAINS` lists others (comma-separated).
fn chain_counts() -> Vec<usize> {
    match std::env::var("QUORUM_THROUGHPUT_CHAINS") {
        Ok(list) => list
            .split(',')
            .filter_map(|count| count.trim().parse().ok())
            .filter(|count| *count > 0)
            .collect(),
        Err(_) => CHAIN_COUNTS.to_vec(),
    }
}

/// Ways of agreeing on blocks driven, unless `QUORUM_THROUGHPUT_ROUNDS` lists some
/// (comma-separated, among `fast` and `two-phase`).
fn rounds() -> Vec<Rounds> {
    match std::env::var("QUORUM_THROUGHPUT_ROUNDS") {
        Ok(list) => list
            .split(',')
            .filter_map(|name| match name.trim() {
                "fast" => Some(Rounds::Fast),
                "two-phase" => Some(Rounds::TwoPhase),
                _ => None,
            })
            .collect(),
        Err(_) => vec![Rounds::Fast, Rounds::TwoPhase],
    }
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("throughput");
    settings::slow(&mut group, 10, 10);

    for rounds in rounds() {
        let name = rounds.name();
        let floor = Floor::new(rounds);
        group.throughput(Throughput::Elements(FLOOR_BLOCKS as u64));
        group.bench_function(format!("cpu_floor_64_blocks_one_core/{name}"), |b| {
            b.iter(|| floor.cpu_work())
        });
        let mut round = 0u64;
        group.bench_function(format!("storage_group_commit_64_blocks/{name}"), |b| {
            b.iter(|| {
                floor.group_commit(round);
                round += 1;
            })
        });
        for chains in chain_counts() {
            drive(&rt, &mut group, rounds, chains);
        }
    }
    group.finish();
}

/// Benches `chains` chains driven at once, their blocks agreed in `rounds`.
fn drive(
    rt: &tokio::runtime::Runtime,
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rounds: Rounds,
    chains: usize,
) {
    let network = Arc::new(rt.block_on(Network::new(chains, rounds)));
    // A first block per chain: connections, caches.
    let first = network.clone();
    run_spawned(rt, async move { first.one_block_per_chain().await });
    group.throughput(Throughput::Elements(chains as u64));
    let name = rounds.name();
    group.bench_function(
        format!("tcp_redb_4_validators/{name}/{chains}_chains"),
        |b| {
            b.iter_custom(|iterations| {
                let network = network.clone();
                run_spawned(rt, async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        total += network.one_block_per_chain().await;
                    }
                    total
                })
            })
        },
    );
}

fn main() {
    let mut criterion = settings::criterion();
    throughput(&mut criterion);
    criterion.final_summary();
}
