//! What the process tests on PostgreSQL share: a runtime and a database of the test's own,
//! a validator.toml pointed at it (the password in a file of mode 0600), and counting rows.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use quorum_testkit::postgres::TestDatabase;
use tokio::runtime::Runtime;

/// A runtime and a database named after `test`, or `None` when no server answers outside CI
/// (the test kit says so).
pub fn database(test: &str) -> Option<(Runtime, TestDatabase)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(TestDatabase::create(test))?;
    Some((runtime, database))
}

/// `url` without its password, and the password.
pub fn split_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (credentials, host) = rest.rsplit_once('@').unwrap();
    let (user, password) = credentials.split_once(':').unwrap();
    (format!("{scheme}://{user}@{host}"), password.to_owned())
}

/// Points `config`'s storage at `url`'s database in schema `schema`, the password in a file
/// beside it, and appends `more` (TOML tables) to it.
pub fn use_postgres(config: &Path, url: &str, schema: &str, more: &str) {
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
        "\n[storage.postgres]\nurl = \"{bare}\"\nschema = \"{schema}\"\npassword_file = \"{}\"\n{more}",
        password_file.display()
    ));
    std::fs::write(config, reorder_tables(&lines)).unwrap();
}

/// The TOML lines with every plain `key = value` of the top level before the first table
/// (tables appended last stay after them; the lines of each table stay with it).
pub fn reorder_tables(lines: &[String]) -> String {
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
    format!("{}\n{}\n", top.join("\n"), tables.join("\n"))
}

/// The one number `query` answers on `database`.
pub fn count(runtime: &Runtime, database: &TestDatabase, query: &str) -> i64 {
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&database.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.query_one(query, &[]).await.unwrap().get(0)
    })
}
