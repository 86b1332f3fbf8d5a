//! A validator on PostgreSQL (DESIGN §7.1) among validators on redb: `quorum validator` runs
//! from a validator.toml whose storage is `[storage.postgres]`, its password in a file of mode
//! 0600; the committee commits with it, its data is in the database, and it serves again
//! after a SIGKILL. A URL carrying a password is refused, saying where the password goes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{free_ports, postgres, quorum, Validators};

#[test]
fn a_validator_on_postgres_serves_among_validators_on_redb() {
    let Some((runtime, database)) = postgres::database("cli_validator") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let base = free_ports(4);
    common::dev_genesis(path, base);
    let config = path.join("validator-0.toml");
    postgres::use_postgres(&config, &database.url(), "validator_0", "");
    let mut children = Validators(Vec::new());
    for i in 0..4 {
        children.0.push(common::start_validator(
            &path.join(format!("validator-{i}.toml")),
        ));
    }
    let d = path.to_str().unwrap();
    quorum(
        path,
        &[
            "client", "--dir", d, "transfer", "--from", "1", "--to", "2", "--amount", "3",
        ],
    );
    // The validator on PostgreSQL holds the block.
    let count = |table: &str| {
        let query = format!("SELECT count(*) FROM validator_0.{table}");
        postgres::count(&runtime, &database, &query)
    };
    assert!(count("quorum_certificates") >= 1);
    assert!(count("quorum_chain_states") >= 3);
    // Killed and restarted, it serves from its database; with another validator down, every
    // block now needs it.
    children.0[0].kill().unwrap();
    children.0[0].wait().unwrap();
    children.0[0] = common::start_validator(&config);
    children.0[3].kill().unwrap();
    children.0[3].wait().unwrap();
    quorum(
        path,
        &[
            "client", "--dir", d, "transfer", "--from", "2", "--to", "1", "--amount", "1",
        ],
    );
    assert!(count("quorum_certificates") >= 2);
    drop(children);
    runtime.block_on(database.drop_database());
}

#[test]
fn a_password_in_the_database_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    common::dev_genesis(path, free_ports(4));
    let config = path.join("validator-0.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with("storage"))
        .map(str::to_owned)
        .chain([
            "[storage.postgres]".to_owned(),
            "url = \"postgres://q:hunter2@127.0.0.1:1/v\"".to_owned(),
        ])
        .collect();
    std::fs::write(&config, postgres::reorder_tables(&lines)).unwrap();
    let stderr = common::quorum_fails(path, &["validator", "--config", config.to_str().unwrap()]);
    assert!(stderr.contains("password_file"), "{stderr}");
    assert!(stderr.contains("QUORUM_POSTGRES_PASSWORD"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
