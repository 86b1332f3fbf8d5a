//! The client fails requests on a broken connection with a clear error and reconnects on the next.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{client_config, server_config, start_server, Request, Response};
use futures::{SinkExt, StreamExt};
use quorum_transport_tcp::{
    Client, ClientConfig, Envelope, FrameCodec, Server, ShutdownOutcome, TransportError,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::Framed;

#[tokio::test]
async fn reconnects_after_the_server_restarts() {
    let (first, handler, _) = start_server(server_config()).await;
    let addr = first.local_addr();
    let client = Client::<Request, Response>::new(addr.to_string(), client_config()).unwrap();
    assert_eq!(
        client.request(Request::Echo(1)).await,
        Ok(Response::Value(1))
    );

    assert_eq!(first.shutdown().await, ShutdownOutcome::Graceful);
    let failed = client.request(Request::Echo(2)).await;
    assert!(
        matches!(
            failed,
            Err(TransportError::ConnectionClosed
                | TransportError::Io { .. }
                | TransportError::Connect { .. })
        ),
        "{failed:?}"
    );

    let second = Server::bind(addr, server_config(), handler).await.unwrap();
    assert_eq!(
        client.request(Request::Echo(3)).await,
        Ok(Response::Value(3))
    );
    assert_eq!(second.active_connections(), 1);
}

/// A fake server: its first connection receives one request and gets `first_reply` (raw bytes)
/// back; its second connection is answered properly. Returns its address and its task.
async fn fake_server(first_reply: Vec<u8>) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (first, _) = listener.accept().await.unwrap();
        let mut first = Framed::new(first, FrameCodec::<Request>::new(1024));
        let request = first.next().await.unwrap().unwrap();
        assert_eq!(request.body, Request::Echo(1));
        first.get_mut().write_all(&first_reply).await.unwrap();

        let (second, _) = listener.accept().await.unwrap();
        let mut second = Framed::new(second, FrameCodec::<Request>::new(1024));
        let request = second.next().await.unwrap().unwrap();
        let Request::Echo(value) = request.body else {
            panic!("unexpected request {:?}", request.body)
        };
        second
            .send(&Envelope {
                request_id: request.request_id,
                body: Response::Value(value),
            })
            .await
            .unwrap();
        // The first connection stays open until now: only the client may have closed it.
        drop(first);
    });
    (addr, task)
}

#[tokio::test]
async fn bad_response_fails_the_request_and_the_next_one_reconnects() {
    // A frame whose body is no `Response` envelope.
    let (addr, fake) = fake_server(vec![0, 0, 0, 1, 0xff]).await;
    let client = Client::<Request, Response>::new(addr.to_string(), client_config()).unwrap();
    let failed = client.request(Request::Echo(1)).await;
    assert!(
        matches!(failed, Err(TransportError::Decode(_))),
        "{failed:?}"
    );
    assert_eq!(
        client.request(Request::Echo(2)).await,
        Ok(Response::Value(2))
    );
    fake.await.unwrap();
}

#[tokio::test]
async fn server_stalling_mid_frame_fails_the_request_and_the_next_one_reconnects() {
    // The beginning of a 50-byte frame, and nothing more.
    let (addr, fake) = fake_server(vec![0, 0, 0, 50, 1, 2, 3]).await;
    let timeout = Duration::from_millis(100);
    let config = ClientConfig {
        frame_read_timeout: timeout,
        ..client_config()
    };
    let client = Client::<Request, Response>::new(addr.to_string(), config).unwrap();
    let started = Instant::now();
    assert_eq!(
        client.request(Request::Echo(1)).await,
        Err(TransportError::Stalled { timeout })
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        client.request(Request::Echo(2)).await,
        Ok(Response::Value(2))
    );
    fake.await.unwrap();
}
