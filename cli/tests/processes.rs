//! A committee of four `quorum validator` processes on loopback with redb data directories: a
//! client workload, one validator killed with SIGKILL, more blocks, the validator restarted from
//! its data, and the updater bringing it back in sync with nothing lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use quorum_core::{BlockHeight, ChainId, ChainInfoQuery, CryptoHash, ValidatorNode};
use quorum_node::Genesis;
use quorum_transport_tcp::{ClientConfig, TcpValidatorNode};

use common::{free_ports, quorum, Validators};

const VALIDATORS: usize = 4;

/// Starts validator `index` of a `dev-genesis` directory and waits until it listens.
fn start_numbered(dir: &Path, index: usize) -> Child {
    common::start_validator(&dir.join(format!("validator-{index}.toml")))
}

/// Each validator's (height, tip) of `chain`, `None` if unreachable.
async fn chain_tips(
    genesis: &Genesis,
    chain: ChainId,
) -> Vec<Option<(BlockHeight, Option<CryptoHash>)>> {
    let mut out = Vec::new();
    for (_, info) in genesis.committee.validators() {
        let config = ClientConfig {
            request_timeout: Duration::from_secs(2),
            ..ClientConfig::default()
        };
        let node = TcpValidatorNode::new(info.address.clone(), config).unwrap();
        let answer = node
            .handle_chain_info_query(ChainInfoQuery::new(chain))
            .await;
        out.push(
            answer
                .ok()
                .map(|r| (r.info.next_block_height, r.info.block_hash)),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_validator_restarts_from_its_data_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let base = free_ports(VALIDATORS as u16);
    common::dev_genesis(path, base);
    let genesis: Genesis =
        bcs::from_bytes(&std::fs::read(path.join("genesis.bcs")).unwrap()).unwrap();
    let chains: Vec<ChainId> = genesis.chains.iter().map(|c| c.id()).collect();
    let mut children = Validators((0..VALIDATORS).map(|i| start_numbered(path, i)).collect());
    let d = path.to_str().unwrap();

    // A workload with everyone up.
    for _ in 0..3 {
        quorum(
            path,
            &[
                "client", "--dir", d, "transfer", "--from", "1", "--to", "2", "--amount", "5",
            ],
        );
    }
    quorum(path, &["client", "--dir", d, "receive", "--chain", "2"]);
    // Validator files are numbered in committee order, like `genesis.committee.validators()`.
    let victim = 3;
    let before = chain_tips(&genesis, chains[1]).await;
    assert!(
        before.iter().all(|h| *h == before[0]),
        "not in sync before the kill: {before:?}"
    );
    assert_eq!(before[victim].unwrap().0, BlockHeight(3));

    // SIGKILL one validator; the others keep committing.
    children.0[victim].kill().unwrap();
    children.0[victim].wait().unwrap();
    for _ in 0..2 {
        quorum(
            path,
            &[
                "client", "--dir", d, "transfer", "--from", "1", "--to", "2", "--amount", "1",
            ],
        );
    }
    quorum(
        path,
        &[
            "client", "--dir", d, "transfer", "--from", "2", "--to", "1", "--amount", "7",
        ],
    );
    assert!(chain_tips(&genesis, chains[1]).await[victim].is_none());

    // Restart from its data directory: nothing acknowledged is lost.
    children.0[victim] = start_numbered(path, victim);
    let restarted = chain_tips(&genesis, chains[1]).await;
    assert_eq!(
        restarted[victim], before[victim],
        "the restarted validator lost blocks"
    );

    // More blocks on both chains: the updater brings it back in sync.
    quorum(
        path,
        &[
            "client", "--dir", d, "transfer", "--from", "1", "--to", "2", "--amount", "1",
        ],
    );
    quorum(
        path,
        &[
            "client", "--dir", d, "transfer", "--from", "2", "--to", "1", "--amount", "1",
        ],
    );
    for chain in [chains[1], chains[2]] {
        let after = chain_tips(&genesis, chain).await;
        assert!(
            after.iter().all(|h| h.is_some() && *h == after[0]),
            "out of sync after restart: {after:?}"
        );
    }
    assert_eq!(
        chain_tips(&genesis, chains[1]).await[victim].unwrap().0,
        BlockHeight(6)
    );
    let info = quorum(path, &["client", "--dir", d, "info"]);
    assert!(info.contains("chain 1"), "{info}");
}
