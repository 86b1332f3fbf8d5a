//! Throughput of `quorum demo --chains 64 --faults none` by transport (DESIGN §6.2), in one
//! run: TCP (the floor this bench holds QUIC to: the goal is at least 0.8× its blocks/s),
//! QUIC with TLS 1.3, and a committee of half each. Each sample is one whole demo of
//! `QUORUM_ENGINE_BLOCKS` blocks (default 1,000) in the fast round; criterion reports the
//! time of the workload (the demo's own "elapsed", without start-up), and the bench prints
//! blocks/s.

use criterion::Criterion;

mod demo_runs;

use demo_runs::bench_demos;

/// The transports measured: a name and the demo's transport arguments.
const TRANSPORTS: [(&str, &[&str]); 3] = [
    ("tcp", &["--transport", "tcp"]),
    ("quic", &["--transport", "quic"]),
    ("mixed", &["--transport", "mixed"]),
];

fn transports(c: &mut Criterion) {
    bench_demos(c, "demo_64_chains_by_transport", &TRANSPORTS, |_, _| None);
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    transports(&mut criterion);
    criterion.final_summary();
}
