//! What the demo benches share: one whole `quorum demo --chains 64 --faults none` per sample,
//! timed by the demo's own "elapsed" (the workload, without start-up), with the blocks/s of
//! every run and the demo's database round-trip line printed.

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};

#[path = "../../tests/common/mod.rs"]
mod common;

use common::run;

/// Blocks of each demo: `QUORUM_ENGINE_BLOCKS`, default 1,000.
fn blocks() -> usize {
    std::env::var("QUORUM_ENGINE_BLOCKS")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1_000)
}

/// One demo with `extra` arguments: its workload's elapsed time and its round-trip line, if
/// any. Panics, showing its error, if the demo fails.
fn demo(dir: &Path, extra: &[&str], blocks: usize) -> Option<(Duration, String)> {
    let blocks = blocks.to_string();
    let mut args = vec![
        "demo", "--chains", "64", "--blocks", &blocks, "--faults", "none",
    ];
    args.extend_from_slice(extra);
    let output = run(dir, &args);
    // A failed demo is a finding, not a sample: stop and show it.
    assert!(
        output.status.success(),
        "quorum demo {extra:?} failed: {}",
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

/// Benches the demo once per variant (a name and its extra arguments) in the group `group`,
/// in one run, and prints each variant's blocks/s; `skip` says why a variant cannot run here.
pub fn bench_demos(
    c: &mut Criterion,
    group: &str,
    variants: &[(&str, &[&str])],
    skip: impl Fn(&str, &[&str]) -> Option<String>,
) {
    let blocks = blocks();
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("no temporary directory");
        return;
    };
    let mut group = c.benchmark_group(group);
    // One demo per sample: flat sampling, a short target time.
    group.sample_size(10);
    group.sampling_mode(criterion::SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    for (name, extra) in variants {
        if let Some(reason) = skip(name, extra) {
            eprintln!("{reason}");
            continue;
        }
        let mut seen = Vec::new();
        group.bench_function(BenchmarkId::new(*name, blocks), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    if let Some((elapsed, trips)) = demo(dir.path(), extra, blocks) {
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
