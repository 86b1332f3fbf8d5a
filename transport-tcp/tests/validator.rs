//! The validator protocol over TCP beyond the conformance suite: bad input from one peer closes
//! only its connection while `TcpValidatorNode` clients keep being served, and failures on the
//! way map to the right `NodeError`s.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;

use std::time::Duration;

use common::{client_config, eventually, expect_closed, raw_connection, server_config, LogCapture};
use quorum_core::protocol::{Request, Response};
use quorum_core::{
    Blob, BlockHeight, ChainInfoQuery, CrossChainDelivery, NodeError, TransportErrorKind,
    ValidatorNode,
};
use quorum_node::ManualClock;
use quorum_testkit::transport_conformance::TestValidator;
use quorum_testkit::START;
use quorum_transport_tcp::{
    serve_validator, ClientConfig, Envelope, Server, ServerConfig, TcpValidatorNode,
    ValidatorHandler,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// A validator served on a free loopback port, and a client of it.
async fn served_validator(config: ServerConfig) -> (TestValidator, Server, TcpValidatorNode) {
    let validator = TestValidator::new(ManualClock::new(START)).await;
    let server = serve_validator(validator.node(), "127.0.0.1:0", config)
        .await
        .unwrap();
    let client = TcpValidatorNode::new(server.local_addr().to_string(), client_config()).unwrap();
    (validator, server, client)
}

/// A frame (length prefix and body) around `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

/// The BCS body of a valid request envelope.
fn request_body(request: Request) -> Vec<u8> {
    bcs::to_bytes(&Envelope {
        request_id: 3,
        body: request,
    })
    .unwrap()
}

/// Asks the validator about chain 1 through `client`, and expects the Worker's own answer.
async fn served(client: &TcpValidatorNode, validator: &TestValidator) {
    let query = ChainInfoQuery::new(validator.chain_id(1));
    let direct = validator
        .worker
        .handle_chain_info_query(query.clone())
        .await;
    assert!(direct.is_ok());
    assert_eq!(client.handle_chain_info_query(query).await, direct);
}

/// Valid frames whose bodies are not a decodable validator `Request` envelope, each with a name.
fn undecodable_frames() -> Vec<(&'static str, Vec<u8>)> {
    let blob_id = Blob::data(b"some blob".to_vec()).id();
    let valid = request_body(Request::DownloadBlob(blob_id));

    // Request id, then a variant index no `Request` has.
    let mut unknown_variant = 7u64.to_le_bytes().to_vec();
    unknown_variant.push(0x7f);
    // A known variant whose payload is cut short.
    let truncated = valid[..valid.len() - 1].to_vec();
    // A complete request followed by a stray byte.
    let mut trailing = valid.clone();
    trailing.push(0);
    // A request of another protocol (the generic layer's test protocol).
    let foreign = bcs::to_bytes(&Envelope {
        request_id: 1,
        body: common::Request::Echo(5),
    })
    .unwrap();
    // Sanity: the valid body does decode.
    assert!(bcs::from_bytes::<Envelope<Request>>(&valid).is_ok());
    vec![
        ("unknown variant", frame(&unknown_variant)),
        ("truncated payload", frame(&truncated)),
        ("trailing byte", frame(&trailing)),
        ("another protocol", frame(&foreign)),
    ]
}

#[tokio::test]
async fn undecodable_request_closes_only_its_connection() {
    for (what, bytes) in undecodable_frames() {
        let (logs, _guard) = LogCapture::start();
        let (validator, server, client) = served_validator(server_config()).await;
        served(&client, &validator).await;

        let (mut bad, bad_peer) = raw_connection(server.local_addr()).await;
        bad.write_all(&bytes).await.unwrap();
        // The client is served while the bad connection is being dealt with, and after.
        served(&client, &validator).await;
        expect_closed(&mut bad).await;
        served(&client, &validator).await;

        eventually("only the client's connection is left", || {
            server.active_connections() == 1
        })
        .await;
        assert!(
            logs.has_line_with(&[
                "WARN",
                "closing connection",
                &bad_peer,
                "undecodable frame body"
            ]),
            "{what}: no warning naming {bad_peer} in:\n{}",
            logs.text()
        );
        assert!(
            !logs
                .text()
                .lines()
                .any(|line| line.contains("WARN") && !line.contains(&bad_peer)),
            "{what}: another connection was warned about:\n{}",
            logs.text()
        );
        assert_eq!(
            server.shutdown().await,
            quorum_transport_tcp::ShutdownOutcome::Graceful
        );
    }
}

#[tokio::test]
async fn answer_of_the_wrong_kind_is_malformed() {
    let server = Server::bind("127.0.0.1:0", server_config(), |_request: Request| async {
        Response::MissingBlobIds(Ok(Vec::new()))
    })
    .await
    .unwrap();
    let client = TcpValidatorNode::new(server.local_addr().to_string(), client_config()).unwrap();
    let blob = Blob::data(vec![1]);
    assert_eq!(
        client.download_blob(blob.id()).await,
        Err(NodeError::MalformedResponse)
    );
    assert_eq!(
        client.upload_blob(blob.clone()).await,
        Err(NodeError::MalformedResponse)
    );
    // The connection is fine: the right kind of answer still gets through.
    assert_eq!(
        client.missing_blob_ids(vec![blob.id()]).await,
        Ok(Vec::new())
    );
}

#[tokio::test]
async fn unreachable_node_is_an_io_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = TcpValidatorNode::new(address.to_string(), client_config()).unwrap();
    assert_eq!(
        client.upload_blob(Blob::data(vec![1])).await,
        Err(NodeError::Transport(TransportErrorKind::Io))
    );
}

#[tokio::test]
async fn unanswered_request_times_out() {
    let server = Server::bind("127.0.0.1:0", server_config(), |_request: Request| {
        std::future::pending::<Response>()
    })
    .await
    .unwrap();
    let config = ClientConfig {
        request_timeout: Duration::from_millis(100),
        ..client_config()
    };
    let client = TcpValidatorNode::new(server.local_addr().to_string(), config).unwrap();
    assert_eq!(
        client.download_blob(Blob::data(vec![1]).id()).await,
        Err(NodeError::Timeout)
    );
}

#[tokio::test]
async fn server_going_away_closes_the_connection() {
    let (entered, mut entries) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::bind("127.0.0.1:0", server_config(), move |_request: Request| {
        entered.send(()).unwrap();
        std::future::pending::<Response>()
    })
    .await
    .unwrap();
    let client = TcpValidatorNode::new(server.local_addr().to_string(), client_config()).unwrap();
    let call = tokio::spawn(async move { client.download_blob(Blob::data(vec![1]).id()).await });
    entries.recv().await.unwrap();
    drop(server);
    assert_eq!(
        call.await.unwrap(),
        Err(NodeError::Transport(TransportErrorKind::ConnectionClosed))
    );
}

#[tokio::test]
async fn request_too_large_for_a_frame() {
    let (validator, server, _) = served_validator(server_config()).await;
    let config = ClientConfig {
        max_frame_length: 1024,
        ..client_config()
    };
    let client = TcpValidatorNode::new(server.local_addr().to_string(), config).unwrap();
    assert_eq!(
        client.upload_blob(Blob::data(vec![0; 2048])).await,
        Err(NodeError::Transport(TransportErrorKind::FrameTooLarge))
    );
    // Nothing was sent: the client is still fine.
    served(&client, &validator).await;
}

#[tokio::test]
async fn answer_too_large_for_a_frame_is_refused_at_once() {
    let config = ServerConfig {
        max_frame_length: 4096,
        ..server_config()
    };
    let (validator, server, client) = served_validator(config).await;
    answer_too_large_is_refused(&validator, &client).await;
    drop(server);
}

#[tokio::test]
async fn a_handler_served_directly_takes_the_servers_maximum_frame_length() {
    // As `cli` serves: `ValidatorHandler::new` and nothing else; the maximum frame length comes
    // from the server's config, not from a copy.
    let config = ServerConfig {
        max_frame_length: 4096,
        ..server_config()
    };
    let validator = TestValidator::new(ManualClock::new(START)).await;
    let server = Server::bind(
        "127.0.0.1:0",
        config,
        ValidatorHandler::new(validator.node()),
    )
    .await
    .unwrap();
    let client = TcpValidatorNode::new(server.local_addr().to_string(), client_config()).unwrap();
    answer_too_large_is_refused(&validator, &client).await;
}

/// A download larger than the server's 4 KiB frames is answered `FrameTooLarge` at once.
async fn answer_too_large_is_refused(validator: &TestValidator, client: &TcpValidatorNode) {
    let history = validator.history(1, 12);
    let outcome = validator
        .worker
        .handle_confirmed_certificates(history.clone(), CrossChainDelivery::Blocking)
        .await
        .unwrap();
    assert_eq!(outcome.processed, 12);
    let all: Vec<BlockHeight> = (0..12).map(BlockHeight).collect();
    // Twelve certificates exceed 4 KiB: the server says so instead of leaving the client to
    // time out (the client's request timeout is 2 s; this must be far quicker).
    let answer = tokio::time::timeout(
        Duration::from_millis(1500),
        client.download_certificates_by_heights(validator.chain_id(1), all),
    )
    .await
    .expect("the oversize answer was refused at once");
    assert_eq!(
        answer,
        Err(NodeError::Transport(TransportErrorKind::FrameTooLarge))
    );
    // One certificate fits.
    let one = client
        .download_certificates_by_heights(validator.chain_id(1), vec![BlockHeight(4)])
        .await;
    assert_eq!(one, Ok(vec![history[4].clone()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_whose_stream_is_dropped_is_closed_at_the_server() {
    let (validator, server, client) = served_validator(server_config()).await;
    let chain = validator.chain_id(1);
    let kept = client.subscribe(vec![chain]).await.unwrap();
    let dropped = client.subscribe(vec![chain]).await.unwrap();
    assert_eq!(validator.worker.subscriptions(), 2);
    drop(dropped);
    eventually("the dropped subscription is closed", || {
        validator.worker.subscriptions() == 1
    })
    .await;
    // An explicit unsubscribe is not repeated when its stream goes.
    client.unsubscribe(kept.id).await.unwrap();
    drop(kept);
    eventually("no subscription is left", || {
        validator.worker.subscriptions() == 0
    })
    .await;
    server.shutdown().await;
}
