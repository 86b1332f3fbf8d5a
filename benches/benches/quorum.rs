//! Target 3: `communicate_with_quorum` over transport-mem with per-validator delays, for
//! n = 4, 10 and 100, with equal delays and with a slow third, on real tokio time.
//!
//! Each validator is a Worker behind a `MemoryNode` whose `Fault::Slow` delays every call. The
//! floor is the ideal computed from the delays (see `quorum_benches::quorum::ideal`). Beside it
//! run two skeletons with no nodes and no tally: `floor_bare_timers`, the driver's timing (the
//! same delays as tokio sleeps, the same quorum count and grace, stopping like the driver),
//! which shows what tokio's millisecond timer wheel alone adds to the ideal; and
//! `floor_precise_timers`, the same on sub-millisecond timers, which is the ideal as measured.
//!
//! Two requests: `ours_chain_info` asks every validator for its chain information (the Worker
//! reads its state and signs the answer), `ours_trivial` asks `missing_blob_ids([])` (nothing to
//! do), which isolates the driver from the simulated validators' own work: in process, that work
//! runs on the client's cores instead of the validators' machines.
//!
//! The calls run in a task on the runtime's worker threads (`run_spawned`), as a client's code
//! does. Calls still running when the call returns finish in the background; each iteration
//! waits for them (outside the measured time) so that iterations do not overlap. At the end, every
//! scenario's individual call times are summarised beside the ideal.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use futures::stream::{FuturesUnordered, StreamExt};
use quorum_benches::quorum::{
    ideal, scenario_id, Ideal, QuorumNet, Spread, ALLOWANCE, SIZES, SLOW,
};
use quorum_benches::{run_spawned, runtime, settings};
use quorum_core::{ChainInfoQuery, ChainInfoResponse};
use quorum_testkit::must;
use quorum_updater::{communicate_with_quorum, Options, RemoteNode};
use tokio::time::Instant;

/// What `communicate_with_quorum` asks every validator.
#[derive(Clone, Copy)]
enum Request {
    /// Its chain information.
    ChainInfo,
    /// `missing_blob_ids([])`.
    Trivial,
}

/// What an iteration runs.
#[derive(Clone, Copy)]
enum Call {
    /// `communicate_with_quorum` with this request.
    Quorum(Request),
    /// The driver's timing skeleton on tokio timers.
    BareTimers,
    /// The skeleton on sub-millisecond timers.
    PreciseTimers,
}

/// One quorum call on `net`; returns its duration and the time it took to reach the quorum.
async fn call(net: &QuorumNet, options: &Options, request: Request) -> (Duration, Duration) {
    let start = Instant::now();
    let answered = match request {
        Request::ChainInfo => {
            let query = ChainInfoQuery::new(net.chain_id);
            communicate_with_quorum(
                &net.remotes,
                &net.committee,
                options,
                |response: &ChainInfoResponse| {
                    (response.info.next_block_height, response.info.block_hash)
                },
                |remote: RemoteNode| {
                    let query = query.clone();
                    async move { remote.node.handle_chain_info_query(query).await }
                },
            )
            .await
            .map(|((_, values), timing)| (values.len(), timing.to_quorum))
        }
        Request::Trivial => communicate_with_quorum(
            &net.remotes,
            &net.committee,
            options,
            |missing: &Vec<quorum_core::BlobId>| missing.len(),
            |remote: RemoteNode| async move { remote.node.missing_blob_ids(Vec::new()).await },
        )
        .await
        .map(|((_, values), timing)| (values.len(), timing.to_quorum)),
    };
    let elapsed = start.elapsed();
    let (answered, to_quorum) = must(answered, "a quorum call");
    assert!(answered as u64 >= net.committee.quorum_threshold());
    (elapsed, to_quorum)
}

/// The floor's skeleton: the same delays as bare sleeps, stopping like the driver does (at the
/// quorum plus the grace, or when every sleep is over). Returns the same two times as [`call`].
async fn bare_timers(delays: &[Duration]) -> (Duration, Duration) {
    let start = Instant::now();
    let quorum = 2 * delays.len() / 3 + 1;
    let mut sleeps: FuturesUnordered<_> = delays.iter().map(|d| tokio::time::sleep(*d)).collect();
    let mut heard = 0;
    let mut grace_end: Option<Instant> = None;
    let mut to_quorum = Duration::ZERO;
    loop {
        let stop_at = grace_end.unwrap_or(start + Duration::from_secs(60));
        tokio::select! {
            next = sleeps.next() => {
                if next.is_none() {
                    break;
                }
                heard += 1;
                if heard == quorum {
                    to_quorum = start.elapsed();
                    grace_end = Some(Instant::now() + to_quorum.mul_f64(default_grace()));
                }
            }
            () = tokio::time::sleep_until(stop_at) => break,
        }
    }
    (start.elapsed(), to_quorum)
}

/// Sleeps until `deadline` with sub-millisecond precision: tokio's timer until 2 ms before (its
/// wheel has 1 ms ticks and rounds deadlines up), then yielding until the instant.
async fn precise_sleep_until(deadline: Instant) {
    if let Some(coarse) = deadline.checked_sub(Duration::from_millis(2)) {
        if coarse > Instant::now() {
            tokio::time::sleep_until(coarse).await;
        }
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// The skeleton on precise timers: waits for the quorum-th delay, then for the grace (or the
/// slowest delay, if sooner), each to the microsecond. What the ideal looks like when measured.
async fn precise_timers(delays: &[Duration]) -> (Duration, Duration) {
    let start = Instant::now();
    let mut sorted = delays.to_vec();
    sorted.sort();
    let quorum = 2 * delays.len() / 3 + 1;
    precise_sleep_until(start + sorted[quorum - 1]).await;
    let to_quorum = start.elapsed();
    let grace_end = Instant::now() + to_quorum.mul_f64(default_grace());
    let slowest = start + sorted.last().copied().unwrap_or_default();
    precise_sleep_until(grace_end.min(slowest)).await;
    (start.elapsed(), to_quorum)
}

/// Individual calls per (request, scenario): the scenario's ideal, and each call's duration and
/// time to quorum.
type Samples = Mutex<Vec<(String, Ideal, Vec<(Duration, Duration)>)>>;

fn record(samples: &Samples, name: String, ideal: Ideal, took: (Duration, Duration)) {
    let mut samples = samples.lock().unwrap_or_else(PoisonError::into_inner);
    match samples.iter_mut().find(|(n, _, _)| *n == name) {
        Some((_, _, times)) => times.push(took),
        None => samples.push((name, ideal, vec![took])),
    }
}

/// Prints, per bench, the individual calls beside the ideals: issue 6's (quorum-th fastest
/// delay × (1 + grace)) and the best possible (that, or the slowest delay if smaller); the time
/// to quorum as measured; the overshoot of the call beyond the grace the driver itself aimed at
/// (measured time to quorum × (1 + grace)); and the share of calls within issue 6's ideal + 1 ms.
fn summarise(samples: &Samples) {
    let samples = samples.lock().unwrap_or_else(PoisonError::into_inner);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("\nquorum call summary (individual calls, milliseconds)");
    println!(
        "{:<32} {:>5} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>6}",
        "bench",
        "calls",
        "ideal",
        "best",
        "mean",
        "p50",
        "p95",
        "max",
        "to_q",
        "overshoot",
        "≤+1ms"
    );
    for (name, ideal, calls) in samples.iter() {
        let mut times: Vec<Duration> = calls.iter().map(|(total, _)| *total).collect();
        times.sort();
        let count = times.len().max(1);
        let mean = |values: &mut dyn Iterator<Item = f64>| values.sum::<f64>() / count as f64;
        let at = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
        let to_quorum = mean(&mut calls.iter().map(|(_, q)| ms(*q)));
        let overshoot = mean(
            &mut calls
                .iter()
                .map(|(total, q)| ms(*total) - ms(*q) * (1.0 + default_grace())),
        );
        let limit = ideal.quorum_plus_grace + ALLOWANCE;
        let within = times.iter().filter(|t| **t <= limit).count();
        println!(
            "{:<32} {:>5} {:>6.2} {:>6.2} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>+8.3} {:>5.0}%",
            name,
            times.len(),
            ms(ideal.quorum_plus_grace),
            ms(ideal.best),
            mean(&mut times.iter().map(|t| ms(*t))),
            at(0.5),
            at(0.95),
            at(1.0),
            to_quorum,
            overshoot,
            100.0 * within as f64 / count as f64
        );
    }
}

fn quorum(c: &mut Criterion) {
    let rt = runtime();
    let options = Arc::new(Options::default());
    let samples: Arc<Samples> = Arc::new(Mutex::new(Vec::new()));
    let mut group = c.benchmark_group("quorum_mem");
    settings::slow(&mut group, 20, 2);
    for n in SIZES {
        for spread in Spread::ALL {
            let net = Arc::new(rt.block_on(QuorumNet::new(spread, n)));
            let ideal = ideal(&net.delays);
            let id = scenario_id(spread, n);
            println!(
                "{id}: ideal (quorum-th fastest × (1 + grace)) = {:?}, best possible = {:?}",
                ideal.quorum_plus_grace, ideal.best
            );
            for (name, kind) in [
                ("ours_chain_info", Call::Quorum(Request::ChainInfo)),
                ("ours_trivial", Call::Quorum(Request::Trivial)),
                ("floor_bare_timers", Call::BareTimers),
                ("floor_precise_timers", Call::PreciseTimers),
            ] {
                group.bench_function(BenchmarkId::new(name, &id), |b| {
                    b.iter_custom(|iters| {
                        let (net, options, samples) =
                            (net.clone(), options.clone(), samples.clone());
                        let label = format!("{name}/{id}");
                        run_spawned(&rt, async move {
                            let mut total = Duration::ZERO;
                            for _ in 0..iters {
                                let took = match kind {
                                    Call::BareTimers => bare_timers(&net.delays).await,
                                    Call::PreciseTimers => precise_timers(&net.delays).await,
                                    Call::Quorum(request) => call(&net, &options, request).await,
                                };
                                total += took.0;
                                record(&samples, label.clone(), ideal, took);
                                // Let the calls still running in the background end.
                                tokio::time::sleep(SLOW.saturating_sub(took.0) + ALLOWANCE).await;
                            }
                            total
                        })
                    })
                });
            }
        }
    }
    group.finish();
    summarise(&samples);
}

fn main() {
    let mut criterion = settings::criterion();
    quorum(&mut criterion);
    criterion.final_summary();
}

/// The updater's default grace after quorum, as a fraction of the time to quorum.
fn default_grace() -> f64 {
    quorum_updater::Options::default().quorum_grace
}
