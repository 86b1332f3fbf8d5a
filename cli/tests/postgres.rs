//! A validator on PostgreSQL (DESIGN §7.1) among validators on redb: `quorum validator` runs
//! from a validator.toml whose storage is `[storage.postgres]`, its password in a file of mode
//! 0600; the committee commits with it, its data is in the database, and it serves again
//! after a SIGKILL. A URL carrying a password is refused, saying where the password goes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use quorum_testkit::postgres::TestDatabase;

use common::{free_ports, quorum, Validators};

/// `url` split into itself without the password, and the password.
fn split_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (credentials, host) = authority.rsplit_once('@').unwrap();
    let (user, password) = credentials.split_once(':').unwrap();
    (
        format!("{scheme}://{user}@{host}/{path}"),
        password.to_owned(),
    )
}

/// Points `config`'s storage at `url`'s database in schema `schema`, the password in a file.
fn use_postgres(config: &Path, url: &str, schema: &str) {
    let (bare, password) = split_password(url);
    let password_file = config.with_extension("password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(config).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with("storage"))
        .map(str::to_owned)
        .collect();
    lines.push(format!(
        "\n[storage.postgres]\nurl = \"{bare}\"\nschema = \"{schema}\"\npassword_file = \"{}\"",
        password_file.display()
    ));
    // Tables after plain values: move [limits] and the rest below the plain keys as written.
    std::fs::write(config, reorder_tables(&lines)).unwrap();
}

/// The TOML lines with every plain `key = value` of the top level before the first table.
fn reorder_tables(lines: &[String]) -> String {
    let mut top = Vec::new();
    let mut tables = Vec::new();
    let mut in_table = false;
    for line in lines {
        if line.trim_start().starts_with('[') {
            in_table = true;
        }
        if in_table {
            tables.push(line.clone());
        } else {
            top.push(line.clone());
        }
    }
    // The storage table was appended last; plain lines of other tables stay with them.
    format!("{}\n{}\n", top.join("\n"), tables.join("\n"))
}

#[test]
fn a_validator_on_postgres_serves_among_validators_on_redb() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(database) = runtime.block_on(TestDatabase::create("cli_validator")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let base = free_ports(4);
    common::dev_genesis(path, base);
    let config = path.join("validator-0.toml");
    use_postgres(&config, &database.url(), "validator_0");
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
    let count = |table: &str| -> i64 {
        runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&database.url(), tokio_postgres::NoTls)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            client
                .query_one(&format!("SELECT count(*) FROM validator_0.{table}"), &[])
                .await
                .unwrap()
                .get(0)
        })
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
    std::fs::write(&config, reorder_tables(&lines)).unwrap();
    let stderr = common::quorum_fails(path, &["validator", "--config", config.to_str().unwrap()]);
    assert!(stderr.contains("password_file"), "{stderr}");
    assert!(stderr.contains("QUORUM_POSTGRES_PASSWORD"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
