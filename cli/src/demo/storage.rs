//! Where `quorum demo`'s validators keep their data (DESIGN §7.1): redb files (the default,
//! no server needed), or a PostgreSQL database, each validator in a schema of its own, and
//! with `--shards N` each validator a proxy and N shards.
//!
//! The database is `--database-url` (without a password: one given on the command line is
//! refused) or `QUORUM_POSTGRES_URL`; a password comes from that variable's URL or from
//! `QUORUM_POSTGRES_PASSWORD`. The demo makes a database of its own there (the role needs
//! `CREATEDB`), one schema per validator, and drops it when it ends.

use std::sync::Arc;

use tracing::warn;

use quorum_core::ValidatorSecretKey;
use quorum_node::{Genesis, SystemClock};
use quorum_store_postgres::{PostgresConfig, PostgresStorage, ScratchDatabase};
use quorum_transport_tcp::{Server, ServerConfig};

use crate::error::CliError;
use crate::operator::shards_config::ShardsConfig;
use crate::operator::storage_config::{refuse_password_in_url, PASSWORD_ENV};
use crate::operator::validator;
use crate::operator::validator::sharded::{start_proxy, start_shard, RunningShard};
use crate::operator::validator_config::LimitsConfig;

/// The environment variable naming the demo's (and the tests') database.
pub const URL_ENV: &str = "QUORUM_POSTGRES_URL";

/// The demo's storage engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// A redb file per validator, in the data directory.
    Redb,
    /// A schema per validator in a PostgreSQL database.
    Postgres,
}

/// The demo's storage options.
#[derive(Clone, Debug, clap::Args)]
pub struct StorageArgs {
    /// Where validators keep their data.
    #[arg(long, value_enum, default_value_t = Engine::Redb)]
    pub storage: Engine,
    /// Make every validator a proxy and this many shards, all on its schema (needs
    /// `--storage postgres`).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// The PostgreSQL database, without a password (default: `QUORUM_POSTGRES_URL`; the
    /// password from `QUORUM_POSTGRES_PASSWORD`).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

impl StorageArgs {
    /// How the summary names the storage.
    pub fn describe(&self) -> String {
        match (self.storage, self.shards) {
            (Engine::Redb, _) => "redb".into(),
            (Engine::Postgres, None) => "postgres".into(),
            (Engine::Postgres, Some(n)) => format!("postgres, {n} shard(s) per validator"),
        }
    }

    /// The database each of `validators` validators uses (`None`: redb): a database made
    /// for this run, one schema per validator. Refuses a password on the command line and
    /// shards without PostgreSQL.
    pub async fn prepare(&self, validators: usize) -> Result<DemoDatabase, CliError> {
        if self.storage == Engine::Redb {
            if self.shards.is_some() || self.database_url.is_some() {
                return Err(CliError::ShardsNeedPostgres);
            }
            return Ok(DemoDatabase {
                scratch: None,
                places: vec![None; validators],
            });
        }
        if self.shards == Some(0) {
            return Err(CliError::NoShards);
        }
        let url = match &self.database_url {
            Some(url) => {
                refuse_password_in_url(url, "--database-url")?;
                url.clone()
            }
            None => std::env::var(URL_ENV).map_err(|_| CliError::NoDatabaseUrl)?,
        };
        let server = PostgresConfig {
            password: std::env::var(PASSWORD_ENV).ok(),
            ..PostgresConfig::new(url)
        };
        let name = format!(
            "quorum_demo_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let scratch = ScratchDatabase::create(&server, &name).await?;
        let mut places = Vec::new();
        for index in 0..validators {
            let shards = match self.shards {
                None => None,
                Some(count) => Some(ShardsConfig {
                    addresses: super::free_ports::free_addresses(count as usize).await?,
                    ..ShardsConfig::default()
                }),
            };
            let config = scratch.config(&format!("validator_{index}"));
            places.push(Some(Place { config, shards }));
        }
        Ok(DemoDatabase {
            scratch: Some(scratch),
            places,
        })
    }
}

/// The demo's data on PostgreSQL: the database made for the run, and each validator's place
/// in it (`None`: on redb).
pub struct DemoDatabase {
    scratch: Option<ScratchDatabase>,
    /// Validator `i`'s place at index `i`.
    pub places: Vec<Option<Place>>,
}

impl DemoDatabase {
    /// Drops the run's database (once every validator is stopped); a failure is only logged.
    pub async fn finish(self) {
        if let Some(scratch) = self.scratch {
            let name = scratch.name().to_owned();
            if let Err(error) = scratch.drop_database().await {
                warn!(%error, database = name, "could not drop the demo's database");
            }
        }
    }
}

/// One demo validator's database, and its shards' addresses when sharded.
#[derive(Clone, Debug)]
pub struct Place {
    /// The database and the validator's schema.
    pub config: PostgresConfig,
    /// Its shards, if sharded.
    pub shards: Option<ShardsConfig>,
}

/// What serves one demo validator on PostgreSQL: a Worker's server, or a proxy and shards.
pub struct Serving {
    server: Server,
    shards: Vec<RunningShard>,
}

impl Place {
    /// Starts the validator of `key` on `address`.
    pub async fn start(
        &self,
        genesis: &Genesis,
        key: &ValidatorSecretKey,
        address: &str,
    ) -> Result<Serving, CliError> {
        let limits = LimitsConfig::default();
        let Some(shards_config) = &self.shards else {
            let storage = PostgresStorage::connect(self.config.clone()).await?;
            let worker = validator::worker_on(
                storage,
                genesis,
                key.clone(),
                &limits,
                Arc::new(SystemClock),
            )
            .await?;
            let listener = validator::bind(address).await?;
            let protocol = limits.protocol();
            let server =
                validator::serve_node(worker, &protocol, listener, ServerConfig::default())?;
            return Ok(Serving {
                server,
                shards: Vec::new(),
            });
        };
        let mut shards = Vec::new();
        for index in 0..shards_config.addresses.len() as u32 {
            let shard = start_shard(
                self.config.clone(),
                &limits,
                shards_config,
                genesis,
                key.clone(),
                index,
                Arc::new(SystemClock),
                None,
            )
            .await?;
            shards.push(shard);
        }
        let listener = validator::bind(address).await?;
        let server = start_proxy(self.config.clone(), &limits, shards_config, listener).await?;
        Ok(Serving { server, shards })
    }
}

impl Serving {
    /// Stops the proxy (or the Worker's server) and the shards, giving their leases up.
    pub async fn stop(self) {
        self.server.shutdown().await;
        for shard in self.shards {
            shard.stop().await;
        }
    }
}
