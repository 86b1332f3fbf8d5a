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

#[test]
fn two_wallets_pay_follow_and_close_chains() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    let b = root.path().join("b");
    std::fs::create_dir(&a).unwrap();
    dev_genesis(&a, free_ports(4));
    let _validators = Validators(
        (0..4)
            .map(|i| start_validator(&a.join(format!("validator-{i}.toml"))))
            .collect(),
    );

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
