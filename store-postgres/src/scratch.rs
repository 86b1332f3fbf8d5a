//! [`ScratchDatabase`]: a database made for one throw-away run (`quorum demo`, a test) on a
//! server, and dropped at its end, so that nothing is left behind and no run sees another's
//! tables. The role needs the `CREATEDB` privilege.

use crate::error::PostgresError;
use crate::pool::Pool;
use crate::postgres_config::PostgresConfig;
use crate::schema::is_identifier;

/// A database of its own on the server of a configuration.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// The server, reached through the database its URL names.
    server: PostgresConfig,
    /// The database made.
    name: String,
}

impl ScratchDatabase {
    /// Makes the database `name` (a plain lower-case identifier) on `server`'s server,
    /// dropping one of that name first.
    pub async fn create(server: &PostgresConfig, name: &str) -> Result<Self, PostgresError> {
        if !is_identifier(name) {
            return Err(PostgresError::Config(format!(
                "database name {name:?} is not a plain lower-case identifier"
            )));
        }
        with_database(&server.url, name)?;
        let scratch = ScratchDatabase {
            server: server.clone(),
            name: name.to_owned(),
        };
        scratch
            .execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
        scratch.execute(&format!("CREATE DATABASE {name}")).await?;
        Ok(scratch)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL (with the server's credentials).
    pub fn url(&self) -> String {
        // Checked when made.
        with_database(&self.server.url, &self.name).unwrap_or_default()
    }

    /// A store configuration on this database, in `schema`, with the server's password.
    pub fn config(&self, schema: &str) -> PostgresConfig {
        PostgresConfig {
            url: self.url(),
            schema: schema.to_owned(),
            ..self.server.clone()
        }
    }

    /// Drops the database, closing every connection to it first.
    pub async fn drop_database(self) -> Result<(), PostgresError> {
        let name = &self.name;
        self.execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
    }

    /// Runs `statement` on the server's own database.
    async fn execute(&self, statement: &str) -> Result<(), PostgresError> {
        let pool = Pool::new(PostgresConfig {
            schema: "public".into(),
            pool_size: 1,
            ..self.server.clone()
        });
        let connection = pool.get().await?;
        connection.client().batch_execute(statement).await?;
        Ok(())
    }
}

/// `url` (a `postgres://` URL) naming the database `database` instead of its own.
fn with_database(url: &str, database: &str) -> Result<String, PostgresError> {
    let not_a_url = || {
        PostgresError::Config(format!(
            "{} is not a postgres:// URL naming a database",
            crate::postgres_config::redacted(url)
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(not_a_url)?;
    let (authority, path) = rest.split_once('/').ok_or_else(not_a_url)?;
    let query = path.split_once('?').map(|(_, query)| query);
    Ok(match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced_and_its_options_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "x").ok(),
            Some("postgres://u:p@h:5432/x".to_owned())
        );
        assert_eq!(
            with_database("postgresql://h/db?sslmode=disable", "x").ok(),
            Some("postgresql://h/x?sslmode=disable".to_owned())
        );
        assert!(with_database("host=h dbname=d", "x").is_err());
    }
}
