//! The transport conformance suite (DESIGN §6, §10) over QUIC: a node reached through a QUIC
//! server and client answers exactly as the node itself.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::sync::{Arc, Mutex};
use std::time::Duration;

use quorum_core::ValidatorNode;
use quorum_testkit::transport_conformance;
use quorum_transport_quic::{
    serve_validator, ClientConfig, NetworkKey, QuicServer, QuicValidatorNode, ServerConfig,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_transport_conforms() {
    let servers: Arc<Mutex<Vec<QuicServer>>> = Arc::default();
    transport_conformance::run(|node: Arc<dyn ValidatorNode>| {
        let servers = Arc::clone(&servers);
        async move {
            let key = NetworkKey::from_bytes([3; 32]);
            let address = "127.0.0.1:0".parse().unwrap();
            let server = serve_validator(node, address, &key, ServerConfig::default())
                .await
                .unwrap();
            let config = ClientConfig {
                request_timeout: Duration::from_secs(5),
                ..ClientConfig::default()
            };
            let client =
                QuicValidatorNode::new(server.local_addr().to_string(), key.public(), config)
                    .unwrap();
            servers.lock().unwrap().push(server);
            Arc::new(client) as Arc<dyn ValidatorNode>
        }
    })
    .await;
    let servers = std::mem::take(&mut *servers.lock().unwrap());
    assert!(!servers.is_empty());
    for server in servers {
        server.shutdown(Duration::from_secs(1)).await;
    }
}
