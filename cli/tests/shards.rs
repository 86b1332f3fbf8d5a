//! A sharded validator in a committee (DESIGN §7.1): validator 0 is a proxy and three shard
//! processes on PostgreSQL, the others single validators on redb. Transfers cross shards; one
//! shard is killed with SIGKILL while deliveries to its chains are owed, the other shards'
//! chains keep committing at validator 0, and after the restart every balance at validator 0
//! is what the unsharded validators hold, the total supply is whole and the outbox is empty.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use quorum_core::{BlockHeight, ChainId, ChainInfoQuery, ValidatorNode};
use quorum_node::Genesis;
use quorum_node::Shard;
use quorum_transport_tcp::{ClientConfig, TcpValidatorNode};

use common::{free_ports, postgres, quorum, start_validator, start_validator_with, Validators};

const SHARDS: u32 = 3;
/// Lease of a shard index, in milliseconds: how long a killed shard's successor waits.
const LEASE_MS: u64 = 1_500;

/// Makes validator-0.toml a sharded validator on `url`'s database, its shards on
/// `shard_base..+3`.
fn shard_validator_0(dir: &Path, url: &str, shard_base: u16) {
    let addresses: Vec<String> = (0..SHARDS as u16)
        .map(|i| format!("\"127.0.0.1:{}\"", shard_base + i))
        .collect();
    let shards = format!(
        "\n[shards]\naddresses = [{}]\nlease_ms = {LEASE_MS}\noutbox_poll_ms = 10\n",
        addresses.join(", ")
    );
    let config = dir.join("validator-0.toml");
    postgres::use_postgres(&config, url, "validator_0", &shards);
}

/// Starts shard `index` of validator 0, trying again while its predecessor's lease runs.
fn start_shard(dir: &Path, index: u32) -> Child {
    let config = dir.join("validator-0.toml");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let started = std::panic::catch_unwind(|| {
            start_validator_with(&config, &["--shard", &index.to_string()]).0
        });
        match started {
            Ok(child) => return child,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(300)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Each chain's (balance, next height, tip) at the validator at `address`.
async fn chains_at(address: &str, chains: &[ChainId]) -> Vec<(u64, BlockHeight, String)> {
    let node = TcpValidatorNode::new(address, ClientConfig::default()).unwrap();
    let mut all = Vec::new();
    for chain in chains {
        let info = node
            .handle_chain_info_query(ChainInfoQuery::new(*chain))
            .await
            .unwrap()
            .info;
        all.push((
            info.balance,
            info.next_block_height,
            format!("{:?}", info.block_hash),
        ));
    }
    all
}

#[test]
fn a_sharded_validator_delivers_across_shards_and_survives_a_killed_shard() {
    let Some((runtime, database)) = postgres::database("cli_shards") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let d = path.to_str().unwrap();
    let base = free_ports(4);
    quorum(
        path,
        &[
            "dev-genesis",
            "--dir",
            d,
            "--validators",
            "4",
            "--chains",
            "10",
            "--base-port",
            &base.to_string(),
            "--insecure-seed",
            "7",
        ],
    );
    shard_validator_0(path, &database.url(), free_ports(SHARDS as u16));
    let genesis: Genesis =
        bcs::from_bytes(&std::fs::read(path.join("genesis.bcs")).unwrap()).unwrap();
    let chains: Vec<ChainId> = genesis.chains.iter().map(|c| c.id()).collect();
    let shards = std::num::NonZeroU32::new(SHARDS).unwrap();
    // Three user chains on three different shards: a and c keep running while b is down.
    let on = |shard: u32| {
        (1..chains.len())
            .find(|i| Shard::owner_of(shards, chains[*i]) == shard)
            .expect("a chain on every shard")
    };
    let (a, b, c) = (on(0), on(1), on(2));

    let mut processes = Validators(Vec::new());
    for index in 0..SHARDS {
        processes.0.push(start_shard(path, index));
    }
    processes
        .0
        .push(start_validator(&path.join("validator-0.toml")));
    for i in 1..4 {
        processes
            .0
            .push(start_validator(&path.join(format!("validator-{i}.toml"))));
    }
    let proxy = format!("127.0.0.1:{base}");
    let single = format!("127.0.0.1:{}", base + 1);
    let before = runtime.block_on(chains_at(&single, &chains));
    let supply: u64 = before.iter().map(|(balance, _, _)| balance).sum();
    let transfer = |from: usize, to: usize| {
        quorum(
            path,
            &[
                "client",
                "--dir",
                d,
                "transfer",
                "--from",
                &from.to_string(),
                "--to",
                &to.to_string(),
                "--amount",
                "1",
            ],
        );
    };

    transfer(a, b);
    // Shard b killed while what a sends b is still to be delivered at validator 0.
    processes.0[1].kill().unwrap();
    processes.0[1].wait().unwrap();
    transfer(a, b);
    transfer(a, b);
    let a_height = runtime.block_on(chains_at(&proxy, &[chains[a]]))[0].1;
    transfer(a, c);
    transfer(c, a);
    let now = runtime.block_on(chains_at(&proxy, &[chains[a], chains[c]]));
    assert!(
        now[0].1 > a_height && now[1].1 > BlockHeight(0),
        "validator 0 kept committing the other shards' chains: {now:?}"
    );
    processes.0[1] = start_shard(path, 1);
    let owed = || {
        let query = "SELECT count(*) FROM validator_0.quorum_outbox";
        postgres::count(&runtime, &database, query)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while owed() > 0 {
        assert!(
            Instant::now() < deadline,
            "the outbox drains after the restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for chain in [a, b, c] {
        quorum(
            path,
            &[
                "client",
                "--dir",
                d,
                "receive",
                "--chain",
                &chain.to_string(),
            ],
        );
    }
    // The client's update budget may leave validators behind: give them a moment to agree.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sharded = runtime.block_on(chains_at(&proxy, &chains));
        let unsharded = runtime.block_on(chains_at(&single, &chains));
        if sharded == unsharded {
            let total: u64 = sharded.iter().map(|(balance, _, _)| balance).sum();
            assert_eq!(total, supply, "the total supply is whole");
            assert_eq!(
                sharded[b].0,
                before[b].0 + 3,
                "b received three transfers, once each"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "validator 0 agrees with validator 1:\n{sharded:?}\n{unsharded:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(owed(), 0);
    drop(processes);
    runtime.block_on(database.drop_database());
}
