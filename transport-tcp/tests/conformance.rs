//! The transport conformance suite of `quorum-node` (feature `testing`) over a real loopback
//! server: every `ValidatorNode` method answers through TCP exactly as the Worker does directly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::sync::{Arc, Mutex};
use std::time::Duration;

use quorum_core::ValidatorNode;
use quorum_testkit::transport_conformance;
use quorum_transport_tcp::{
    serve_validator, ClientConfig, Server, ServerConfig, ShutdownOutcome, TcpValidatorNode,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_transport_conforms() {
    let servers: Arc<Mutex<Vec<Server>>> = Arc::default();
    transport_conformance::run(|node: Arc<dyn ValidatorNode>| {
        let servers = Arc::clone(&servers);
        async move {
            let server = serve_validator(node, "127.0.0.1:0", ServerConfig::default())
                .await
                .unwrap();
            let config = ClientConfig {
                request_timeout: Duration::from_secs(5),
                ..ClientConfig::default()
            };
            let client = TcpValidatorNode::new(server.local_addr().to_string(), config).unwrap();
            servers.lock().unwrap().push(server);
            Arc::new(client) as Arc<dyn ValidatorNode>
        }
    })
    .await;
    let servers = std::mem::take(&mut *servers.lock().unwrap());
    assert!(!servers.is_empty());
    for server in servers {
        assert_eq!(server.shutdown().await, ShutdownOutcome::Graceful);
    }
}
