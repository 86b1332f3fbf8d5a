//! A `quorum client` command costs the work of its chain, not of the wallet (DESIGN §5.8):
//! `transfer` and `balance --chain` against four `quorum validator` processes on loopback,
//! with a genesis and wallet of 3 chains (the floor: what a command costs at all), 10,000 and
//! 100,000 chains, in the same run. Goal: at most 1.5× the 3-chain figure at both sizes.
//!
//! Each size gets its own `dev-genesis` directory and validators; the first command, which
//! writes the genesis into the client's new database and imports the wallet, runs before the
//! measurement. After the measured commands the growth of the client's database per command
//! is printed (it must not grow by more than what each command adds: one block).
//!
//! `QUORUM_WALLET_SIZES=3,10000` picks the sizes (default 3, 10000, 100000).

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{free_ports, quorum, start_validator, Validators};

/// Sizes measured unless `QUORUM_WALLET_SIZES` says otherwise.
const DEFAULT_SIZES: [usize; 3] = [3, 10_000, 100_000];

fn sizes() -> Vec<usize> {
    std::env::var("QUORUM_WALLET_SIZES")
        .ok()
        .map(|text| {
            text.split(',')
                .filter_map(|size| size.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| DEFAULT_SIZES.to_vec())
}

fn client(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["client", "--dir", dir.to_str().unwrap_or_default()];
    all.extend_from_slice(args);
    quorum(dir, &all)
}

fn database_bytes(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("client.redb")).map_or(0, |m| m.len())
}

fn wallet_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("client_command_by_wallet_size");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for chains in sizes() {
        let Ok(dir) = tempfile::tempdir() else {
            eprintln!("no temporary directory");
            return;
        };
        let path = dir.path();
        let base = free_ports(4);
        quorum(
            path,
            &[
                "dev-genesis",
                "--dir",
                path.to_str().unwrap_or_default(),
                "--validators",
                "4",
                "--chains",
                &chains.to_string(),
                "--base-port",
                &base.to_string(),
                "--insecure-seed",
                "7",
            ],
        );
        let _validators = Validators(
            (0..4)
                .map(|i| start_validator(&path.join(format!("validator-{i}.toml"))))
                .collect(),
        );
        // The database is made and the wallet imported once, outside the measurement.
        client(path, &["balance", "--chain", "1"]);
        let before = database_bytes(path);
        let mut commands = 0u64;
        group.bench_with_input(BenchmarkId::new("transfer", chains), &chains, |b, _| {
            b.iter(|| {
                commands += 1;
                client(
                    path,
                    &["transfer", "--from", "1", "--to", "2", "--amount", "1"],
                )
            })
        });
        let after = database_bytes(path);
        group.bench_with_input(BenchmarkId::new("balance", chains), &chains, |b, _| {
            b.iter(|| client(path, &["balance", "--chain", "2"]))
        });
        println!(
            "{chains} chains: client database {before} → {after} bytes over {commands} transfers \
             ({} bytes per transfer)",
            after.saturating_sub(before) / commands.max(1)
        );
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    wallet_size(&mut criterion);
    criterion.final_summary();
}
