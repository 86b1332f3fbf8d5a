//! Graceful shutdown: stop accepting, finish what is in flight, cut what overstays the grace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::time::Duration;

use common::{client_config, server_config, start_server, Request, Response, PATIENCE};
use quorum_transport_tcp::{Client, ServerConfig, ShutdownOutcome, TransportError};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

#[tokio::test]
async fn shutdown_waits_for_the_request_in_flight() {
    let (server, handler, mut entries) = start_server(server_config()).await;
    let addr = server.local_addr();
    let client = Client::<Request, Response>::new(addr.to_string(), client_config()).unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(Request::Gate(7)).await }
    });
    assert_eq!(
        entries.recv().await,
        Some(7),
        "the request reached the handler"
    );

    let shutdown = tokio::spawn(server.shutdown());
    // New connections are refused once the listener is gone.
    timeout(PATIENCE, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server kept accepting connections");
    assert!(!shutdown.is_finished(), "shutdown waits for the request");
    assert!(!call.is_finished());

    handler.gate.add_permits(1);
    assert_eq!(call.await.unwrap(), Ok(Response::Value(7)));
    assert_eq!(shutdown.await.unwrap(), ShutdownOutcome::Graceful);
}

#[tokio::test]
async fn shutdown_cuts_requests_that_outlast_the_grace_period() {
    let grace = Duration::from_millis(150);
    let config = ServerConfig {
        shutdown_grace: grace,
        ..server_config()
    };
    let (server, _, mut entries) = start_server(config).await;
    let client =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.request(Request::Gate(1)).await }
    });
    assert_eq!(entries.recv().await, Some(1));

    let started = Instant::now();
    assert_eq!(
        server.shutdown().await,
        ShutdownOutcome::DeadlineExceeded {
            aborted_connections: 1
        }
    );
    let took = started.elapsed();
    assert!(took >= grace && took < PATIENCE, "shutdown took {took:?}");
    let cut = call.await.unwrap();
    assert!(
        matches!(
            cut,
            Err(TransportError::ConnectionClosed | TransportError::Io { .. })
        ),
        "{cut:?}"
    );
}

#[tokio::test]
async fn shutdown_of_an_idle_server_is_immediate() {
    let (server, _, _) = start_server(server_config()).await;
    let client =
        Client::<Request, Response>::new(server.local_addr().to_string(), client_config()).unwrap();
    assert_eq!(
        client.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );
    let started = Instant::now();
    assert_eq!(server.shutdown().await, ShutdownOutcome::Graceful);
    assert!(started.elapsed() < Duration::from_millis(500));
}
