//! Throughput of `quorum demo --chains 64` by where validators keep their data (DESIGN §7.1),
//! in one run: redb (the floor: the embedded default), PostgreSQL, and each validator a proxy
//! with 1 and with 3 shards on PostgreSQL. Each sample is one whole demo of
//! `QUORUM_ENGINE_BLOCKS` blocks (default 1,000; no faults); criterion reports the time of the
//! workload (the demo's own "elapsed", without start-up), and the bench prints blocks/s and
//! the database round trips per committed block per validator that the demo measured.
//!
//! The PostgreSQL runs need the server of `QUORUM_POSTGRES_URL` (see README.md,
//! "PostgreSQL"); without it they are skipped, saying so.

use criterion::Criterion;

mod demo_runs;

use demo_runs::bench_demos;

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

fn storage_engines(c: &mut Criterion) {
    let have_postgres = std::env::var("QUORUM_POSTGRES_URL").is_ok();
    bench_demos(c, "demo_64_chains_by_storage", &ENGINES, |name, storage| {
        (!storage.is_empty() && !have_postgres)
            .then(|| format!("SKIPPED {name}: set QUORUM_POSTGRES_URL (README.md, \"PostgreSQL\")"))
    });
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    storage_engines(&mut criterion);
    criterion.final_summary();
}
