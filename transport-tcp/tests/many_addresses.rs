//! Issue 27: what many attacking addresses can make a server hold is bounded by the server's
//! budget (plus one floor per address group), not by their number; an honest client in a group
//! of its own is served throughout (DESIGN §6.1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use common::{client_config, request_frame, server_config, start_server, Request, Response};
use quorum_transport_tcp::{Client, ServerConfig, ServerStats};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// Each attacking address's connections.
const CONNECTIONS_PER_ADDRESS: usize = 2;
/// Answers each attacking connection asks for and never reads.
const PIPELINED: u64 = 200;
/// The size of each answer, in bytes.
const ANSWER: u32 = 60_000;

fn config() -> ServerConfig {
    ServerConfig {
        max_frame_length: 128 * KIB,
        connection_budget: MIB,
        peer_budget: 2 * MIB,
        group_budget: 2 * MIB,
        server_budget: 4 * MIB,
        group_floor: 64 * KIB,
        response_reserve: 64 * KIB,
        write_timeout: Duration::from_secs(30),
        ..server_config()
    }
}

/// A connection from `source` whose receive buffer is small, so that unread answers stay in
/// the server.
async fn never_reading(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// Attackers at `sources` each pipeline [`PIPELINED`] requests for answers of [`ANSWER`] bytes
/// on [`CONNECTIONS_PER_ADDRESS`] connections and never read; once they hold all they can, an
/// honest client at 127.0.0.1 asks for small and large answers for a second. Returns the
/// server's stats, and the honest client's slowest pair of answers.
async fn attack(sources: &[String]) -> (ServerStats, Duration) {
    let (server, _, _) = start_server(config()).await;
    let honest =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(
        honest.request(Request::Echo(0)).await,
        Ok(Response::Value(0))
    );
    let requests: Vec<u8> = (0..PIPELINED)
        .flat_map(|id| request_frame(id, Request::MakeBlob(ANSWER)))
        .collect();
    let mut attackers = Vec::new();
    for source in sources {
        for _ in 0..CONNECTIONS_PER_ADDRESS {
            let mut stream = never_reading(source, server.local_addr()).await;
            let requests = requests.clone();
            attackers.push(tokio::spawn(async move {
                // Blocks once the server stops reading; aborted at the end.
                let _ = stream.write_all(&requests).await;
                std::future::pending::<TcpStream>().await
            }));
        }
    }
    // The attack fills what it can (the server's budget, and the kernel's socket buffers,
    // which cost CPU to fill but are not the server's memory)...
    let give_up = Instant::now() + Duration::from_secs(20);
    let mut last = server.stats().requests_received;
    let mut quiet_since = Instant::now();
    while Instant::now() < give_up && quiet_since.elapsed() < Duration::from_millis(300) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = server.stats().requests_received;
        if now != last {
            quiet_since = Instant::now();
            last = now;
        }
    }
    // ...then holds it, while the honest client is served.
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(1);
    let mut value = 1;
    while Instant::now() < until {
        let started = Instant::now();
        assert_eq!(
            honest.request(Request::Echo(value)).await,
            Ok(Response::Value(value))
        );
        assert_eq!(
            honest.request(Request::MakeBlob(ANSWER)).await,
            Ok(Response::Blob(vec![7; ANSWER as usize]))
        );
        slowest = slowest.max(started.elapsed());
        value += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = server.stats();
    for attacker in attackers {
        attacker.abort();
    }
    (stats, slowest)
}

/// What the server may hold at most for `groups` address groups (the honest one included)
/// and `connections` connections: its budget, one floor per group, and what each connection
/// may read past the budgets (one small frame and one response bound).
fn documented_bound(groups: usize, connections: usize) -> usize {
    let config = config();
    config.server_budget
        + groups * config.group_floor
        + connections * (config.large_frame_length + ANSWER as usize + 64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attackers_in_forty_groups_are_held_to_the_server_budget() {
    let sources: Vec<String> = (2..42).map(|group| format!("127.{group}.0.1")).collect();
    let (stats, slowest) = attack(&sources).await;
    let connections = sources.len() * CONNECTIONS_PER_ADDRESS + 1;
    let bound = documented_bound(sources.len() + 1, connections);
    assert!(
        stats.peak_server_bytes <= bound,
        "held {} bytes, bound {bound}",
        stats.peak_server_bytes
    );
    // Without the server budget, each address could hold its own budget: 40 × 2 MiB.
    assert!(
        stats.peak_server_bytes < sources.len() * config().peer_budget / 2,
        "held {} bytes",
        stats.peak_server_bytes
    );
    assert!(
        stats.peak_server_bytes >= config().server_budget / 2,
        "{stats:?}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "honest answer took {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attackers_filling_one_group_are_held_to_the_group_budget() {
    let sources: Vec<String> = (1..41).map(|host| format!("127.5.0.{host}")).collect();
    let (stats, slowest) = attack(&sources).await;
    let config = config();
    let connections = sources.len() * CONNECTIONS_PER_ADDRESS;
    let bound =
        config.group_budget + connections * (config.large_frame_length + ANSWER as usize + 64);
    assert!(
        stats.peak_group_bytes <= bound,
        "the group held {} bytes, bound {bound}",
        stats.peak_group_bytes
    );
    assert!(
        stats.peak_server_bytes < config.server_budget + 2 * MIB,
        "held {} bytes",
        stats.peak_server_bytes
    );
    assert!(
        slowest < Duration::from_secs(1),
        "honest answer took {slowest:?}"
    );
}
