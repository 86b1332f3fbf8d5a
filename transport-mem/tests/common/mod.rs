//! A committee of Workers (quorum-node's `TestNet`), each also reachable through a
//! `MemoryNode`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ops::Deref;

use quorum_node::testnet::TestNet;
use quorum_transport_mem::MemoryNode;

/// The committee, plus one honest `MemoryNode` per worker (seeded with its index, BCS off).
pub struct Net {
    pub net: TestNet,
    pub nodes: Vec<MemoryNode>,
}

impl Net {
    /// `n` validators of weight 1, `chains` genesis chains (chain 0 is the admin chain); chains
    /// have a super owner (fast round) when `fast`.
    pub async fn new(n: usize, chains: u32, fast: bool) -> Net {
        let net = TestNet::new(n, chains, fast).await;
        let nodes = net
            .workers
            .iter()
            .zip(&net.secrets)
            .enumerate()
            .map(|(i, (worker, secret))| {
                MemoryNode::new(worker.clone(), Some(secret.clone()), i as u64)
            })
            .collect();
        Net { net, nodes }
    }
}

impl Deref for Net {
    type Target = TestNet;

    fn deref(&self) -> &TestNet {
        &self.net
    }
}
