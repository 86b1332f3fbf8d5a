//! `quorum chaos` end to end (DESIGN §10.1): four `quorum validator` processes under a short
//! seeded schedule of overlapping faults, three clients, then the checker; every invariant
//! holds, the JSON report says so with its figures, and no validator outlives the run. The
//! longer run is `.ci/run`'s (60 s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::run_within;

/// Longest the short run may take, start to exit (about 25 s expected in a debug build).
const RUN_BOUND: Duration = Duration::from_secs(240);

/// `quorum chaos ARGS… --data-dir DIR/run --report DIR/report.json` in a new directory, which
/// must succeed: its standard output, the report, and the directory.
fn chaos(args: &[&str]) -> (String, serde_json::Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let data = dir.path().join("run");
    let mut all = vec!["chaos"];
    all.extend_from_slice(args);
    all.extend(["--data-dir", data.to_str().unwrap()]);
    all.extend(["--report", report.to_str().unwrap()]);
    let (output, _) = run_within(dir.path(), &all, RUN_BOUND).unwrap();
    assert!(
        output.status.success(),
        "chaos failed:\n{}\n{}",
        output.stdout,
        output.stderr
    );
    let report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (output.stdout, report, dir)
}

#[test]
fn a_short_seeded_run_holds_every_invariant_and_reports_them() {
    let (stdout, report, dir) = chaos(&["--seed", "11", "--duration", "12", "--clients", "3"]);
    assert!(stdout.contains("every invariant held"), "{stdout}");
    let data = dir.path().join("run");
    assert_eq!(report["seed"], 11);
    let verdicts = report["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 6);
    for verdict in verdicts {
        assert_eq!(
            verdict["violations"].as_array().unwrap().len(),
            0,
            "{verdict}"
        );
    }
    assert!(report["acknowledged"].as_u64().unwrap() > 10, "{report}");
    assert!(!report["schedule"]["faults"].as_array().unwrap().is_empty());
    assert!(report["heal_to_sync_secs"].as_f64().is_some());
    // Every journal is on disk, and every validator has exited: its database opens.
    assert!(data.join("client-0.journal").exists());
    for index in 0..4 {
        let database = data.join(format!("validator-{index}/validator.redb"));
        redb::Database::open(&database).unwrap();
    }
}

#[test]
fn a_byzantine_validator_is_routed_around_and_not_asked_by_the_checker() {
    let (_, report, _dir) = chaos(&[
        "--seed",
        "12",
        "--duration",
        "8",
        "--clients",
        "2",
        "--byzantine",
    ]);
    assert_eq!(report["byzantine"], 3);
    assert!(report["acknowledged"].as_u64().unwrap() > 5, "{report}");
    // Among four, the Byzantine validator leaves no room for another validator's fault.
    for fault in report["schedule"]["faults"].as_array().unwrap() {
        assert!(fault["target"].get("client").is_some(), "{fault}");
    }
    // Three honest validators were compared.
    let fork = &report["verdicts"][0]["figures"];
    assert!(
        fork.as_str().unwrap().ends_with("across 3 validators"),
        "{fork}"
    );
}

#[test]
fn bad_settings_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (output, _) = run_within(
        dir.path(),
        &["chaos", "--validators", "0", "--duration", "1"],
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(!output.status.success());
    assert!(
        output.stderr.contains("at least one validator"),
        "{}",
        output.stderr
    );
    let (output, _) = run_within(
        dir.path(),
        &["chaos", "--clients", "0", "--duration", "1"],
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(!output.status.success());
    assert!(
        output.stderr.contains("at least one client"),
        "{}",
        output.stderr
    );
}
