//! A sharded validator (DESIGN §7.1) from validator.toml: one file for the whole validator,
//! its `[shards]` table naming where each shard listens. `quorum validator --config FILE`
//! runs the proxy (on `listen`, the validator's address in the committee), and
//! `quorum validator --config FILE --shard I` runs shard `I`, with the validator's key, on
//! `addresses[I]`. All of them use the `[storage.postgres]` database.
//!
//! ```toml
//! listen = "0.0.0.0:9100"
//! key_file = "validator.key"
//!
//! [storage.postgres]
//! url = "postgres://quorum@db.example:5432/validator"
//!
//! [shards]
//! addresses = ["10.0.0.2:9201", "10.0.0.3:9201", "10.0.0.4:9201"]
//! lease_ms = 10000        # a killed shard's index is free again after this
//! outbox_poll_ms = 10         # a busy shard looks for deliveries owed to its chains this often
//! outbox_idle_poll_ms = 200   # an idle one at least this often
//! ```
//!
//! Every shard's lease is fenced: a shard whose lease lapsed or was taken over writes nothing
//! more and stops (`quorum validator --shard` exits with an error), so one key never signs
//! for the same chains in two processes.
//!
//! The number of shards is the number of addresses; the database records it when the first
//! shard starts, and a shard started with another number is refused (resharding is not
//! supported). Shard addresses are the proxy's to reach: keep them on a private network.
//!
//! `router`: the proxy's node, each request to the shard that owns its chain.

mod router;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::info;

use quorum_core::{ValidatorNode, ValidatorSecretKey};
use quorum_node::{Clock, Genesis, Worker, WorkerConfig};
use quorum_store_postgres::{PostgresConfig, PostgresStorage, ShardClaim, ShardLease};
use quorum_transport_tcp::{ClientConfig, Server, ServerConfig, TcpValidatorNode};

use crate::error::CliError;
use crate::operator::shards_config::ShardsConfig;
use crate::operator::storage_config::StorageConfig;
use crate::operator::validator_config::{LimitsConfig, ValidatorConfig};
use router::ShardRouter;

/// The database settings of a sharded validator, which must be PostgreSQL.
pub fn database(config: &ValidatorConfig) -> Result<PostgresConfig, CliError> {
    match &config.storage {
        StorageConfig::Postgres { postgres } => {
            postgres.store_config("validator.toml [storage.postgres]")
        }
        StorageConfig::Redb(_) => Err(CliError::ShardsNeedPostgres),
    }
}

/// What a shard server accepts: the validator's limits, except those per address, since
/// every request comes from the proxy's one address.
fn shard_server_config(limits: &LimitsConfig) -> ServerConfig {
    let server = limits.server_config();
    ServerConfig {
        max_connections_per_ip: server.max_connections,
        max_handlers_per_ip: server.max_handlers,
        max_handlers_per_group: server.max_handlers,
        receive_share_per_ip: server.receive_budget,
        group_budget: server.server_budget,
        max_subscriptions_per_address: usize::MAX,
        max_subscribed_chains_per_address: usize::MAX,
        ..server
    }
}

/// A running shard: its server, its lease and its outbox delivery.
pub struct RunningShard {
    /// The server the proxy reaches.
    pub server: Server,
    /// The lease of its index.
    pub lease: ShardLease,
    delivery: JoinHandle<()>,
}

impl RunningShard {
    /// Stops serving and delivering, and gives the index up.
    pub async fn stop(self) {
        self.server.shutdown().await;
        self.delivery.abort();
        if let Err(error) = self.lease.release().await {
            tracing::warn!(%error, "could not release the shard lease; it expires by itself");
        }
    }
}

/// Starts shard `index` of the sharded validator `config` (on `listener` if given, else on
/// its address): claims its lease, writes the genesis of its own chains, serves, and
/// delivers its outbox.
#[allow(clippy::too_many_arguments)] // each is one thing a shard is made of
pub async fn start_shard(
    database: PostgresConfig,
    limits: &LimitsConfig,
    shards: &ShardsConfig,
    genesis: &Genesis,
    key: ValidatorSecretKey,
    index: u32,
    clock: Arc<dyn Clock>,
    listener: Option<TcpListener>,
) -> Result<RunningShard, CliError> {
    let shard = shards.shard(index)?;
    let storage = PostgresStorage::connect(database).await?;
    let lease = storage
        .claim_shard(ShardClaim {
            index,
            count: shard.count().get(),
            lease: Duration::from_millis(shards.lease_ms),
        })
        .await?;
    let owned = |chain| shard.owns(chain);
    let admin = genesis
        .initialize_where(&storage, clock.now(), owned)
        .await?;
    let worker_config = WorkerConfig {
        shard: Some(shard),
        ..limits.apply(WorkerConfig::new(admin))
    };
    let worker = Arc::new(Worker::new(storage, Some(key), clock, worker_config));
    let listener = match listener {
        Some(listener) => listener,
        None => super::bind(&shards.addresses[index as usize]).await?,
    };
    let node: Arc<dyn ValidatorNode> = worker.clone();
    let protocol = limits.protocol();
    let server = super::serve_node(node, &protocol, listener, shard_server_config(limits))?;
    let busy = Duration::from_millis(shards.outbox_poll_ms);
    let idle = Duration::from_millis(shards.outbox_idle_poll_ms);
    let delivery = tokio::spawn(async move { worker.deliver_outbox_forever(busy, idle).await });
    info!(index, count = shard.count().get(), address = %server.local_addr(), "shard serving");
    Ok(RunningShard {
        server,
        lease,
        delivery,
    })
}

/// Starts the proxy of the sharded validator `config` on `listener`: each request to the
/// shard owning its chain, chain-less reads from the database.
pub async fn start_proxy(
    database: PostgresConfig,
    limits: &LimitsConfig,
    shards: &ShardsConfig,
    listener: TcpListener,
) -> Result<Server, CliError> {
    shards.count()?;
    let tables = PostgresStorage::connect(database).await?;
    let protocol = limits.protocol();
    let client = ClientConfig {
        max_frame_length: limits.max_frame_length(),
        ..ClientConfig::default()
    };
    let mut nodes: Vec<Arc<dyn ValidatorNode>> = Vec::new();
    for address in &shards.addresses {
        let node =
            TcpValidatorNode::new(address.clone(), client.clone()).map_err(CliError::Transport)?;
        nodes.push(Arc::new(node));
    }
    let count = nodes.len();
    let router = ShardRouter::new(nodes, Arc::new(tables), protocol, shards.subscription_queue)
        .ok_or(CliError::NoShards)?;
    let server = super::serve_node(
        Arc::new(router),
        &protocol,
        listener,
        limits.server_config(),
    )?;
    info!(shards = count, address = %server.local_addr(), "shard proxy serving");
    Ok(server)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn shards_parse_with_defaults_and_refuse_nonsense() {
        let parsed: ShardsConfig = toml::from_str("addresses = [\"a:1\", \"b:2\"]").unwrap();
        assert_eq!(parsed.count().unwrap().get(), 2);
        assert_eq!(parsed.lease_ms, ShardsConfig::default().lease_ms);
        assert!(parsed.shard(1).is_ok());
        assert!(parsed.shard(2).is_err());
        assert!(ShardsConfig::default().count().is_err());
        assert!(toml::from_str::<ShardsConfig>("adresses = []").is_err());
    }
}
