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
    quorum_node::describe_metrics();
    quorum_transport_tcp::describe_metrics();
    quorum_transport_quic::describe_metrics();
    quorum_updater::describe_metrics();
    quorum_store_postgres::describe_metrics();
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
