//! A validator's `storage` in validator.toml (DESIGN §7.1): a redb file, as every file written
//! so far has it, or a PostgreSQL-wire database.
//!
//! ```toml
//! storage = "validator.redb"
//! ```
//! or
//! ```toml
//! [storage.postgres]
//! url = "postgres://quorum@db.example:5432/validator"   # no password here
//! pool_size = 8                                         # default 4
//! schema = "public"                                     # default public
//! password_file = "db.password"                         # mode 0600; or QUORUM_POSTGRES_PASSWORD
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use quorum_store_postgres::{has_password, PostgresConfig};

use crate::error::CliError;

/// The environment variable a database password may come from.
pub const PASSWORD_ENV: &str = "QUORUM_POSTGRES_PASSWORD";

/// Where a validator keeps its data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StorageConfig {
    /// A redb database file (relative to the configuration's directory).
    Redb(PathBuf),
    /// A PostgreSQL-wire database.
    Postgres {
        /// Its settings.
        postgres: PostgresSettings,
    },
}

/// The `[storage.postgres]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// The server and database, without a password.
    pub url: String,
    /// Connections held at most (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<usize>,
    /// The schema holding the tables (default `public`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// A file holding the password (mode 0600), relative to the configuration's directory;
    /// else [`PASSWORD_ENV`], else none (trust or certificate authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

impl StorageConfig {
    /// Paths made absolute against `base` (the configuration's directory).
    pub fn resolve(&mut self, base: &Path) {
        let path = match self {
            StorageConfig::Redb(path) => path,
            StorageConfig::Postgres { postgres } => match &mut postgres.password_file {
                Some(path) => path,
                None => return,
            },
        };
        if path.is_relative() {
            *path = base.join(&*path);
        }
    }
}

impl PostgresSettings {
    /// The store's configuration: the password from its file or the environment; a password
    /// written into the URL is refused, saying where it belongs.
    pub fn store_config(&self, what: &str) -> Result<PostgresConfig, CliError> {
        refuse_password_in_url(&self.url, what)?;
        let password = match &self.password_file {
            Some(path) => {
                crate::keys::check_private(path)?;
                let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
                    path: path.clone(),
                    source,
                })?;
                Some(text.trim_end_matches(['\n', '\r']).to_owned())
            }
            None => std::env::var(PASSWORD_ENV).ok(),
        };
        let defaults = PostgresConfig::default();
        Ok(PostgresConfig {
            password,
            pool_size: self.pool_size.unwrap_or(defaults.pool_size),
            schema: self.schema.clone().unwrap_or(defaults.schema.clone()),
            ..PostgresConfig::new(self.url.clone())
        })
    }
}

/// Refuses a database URL carrying a password (in `what`: an argument, a file), saying where
/// passwords go instead.
pub fn refuse_password_in_url(url: &str, what: &str) -> Result<(), CliError> {
    if has_password(url) {
        return Err(CliError::PasswordInUrl {
            what: what.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Deserialize)]
    struct File {
        storage: StorageConfig,
    }

    #[test]
    fn both_forms_parse_and_old_files_keep_working() {
        let old: File = toml::from_str("storage = \"validator.redb\"").unwrap();
        assert_eq!(old.storage, StorageConfig::Redb("validator.redb".into()));
        let new: File = toml::from_str(
            "[storage.postgres]\nurl = \"postgres://q@db/v\"\npool_size = 8\npassword_file = \"pw\"\n",
        )
        .unwrap();
        let StorageConfig::Postgres { mut postgres } = new.storage else {
            panic!("expected postgres");
        };
        assert_eq!(postgres.pool_size, Some(8));
        let mut storage = StorageConfig::Postgres {
            postgres: postgres.clone(),
        };
        storage.resolve(Path::new("/etc/quorum"));
        let StorageConfig::Postgres { postgres: resolved } = storage else {
            panic!("expected postgres");
        };
        assert_eq!(resolved.password_file, Some("/etc/quorum/pw".into()));
        postgres.password_file = None;
        let config = postgres.store_config("validator.toml").unwrap();
        assert_eq!(config.pool_size, 8);
        assert_eq!(config.schema, "public");
    }

    #[test]
    fn a_password_in_the_url_is_refused_with_where_to_put_it() {
        let settings = PostgresSettings {
            url: "postgres://q:secret@db/v".into(),
            pool_size: None,
            schema: None,
            password_file: None,
        };
        let error = settings
            .store_config("validator.toml")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("password_file") && error.contains(PASSWORD_ENV),
            "{error}"
        );
        assert!(!error.contains("secret"), "{error}");
    }
}
