//! Criterion settings: short enough for a whole run in a few minutes on 2 cores.
//!
//! Each group gets a short warm-up and measurement time; slow benches (a whole sync, a quorum
//! call that waits for real timers) use flat sampling so that criterion needs only
//! `sample_size` iterations. `cargo bench -p quorum-benches -- --quick` shortens it further.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};

/// The criterion instance of every bench file: no plots (they cost time and nobody reads them
/// here), and whatever the command line adds (`--quick`, a filter, …).
pub fn criterion() -> Criterion {
    Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args()
}

/// Settings for a group of fast benches (micro- to milliseconds per iteration).
pub fn fast(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
}

/// Settings for a group of slow benches (tens of milliseconds to a second per iteration):
/// flat sampling, `samples` samples, a measurement budget of `seconds`.
pub fn slow(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize, seconds: u64) {
    group
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(seconds))
        .sample_size(samples.max(10));
}
