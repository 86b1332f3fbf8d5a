//! Throughput of `quorum demo --chains 64` by where validators keep their data (DESIGN §7.1),
//! in one run: redb (the floor: the embedded default), PostgreSQL, and each validator a proxy
//! with 1 and with 3 shards on PostgreSQL. Each sample is one whole demo of
//! `QUORUM_ENGINE_BLOCKS` blocks (default 1,000; no faults); criterion reports the time of the
//! workload (the demo's own "elapsed", without start-up), and the bench prints blocks/s and
//! the database round trips per committed block per validator that the demo measured.
//!
//! The PostgreSQL runs need the server of `QUORUM_POSTGRES_URL` (see README.md,
//! "PostgreSQL"); without it they are skipped, saying so.

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};

#[path = "../tests/common/mod.rs"]
mod common;

use common::run;

/// The engines measured: a name and the demo's storage arguments.
const ENGINES: [(&str, &[&str]); 4] = [
    ("redb", &[]),
    ("postgres", &["--storage", "postgres"]),
    (
        "postgres_1_shard",
        &["--storage", "postgres", "--shards", "1"],
    ),
    (
        "postgres_3_shards",
        &["--storage", "postgres", "--shards", "3"],
    ),
];

fn blocks() -> usize {
    std::env::var("QUORUM_ENGINE_BLOCKS")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1_000)
}

/// One demo: its workload's elapsed time and its round-trip line, if any. Panics, showing
/// its error, if the demo fails.
fn demo(dir: &Path, storage: &[&str], blocks: usize) -> Option<(Duration, String)> {
    let blocks = blocks.to_string();
    let mut args = vec![
        "demo", "--chains", "64", "--blocks", &blocks, "--faults", "none",
    ];
    args.extend_from_slice(storage);
    let output = run(dir, &args);
    // A failed demo is a finding, not a sample: stop and show it.
    assert!(
        output.status.success(),
        "quorum demo {storage:?} failed: {}",
        output.stderr
    );
    let line = |prefix: &str| {
        output
            .stdout
            .lines()
            .find(|line| line.starts_with(prefix))
            .map(str::to_owned)
    };
    let elapsed: f64 = line("elapsed")?.split_whitespace().nth(1)?.parse().ok()?;
    let trips = line("database round trips").unwrap_or_default();
    Some((Duration::from_secs_f64(elapsed), trips))
}

fn storage_engines(c: &mut Criterion) {
    let blocks = blocks();
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("no temporary directory");
        return;
    };
    let have_postgres = std::env::var("QUORUM_POSTGRES_URL").is_ok();
    let mut group = c.benchmark_group("demo_64_chains_by_storage");
    // One demo per sample: flat sampling, a short target time.
    group.sample_size(10);
    group.sampling_mode(criterion::SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    for (name, storage) in ENGINES {
        if !storage.is_empty() && !have_postgres {
            eprintln!("SKIPPED {name}: set QUORUM_POSTGRES_URL (README.md, \"PostgreSQL\")");
            continue;
        }
        let mut seen = Vec::new();
        group.bench_function(BenchmarkId::new(name, blocks), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    if let Some((elapsed, trips)) = demo(dir.path(), storage, blocks) {
                        total += elapsed;
                        seen.push((elapsed, trips));
                    }
                }
                total
            })
        });
        if let Some((elapsed, trips)) = seen.last() {
            let rate: Vec<f64> = seen
                .iter()
                .map(|(elapsed, _)| blocks as f64 / elapsed.as_secs_f64())
                .collect();
            let mean = rate.iter().sum::<f64>() / rate.len() as f64;
            eprintln!(
                "{name}: {mean:.1} blocks/s over {} demos (last {:.2} s); {trips}",
                rate.len(),
                elapsed.as_secs_f64()
            );
        }
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    storage_engines(&mut criterion);
    criterion.final_summary();
}
