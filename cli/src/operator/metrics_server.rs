//! `--metrics ADDR`: the process's metrics in Prometheus text format over plain HTTP
//! (DESIGN §5.7). The libraries record through the `metrics` facade; this installs the
//! recorder and answers `GET /metrics` on a small listener of its own: a bounded number of
//! connections, a bounded request head and a deadline for it, so a peer cannot hold it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
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

/// Installs the Prometheus recorder (once per process), latencies and sizes as histograms
/// with [`SECONDS_BUCKETS`] and [`SIZE_BUCKETS`], every series described (`# HELP`), and
/// serves it on `address`. Returns the bound address (port 0 picks one).
pub async fn serve(address: SocketAddr) -> Result<SocketAddr, CliError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS)
        })
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

    use super::describe_all;

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
        let listed: BTreeSet<String> = include_str!("../../../README.md")
            .lines()
            .filter_map(|line| line.strip_prefix("| `quorum_"))
            .filter_map(|rest| rest.split_once('`'))
            .map(|(name, _)| format!("quorum_{name}"))
            .collect();
        let unlisted: Vec<_> = described.difference(&listed).collect();
        let undescribed: Vec<_> = listed.difference(&described).collect();
        assert!(
            unlisted.is_empty() && undescribed.is_empty(),
            "described but not in README.md: {unlisted:?}; in README.md but not described: \
             {undescribed:?}"
        );
    }
}
