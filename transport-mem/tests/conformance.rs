//! The shared transport conformance suite over the in-process transport, with BCS round trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use quorum_core::ValidatorNode;
use quorum_testkit::transport_conformance;
use quorum_transport_mem::MemoryNode;

#[tokio::test]
async fn memory_transport_conforms() {
    transport_conformance::run(|node: Arc<dyn ValidatorNode>| async move {
        Arc::new(MemoryNode::new(node, None, 1).with_bcs(true)) as Arc<dyn ValidatorNode>
    })
    .await;
}
