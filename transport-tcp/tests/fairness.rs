//! What one peer address may take of what all peers share (DESIGN §6.1): its peer budget of
//! memory across all its connections, its share of the receive budget for large frames, its
//! handlers; and a peer that has gone frees what its partial frames hold at once, even while
//! they wait for a budget.
//!
//! Peers play different addresses from `127.0.0.0/8` (all local on Linux); the honest client
//! is `127.0.0.1`. Small limits in the config, so a few connections reach them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{
    client_config, connection_from, eventually, request_frame, server_config, start_server,
    Request, Response, PATIENCE,
};
use quorum_transport_tcp::{Client, Server, ServerConfig, LENGTH_PREFIX_LEN};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, Instant};

const KIB: usize = 1024;

fn client(server: &Server) -> Client<Request, Response> {
    Client::new(server.local_addr().to_string(), client_config()).unwrap()
}

/// A connection from `source` with a small receive buffer, so that answers it never reads
/// pile up on the server rather than in the kernel.
async fn never_reading_from(source: &str, server: &Server) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * KIB as u32).unwrap();
    socket
        .bind(std::net::SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(server.local_addr()).await.unwrap()
}

/// Sends the length prefix of a frame of `length` bytes and `sent` bytes of its body (or what
/// the kernel's buffers take within a second, once the server stops reading).
async fn partial_frame(stream: &mut TcpStream, length: usize, sent: usize) {
    let mut frame = (length as u32).to_be_bytes().to_vec();
    frame.resize(LENGTH_PREFIX_LEN + sent, 0);
    let _ = timeout(Duration::from_secs(1), stream.write_all(&frame)).await;
}

#[tokio::test]
async fn the_connections_of_one_address_together_hold_at_most_its_peer_budget() {
    let (connection_budget, peer_budget, reserve) = (256 * KIB, 512 * KIB, 64 * KIB);
    let config = ServerConfig {
        max_frame_length: 128 * KIB,
        connection_budget,
        peer_budget,
        response_reserve: reserve,
        write_timeout: Duration::from_secs(20),
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;
    let honest = client(&server);

    // Eight connections of one address each ask for 200 answers of 60 KB and never read: alone,
    // each could hold its 256 KiB, 2 MiB in all.
    let connections = 8;
    let mut greedy = Vec::new();
    for _ in 0..connections {
        let mut stream = never_reading_from("127.0.0.2", &server).await;
        let requests: Vec<u8> = (0..200)
            .flat_map(|id| request_frame(id, Request::MakeBlob(60_000)))
            .collect();
        // The server stops reading: what does not fit stays with the sender.
        let _ = timeout(Duration::from_millis(200), stream.write_all(&requests)).await;
        greedy.push(stream);
    }
    let quiet = Instant::now() + Duration::from_millis(300);
    while Instant::now() < quiet {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = server.stats();
    assert!(stats.queued_response_bytes > 0, "answers are waiting");
    // Past the peer budget, each connection may have read one small frame and set one reserve
    // aside (answers fit their reserve).
    let bound = peer_budget + connections * (reserve + 8 * KIB);
    assert!(
        stats.peak_peer_bytes <= bound,
        "one address held {} bytes, bound {bound}",
        stats.peak_peer_bytes
    );
    assert!(stats.connection_bytes <= bound);

    // Another address is served meanwhile, small and large answers alike.
    assert_eq!(
        honest.request(Request::Echo(2)).await,
        Ok(Response::Value(2))
    );
    assert_eq!(
        honest.request(Request::MakeBlob(60_000)).await,
        Ok(Response::Blob(vec![7; 60_000]))
    );
    drop(greedy);
    eventually("everything the address held is released", || {
        let stats = server.stats();
        stats.connection_bytes == 0 && stats.queued_response_bytes == 0
    })
    .await;
}

#[tokio::test]
async fn stalled_large_frames_of_one_address_leave_the_receive_budget_to_the_others() {
    let max = 256 * KIB;
    let config = ServerConfig {
        max_frame_length: max,
        large_frame_length: 16 * KIB,
        receive_budget: 4 * max,
        receive_share_per_ip: max,
        frame_read_timeout: Duration::from_secs(30),
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;

    // Two attacking addresses, eight connections each, announce the largest frame and send
    // most of it, then stall: alone they would take the whole receive budget (4 frames).
    let mut stalled = Vec::new();
    for source in ["127.0.0.2", "127.0.0.3"] {
        for _ in 0..8 {
            let mut stream = connection_from(source, server.local_addr()).await;
            partial_frame(&mut stream, max, max - KIB).await;
            stalled.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = server.stats().receive_bytes;
    assert!(
        held <= 2 * (max + LENGTH_PREFIX_LEN),
        "two addresses hold {held} bytes of the receive budget, more than their two shares"
    );

    // An honest large request from a third address is served at once, not starved.
    let honest = client(&server);
    let started = Instant::now();
    assert_eq!(
        honest.request(Request::Blob(vec![1; 200 * KIB])).await,
        Ok(Response::Value(200 * KIB as u64))
    );
    assert!(
        started.elapsed() < PATIENCE,
        "the honest large request waited {:?}",
        started.elapsed()
    );
    assert!(server.stats().peak_receive_bytes <= 3 * (max + LENGTH_PREFIX_LEN));
}

#[tokio::test]
async fn a_peer_that_goes_away_while_its_frame_waits_for_the_budget_frees_it_at_once() {
    let max = 256 * KIB;
    let config = ServerConfig {
        max_frame_length: max,
        large_frame_length: 16 * KIB,
        receive_budget: max,
        receive_share_per_ip: max,
        frame_read_timeout: Duration::from_secs(30),
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;

    // The first frame takes almost the whole receive budget and stalls.
    let mut holder = connection_from("127.0.0.2", server.local_addr()).await;
    partial_frame(&mut holder, max, max - KIB).await;
    eventually("the first frame holds the budget", || {
        server.stats().receive_bytes >= max - KIB
    })
    .await;
    // The second waits for the budget, its bytes in the socket.
    let mut waiter = connection_from("127.0.0.3", server.local_addr()).await;
    partial_frame(&mut waiter, max, 100 * KIB).await;
    eventually("both connections are open", || {
        server.active_connections() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.active_connections(), 2, "the waiter still waits");

    // Its peer goes: the server notices within a moment, not at the frame's 30 s deadline.
    drop(waiter);
    let gone = Instant::now();
    eventually("the waiting connection is closed", || {
        server.active_connections() == 1
    })
    .await;
    assert!(
        gone.elapsed() < Duration::from_secs(1),
        "{:?}",
        gone.elapsed()
    );
    assert_eq!(server.stats().timed_out_connections, 0);
    drop(holder);
    eventually("the budget is free again", || {
        server.stats().receive_bytes == 0
    })
    .await;
}

#[tokio::test]
async fn one_address_runs_at_most_its_handlers_while_another_is_served() {
    let config = ServerConfig {
        max_handlers_per_ip: 3,
        ..server_config()
    };
    let (server, handler, _) = start_server(config).await;

    // One address sends twenty requests that never finish, over two connections.
    let mut hogs = Vec::new();
    for _ in 0..2 {
        let mut stream = connection_from("127.0.0.2", server.local_addr()).await;
        for id in 0..10 {
            stream
                .write_all(&request_frame(id, Request::Hang))
                .await
                .unwrap();
        }
        hogs.push(stream);
    }
    eventually("the address's handlers are all taken", || {
        server.stats().running_handlers == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.stats().running_handlers, 3, "no more than its three");
    assert_eq!(handler.max_running.load(Ordering::SeqCst), 3);

    // Another address is served at once.
    let honest = client(&server);
    assert_eq!(
        honest.request(Request::Echo(5)).await,
        Ok(Response::Value(5))
    );
}

#[tokio::test]
async fn large_frames_of_one_address_are_admitted_whole_and_never_wait_on_each_other() {
    let max = 256 * KIB;
    let config = ServerConfig {
        max_frame_length: max,
        large_frame_length: 16 * KIB,
        receive_budget: 8 * max,
        receive_share_per_ip: 2 * (max + LENGTH_PREFIX_LEN),
        frame_read_timeout: Duration::from_secs(2),
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;

    // Four connections of one address each send the first half of a large frame, then, a
    // moment later, the second: halves of four frames are more than the address's share of
    // two, so frames taking it bit by bit would all wait on each other until their deadline.
    let frames: Vec<Vec<u8>> = (0..4)
        .map(|id| request_frame(id, Request::Blob(vec![3; max - KIB])))
        .collect();
    let mut streams = Vec::new();
    for frame in &frames {
        let mut stream = connection_from("127.0.0.2", server.local_addr()).await;
        let _ = timeout(
            Duration::from_millis(500),
            stream.write_all(&frame[..frame.len() / 2]),
        )
        .await;
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answers = streams
        .into_iter()
        .zip(frames)
        .map(|(mut stream, frame)| async move {
            stream.write_all(&frame[frame.len() / 2..]).await.unwrap();
            let mut prefix = [0u8; LENGTH_PREFIX_LEN];
            tokio::io::AsyncReadExt::read_exact(&mut stream, &mut prefix)
                .await
                .is_ok()
        });
    let started = Instant::now();
    let answered = futures::future::join_all(answers).await;
    assert_eq!(answered, vec![true; 4], "every frame answered");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.stats().timed_out_connections, 0);
}

/// Queues ten requests from 127.0.9.1 that each keep a thread busy for 100 ms, waits until
/// one runs, then asks once from the honest 127.0.0.1 (another /24): how many of the ten were
/// answered before the honest request.
async fn answered_before_honest(config: ServerConfig) -> usize {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    const QUEUED: u64 = 10;
    let (server, _, _) = start_server(config).await;
    let busy = connection_from("127.0.9.1", server.local_addr()).await;
    let (mut read, mut write) = busy.into_split();
    let answered = Arc::new(AtomicUsize::new(0));
    let reader = tokio::spawn({
        let answered = Arc::clone(&answered);
        async move {
            let mut prefix = [0u8; LENGTH_PREFIX_LEN];
            while read.read_exact(&mut prefix).await.is_ok() {
                let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
                if read.read_exact(&mut body).await.is_err() {
                    break;
                }
                answered.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    for id in 0..QUEUED {
        let busy = Request::Busy {
            value: id,
            millis: 100,
        };
        write.write_all(&request_frame(id, busy)).await.unwrap();
    }
    eventually("a busy handler runs", || {
        server.stats().running_handlers >= 1
    })
    .await;
    let honest = client(&server);
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
    let before_honest = answered.load(Ordering::SeqCst);
    drop(write);
    reader.abort();
    before_honest
}

/// The server's handler slots go to the group that used the least handler time: with one
/// slot, an honest request from another group is answered after at most the busy handler
/// running, not behind the ten the busy group queued first (DESIGN §6.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_group_does_not_keep_another_groups_request_waiting_behind_its_own() {
    let config = ServerConfig {
        max_handlers: 1,
        ..server_config()
    };
    let before_honest = answered_before_honest(config).await;
    assert!(
        before_honest <= 2,
        "{before_honest} of the busy group's requests were answered before the honest one"
    );
}

/// The cores go to the group that used the least handler time, poll by poll: with every
/// handler of the busy group running at once and one turn on the cores, an honest request
/// from another group waits for at most one busy poll, not behind all ten (DESIGN §6.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_group_does_not_keep_another_groups_handler_off_the_cores() {
    let config = ServerConfig {
        max_polling_handlers: 1,
        ..server_config()
    };
    let before_honest = answered_before_honest(config).await;
    assert!(
        before_honest <= 2,
        "{before_honest} of the busy group's requests were answered before the honest one"
    );
}
