//! The shared transport conformance suite over the in-process transport, with BCS round trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use quorum_core::ValidatorNode;
use quorum_node::conformance::run_transport_conformance;
use quorum_transport_mem::MemoryNode;

#[tokio::test]
async fn memory_transport_conforms() {
    run_transport_conformance(|node: Arc<dyn ValidatorNode>| async move {
        Arc::new(MemoryNode::new(node, None, 1).with_bcs(true)) as Arc<dyn ValidatorNode>
    })
    .await;
}
