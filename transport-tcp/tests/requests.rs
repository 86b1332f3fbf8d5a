//! Requests through a real client and server: round trip, multiplexing, backpressure, timeouts,
//! oversize messages, pooling.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{
    client_config, eventually, server_config, start_server, LogCapture, Request, Response,
};
use quorum_transport_tcp::{Client, ClientConfig, Server, ServerConfig, TransportError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;

#[tokio::test]
async fn round_trip() {
    let (server, _, _) = start_server(server_config()).await;
    let client =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(
        client.request(Request::Echo(42)).await,
        Ok(Response::Value(42))
    );
    assert_eq!(
        client.request(Request::MakeBlob(3)).await,
        Ok(Response::Blob(vec![7; 3]))
    );
    assert_eq!(server.active_connections(), 1);
}

/// 200 requests at once on one connection, answered in a shuffled order, each reach their caller.
async fn many_concurrent_requests(client_config: ClientConfig, seed: u64) {
    let (server, handler, _) = start_server(server_config()).await;
    let client =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut calls = JoinSet::new();
    for value in 0..200u64 {
        let client = client.clone();
        let millis = rng.gen_range(0..20);
        calls.spawn(async move {
            let response = client.request(Request::Delayed { value, millis }).await;
            (value, response)
        });
    }
    let mut answered = 0;
    while let Some(joined) = calls.join_next().await {
        let (value, response) = joined.unwrap();
        assert_eq!(response, Ok(Response::Value(value)));
        answered += 1;
    }
    assert_eq!(answered, 200);
    assert_eq!(server.active_connections(), 1, "all on one connection");
    assert!(
        handler.max_running.load(Ordering::SeqCst) > 1,
        "requests were served concurrently"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_on_one_connection() {
    many_concurrent_requests(client_config(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_requests_through_a_small_in_flight_window() {
    let config = ClientConfig {
        max_in_flight: 16,
        ..client_config()
    };
    many_concurrent_requests(config, 2).await;
}

#[tokio::test]
async fn client_bounds_requests_in_flight() {
    let (server, handler, _) = start_server(server_config()).await;
    let config = ClientConfig {
        max_in_flight: 3,
        ..client_config()
    };
    let client = Client::<Request, Response>::new(server.local_addr().to_string(), config).unwrap();
    let mut calls = JoinSet::new();
    for value in 0..30 {
        let client = client.clone();
        calls.spawn(async move { client.request(Request::Delayed { value, millis: 5 }).await });
    }
    while let Some(joined) = calls.join_next().await {
        assert!(joined.unwrap().is_ok());
    }
    let max = handler.max_running.load(Ordering::SeqCst);
    assert!((2..=3).contains(&max), "max in flight was {max}");
}

#[tokio::test]
async fn server_bounds_requests_in_flight_per_connection() {
    let config = ServerConfig {
        max_in_flight: 2,
        ..server_config()
    };
    let (server, handler, _) = start_server(config).await;
    let client =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    let mut calls = JoinSet::new();
    for value in 0..20 {
        let client = client.clone();
        calls.spawn(async move { client.request(Request::Delayed { value, millis: 5 }).await });
    }
    while let Some(joined) = calls.join_next().await {
        assert!(joined.unwrap().is_ok());
    }
    assert_eq!(handler.max_running.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn per_request_timeout_leaves_the_connection_usable() {
    let (server, _, _) = start_server(server_config()).await;
    let limit = Duration::from_millis(100);
    let config = ClientConfig {
        request_timeout: limit,
        ..client_config()
    };
    let client = Client::<Request, Response>::new(server.local_addr().to_string(), config).unwrap();
    assert_eq!(
        client.request(Request::Hang).await,
        Err(TransportError::Timeout(limit))
    );
    // Answered after the caller gave up: the late response must be dropped harmlessly.
    assert_eq!(
        client
            .request(Request::Delayed {
                value: 1,
                millis: 150
            })
            .await,
        Err(TransportError::Timeout(limit))
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        client.request(Request::Echo(2)).await,
        Ok(Response::Value(2))
    );
    assert_eq!(server.active_connections(), 1, "no reconnection was needed");
}

#[tokio::test]
async fn oversize_request_is_refused_before_sending() {
    let (server, _, _) = start_server(server_config()).await;
    let config = ClientConfig {
        max_frame_length: 64,
        ..client_config()
    };
    let client = Client::<Request, Response>::new(server.local_addr().to_string(), config).unwrap();
    let refused = client.request(Request::Blob(vec![1; 100])).await;
    assert!(
        matches!(refused, Err(TransportError::FrameTooLarge { max: 64, .. })),
        "{refused:?}"
    );
    assert_eq!(server.active_connections(), 0, "nothing was sent");
    assert_eq!(
        client.request(Request::Echo(5)).await,
        Ok(Response::Value(5))
    );
}

#[tokio::test]
async fn oversize_response_is_dropped_and_logged() {
    let (logs, _guard) = LogCapture::start();
    let config = ServerConfig {
        max_frame_length: 1024,
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;
    let limit = Duration::from_millis(200);
    let client_config = ClientConfig {
        request_timeout: limit,
        ..client_config()
    };
    let client =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config).unwrap();
    assert_eq!(
        client.request(Request::MakeBlob(4096)).await,
        Err(TransportError::Timeout(limit))
    );
    assert!(logs.has_line_with(&["WARN", "cannot be framed", "exceeds the maximum"]));
    assert_eq!(
        client.request(Request::Echo(9)).await,
        Ok(Response::Value(9))
    );
}

#[tokio::test]
async fn handler_panic_loses_only_its_request() {
    let (logs, _guard) = LogCapture::start();
    let (server, _, _) = start_server(server_config()).await;
    let limit = Duration::from_millis(200);
    let config = ClientConfig {
        request_timeout: limit,
        ..client_config()
    };
    let client = Client::<Request, Response>::new(server.local_addr().to_string(), config).unwrap();
    assert_eq!(
        client.request(Request::Panic).await,
        Err(TransportError::Timeout(limit))
    );
    assert_eq!(
        client.request(Request::Echo(3)).await,
        Ok(Response::Value(3))
    );
    eventually("the panic is logged", || {
        logs.has_line_with(&["ERROR", "panicked"])
    })
    .await;
}

#[tokio::test]
async fn pool_spreads_requests_over_its_connections() {
    let (server, _, _) = start_server(server_config()).await;
    let config = ClientConfig {
        pool_size: 3,
        ..client_config()
    };
    let client = Client::<Request, Response>::new(server.local_addr().to_string(), config).unwrap();
    for value in 0..6 {
        assert_eq!(
            client.request(Request::Echo(value)).await,
            Ok(Response::Value(value))
        );
    }
    eventually("three connections are open", || {
        server.active_connections() == 3
    })
    .await;
}

#[tokio::test]
async fn invalid_config_is_refused() {
    let config = ClientConfig {
        max_in_flight: 0,
        ..client_config()
    };
    assert!(matches!(
        Client::<Request, Response>::new("127.0.0.1:1", config),
        Err(error) if error.is_invalid_config()
    ));
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error() {
    // Bind then drop a listener, so the port is (almost certainly) closed.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let client = Client::<Request, Response>::new(addr.to_string(), client_config()).unwrap();
    let refused = client.request(Request::Echo(1)).await;
    assert!(
        matches!(refused, Err(TransportError::Connect { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn waiting_for_a_free_slot_is_not_a_stall() {
    // One slot and a short frame read timeout: while the slow request holds the slot, the next
    // request waits unread for longer than the timeout, which must not count against the peer.
    let config = ServerConfig {
        max_in_flight: 1,
        frame_read_timeout: Duration::from_millis(40),
        ..server_config()
    };
    let (server, _, _) = start_server(config).await;
    let client =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    let slow = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .request(Request::Delayed {
                    value: 1,
                    millis: 200,
                })
                .await
        }
    });
    let fast = tokio::spawn({
        let client = client.clone();
        async move { client.request(Request::Echo(2)).await }
    });
    assert_eq!(slow.await.unwrap(), Ok(Response::Value(1)));
    assert_eq!(fast.await.unwrap(), Ok(Response::Value(2)));
    assert_eq!(server.active_connections(), 1);
}

#[tokio::test]
async fn a_closure_is_a_handler() {
    let server = Server::bind("127.0.0.1:0", server_config(), |n: u64| async move {
        n.wrapping_add(1)
    })
    .await
    .unwrap();
    let client = Client::<u64, u64>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(client.request(41).await, Ok(42));
}
