//! Two wallets in separate directories against four `quorum validator` processes (DESIGN
//! §5.8): wallet B, made with `init` and `new-owner`, finds a payment from a chain it was never
//! told of; A follows a chain B opened and pays it; B closes it and A's later payment comes
//! back to A. Bad input gets a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{dev_genesis, free_ports, quorum, quorum_fails, start_validator, Validators};

/// `quorum client --dir DIR ARGS…`, expecting success: its standard output, trimmed.
fn client(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["client", "--dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    quorum(parent(dir), &all).trim().to_owned()
}

/// `quorum client --dir DIR ARGS…`, expecting failure: its standard error.
fn client_fails(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["client", "--dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    quorum_fails(parent(dir), &all)
}

/// Where commands on `dir` run (it may not exist yet).
fn parent(dir: &Path) -> &Path {
    dir.parent().unwrap_or(dir)
}

/// The number after `word` in a `balance` line.
fn field(line: &str, word: &str) -> u64 {
    let mut words = line.split_whitespace();
    words.find(|w| *w == word);
    words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no {word} in {line:?}"))
}

/// `balance --chain CHAIN`: (balance, waiting in the inbox).
fn balance(dir: &Path, chain: &str) -> (u64, u64) {
    let line = client(dir, &["balance", "--chain", chain]);
    (field(&line, "balance"), field(&line, "waiting"))
}

/// A `dev-genesis` committee in `ROOT/a` (wallet A) with its four validators running;
/// `ROOT/b` is left for wallet B.
fn committee() -> (tempfile::TempDir, Validators) {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    std::fs::create_dir(&a).unwrap();
    dev_genesis(&a, free_ports(4));
    let validators = Validators(
        (0..4)
            .map(|i| start_validator(&a.join(format!("validator-{i}.toml"))))
            .collect(),
    );
    (root, validators)
}

#[test]
fn two_wallets_pay_follow_and_close_chains() {
    let (root, _validators) = committee();
    let (a, b) = (root.path().join("a"), root.path().join("b"));

    // B: an empty wallet from the committee's genesis, and an owner key.
    let genesis = a.join("genesis.bcs");
    client(&b, &["init", "--genesis", genesis.to_str().unwrap()]);
    let again = client_fails(&b, &["init", "--genesis", genesis.to_str().unwrap()]);
    assert!(again.contains("already exists"), "{again}");
    let key = client(&b, &["new-owner"]);
    assert_eq!(key.len(), 64, "{key}");

    // A opens a chain for B's key; B follows it and owns it.
    let first = client(&a, &["open-chain", "--from", "1", "--owner", &key]);
    assert_eq!(first.len(), 64, "{first}");
    let followed = client(&b, &["follow", &first]);
    assert!(followed.contains("wallet chain 0 (owned)"), "{followed}");

    // A pays it; B finds the payment without being told A's chain.
    let a_start = balance(&a, "1").0;
    client(
        &a,
        &["transfer", "--from", "1", "--to", &first, "--amount", "5"],
    );
    client(&b, &["sync"]);
    assert_eq!(balance(&b, "0"), (0, 5));
    client(&b, &["receive", "--chain", "0"]);
    assert_eq!(balance(&b, "0"), (5, 0));

    // B opens a chain; A follows it by id (without its key) and pays it.
    let second = client(&b, &["open-chain", "--from", "0"]);
    let followed = client(&a, &["follow", &second]);
    assert!(!followed.contains("owned"), "{followed}");
    client(
        &a,
        &["transfer", "--from", "1", "--to", &second, "--amount", "3"],
    );
    client(&b, &["receive", "--chain", "1"]);
    assert_eq!(balance(&b, "1"), (3, 0));

    // B closes it, its balance to B's first chain; A's later payment comes back to A.
    client(&b, &["close-chain", "--chain", "1", "--beneficiary", "0"]);
    let closed = client(&b, &["balance", "--chain", "1"]);
    assert!(closed.ends_with("closed"), "{closed}");
    client(
        &a,
        &["transfer", "--from", "1", "--to", &second, "--amount", "2"],
    );
    client(&b, &["receive", "--chain", "1"]);
    client(&a, &["receive", "--chain", "1"]);
    assert_eq!(balance(&a, "1"), (a_start - 5 - 3, 0));
    client(&b, &["receive", "--chain", "0"]);
    assert_eq!(balance(&b, "0"), (5 + 3, 0));

    // Bad input: clear errors, nothing half-written.
    let refused = client_fails(
        &b,
        &["transfer", "--from", "1", "--to", "0", "--amount", "1"],
    );
    assert!(refused.contains("closed"), "{refused}");
    let refused = client_fails(
        &a,
        &["transfer", "--from", &second, "--to", "1", "--amount", "1"],
    );
    assert!(refused.contains("does not own"), "{refused}");
    let refused = client_fails(
        &a,
        &["transfer", "--from", "1", "--to", "xyz", "--amount", "1"],
    );
    assert!(refused.contains("\"xyz\""), "{refused}");
    let refused = client_fails(&a, &["balance", "--chain", "9"]);
    assert!(refused.contains("no chain 9"), "{refused}");
    let refused = client_fails(&a, &["follow", "1"]);
    assert!(refused.contains("chain id"), "{refused}");
}

/// `quorum client --dir DIR ARGS…` run to its end, whatever its outcome: (success, stdout,
/// stderr).
fn client_outcome(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["client", "--dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = common::run(parent(dir), &all);
    (output.status.success(), output.stdout, output.stderr)
}

#[test]
fn two_wallets_owning_one_chain_transfer_at_once() {
    let (root, _validators) = committee();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let genesis = a.join("genesis.bcs");
    client(&b, &["init", "--genesis", genesis.to_str().unwrap()]);
    let key_a = client(&a, &["new-owner"]);
    let key_b = client(&b, &["new-owner"]);

    // A chain of two owners, one in each wallet.
    let bad = client_fails(
        &a,
        &[
            "open-chain",
            "--from",
            "1",
            "--owners",
            &format!("{key_a}:0"),
        ],
    );
    assert!(bad.contains("at least 1"), "{bad}");
    let shared = client(
        &a,
        &[
            "open-chain",
            "--from",
            "1",
            "--owners",
            &key_a,
            &format!("{key_b}:2"),
        ],
    );
    let followed = client(&b, &["follow", &shared]);
    assert!(followed.contains("(owned)"), "{followed}");
    client(
        &a,
        &["transfer", "--from", "1", "--to", &shared, "--amount", "10"],
    );
    client(&a, &["receive", "--chain", &shared]);
    assert_eq!(balance(&a, &shared), (10, 0));

    // Both owners transfer from it at once, each from its own wallet, to A's chain 1.
    let line = client(&a, &["balance", "--chain", "1"]);
    let target = line.split_whitespace().nth(2).unwrap().to_owned();
    let (a2, b2) = (a.clone(), b.clone());
    let (to_a, to_b) = (target.clone(), target.clone());
    let (from_a, from_b) = (shared.clone(), shared.clone());
    let first = std::thread::spawn(move || {
        client_outcome(
            &a2,
            &[
                "transfer", "--from", &from_a, "--to", &to_a, "--amount", "2",
            ],
        )
    });
    let second = std::thread::spawn(move || {
        client_outcome(
            &b2,
            &[
                "transfer", "--from", &from_b, "--to", &to_b, "--amount", "3",
            ],
        )
    });
    let outcomes = [first.join().unwrap(), second.join().unwrap()];
    let mut spent = 0;
    for ((ok, out, err), amount) in outcomes.iter().zip([2, 3]) {
        if *ok {
            assert!(out.contains(&format!("transferred {amount}")), "{out}");
            spent += amount;
        } else {
            // Refused clearly, by the committee: the chain operation says why.
            assert!(err.contains("error: chain:"), "{err}");
        }
    }
    assert!(spent > 0, "neither transfer committed: {outcomes:?}");
    println!("transfers at once from two wallets: {outcomes:?}");
    // The chain is not stalled: each wallet commits again, and both see the same balance.
    client(
        &a,
        &[
            "transfer", "--from", &shared, "--to", &target, "--amount", "1",
        ],
    );
    client(
        &b,
        &[
            "transfer", "--from", &shared, "--to", &target, "--amount", "1",
        ],
    );
    let left = 10 - spent - 2;
    assert_eq!(balance(&a, &shared).0, left);
    assert_eq!(balance(&b, &shared).0, left);
}
