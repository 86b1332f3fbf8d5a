//! Bad input closes only the offending connection, with a logged reason, while a well-behaved
//! client on another connection keeps being served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::time::Duration;

use common::{
    client_config, closings_logged, eventually, expect_closed, raw_connection, server_config,
    start_server, LogCapture, Request, Response,
};
use quorum_transport_tcp::{Client, Envelope, FrameCodec, Server, ServerConfig};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

/// What the bad peer does after writing its bytes.
#[derive(Clone, Copy)]
enum Then {
    /// Keep the connection open (the server must end it on its own).
    KeepOpen,
    /// Close its sending side.
    CloseWrite,
}

/// Starts a server and a good client, has a raw peer send `bytes`, and checks that the server
/// closes the raw connection, logs a warning naming the peer and `reason`, and goes on serving
/// the good client on its own connection.
async fn closes_only_the_bad_connection(bytes: &[u8], then: Then, reason: &str) {
    let (logs, _guard) = LogCapture::start();
    let (server, _, _) = start_server(server_config()).await;
    let good =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(good.request(Request::Echo(1)).await, Ok(Response::Value(1)));

    let (mut bad, bad_peer) = raw_connection(server.local_addr()).await;
    bad.write_all(bytes).await.unwrap();
    if let Then::CloseWrite = then {
        bad.shutdown().await.unwrap();
    }
    // The good client is served while the bad connection is pending and after it is closed.
    assert_eq!(good.request(Request::Echo(2)).await, Ok(Response::Value(2)));
    expect_closed(&mut bad).await;
    assert_eq!(good.request(Request::Echo(3)).await, Ok(Response::Value(3)));

    eventually("only the good connection is left", || {
        server.active_connections() == 1
    })
    .await;
    assert!(
        logs.has_line_with(&["WARN", "closing connection", &bad_peer, reason]),
        "no warning naming {bad_peer} and {reason:?} in:\n{}",
        logs.text()
    );
    assert!(
        !logs
            .text()
            .lines()
            .any(|line| line.contains("WARN") && !line.contains(&bad_peer)),
        "another connection was warned about:\n{}",
        logs.text()
    );
}

/// A frame whose length prefix is right but whose body is not a BCS envelope of a `Request`.
fn undecodable_frame() -> Vec<u8> {
    let mut body = 7u64.to_le_bytes().to_vec();
    body.push(0x7f); // no such `Request` variant
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[tokio::test]
async fn length_prefix_over_the_maximum() {
    let frame = u32::MAX.to_be_bytes();
    closes_only_the_bad_connection(&frame, Then::KeepOpen, "exceeds the maximum frame length")
        .await;
}

#[tokio::test]
async fn valid_frame_with_undecodable_body() {
    closes_only_the_bad_connection(
        &undecodable_frame(),
        Then::KeepOpen,
        "undecodable frame body",
    )
    .await;
}

#[tokio::test]
async fn truncated_frame_then_close() {
    let mut bytes = 100u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[1; 10]);
    closes_only_the_bad_connection(&bytes, Then::CloseWrite, "middle of a frame").await;
}

#[tokio::test]
async fn truncated_length_prefix_then_close() {
    closes_only_the_bad_connection(&[0, 0], Then::CloseWrite, "middle of a frame").await;
}

#[tokio::test]
async fn stall_in_the_middle_of_a_body() {
    let mut bytes = 100u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[1; 10]);
    closes_only_the_bad_connection(&bytes, Then::KeepOpen, "stalled mid-frame").await;
}

#[tokio::test]
async fn stall_in_the_middle_of_a_length_prefix() {
    closes_only_the_bad_connection(&[0, 0, 1], Then::KeepOpen, "stalled mid-frame").await;
}

#[tokio::test]
async fn stall_after_a_valid_request() {
    // A complete request is served; the partial frame behind it is still a stall.
    let mut codec = FrameCodec::<Request>::new(1024);
    let mut bytes = codec
        .encode_frame(&Envelope {
            request_id: 0,
            body: Request::Echo(5),
        })
        .unwrap()
        .to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 50, 1, 2]);
    closes_only_the_bad_connection(&bytes, Then::KeepOpen, "stalled mid-frame").await;
}

/// Sixteen peers sending random bytes are all closed, and the good client is served; the
/// closings are logged at most once per `log_interval`: the first one on its own line naming
/// the peer, the others in one summary that counts them (issue 27: never a line per attacker
/// connection).
#[tokio::test]
async fn random_bytes_from_many_peers() {
    let (logs, _guard) = LogCapture::start();
    let interval = Duration::from_millis(300);
    let config = ServerConfig {
        log_interval: interval,
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;
    let good =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(good.request(Request::Echo(1)).await, Ok(Response::Value(1)));

    let mut bad_peers = Vec::new();
    for seed in 0..16 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut bytes = vec![0u8; 1 + (rng.next_u32() % 2048) as usize];
        rng.fill_bytes(&mut bytes);
        let (mut stream, peer) = raw_connection(server.local_addr()).await;
        // The server may already have closed the connection: a failed write is fine.
        let _ = stream.write_all(&bytes).await;
        bad_peers.push((stream, peer));
    }
    assert_eq!(good.request(Request::Echo(2)).await, Ok(Response::Value(2)));
    for (stream, _) in &mut bad_peers {
        expect_closed(stream).await;
    }
    eventually("every closing is counted in the log", || {
        closings_logged(&logs.text()) == bad_peers.len() as u64
    })
    .await;
    let warnings = logs
        .text()
        .lines()
        .filter(|line| line.contains("WARN"))
        .count();
    assert!(
        warnings <= 3,
        "{warnings} warnings for 16 closings:\n{}",
        logs.text()
    );
    assert_eq!(good.request(Request::Echo(3)).await, Ok(Response::Value(3)));
    eventually("only the good connection is left", || {
        server.active_connections() == 1
    })
    .await;
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let (logs, _guard) = LogCapture::start();
    let config = ServerConfig {
        idle_timeout: Some(Duration::from_millis(100)),
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;
    let (mut idle, idle_peer) = raw_connection(server.local_addr()).await;
    expect_closed(&mut idle).await;
    assert!(logs.has_line_with(&["closing idle connection", &idle_peer]));
    // A client whose connection was closed for idleness reconnects on its next request.
    let client =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(
        client.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
    eventually("the client's connection is closed too", || {
        server.active_connections() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        client.request(Request::Echo(2)).await,
        Ok(Response::Value(2))
    );
}

#[tokio::test]
async fn server_survives_bad_input_then_shuts_down_cleanly() {
    let (server, _, _) = start_server(server_config()).await;
    let (mut bad, _) = raw_connection(server.local_addr()).await;
    bad.write_all(&undecodable_frame()).await.unwrap();
    expect_closed(&mut bad).await;
    let outcome = Server::shutdown(server).await;
    assert_eq!(outcome, quorum_transport_tcp::ShutdownOutcome::Graceful);
}

#[tokio::test]
async fn peer_that_does_not_read_its_responses() {
    let (logs, _guard) = LogCapture::start();
    let config = ServerConfig {
        write_timeout: Duration::from_millis(200),
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;
    let good =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(good.request(Request::Echo(1)).await, Ok(Response::Value(1)));

    // Ask for more response bytes than the socket buffers hold (a small receive buffer on our
    // side, at most 4 MiB of send buffer on the server's), and never read them.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut bad = socket.connect(server.local_addr()).await.unwrap();
    let bad_peer = bad.local_addr().unwrap().to_string();
    let mut codec = FrameCodec::<Request>::new(1024);
    for request_id in 0..8 {
        let frame = codec
            .encode_frame(&Envelope {
                request_id,
                body: Request::MakeBlob(1000 * 1000),
            })
            .unwrap();
        bad.write_all(&frame).await.unwrap();
    }
    eventually("the server gives up writing to the peer", || {
        logs.has_line_with(&[
            "WARN",
            "closing connection",
            &bad_peer,
            "did not accept data",
        ])
    })
    .await;
    eventually("only the good connection is left", || {
        server.active_connections() == 1
    })
    .await;
    assert_eq!(good.request(Request::Echo(2)).await, Ok(Response::Value(2)));
}
