//! A committee that mixes transports (DESIGN §6.2): four `quorum validator` processes from
//! `quorum dev-genesis --transport mixed`, two reached over TCP and two over QUIC (each known
//! by the network key its committee entry lists), and `quorum client` transfers across them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use quorum_core::{BlockHeight, ChainId, ChainInfoQuery, ValidatorInfo, ValidatorNode};
use quorum_node::Genesis;
use quorum_transport_quic::QuicValidatorNode;
use quorum_transport_tcp::TcpValidatorNode;

use common::{free_ports, quorum, Validators};

const VALIDATORS: usize = 4;

/// A node reaching `info`'s validator over the transport its address names.
fn remote(info: &ValidatorInfo) -> Arc<dyn ValidatorNode> {
    match info.address.strip_prefix("quic://") {
        Some(host_port) => {
            let config = quorum_transport_quic::ClientConfig {
                request_timeout: Duration::from_secs(5),
                ..Default::default()
            };
            let key = info
                .network_key
                .expect("a QUIC entry lists its network key");
            Arc::new(QuicValidatorNode::new(host_port, key, config).unwrap())
        }
        None => {
            let config = quorum_transport_tcp::ClientConfig {
                request_timeout: Duration::from_secs(5),
                ..Default::default()
            };
            Arc::new(TcpValidatorNode::new(info.address.clone(), config).unwrap())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_commit_on_a_committee_of_tcp_and_quic_validators() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let d = path.to_str().unwrap();
    let base = free_ports(VALIDATORS as u16);
    common::dev_genesis_with(path, base, &["--transport", "mixed"]);
    let genesis: Genesis =
        bcs::from_bytes(&std::fs::read(path.join("genesis.bcs")).unwrap()).unwrap();
    let quic = genesis
        .committee
        .validators()
        .filter(|(_, info)| info.address.starts_with("quic://"))
        .count();
    assert_eq!(quic, 2, "two of the four are addressed over QUIC");
    let _children = Validators(
        (0..VALIDATORS)
            .map(|i| common::start_validator(&path.join(format!("validator-{i}.toml"))))
            .collect(),
    );

    for (from, to) in [("1", "2"), ("1", "2"), ("2", "1")] {
        let out = quorum(
            path,
            &[
                "client", "--dir", d, "transfer", "--from", from, "--to", to, "--amount", "3",
            ],
        );
        assert!(out.contains("transferred 3"), "{out}");
    }

    // Every validator, each asked over its own transport, holds the same chain 1.
    let chain: ChainId = genesis.chains[1].id();
    let mut tips = Vec::new();
    for (_, info) in genesis.committee.validators() {
        let answer = remote(info)
            .handle_chain_info_query(ChainInfoQuery::new(chain))
            .await
            .unwrap();
        tips.push((answer.info.next_block_height, answer.info.block_hash));
    }
    assert!(
        tips.iter().all(|tip| *tip == tips[0]),
        "validators disagree: {tips:?}"
    );
    assert!(tips[0].0 >= BlockHeight(2), "{tips:?}");
}
