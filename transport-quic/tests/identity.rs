//! A client whose committee lists validator A's network key refuses any other server before
//! it sends a request (DESIGN §6.2): one that holds B's key, or a key of its own making.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quorum_core::protocol::Request;
use quorum_core::{ChainInfoQuery, NodeError, TransportErrorKind, ValidatorNode};
use quorum_testkit::transport_conformance::TestValidator;
use quorum_testkit::{Intercepted, Interceptor, START};
use quorum_transport_quic::{
    serve_validator, ClientConfig, NetworkKey, Presented, QuicError, QuicServer, QuicValidatorNode,
    ServerConfig,
};
use rand::{RngCore, SeedableRng};

/// Counts every request that reaches the node.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Interceptor for Counting {
    fn answer(&self, _request: &Request) -> Option<quorum_core::protocol::Response> {
        self.0.fetch_add(1, Ordering::SeqCst);
        None
    }
}

/// A server of a test validator that proves `key`, and the count of what reached its node.
async fn server(key: &NetworkKey) -> (QuicServer, Arc<Intercepted<Counting>>, TestValidator) {
    let validator = TestValidator::new(quorum_node::ManualClock::new(START)).await;
    let counted = Arc::new(Intercepted::new(validator.node(), Counting::default()));
    let node = counted.clone() as Arc<dyn ValidatorNode>;
    let address = "127.0.0.1:0".parse().unwrap();
    let server = serve_validator(node, address, key, ServerConfig::default())
        .await
        .unwrap();
    (server, counted, validator)
}

fn client_config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_key_is_served() {
    let a = NetworkKey::from_bytes([0xa; 32]);
    let (server, counted, validator) = server(&a).await;
    let client =
        QuicValidatorNode::new(server.local_addr().to_string(), a.public(), client_config())
            .unwrap();
    let info = client
        .handle_chain_info_query(ChainInfoQuery::new(validator.chain_id(1)))
        .await
        .unwrap();
    assert_eq!(info.info.chain_id, validator.chain_id(1));
    assert_eq!(counted.interceptor().0.load(Ordering::SeqCst), 1);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_validators_key_or_a_self_made_one_is_refused_before_any_request() {
    let a = NetworkKey::from_bytes([0xa; 32]);
    let b = NetworkKey::from_bytes([0xb; 32]);
    let mut seed = [0u8; 32];
    rand_chacha::ChaCha8Rng::seed_from_u64(7).fill_bytes(&mut seed);
    let self_made = NetworkKey::from_bytes(seed);
    for impostor in [b, self_made] {
        let (server, counted, validator) = server(&impostor).await;
        let client =
            QuicValidatorNode::new(server.local_addr().to_string(), a.public(), client_config())
                .unwrap();
        match client.connect().await {
            Err(QuicError::WrongIdentity {
                address,
                expected,
                presented,
            }) => {
                assert_eq!(address, server.local_addr());
                assert_eq!(expected, a.public());
                assert_eq!(presented, Presented::Key(impostor.public()));
                let message = QuicError::WrongIdentity {
                    address,
                    expected,
                    presented,
                }
                .to_string();
                assert!(message.contains(&a.public().to_string()), "{message}");
                assert!(
                    message.contains(&impostor.public().to_string()),
                    "{message}"
                );
                assert!(message.contains(&address.to_string()), "{message}");
            }
            other => panic!("expected WrongIdentity, got {other:?}"),
        }
        // Through the protocol, the request fails as an unavailable validator...
        let answer = client
            .handle_chain_info_query(ChainInfoQuery::new(validator.chain_id(1)))
            .await;
        assert_eq!(
            answer.err(),
            Some(NodeError::Transport(TransportErrorKind::Unavailable))
        );
        // ...and nothing reached the node.
        assert_eq!(counted.interceptor().0.load(Ordering::SeqCst), 0);
        server.shutdown(Duration::from_secs(1)).await;
    }
}
