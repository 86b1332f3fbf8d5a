//! Self-test of the transport conformance suite: the ideal transport (the node itself) passes,
//! and a "transport" that does not reach the node it was given is caught.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use quorum_core::ValidatorNode;
use quorum_node::ManualClock;
use quorum_testkit::transport_conformance::{self, check_block_proposals, TestValidator};
use quorum_testkit::START;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_itself_conforms() {
    transport_conformance::run(|node: Arc<dyn ValidatorNode>| async move { node }).await;
}

#[tokio::test]
#[should_panic(expected = "differs between the node behind the transport")]
async fn a_transport_that_reaches_another_node_is_caught() {
    // Answers like a twin of the node (same genesis, same key), but never reaches the node.
    check_block_proposals(&|_node: Arc<dyn ValidatorNode>| async move {
        TestValidator::new(ManualClock::new(START)).await.node()
    })
    .await;
}
