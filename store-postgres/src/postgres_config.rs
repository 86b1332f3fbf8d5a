//! [`PostgresConfig`]: where the database is and how the store uses it.

use std::time::Duration;

/// How a [`PostgresStorage`](crate::PostgresStorage) reaches its database. [`Default`] gives
/// every bound; only the URL has no default.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// The server and database, e.g. `postgres://quorum@db.example:5432/validator`; a
    /// password may be in it (never log it: [`PostgresConfig`]'s `Debug` hides it).
    pub url: String,
    /// The password, when it is not in the URL (read from a file or the environment by the
    /// program; `Debug` hides it).
    pub password: Option<String>,
    /// The schema holding the tables (default `public`); several stores may share a database
    /// in schemas of their own.
    pub schema: String,
    /// Connections held at most (default 4): requests beyond wait for one to be free.
    pub pool_size: usize,
    /// The longest a connection may take to open (default 5 s).
    pub connect_timeout: Duration,
    /// The longest one statement may wait for the server before the connection is given up
    /// (default 30 s).
    pub statement_timeout: Duration,
    /// How many times a write batch is tried again after a serialization conflict (SQLSTATE
    /// 40001, 40P01) or a lost connection (default 32).
    pub max_retries: u32,
    /// The pause before the first retry, doubled each time up to 1 s (default 5 ms).
    pub retry_backoff: Duration,
}

impl PostgresConfig {
    /// The settings of [`Default`] for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            ..PostgresConfig::default()
        }
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: String::new(),
            password: None,
            schema: "public".to_owned(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            max_retries: 32,
            retry_backoff: Duration::from_millis(5),
        }
    }
}

impl std::fmt::Debug for PostgresConfig {
    /// Everything but the URL's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redacted(&self.url))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff", &self.retry_backoff)
            .finish()
    }
}

/// `url` with any password replaced by `***`.
pub fn redacted(url: &str) -> String {
    // postgres://user:password@host/... : the password runs from the first ':' after the
    // scheme to the last '@' before the host.
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_owned(),
    }
}

/// Whether `url` carries a password.
pub fn has_password(url: &str) -> bool {
    redacted(url) != url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redacted("postgres://quorum:s3cr@t@db:5432/v"),
            "postgres://quorum:***@db:5432/v"
        );
        assert_eq!(redacted("postgres://quorum@db/v"), "postgres://quorum@db/v");
        assert_eq!(redacted("host=db user=q"), "host=db user=q");
        assert!(has_password("postgresql://a:b@c/d"));
        assert!(!has_password("postgresql://a@c:5432/d"));
        let config = PostgresConfig {
            password: Some("hunter2".into()),
            ..PostgresConfig::new("postgres://u:pw@h/d")
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("pw") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
