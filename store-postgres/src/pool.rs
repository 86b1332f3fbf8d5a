//! [`Pool`]: at most `pool_size` connections, opened on demand, each checked out by one task
//! at a time; a connection that broke is dropped and another opened in its place.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, NoTls};

use crate::error::PostgresError;
use crate::postgres_config::{redacted, PostgresConfig};

/// A bounded pool of connections to one database.
pub(crate) struct Pool {
    config: PostgresConfig,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
}

/// A connection checked out of the [`Pool`]; back in the pool when dropped, unless it broke.
pub(crate) struct Pooled<'a> {
    client: Option<Client>,
    pool: &'a Pool,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    /// A pool for `config`, with no connection open yet.
    pub(crate) fn new(config: PostgresConfig) -> Pool {
        let permits = Arc::new(Semaphore::new(config.pool_size));
        Pool {
            config,
            idle: Mutex::new(Vec::new()),
            permits,
        }
    }

    /// The settings.
    pub(crate) fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// A connection: an idle one still open, or a new one. Waits while all are in use.
    pub(crate) async fn get(&self) -> Result<Pooled<'_>, PostgresError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| PostgresError::Config("the pool is closed".into()))?;
        let idle = loop {
            let next = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            match next {
                Some(client) if client.is_closed() => continue,
                other => break other,
            }
        };
        let client = match idle {
            Some(client) => client,
            None => self.connect().await?,
        };
        Ok(Pooled {
            client: Some(client),
            pool: self,
            _permit: permit,
        })
    }

    /// Opens a connection within the connect timeout, its driver task spawned, its search
    /// path set to the schema.
    async fn connect(&self) -> Result<Client, PostgresError> {
        let url = &self.config.url;
        let connect_error = |source| PostgresError::Connect {
            url: redacted(url),
            source,
        };
        let mut settings: tokio_postgres::Config = url.parse().map_err(connect_error)?;
        if let Some(password) = &self.config.password {
            settings.password(password);
        }
        let connecting = settings.connect(NoTls);
        let (client, connection) = tokio::time::timeout(self.config.connect_timeout, connecting)
            .await
            .map_err(|_| PostgresError::Timeout(self.config.connect_timeout))?
            .map_err(connect_error)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection ended");
            }
        });
        // The schema name was checked to be a plain identifier.
        let path = format!("SET search_path TO {}", self.config.schema);
        tokio::time::timeout(self.config.statement_timeout, client.batch_execute(&path))
            .await
            .map_err(|_| PostgresError::Timeout(self.config.statement_timeout))??;
        Ok(client)
    }
}

impl Pooled<'_> {
    /// The connection.
    pub(crate) fn client(&self) -> &Client {
        // Present until dropped.
        match &self.client {
            Some(client) => client,
            None => unreachable!("a pooled connection is taken only when dropped"),
        }
    }

    /// The connection, to start a transaction on.
    pub(crate) fn client_mut(&mut self) -> &mut Client {
        match &mut self.client {
            Some(client) => client,
            None => unreachable!("a pooled connection is taken only when dropped"),
        }
    }

    /// Drops the connection instead of returning it (after an error that leaves it in an
    /// unknown state, say mid-transaction).
    pub(crate) fn discard(mut self) {
        self.client = None;
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(client);
            }
        }
    }
}
