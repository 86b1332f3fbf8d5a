//! Memory and concurrency budgets (DESIGN §6.1), measured through the counters the server
//! exposes ([`quorum_transport_tcp::ServerStats`]) rather than the process's memory:
//!
//! * a peer that never reads its responses is held to its connection budget, and the server
//!   stops reading it;
//! * a length prefix reserves nothing, and a partial frame holds what arrived, not what it
//!   announced;
//! * the server-wide receive budget caps the bytes of many stalled partial frames;
//! * handlers are capped across connections; large frames are decoded off the runtime threads.
//!
//! Honest clients are served during each. Small limits in the config, so a few connections hit
//! them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::Duration;

use common::{
    client_config, closings_logged, connection_from, eventually, raw_connection, request_frame,
    server_config, start_server, LogCapture, Request, Response, PATIENCE,
};
use quorum_transport_tcp::{Client, Server, ServerConfig, ServerStats};
use serde::{Deserialize, Deserializer, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

const KIB: usize = 1024;

fn client(server: &Server) -> Client<Request, Response> {
    Client::new(server.local_addr().to_string(), client_config()).unwrap()
}

/// Waits until `what` of the stats stops changing for `quiet`, for at most 5 s; returns the
/// stats then.
async fn settled<T: PartialEq>(
    server: &Server,
    quiet: Duration,
    what: impl Fn(&ServerStats) -> T,
) -> ServerStats {
    let give_up = Instant::now() + Duration::from_secs(5);
    let mut last = server.stats();
    let mut since = Instant::now();
    while Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = server.stats();
        if what(&now) != what(&last) {
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return now;
        }
        last = now;
    }
    last
}

/// A peer asks for 1,000 answers of `answer` bytes each, pipelined, and never reads a byte back,
/// while an honest client is served; returns the stats once the server has stopped reading it.
async fn never_reading_peer(budget: usize, reserve: usize, answer: u32) -> ServerStats {
    let config = ServerConfig {
        max_frame_length: 128 * KIB,
        connection_budget: budget,
        response_reserve: reserve,
        write_timeout: Duration::from_secs(20),
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;
    let honest = client(&server);
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );

    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut greedy = socket.connect(server.local_addr()).await.unwrap();
    let requests: Vec<u8> = (0..1000)
        .flat_map(|id| request_frame(id, Request::MakeBlob(answer)))
        .collect();
    greedy.write_all(&requests).await.unwrap();

    let stats = settled(&server, Duration::from_millis(300), |s| s.requests_received).await;
    // The server stopped reading once the budget was full: the requests are still in the
    // socket (only what the kernel's buffers took was answered).
    assert!(
        stats.requests_received < 500,
        "read {} of 1000",
        stats.requests_received
    );
    assert!(stats.queued_response_bytes > 0, "responses are waiting");

    // An honest client is served meanwhile, small and large answers alike.
    assert_eq!(
        honest.request(Request::Echo(2)).await,
        Ok(Response::Value(2))
    );
    assert_eq!(
        honest.request(Request::MakeBlob(answer)).await,
        Ok(Response::Blob(vec![7; answer as usize]))
    );

    // Once the greedy peer goes, everything it held is released.
    drop(greedy);
    eventually("the greedy connection is gone", || {
        server.active_connections() == 1
    })
    .await;
    eventually("its bytes are released", || {
        let stats = server.stats();
        stats.connection_bytes == 0 && stats.queued_response_bytes == 0
    })
    .await;
    stats
}

#[tokio::test]
async fn a_peer_that_never_reads_is_held_to_its_connection_budget() {
    // Answers of 60 KB fit their 64 KiB reserve: never over the budget.
    let budget = 256 * KIB;
    let stats = never_reading_peer(budget, 64 * KIB, 60_000).await;
    assert!(
        stats.peak_connection_bytes <= budget,
        "one connection held {} bytes",
        stats.peak_connection_bytes
    );
    assert!(stats.queued_response_bytes <= budget);
}

#[tokio::test]
async fn answers_larger_than_their_reserve_exceed_the_budget_by_at_most_the_documented_bound() {
    // Answers of 100 KB against a 32 KiB reserve: at most 256 / 32 = 8 handlers run at once, each
    // taking the connection over by at most 100 KB - 32 KiB (the frame prefix and envelope
    // aside).
    let (budget, reserve, answer) = (256 * KIB, 32 * KIB, 100_000);
    let frame = answer as usize + 16;
    let bound = budget + budget / reserve * (frame - reserve);
    let stats = never_reading_peer(budget, reserve, answer).await;
    assert!(
        stats.peak_connection_bytes <= bound,
        "one connection held {} bytes, bound {bound}",
        stats.peak_connection_bytes
    );
}

#[tokio::test]
async fn a_partial_frame_holds_what_arrived_not_what_its_prefix_announced() {
    let config = ServerConfig {
        frame_read_timeout: Duration::from_secs(20),
        ..server_config()
    };
    let max = config.max_frame_length;
    let (server, _, _) = start_server(config).await;
    let honest = client(&server);

    // Twenty peers announce the largest frame (20 MiB in all)...
    let mut peers = Vec::new();
    for _ in 0..20 {
        let (mut peer, _) = raw_connection(server.local_addr()).await;
        peer.write_all(&(max as u32).to_be_bytes()).await.unwrap();
        peers.push(peer);
    }
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
    let stats = server.stats();
    assert_eq!(stats.connection_bytes, 0, "a prefix alone reserves nothing");
    assert_eq!(stats.receive_bytes, 0);

    // ...then send 100 KB of it each: what is held follows what arrived.
    let sent = 100_000;
    for peer in &mut peers {
        peer.write_all(&vec![0; sent]).await.unwrap();
    }
    eventually("the bytes sent are received", || {
        server.stats().connection_bytes >= 20 * sent
    })
    .await;
    let stats = server.stats();
    let slack = 64 * KIB; // a buffer grows by at most this, or a quarter, ahead of the bytes
    assert!(
        stats.connection_bytes <= 20 * (sent + slack),
        "{} bytes held for {} received",
        stats.connection_bytes,
        20 * sent
    );
    assert_eq!(stats.receive_bytes, stats.connection_bytes, "large frames");
    assert_eq!(
        honest.request(Request::Echo(2)).await,
        Ok(Response::Value(2))
    );
}

#[tokio::test]
async fn the_receive_budget_caps_the_bytes_of_stalled_partial_frames() {
    let (logs, _guard) = LogCapture::start();
    let receive_budget = 2 * 1024 * KIB;
    let frame_read_timeout = Duration::from_secs(2);
    let config = ServerConfig {
        receive_budget,
        frame_read_timeout,
        min_receive_rate: u64::MAX,
        // The closings are summarised once per interval: soon enough for the test to see.
        log_interval: Duration::from_millis(200),
        ..server_config()
    };
    let max = config.max_frame_length;
    let (server, _, _) = start_server(config).await;
    let honest = client(&server);

    // Eight peers (each from an address of its own, so that the server-wide budget binds
    // before any address's share) each send 700 KB of a 1 MiB frame and stall: 5.6 MB, against
    // 2 MiB.
    let mut stalled = JoinSet::new();
    for peer in 0..8 {
        let source = format!("127.0.0.{}", 10 + peer);
        let mut peer = connection_from(&source, server.local_addr()).await;
        stalled.spawn(async move {
            let mut bytes = (max as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(&vec![1; 700_000]);
            // May block once the server stops reading; the task is aborted at the end.
            let _ = peer.write_all(&bytes).await;
            std::future::pending::<TcpStream>().await
        });
    }
    let stats = settled(&server, Duration::from_millis(200), |s| s.receive_bytes).await;
    assert!(
        stats.peak_receive_bytes >= receive_budget / 2,
        "only {} bytes received",
        stats.peak_receive_bytes
    );
    // The eight peers are one address group (127.0.0.0/24), which is admitted past the
    // budget while it holds less than its floor: at most one floor more.
    let floor = ServerConfig::default().group_floor;
    assert!(
        stats.peak_receive_bytes <= receive_budget + floor,
        "stalled frames held {} bytes",
        stats.peak_receive_bytes
    );
    // Small requests do not draw on the receive budget: the honest client is served.
    for value in 0..5 {
        assert_eq!(
            honest.request(Request::Echo(value)).await,
            Ok(Response::Value(value))
        );
    }

    // Frames stuck waiting for the budget count that time against their deadline: the stalled
    // connections are closed by it, their bytes released, and large requests served again.
    let closed = tokio::time::timeout(frame_read_timeout * 10, async {
        while server.stats().timed_out_connections < 8 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "stats: {:?}", server.stats());
    // The first closing on its own line, the others in one summary that counts them.
    eventually("the eight closings are logged", || {
        closings_logged(&logs.text()) == 8
    })
    .await;
    stalled.shutdown().await;
    eventually("their bytes are released", || {
        server.stats().receive_bytes == 0
    })
    .await;
    assert_eq!(server.active_connections(), 1);
    assert_eq!(
        honest.request(Request::Blob(vec![3; 300_000])).await,
        Ok(Response::Value(300_000))
    );
    assert!(server.stats().peak_receive_bytes <= receive_budget + floor);
}

#[tokio::test]
async fn handlers_are_capped_across_connections() {
    let config = ServerConfig {
        max_handlers: 2,
        ..server_config()
    };
    let (server, handler, mut entries) = start_server(config).await;
    let mut calls = JoinSet::new();
    for value in 0..4 {
        // One client, so one connection, each.
        let client = client(&server);
        calls.spawn(async move { client.request(Request::Gate(value)).await });
    }
    let mut entered = Vec::new();
    for _ in 0..2 {
        entered.push(
            tokio::time::timeout(PATIENCE, entries.recv())
                .await
                .unwrap(),
        );
    }
    eventually("four connections", || server.active_connections() == 4).await;
    // The other two wait for a handler.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), entries.recv())
            .await
            .is_err(),
        "a third handler ran"
    );
    assert_eq!(server.stats().running_handlers, 2);
    handler.gate.add_permits(4);
    while let Some(joined) = calls.join_next().await {
        assert!(matches!(joined.unwrap(), Ok(Response::Value(_))));
    }
    assert_eq!(handler.max_running.load(Ordering::SeqCst), 2);
    assert_eq!(server.stats().running_handlers, 0);
}

/// A request that notes which thread decoded it.
#[derive(Serialize)]
struct Probe(Vec<u8>);

/// Length of each `Probe` decoded, and the thread that decoded it.
static DECODED_ON: Mutex<Vec<(usize, ThreadId)>> = Mutex::new(Vec::new());

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = Vec::<u8>::deserialize(deserializer)?;
        let thread = std::thread::current().id();
        DECODED_ON.lock().unwrap().push((bytes.len(), thread));
        Ok(Probe(bytes))
    }
}

#[tokio::test]
async fn large_frames_are_decoded_off_the_runtime_threads() {
    // On a current-thread runtime the test's thread is the runtime's only one.
    let runtime_thread = std::thread::current().id();
    let config = ServerConfig {
        large_frame_length: 16 * KIB,
        ..server_config()
    };
    let server = Server::bind("127.0.0.1:0", config, |probe: Probe| async move {
        probe.0.len() as u64
    })
    .await
    .unwrap();
    let client =
        Client::<Probe, u64>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(client.request(Probe(vec![1; 1000])).await, Ok(1000));
    assert_eq!(client.request(Probe(vec![2; 100_000])).await, Ok(100_000));
    let decoded = DECODED_ON.lock().unwrap().clone();
    assert_eq!(decoded.len(), 2);
    assert_eq!(
        decoded[0],
        (1000, runtime_thread),
        "small: decoded in place"
    );
    assert_eq!(decoded[1].0, 100_000);
    assert_ne!(decoded[1].1, runtime_thread, "large: on a blocking thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_are_served_through_a_single_decoder() {
    let config = ServerConfig {
        large_frame_length: 16 * KIB,
        max_blocking_decodes: 1,
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;
    let mut calls = JoinSet::new();
    for i in 0..8u8 {
        let client = client(&server);
        calls.spawn(async move {
            let length = 20_000 + 10_000 * usize::from(i);
            let answer = client.request(Request::Blob(vec![i; length])).await;
            (length, answer)
        });
    }
    while let Some(joined) = calls.join_next().await {
        let (length, answer) = joined.unwrap();
        assert_eq!(answer, Ok(Response::Value(length as u64)));
    }
    let stats = server.stats();
    assert_eq!(stats.requests_received, 8);
    assert_eq!(stats.receive_bytes, 0);
    assert!(stats.peak_receive_bytes >= 20_000);
}
