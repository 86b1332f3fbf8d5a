//! A committee of four `quorum validator` processes on loopback, one of them frozen with
//! SIGSTOP (its socket still accepts connections; nothing answers): `quorum client` commands
//! stay fast once a command has found the validator unresponsive (the health records are kept
//! between commands), the validator is brought up to date within a few commands after SIGCONT,
//! and no token is lost.
//!
//! A real-time test: it prints what it measured (run with `-- --nocapture` to see it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use quorum_core::{BlockHeight, ChainId, ChainInfoQuery, CryptoHash, ValidatorNode};
use quorum_node::Genesis;
use quorum_transport_tcp::{ClientConfig, TcpValidatorNode};

use common::{free_ports, ms, run_timed, Validators};

const VALIDATORS: usize = 4;
/// The validator frozen (committee order, like the `validator-N.toml` files).
const VICTIM: usize = 3;
/// Every genesis chain's balance.
const INITIAL_BALANCE: u64 = 1_000_000;
/// Commands run while the validator is frozen, after the first one (which finds it out).
const FROZEN_COMMANDS: usize = 6;
/// Longest one command may take with the validator frozen, once the client knows it is
/// suspect: ten times the ~0.1 s such a command takes (debug build, loopback).
const FAST: Duration = Duration::from_secs(1);
/// Longest the first command after the freeze may take: it pays one request timeout (400 ms)
/// before the validator is known suspect, ~0.5 s in all; ten times that.
const FIRST_AFTER_FREEZE: Duration = Duration::from_secs(5);
/// Commands after SIGCONT within which the validator must have caught up.
const CATCH_UP_COMMANDS: usize = 4;
/// Timeout of the test's own queries to the validators.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// A validator process stopped with SIGSTOP; continued (SIGCONT) when dropped, so that no
/// stopped process is left behind whatever happens to the test.
struct Frozen(u32);

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid} failed");
}

impl Frozen {
    fn freeze(pid: u32) -> Self {
        signal(pid, "-STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// What a validator says of a chain: height, tip, balance.
type View = (BlockHeight, Option<CryptoHash>, u64);

/// Each validator's view of `chain` (`None`: no answer), all asked at once.
async fn views(genesis: &Genesis, chain: ChainId) -> Vec<Option<View>> {
    let config = ClientConfig {
        request_timeout: QUERY_TIMEOUT,
        connect_timeout: QUERY_TIMEOUT,
        ..ClientConfig::default()
    };
    let queries: Vec<_> = genesis
        .committee
        .validators()
        .map(|(_, info)| {
            let node = TcpValidatorNode::new(info.address.clone(), config.clone()).unwrap();
            tokio::spawn(async move {
                let answer = node
                    .handle_chain_info_query(ChainInfoQuery::new(chain))
                    .await
                    .ok()?;
                Some((
                    answer.info.next_block_height,
                    answer.info.block_hash,
                    answer.info.balance,
                ))
            })
        })
        .collect();
    let mut views = Vec::new();
    for query in queries {
        views.push(query.await.unwrap());
    }
    views
}

/// Whether every validator answers with the same view of each of `chains`.
async fn all_agree(genesis: &Genesis, chains: &[ChainId]) -> bool {
    for chain in chains {
        let views = views(genesis, *chain).await;
        if views.iter().any(|view| view.is_none() || *view != views[0]) {
            return false;
        }
    }
    true
}

/// Runs `quorum client --dir DIR ARGS`, expecting success; returns its output and how long it
/// took.
fn client(dir: &Path, args: &[&str]) -> (String, Duration) {
    let d = dir.to_str().unwrap();
    let mut full = vec!["client", "--dir", d];
    full.extend_from_slice(args);
    let (output, elapsed) = run_timed(dir, &full);
    assert!(
        output.status.success(),
        "quorum {full:?} failed: {}\n{}",
        output.stdout,
        output.stderr
    );
    (output.stdout, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_validator_costs_commands_nothing_and_catches_up_after_sigcont() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let base = free_ports(VALIDATORS as u16);
    common::dev_genesis(path, base);
    let genesis: Genesis =
        bcs::from_bytes(&std::fs::read(path.join("genesis.bcs")).unwrap()).unwrap();
    let chains: Vec<ChainId> = genesis.chains.iter().map(|c| c.id()).collect();
    let children = Validators(
        (0..VALIDATORS)
            .map(|i| common::start_validator(&path.join(format!("validator-{i}.toml"))))
            .collect(),
    );
    let (mut one_to_two, mut two_to_one) = (0u64, 0u64);
    let transfer = |from: usize, to: usize, amount: u64| {
        let (from, to, amount) = (from.to_string(), to.to_string(), amount.to_string());
        client(
            path,
            &[
                "transfer", "--from", &from, "--to", &to, "--amount", &amount,
            ],
        )
    };

    // Everyone up.
    let (_, healthy_transfer) = transfer(1, 2, 5);
    one_to_two += 5;
    let (_, healthy_info) = client(path, &["info"]);
    assert!(all_agree(&genesis, &chains).await);

    // Freeze one validator: its socket still accepts, nothing answers.
    let frozen = Frozen::freeze(children.0[VICTIM].id());
    let (said, first_after_freeze) = transfer(1, 2, 1);
    one_to_two += 1;
    assert!(
        said.contains("transferred 1 from chain 1 to chain 2"),
        "{said}"
    );
    let mut frozen_figures = Vec::new();
    for round in 0..FROZEN_COMMANDS {
        let (said, elapsed) = match round % 3 {
            0 => {
                two_to_one += 2;
                transfer(2, 1, 2)
            }
            1 => {
                one_to_two += 3;
                transfer(1, 2, 3)
            }
            _ => client(path, &["info"]),
        };
        let kind = if round % 3 == 2 { "info" } else { "transfer" };
        frozen_figures.push((kind, elapsed));
        if kind == "info" {
            let victim = said
                .lines()
                .filter(|line| line.contains("validator"))
                .nth(VICTIM);
            assert!(
                victim.is_some_and(|line| !line.contains("height")),
                "the frozen validator answered?\n{said}"
            );
            assert!(said.contains("suspect"), "{said}");
        }
    }
    let (_, frozen_receive) = client(path, &["receive", "--chain", "2"]);
    frozen_figures.push(("receive", frozen_receive));

    println!(
        "healthy committee: transfer {}, info {}",
        ms(healthy_transfer),
        ms(healthy_info)
    );
    println!(
        "validator {VICTIM} frozen: first transfer {} (finds it unresponsive)",
        ms(first_after_freeze)
    );
    for (kind, elapsed) in &frozen_figures {
        println!("validator {VICTIM} frozen: {kind} {}", ms(*elapsed));
    }
    assert!(
        first_after_freeze < FIRST_AFTER_FREEZE,
        "first command after the freeze took {first_after_freeze:?}"
    );
    for (kind, elapsed) in &frozen_figures {
        assert!(
            *elapsed < FAST,
            "{kind} took {elapsed:?} with one validator frozen"
        );
    }
    // The others went on without it.
    let others = views(&genesis, chains[1]).await;
    assert!(others[VICTIM].is_none());
    assert!(others
        .iter()
        .enumerate()
        .all(|(i, view)| i == VICTIM || (view.is_some() && *view == others[0])));

    // SIGCONT: the next commands bring it up to date.
    drop(frozen);
    let catch_up: [&[&str]; CATCH_UP_COMMANDS] = [
        &["transfer", "--from", "1", "--to", "2", "--amount", "1"],
        &["receive", "--chain", "2"],
        &["info"],
        &["receive", "--chain", "1"],
    ];
    let mut caught_up_after = None;
    for (count, args) in catch_up.iter().enumerate() {
        let (_, elapsed) = client(path, args);
        if args[0] == "transfer" {
            one_to_two += 1;
        }
        println!("after SIGCONT: {} {}", args[0], ms(elapsed));
        if all_agree(&genesis, &chains).await {
            caught_up_after = Some(count + 1);
            break;
        }
    }
    let caught_up_after = caught_up_after.expect("the resumed validator never caught up");
    println!("validator {VICTIM} up to date after {caught_up_after} command(s) since SIGCONT");

    // Take every transfer in on both sides: nothing is lost, everyone agrees.
    client(path, &["receive", "--chain", "1"]);
    client(path, &["receive", "--chain", "2"]);
    assert!(
        all_agree(&genesis, &chains).await,
        "validators disagree at the end"
    );
    let one = views(&genesis, chains[1]).await;
    let two = views(&genesis, chains[2]).await;
    for (a, b) in one.iter().zip(&two) {
        let (a, b) = (a.unwrap().2, b.unwrap().2);
        assert_eq!(a, INITIAL_BALANCE - one_to_two + two_to_one);
        assert_eq!(b, INITIAL_BALANCE + one_to_two - two_to_one);
        assert_eq!(a + b, 2 * INITIAL_BALANCE);
    }
    let (info, _) = client(path, &["info"]);
    let expected = format!("balance {}", INITIAL_BALANCE - one_to_two + two_to_one);
    assert!(info.contains(&expected), "{info}");
}
