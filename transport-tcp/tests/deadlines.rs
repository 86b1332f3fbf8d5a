//! Deadlines (DESIGN §6.1): a connection that sends nothing is closed by the first-frame
//! deadline, one that sends only a length prefix or trickles its frame (slowloris) by the frame
//! deadline, in a fraction of a second with short deadlines; a large frame sent at a decent rate
//! is given the time its length needs; honest clients are served throughout.
//!
//! Real sockets with short real deadlines (100 ms); the bounds asserted leave a 10× margin. One
//! test runs the default 5 s first-frame deadline on tokio's paused clock.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::time::Duration;

use common::{
    client_config, closed_within, raw_connection, request_frame, server_config, start_server,
    LogCapture, Request, Response,
};
use quorum_transport_tcp::{Client, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_millis(100);

/// Short deadlines, the first-frame one or the frame one.
fn config(first_frame_timeout: Duration, frame_read_timeout: Duration) -> ServerConfig {
    ServerConfig {
        first_frame_timeout,
        frame_read_timeout,
        ..server_config()
    }
}

#[tokio::test]
async fn a_peer_that_sends_nothing_is_closed_by_the_first_frame_deadline() {
    let (logs, _guard) = LogCapture::start();
    let (server, _, _) = start_server(config(DEADLINE, Duration::from_secs(30))).await;
    let honest =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();

    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(raw_connection(server.local_addr()).await);
    }
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
    for (stream, peer) in &mut silent {
        assert!(
            closed_within(stream, DEADLINE * 10).await,
            "{peer} still open"
        );
        assert!(logs.has_line_with(&["no frame began in time", peer]));
    }
    assert!(started.elapsed() >= DEADLINE, "closed before the deadline");
    assert_eq!(server.stats().timed_out_connections, 5);
    // The honest client sent its first frame in time and is still served on that connection.
    assert_eq!(
        honest.request(Request::Echo(2)).await,
        Ok(Response::Value(2))
    );
    assert_eq!(server.active_connections(), 1);
}

#[tokio::test]
async fn a_peer_that_sends_only_a_length_prefix_is_closed_by_the_frame_deadline() {
    let (logs, _guard) = LogCapture::start();
    // The first-frame deadline is far: what closes the peer is its frame's.
    let (server, _, _) = start_server(config(Duration::from_secs(30), DEADLINE)).await;
    let honest =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    let (mut stalled, peer) = raw_connection(server.local_addr()).await;
    let started = Instant::now();
    stalled.write_all(&1000u32.to_be_bytes()).await.unwrap();
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
    assert!(closed_within(&mut stalled, DEADLINE * 10).await);
    assert!(started.elapsed() >= DEADLINE);
    assert!(logs.has_line_with(&["WARN", "closing connection", &peer, "stalled mid-frame"]));
    assert_eq!(server.stats().timed_out_connections, 1);
    assert_eq!(
        server.stats().connection_bytes,
        0,
        "the prefix held nothing"
    );
}

#[tokio::test]
async fn a_slowloris_is_closed_by_the_frame_deadline_though_it_keeps_sending() {
    let (logs, _guard) = LogCapture::start();
    let (server, _, _) = start_server(config(Duration::from_secs(30), DEADLINE)).await;
    let honest =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    let (mut slow, peer) = raw_connection(server.local_addr()).await;
    let started = Instant::now();
    slow.write_all(&1000u32.to_be_bytes()).await.unwrap();
    // A byte every 10 ms: never silent for long, never done. Bounded in count and in time.
    let mut closed = false;
    for _ in 0..100 {
        if slow.write_all(&[1]).await.is_err() {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(10), slow.read(&mut byte)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            closed = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(closed, "the slowloris was still open after {took:?}");
    assert!(
        took >= DEADLINE && took < DEADLINE * 10,
        "closed after {took:?}"
    );
    assert!(logs.has_line_with(&["closing connection", &peer, "stalled mid-frame"]));
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
}

#[tokio::test]
async fn a_large_frame_at_a_decent_rate_gets_the_time_its_length_needs() {
    // 100 ms for any frame, plus its length at 10 KB/s: 5.1 s for 50 KB, which is sent here in
    // about 250 ms, far beyond the 100 ms alone.
    let config = ServerConfig {
        min_receive_rate: 10_000,
        ..config(Duration::from_secs(30), DEADLINE)
    };
    let (server, _, _) = start_server(config).await;
    let (mut peer, _) = raw_connection(server.local_addr()).await;
    let frame = request_frame(4, Request::Blob(vec![5; 50_000]));
    for chunk in frame.chunks(frame.len() / 5 + 1) {
        peer.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut prefix = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(3), peer.read_exact(&mut prefix))
        .await
        .expect("no answer")
        .unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    peer.read_exact(&mut body).await.unwrap();
    let answer: quorum_transport_tcp::Envelope<Response> = bcs::from_bytes(&body).unwrap();
    assert_eq!(answer.request_id, 4);
    assert_eq!(answer.body, Response::Value(50_000));
    assert_eq!(server.stats().timed_out_connections, 0);
}

#[tokio::test(start_paused = true)]
async fn the_default_first_frame_deadline_is_five_seconds() {
    // On the paused clock: with every task waiting, time jumps to the next deadline.
    let (server, _, _) = start_server(ServerConfig::default()).await;
    let (mut silent, _) = raw_connection(server.local_addr()).await;
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(60)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(6),
        "closed after {took:?}"
    );
    assert_eq!(server.stats().timed_out_connections, 1);
}

#[tokio::test]
async fn a_peer_that_stops_mid_frame_is_closed_by_the_progress_timeout_and_frees_its_bytes() {
    let (logs, _guard) = LogCapture::start();
    // The frame's own deadline is far (30 s plus its length at 1 MiB/s); the progress timeout
    // (100 ms) is what closes the peer.
    let config = ServerConfig {
        frame_progress_timeout: DEADLINE,
        ..config(Duration::from_secs(30), Duration::from_secs(30))
    };
    let (server, _, _) = start_server(config).await;
    let honest =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    let (mut stalled, peer) = raw_connection(server.local_addr()).await;
    let frame = request_frame(9, Request::Blob(vec![3; 500_000]));
    stalled.write_all(&frame[..400_000]).await.unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut stalled, DEADLINE * 10).await,
        "still open"
    );
    assert!(started.elapsed() >= DEADLINE / 2, "closed too soon");
    assert!(logs.has_line_with(&["closing connection", &peer, "stalled mid-frame"]));
    assert_eq!(server.stats().timed_out_connections, 1);
    assert_eq!(
        honest.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
    assert_eq!(
        server.stats().connection_bytes,
        0,
        "the partial frame's bytes were not freed"
    );
}
