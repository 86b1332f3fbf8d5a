//! The fault proxy against a small echo server on loopback: each fault does what its
//! documentation says, switches apply to open connections, and stopping the proxy closes
//! everything. Every wait is bounded; timing assertions are lower bounds, or upper bounds with
//! a wide margin.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quorum_chaos::proxy::{FaultProxy, ProxyError, ProxyFault, ProxyHandle, ProxyStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The bound on anything that should happen "at once" (generous: loaded CI machines).
const PROMPTLY: Duration = Duration::from_secs(2);
/// How long a read must stay unanswered to count as "nothing came".
const SILENCE: Duration = Duration::from_millis(200);

/// Echoes every connection back until its client closes, then closes in order. Counts the
/// connections it has open. Stops (and closes them) when dropped.
struct EchoServer {
    addr: SocketAddr,
    open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl EchoServer {
    async fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&open);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let open = Arc::clone(&counter);
                open.fetch_add(1, Ordering::SeqCst);
                connections.spawn(async move {
                    let (mut reader, mut writer) = stream.split();
                    if tokio::io::copy(&mut reader, &mut writer).await.is_ok() {
                        let _ = writer.shutdown().await;
                    }
                    drop(stream);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        EchoServer { addr, open, task }
    }

    fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An echo server and a proxy in front of it.
async fn setup() -> (EchoServer, FaultProxy, ProxyHandle) {
    let echo = EchoServer::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let handle = proxy.handle();
    (echo, proxy, handle)
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    let stream = within(TcpStream::connect(proxy.local_addr()))
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// `future`'s output, or a test failure after [`PROMPTLY`].
async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(PROMPTLY, future)
        .await
        .expect("timed out")
}

/// Writes `message` and reads its echo, returning how long the round trip took.
async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Duration {
    let started = Instant::now();
    stream.write_all(message).await.unwrap();
    let mut echo = vec![0; message.len()];
    within(stream.read_exact(&mut echo)).await.unwrap();
    assert_eq!(echo, message);
    started.elapsed()
}

/// Asserts that nothing arrives on `stream` for [`SILENCE`] and that it was not closed.
async fn assert_silent(stream: &mut TcpStream) {
    let mut byte = [0; 1];
    match tokio::time::timeout(SILENCE, stream.read(&mut byte)).await {
        Err(_elapsed) => {}
        Ok(read) => panic!("expected silence, read {read:?}"),
    }
}

/// How a connection ended, as its client saw it.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// End of stream (FIN).
    Eof,
    /// A reset (`ECONNRESET`) or another read error.
    Reset(io::ErrorKind),
}

/// Reads `stream` until it ends (within [`PROMPTLY`]); returns the bytes read before and how
/// it ended.
async fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, End) {
    within(async {
        let mut received = Vec::new();
        let mut buffer = [0; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => return (received, End::Eof),
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(error) => return (received, End::Reset(error.kind())),
            }
        }
    })
    .await
}

/// Waits (within [`PROMPTLY`]) until the proxy's counters satisfy `condition`.
async fn stats_until(handle: &ProxyHandle, condition: impl Fn(&ProxyStats) -> bool) -> ProxyStats {
    within(async {
        loop {
            let stats = handle.stats();
            if condition(&stats) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Waits (within [`PROMPTLY`]) until `condition` holds.
async fn until(condition: impl Fn() -> bool) {
    within(async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// `len` bytes that are not all alike (so misordering shows).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn pass_forwards_bytes_both_ways_and_counts_them() {
    let (echo, proxy, handle) = setup().await;
    let mut stream = connect(&proxy).await;
    let message = pattern(300_000);
    let (mut reader, mut writer) = stream.split();
    let (_, echoed) = within(async {
        tokio::join!(writer.write_all(&message), async {
            let mut echoed = vec![0; message.len()];
            reader.read_exact(&mut echoed).await.map(|_| echoed)
        })
    })
    .await;
    assert_eq!(echoed.unwrap(), message);
    let stats = stats_until(&handle, |s| s.bytes_to_client == 300_000).await;
    assert_eq!(stats.bytes_to_upstream, 300_000);
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.connections_open, 1);
    assert_eq!(stats.connections_reset, 0);
    assert_eq!(echo.open_connections(), 1);
}

#[tokio::test]
async fn pass_forwards_end_of_stream_both_ways() {
    let (echo, proxy, handle) = setup().await;
    let mut stream = connect(&proxy).await;
    round_trip(&mut stream, b"hello").await;
    // The client closes its side; the echo server sees it, closes its own, and so does the
    // proxy: the client reads end of stream, and the connection is gone everywhere.
    stream.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut stream).await, (Vec::new(), End::Eof));
    until(|| echo.open_connections() == 0).await;
    let stats = stats_until(&handle, |s| s.connections_open == 0).await;
    assert_eq!(stats.connections_reset, 0);
}

#[tokio::test]
async fn latency_delays_each_direction_and_keeps_order() {
    const DELAY: Duration = Duration::from_millis(100);
    let (_echo, proxy, handle) = setup().await;
    let mut stream = connect(&proxy).await;
    handle.set(ProxyFault::Latency(DELAY));
    // Delayed once each way.
    let took = round_trip(&mut stream, b"ping").await;
    assert!(took >= 2 * DELAY, "round trip took {took:?}");
    assert!(took < 20 * DELAY, "round trip took {took:?}");
    // Many writes in a row: in order, and pipelined: all of them take about one round trip
    // (~300 ms), not one each (serialised, 40 chunks would take over 4 s).
    let started = Instant::now();
    let mut sent = Vec::new();
    for i in 0..40_u8 {
        let part = vec![i; 100];
        stream.write_all(&part).await.unwrap();
        sent.extend_from_slice(&part);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut received = vec![0; sent.len()];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut received))
        .await
        .expect("timed out")
        .unwrap();
    let took = started.elapsed();
    assert_eq!(received, sent);
    assert!(took >= 2 * DELAY, "took {took:?}");
    assert!(
        took < 30 * DELAY,
        "took {took:?}: the delays add up instead of overlapping"
    );
}

#[tokio::test]
async fn black_hole_reads_but_answers_nothing_and_keeps_the_connection_open() {
    let (echo, proxy, handle) = setup().await;
    let mut stream = connect(&proxy).await;
    round_trip(&mut stream, b"before").await;
    let before = stats_until(&handle, |s| s.bytes_to_client == 6).await;
    handle.set(ProxyFault::BlackHole);
    stream.write_all(b"lost").await.unwrap();
    assert_silent(&mut stream).await;
    // Still open: writing works, and the bytes are read (and discarded) by the proxy.
    stream.write_all(b"more").await.unwrap();
    assert_silent(&mut stream).await;
    let stats = stats_until(&handle, |s| s.bytes_black_holed == 8).await;
    assert_eq!(stats.bytes_to_upstream, before.bytes_to_upstream);
    assert_eq!(stats.connections_open, 1);
    assert_eq!(echo.open_connections(), 1);
    // New connections are accepted, and just as silent.
    let mut second = connect(&proxy).await;
    second.write_all(b"anyone?").await.unwrap();
    assert_silent(&mut second).await;
    // Even the client closing its side is not passed on: the echo server never closes.
    second.shutdown().await.unwrap();
    assert_silent(&mut second).await;
}

#[tokio::test]
async fn reset_closes_every_connection_and_refuses_new_ones() {
    let (echo, proxy, handle) = setup().await;
    let mut first = connect(&proxy).await;
    let mut second = connect(&proxy).await;
    round_trip(&mut first, b"one").await;
    round_trip(&mut second, b"two").await;
    // `second` is idle with nothing queued: the reset must still reach it at once.
    handle.set(ProxyFault::Reset);
    let started = Instant::now();
    for stream in [&mut first, &mut second] {
        let (received, end) = read_to_end(stream).await;
        assert!(received.is_empty());
        assert!(
            matches!(end, End::Reset(io::ErrorKind::ConnectionReset) | End::Eof),
            "{end:?}"
        );
    }
    assert!(started.elapsed() < PROMPTLY);
    // The upstream side was closed too.
    until(|| echo.open_connections() == 0).await;
    // A new connection is accepted by the kernel, then reset at once, never forwarded.
    match TcpStream::connect(proxy.local_addr()).await {
        Ok(mut third) => {
            let (received, end) = read_to_end(&mut third).await;
            assert!(received.is_empty(), "{end:?}");
        }
        Err(error) => assert_eq!(error.kind(), io::ErrorKind::ConnectionReset),
    }
    let stats = stats_until(&handle, |s| s.connections_refused == 1).await;
    assert_eq!(stats.connections_accepted, 3);
    assert_eq!(stats.connections_reset, 2);
    assert_eq!(stats.connections_open, 0);
    // Lifting the fault lets new connections through again.
    handle.set(ProxyFault::Pass);
    let mut fourth = connect(&proxy).await;
    round_trip(&mut fourth, b"back").await;
}

#[tokio::test]
async fn bandwidth_caps_throughput_per_direction() {
    const BYTES_PER_SECOND: u64 = 1_000_000;
    const LEN: usize = 200_000;
    let (_echo, proxy, handle) = setup().await;
    handle.set(ProxyFault::Bandwidth {
        bytes_per_second: BYTES_PER_SECOND,
    });
    let mut stream = connect(&proxy).await;
    let message = pattern(LEN);
    let started = Instant::now();
    let (mut reader, mut writer) = stream.split();
    let (written, echoed) = within(async {
        tokio::join!(writer.write_all(&message), async {
            let mut echoed = vec![0; LEN];
            reader.read_exact(&mut echoed).await.map(|_| echoed)
        })
    })
    .await;
    let took = started.elapsed();
    written.unwrap();
    assert_eq!(echoed.unwrap(), message);
    // 200 KB at 1 MB/s is 200 ms (each direction, overlapping), less a burst of ~20 ms.
    assert!(took >= Duration::from_millis(150), "took {took:?}");
    assert!(took < PROMPTLY, "took {took:?}");
}

#[tokio::test]
async fn reset_after_forwards_at_most_that_many_bytes_then_resets() {
    let (echo, proxy, handle) = setup().await;
    let mut stream = connect(&proxy).await;
    round_trip(&mut stream, b"warm").await;
    handle.set(ProxyFault::ResetAfter { bytes: 10 });
    stream.write_all(&pattern(100)).await.unwrap();
    let (received, end) = read_to_end(&mut stream).await;
    assert!(received.len() <= 10, "{} bytes came back", received.len());
    assert_eq!(received, pattern(100)[..received.len()]);
    assert!(
        matches!(end, End::Reset(io::ErrorKind::ConnectionReset) | End::Eof),
        "{end:?}"
    );
    let stats = stats_until(&handle, |s| s.connections_open == 0).await;
    // "warm" (4) then exactly the 10 allowed.
    assert_eq!(stats.bytes_to_upstream, 14);
    assert_eq!(stats.connections_reset, 1);
    until(|| echo.open_connections() == 0).await;
}

#[tokio::test]
async fn switching_faults_applies_to_an_open_connection() {
    const DELAY: Duration = Duration::from_millis(100);
    let (_echo, proxy, handle) = setup().await;
    let mut stream = connect(&proxy).await;
    round_trip(&mut stream, b"pass").await;
    // Black hole: what is sent now is lost for good...
    handle.set(ProxyFault::BlackHole);
    stream.write_all(b"lost").await.unwrap();
    assert_silent(&mut stream).await;
    // ...and once lifted, the same connection works again.
    handle.set(ProxyFault::Pass);
    round_trip(&mut stream, b"again").await;
    // Latency set on the open connection delays it.
    handle.set(ProxyFault::Latency(DELAY));
    let took = round_trip(&mut stream, b"slow").await;
    assert!(took >= 2 * DELAY, "took {took:?}");
    // A chunk waiting out a long latency goes at once when the fault is lifted.
    handle.set(ProxyFault::Latency(Duration::from_secs(3_600)));
    stream.write_all(b"stuck").await.unwrap();
    assert_silent(&mut stream).await;
    handle.set(ProxyFault::Pass);
    let mut echo = [0; 5];
    within(stream.read_exact(&mut echo)).await.unwrap();
    assert_eq!(&echo, b"stuck");
    // Every byte that was not black-holed went through, on one connection.
    let stats = stats_until(&handle, |s| s.bytes_to_client == 18).await;
    assert_eq!(stats.bytes_to_upstream, 18);
    assert_eq!(stats.bytes_black_holed, 4);
    assert_eq!(stats.connections_accepted, 1);
}

#[tokio::test]
async fn dropping_the_proxy_closes_everything() {
    let (echo, proxy, handle) = setup().await;
    let addr = proxy.local_addr();
    let mut first = connect(&proxy).await;
    let mut second = connect(&proxy).await;
    round_trip(&mut first, b"one").await;
    round_trip(&mut second, b"two").await;
    // Even a connection whose bytes are held back is closed.
    handle.set(ProxyFault::Latency(Duration::from_secs(3_600)));
    second.write_all(b"held").await.unwrap();
    drop(proxy);
    for stream in [&mut first, &mut second] {
        let (received, _end) = read_to_end(stream).await;
        assert!(received.is_empty());
    }
    until(|| echo.open_connections() == 0).await;
    stats_until(&handle, |s| s.connections_open == 0).await;
    // The listener is gone too.
    within(async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn shutdown_waits_until_every_task_and_socket_is_gone() {
    let (echo, proxy, handle) = setup().await;
    let addr = proxy.local_addr();
    let mut stream = connect(&proxy).await;
    round_trip(&mut stream, b"hi").await;
    within(proxy.shutdown()).await;
    assert_eq!(handle.stats().connections_open, 0);
    let refused = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    let (received, _end) = read_to_end(&mut stream).await;
    assert!(received.is_empty());
    until(|| echo.open_connections() == 0).await;
    // A handle that outlives its proxy still reads the counts; setting a fault is harmless.
    handle.set(ProxyFault::Reset);
    assert_eq!(handle.stats().connections_accepted, 1);
}

#[tokio::test]
async fn an_unreachable_upstream_resets_the_client() {
    // A loopback port with nobody listening.
    let vacant = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = vacant.local_addr().unwrap();
    drop(vacant);
    let proxy = FaultProxy::start(upstream).await.unwrap();
    let handle = proxy.handle();
    let mut stream = connect(&proxy).await;
    let (received, end) = read_to_end(&mut stream).await;
    assert!(received.is_empty());
    assert!(
        matches!(end, End::Reset(io::ErrorKind::ConnectionReset) | End::Eof),
        "{end:?}"
    );
    let stats = stats_until(&handle, |s| s.connections_open == 0).await;
    assert_eq!(stats.upstream_connect_failures, 1);
    assert_eq!(stats.connections_reset, 1);
}

#[tokio::test]
async fn refuses_an_upstream_off_loopback() {
    let upstream: SocketAddr = "192.0.2.1:7000".parse().unwrap();
    let error = FaultProxy::start(upstream).await.unwrap_err();
    assert!(matches!(error, ProxyError::NotLoopback { upstream: u } if u == upstream));
    assert!(error.to_string().contains("192.0.2.1:7000"), "{error}");
    // IPv6 loopback is fine.
    let proxy = FaultProxy::start("[::1]:7000".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(proxy.upstream(), "[::1]:7000".parse().unwrap());
    assert!(proxy.local_addr().ip().is_loopback());
}
