//! `--metrics ADDR`: the process's metrics in Prometheus text format over plain HTTP
//! (DESIGN §5.7). The libraries record through the `metrics` facade; this installs the
//! recorder and answers `GET /metrics` on a small listener of its own: a bounded number of
//! connections, a bounded request head and a deadline for it, so a peer cannot hold it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::error::CliError;

/// Most metrics connections served at once; others wait in the accept queue.
pub const MAX_METRICS_CONNECTIONS: usize = 16;
/// Largest request head read, in bytes.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// Time a peer has to send its request head and read the answer.
pub const METRICS_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The buckets of every latency histogram (a series ending in `_seconds`), in seconds: from
/// half a millisecond to ten seconds, so that the committee's quantiles can be computed from
/// the sum of every validator's buckets.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The buckets of every size histogram (a series ending in `_size`): powers of two to 1,024.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1_024.0,
];

/// Describes every library's series to the installed recorder (`# HELP` and units).
fn describe_all() {
    quorum_node::describe_metrics();
    quorum_transport_tcp::describe_metrics();
    quorum_transport_quic::describe_metrics();
    quorum_updater::describe_metrics();
    quorum_store_postgres::describe_metrics();
}

/// The recorder's configuration: every series ending in `_seconds` a histogram with
/// [`SECONDS_BUCKETS`], every one ending in `_size` a histogram with [`SIZE_BUCKETS`].
fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS)
}

/// Installs the Prometheus recorder (once per process), latencies and sizes as histograms
/// with [`SECONDS_BUCKETS`] and [`SIZE_BUCKETS`], every series described (`# HELP`), and
/// serves it on `address`. Returns the bound address (port 0 picks one).
pub async fn serve(address: SocketAddr) -> Result<SocketAddr, CliError> {
    let handle = builder()
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(CliError::MetricsRecorder)?;
    describe_all();
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| CliError::MetricsBind { address, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| CliError::MetricsBind { address, source })?;
    info!(%bound, "serving metrics at /metrics");
    let permits = Arc::new(Semaphore::new(MAX_METRICS_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        let answered =
                            tokio::time::timeout(METRICS_IO_TIMEOUT, answer(stream, &handle)).await;
                        if !matches!(answered, Ok(Ok(()))) {
                            debug!(%peer, "metrics request not answered");
                        }
                    });
                }
                Err(error) => {
                    warn!(%error, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(bound)
}

/// Reads one request head and answers it.
async fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 || head.len() + read > MAX_REQUEST_HEAD_BYTES {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let line = head.split(|byte| *byte == b'\r').next().unwrap_or_default();
    let (status, body) = if line.starts_with(b"GET /metrics ") || line == b"GET /metrics" {
        ("200 OK", handle.render())
    } else {
        (
            "404 Not Found",
            String::from("only GET /metrics is served\n"),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Mutex, PoisonError};

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use prometheus_parse::{Scrape, Value};

    use super::{builder, describe_all, SECONDS_BUCKETS, SIZE_BUCKETS};

    /// Remembers the name of every series described to it; records nothing.
    #[derive(Default)]
    struct Described(Mutex<BTreeSet<String>>);

    impl Described {
        fn add(&self, key: KeyName) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.as_str().to_owned());
        }
    }

    impl Recorder for Described {
        fn describe_counter(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
            self.add(key);
        }

        fn describe_gauge(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
            self.add(key);
        }

        fn describe_histogram(&self, key: KeyName, _: Option<Unit>, _: SharedString) {
            self.add(key);
        }

        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            Counter::noop()
        }

        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }

        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// The README's table of series and the libraries' descriptions name the same series:
    /// a series added to one and not the other fails here.
    #[test]
    fn the_readme_lists_every_described_series_and_nothing_else() {
        let described = Described::default();
        metrics::with_local_recorder(&described, describe_all);
        let described = described
            .0
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let listed: BTreeSet<String> = readme_series().into_iter().map(|(name, _)| name).collect();
        let unlisted: Vec<_> = described.difference(&listed).collect();
        let undescribed: Vec<_> = listed.difference(&described).collect();
        assert!(
            unlisted.is_empty() && undescribed.is_empty(),
            "described but not in README.md: {unlisted:?}; in README.md but not described: \
             {undescribed:?}"
        );
    }

    /// README.md's table of series: each name with its type (`counter`, `gauge` or
    /// `histogram`).
    fn readme_series() -> Vec<(String, String)> {
        include_str!("../../../README.md")
            .lines()
            .filter_map(|line| line.strip_prefix("| `quorum_"))
            .filter_map(|rest| {
                let (name, rest) = rest.split_once('`')?;
                let kind = rest.trim_start_matches(" |").split('|').next()?.trim();
                Some((format!("quorum_{name}"), kind.to_owned()))
            })
            .collect()
    }

    /// What the recorder serves, parsed by a Prometheus text-format parser, holds every
    /// series of README.md's table as the table says: its help text, its type, and for a
    /// histogram the buckets chosen for its range (a latency or size histogram without them
    /// would be served as a summary).
    #[test]
    fn the_exposition_parses_and_holds_every_documented_series_as_documented() {
        let series = readme_series();
        assert!(series.len() >= 30, "{series:?}");
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe_all();
            for (name, kind) in &series {
                match kind.as_str() {
                    "counter" => metrics::counter!(name.clone()).increment(3),
                    "gauge" => metrics::gauge!(name.clone()).set(2.0),
                    "histogram" => metrics::histogram!(name.clone()).record(0.003),
                    other => panic!("{name}: README.md says type {other:?}"),
                }
            }
        });
        let text = handle.render();
        let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap();
        for (name, kind) in &series {
            let help = scrape.docs.get(name).map(String::as_str).unwrap_or("");
            assert!(!help.is_empty(), "{name} has no help text:\n{text}");
            let sample = scrape
                .samples
                .iter()
                .find(|sample| &sample.metric == name)
                .unwrap_or_else(|| panic!("{name} not served:\n{text}"));
            match (kind.as_str(), &sample.value) {
                ("counter", Value::Counter(value)) => assert_eq!(*value, 3.0, "{name}"),
                ("gauge", Value::Gauge(value)) => assert_eq!(*value, 2.0, "{name}"),
                ("histogram", Value::Histogram(buckets)) => {
                    let bounds = if name.ends_with("_seconds") {
                        SECONDS_BUCKETS
                    } else {
                        SIZE_BUCKETS
                    };
                    let finite: Vec<f64> = buckets
                        .iter()
                        .map(|bucket| bucket.less_than)
                        .filter(|bound| bound.is_finite())
                        .collect();
                    assert_eq!(finite, bounds, "{name}'s buckets");
                    let all = buckets.iter().find(|bucket| bucket.less_than.is_infinite());
                    assert_eq!(all.map(|bucket| bucket.count), Some(1.0), "{name}");
                }
                (kind, value) => panic!("{name}: README.md says {kind}, served {value:?}"),
            }
        }
        // Nothing else is served: a family's samples, or a histogram's sum and count (which
        // the parser leaves untyped).
        let documented: BTreeSet<&str> = series.iter().map(|(name, _)| name.as_str()).collect();
        let mut served = BTreeSet::new();
        for sample in &scrape.samples {
            let family = match sample.value {
                Value::Untyped(_) => sample
                    .metric
                    .strip_suffix("_sum")
                    .or_else(|| sample.metric.strip_suffix("_count"))
                    .unwrap_or(&sample.metric),
                _ => sample.metric.as_str(),
            };
            served.insert(family);
        }
        assert_eq!(served, documented, "served and documented series differ");
    }
}
