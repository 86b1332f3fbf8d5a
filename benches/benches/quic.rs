//! The QUIC transport on loopback (DESIGN §6.2, §9).
//!
//! `quic_round_trip_chain_info`: one chain information query to a validator (a Worker with
//! genesis chains), each on its own connection kept open:
//!
//! * `ours_quic`: through `QuicValidatorNode` and `serve_validator` (a stream per request);
//! * `ours_tcp`: through `TcpValidatorNode` and the TCP server, for comparison;
//! * `floor_bare_quic_echo`: the same bytes (the request's frame out, the answer's frame
//!   back) on a bidirectional stream of a bare quinn connection with the same TLS 1.3 identity,
//!   and no node behind it: what QUIC itself costs a request;
//! * `direct_call`: the node called in process, what the answer costs without a transport.
//!
//! Every measured loop runs in a task on the runtime's worker threads (`run_spawned`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use criterion::Criterion;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::Endpoint;
use quorum_benches::{run_spawned, runtime, settings};
use quorum_core::protocol::{Request, Response};
use quorum_core::{ChainId, ChainInfoQuery, ValidatorNode};
use quorum_node::ManualClock;
use quorum_testkit::transport_conformance::TestValidator;
use quorum_testkit::{must, START};
use quorum_transport_quic::{
    serve_validator, tls_client_config, tls_server_config, NetworkKey, QuicValidatorNode,
};
use quorum_transport_tcp::TcpValidatorNode;

/// The network key of the bench's servers.
const KEY_SEED: [u8; 32] = [5; 32];

/// A bare quinn echo: each stream's bytes, read to its end, answered with `answer_bytes`
/// bytes.
async fn bare_echo(key: &NetworkKey, answer_bytes: usize) -> SocketAddr {
    let tls = must(tls_server_config(key), "the server's TLS");
    let crypto = must(QuicServerConfig::try_from(tls), "QUIC's TLS");
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = must(
        Endpoint::server(config, SocketAddr::from(([127, 0, 0, 1], 0))),
        "binding the bare echo",
    );
    let address = must(endpoint.local_addr(), "its address");
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                let Ok(connection) = incoming.await else {
                    return;
                };
                while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                    tokio::spawn(async move {
                        if recv.read_to_end(1 << 20).await.is_ok() {
                            let answer = vec![7u8; answer_bytes];
                            let _ = send.write_all(&answer).await;
                            let _ = send.finish();
                        }
                    });
                }
            });
        }
    });
    address
}

/// A client connection to the bare echo, made once.
async fn bare_client(address: SocketAddr, key: &NetworkKey) -> quinn::Connection {
    let tls = must(tls_client_config(key.public()), "the client's TLS");
    let crypto = must(QuicClientConfig::try_from(tls), "QUIC's TLS");
    let mut endpoint = must(
        Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))),
        "a client endpoint",
    );
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let connecting = must(endpoint.connect(address, "bench"), "dialling");
    must(connecting.await, "the handshake")
}

/// One exchange on a new stream of the bare echo.
async fn bare_exchange(connection: &quinn::Connection, request: &[u8]) {
    let (mut send, mut recv) = must(connection.open_bi().await, "a stream");
    must(send.write_all(request).await, "writing");
    let _ = send.finish();
    must(recv.read_to_end(1 << 20).await, "reading");
}

async fn query(node: &dyn ValidatorNode, chain: ChainId) {
    must(
        node.handle_chain_info_query(ChainInfoQuery::new(chain))
            .await,
        "chain information",
    );
}

fn quic(c: &mut Criterion) {
    let rt = runtime();
    let validator = rt.block_on(TestValidator::new(ManualClock::new(START)));
    let node = validator.node();
    let chain = validator.chain_id(1);
    let key = NetworkKey::from_bytes(KEY_SEED);

    let quic_server = must(
        rt.block_on(serve_validator(
            node.clone(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            &key,
            quorum_transport_quic::ServerConfig::default(),
        )),
        "the QUIC server",
    );
    let quic: Arc<dyn ValidatorNode> = Arc::new(must(
        QuicValidatorNode::new(
            quic_server.local_addr().to_string(),
            key.public(),
            quorum_transport_quic::ClientConfig::default(),
        ),
        "the QUIC client",
    ));
    let tcp_server = must(
        rt.block_on(quorum_transport_tcp::serve_validator(
            node.clone(),
            "127.0.0.1:0",
            quorum_transport_tcp::ServerConfig::default(),
        )),
        "the TCP server",
    );
    let tcp: Arc<dyn ValidatorNode> = Arc::new(must(
        TcpValidatorNode::new(
            tcp_server.local_addr().to_string(),
            quorum_transport_tcp::ClientConfig::default(),
        ),
        "the TCP client",
    ));
    // The same bytes as ours: the request's frame out, the answer's frame back.
    let request = Request::ChainInfoQuery(Box::new(ChainInfoQuery::new(chain)));
    let answer = rt.block_on(quorum_core::protocol::dispatch(&*node, request.clone()));
    assert!(matches!(answer, Response::ChainInfoQuery(Ok(_))));
    let request_bytes: Arc<[u8]> = must(bcs::to_bytes(&request), "encoding").into();
    let answer_bytes = must(bcs::to_bytes(&answer), "encoding").len() + 4;
    let bare_address = rt.block_on(bare_echo(&key, answer_bytes));
    let bare = Arc::new(rt.block_on(bare_client(bare_address, &key)));
    // Connections are made outside the measured time.
    for remote in [&quic, &tcp] {
        rt.block_on(query(&**remote, chain));
    }

    let mut group = c.benchmark_group("quic_round_trip_chain_info");
    settings::fast(&mut group);
    for (name, remote) in [
        ("ours_quic", quic),
        ("ours_tcp", tcp),
        ("direct_call", node),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let remote = remote.clone();
                run_spawned(&rt, async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        query(&*remote, chain).await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.bench_function("floor_bare_quic_echo", |b| {
        b.iter_custom(|iters| {
            let bare = bare.clone();
            let request_bytes = request_bytes.clone();
            run_spawned(&rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    bare_exchange(&bare, &request_bytes).await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = settings::criterion();
    quic(&mut criterion);
    criterion.final_summary();
}
