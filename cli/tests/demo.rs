//! `quorum demo` (issue 12): its chains commit in the fast round of their single owner by
//! default and in two phases with `--no-fast-round`; either way a validator stopped mid-run
//! and restarted ends in sync, and the summary says which way the blocks were agreed. What it
//! cannot run it refuses with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{quorum, quorum_fails};

/// Blocks each demo run commits: enough for the restart fault to happen mid-run.
const BLOCKS: usize = 300;
/// Chains they are spread over.
const CHAINS: usize = 6;

/// Runs the demo with `extra` arguments; its summary.
fn demo(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, chains) = (BLOCKS.to_string(), CHAINS.to_string());
    let mut args = vec![
        "demo",
        "--blocks",
        &blocks,
        "--chains",
        &chains,
        "--faults",
        "restart",
        "--insecure-seed",
        "7",
    ];
    args.extend_from_slice(extra);
    quorum(dir.path(), &args)
}

/// The number after `label` in the summary.
fn figure(summary: &str, label: &str) -> usize {
    summary
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in {summary}"))
}

/// Every validator row says the validator ended in sync, the restarted one included.
fn all_in_sync(summary: &str) {
    let rows: Vec<&str> = summary
        .lines()
        .filter(|line| line.trim_start().starts_with("validator-"))
        .collect();
    assert_eq!(rows.len(), 4, "{summary}");
    assert!(
        rows.iter()
            .any(|row| row.contains("stopped mid-run, restarted")),
        "{summary}"
    );
    for row in rows {
        assert!(row.ends_with("in sync"), "{row}");
    }
}

/// Runs the demo with `extra` arguments and checks its summary: the blocks agreed as `rounds`
/// says, all of them committed with at least `calls_per_block` quorum calls each, and every
/// validator in sync.
fn commits(extra: &[&str], rounds: &str, calls_per_block: usize) {
    let summary = demo(extra);
    assert!(
        summary.contains(&format!("{CHAINS} chains ({rounds})")),
        "{summary}"
    );
    assert_eq!(figure(&summary, "blocks committed"), BLOCKS);
    assert!(
        figure(&summary, "quorum calls") >= calls_per_block * BLOCKS,
        "{summary}"
    );
    all_in_sync(&summary);
}

#[test]
fn the_demo_commits_in_the_fast_round_by_default() {
    // One round of votes and the certificate's broadcast per block, at least.
    commits(&[], "fast round", 2);
}

#[test]
fn the_demo_commits_in_two_phases_without_the_fast_round() {
    // Validated votes, confirmed votes and the broadcast per block, at least.
    commits(&["--no-fast-round"], "two phases", 3);
}

#[test]
fn the_demo_refuses_what_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let error = quorum_fails(dir.path(), &["demo", "--faults", "late,hang"]);
    assert!(
        error.contains("2 faulty validators (late,hang) is more than f = 1 for 4 validators"),
        "{error}"
    );
    let error = quorum_fails(dir.path(), &["demo", "--chains", "1"]);
    assert!(
        error.contains("chains ≥ 2 and blocks ≥ 1 (got 4, 1 and 200)"),
        "{error}"
    );
}
