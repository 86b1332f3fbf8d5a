//! Running one validator: redb storage, a Worker with the system clock, served over TCP; and
//! the `quorum validator` command that runs one from its TOML configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{info, warn};

use quorum_core::{Storage, ValidatorNode, ValidatorSecretKey};
use quorum_node::{Clock, Genesis, SystemClock, Worker, WorkerConfig};
use quorum_store_redb::RedbStorage;
use quorum_transport_tcp::{Server, ServerConfig, ValidatorHandler};

use crate::error::CliError;
use crate::files;
use crate::keys;
use crate::operator::storage_config::StorageConfig;
use crate::operator::validator_config::{LimitsConfig, ValidatorConfig};

mod listeners;
pub(crate) mod sharded;

/// A validator's Worker over redb.
pub type RedbWorker = Worker<RedbStorage>;

/// Opens (or creates) the database at `database`, writes the genesis state where missing, and
/// returns the validator's Worker on the system clock, configured with `limits`.
pub async fn open_worker(
    database: &Path,
    genesis: &Genesis,
    key: ValidatorSecretKey,
    limits: &LimitsConfig,
) -> Result<Arc<RedbWorker>, CliError> {
    let storage = RedbStorage::open(database)?;
    worker_on(storage, genesis, key, limits, Arc::new(SystemClock)).await
}

/// The validator's Worker on `storage` and `clock`, the genesis state written where missing.
pub(crate) async fn worker_on<S: Storage + 'static>(
    storage: S,
    genesis: &Genesis,
    key: ValidatorSecretKey,
    limits: &LimitsConfig,
    clock: Arc<dyn Clock>,
) -> Result<Arc<Worker<S>>, CliError> {
    let admin = genesis.initialize(&storage, clock.now()).await?;
    Ok(Arc::new(Worker::new(
        storage,
        Some(key),
        clock,
        limits.apply(WorkerConfig::new(admin)),
    )))
}

/// The validator's node on the storage `config` names: the Worker, behind the Byzantine
/// testing mode when `byzantine`.
async fn open_node(
    config: &ValidatorConfig,
    genesis: &Genesis,
    key: ValidatorSecretKey,
    clock: Arc<dyn Clock>,
    byzantine: bool,
) -> Result<Arc<dyn ValidatorNode>, CliError> {
    let worker: Arc<dyn ValidatorNode> = match &config.storage {
        StorageConfig::Redb(path) => {
            let storage = RedbStorage::open(path)?;
            worker_on(storage, genesis, key.clone(), &config.limits, clock).await?
        }
        StorageConfig::Postgres { postgres } => {
            let settings = postgres.store_config("validator.toml [storage.postgres]")?;
            let storage = quorum_store_postgres::PostgresStorage::connect(settings).await?;
            worker_on(storage, genesis, key.clone(), &config.limits, clock).await?
        }
    };
    if byzantine {
        warn!("testing option: this validator is Byzantine");
        return Ok(Arc::new(crate::operator::byzantine::Byzantine::new(
            worker, key,
        )));
    }
    Ok(worker)
}

/// Serves `worker` on an already bound listener.
pub fn serve(
    worker: Arc<RedbWorker>,
    listener: TcpListener,
    config: ServerConfig,
) -> Result<Server, CliError> {
    let limits = worker.config().limits;
    let node: Arc<dyn ValidatorNode> = worker;
    serve_node(node, &limits, listener, config)
}

/// Serves `node` (a Worker, or a Worker behind a testing mode) under the protocol `limits`
/// on an already bound listener.
pub(crate) fn serve_node(
    node: Arc<dyn ValidatorNode>,
    limits: &quorum_core::Limits,
    listener: TcpListener,
    config: ServerConfig,
) -> Result<Server, CliError> {
    let address = listener
        .local_addr()
        .map_err(quorum_transport_tcp::TransportError::from)?;
    let handler = ValidatorHandler::with_limits(node, limits);
    let server = Server::serve(listener, config, handler)?;
    info!(%address, "validator serving");
    Ok(server)
}

/// Binds `address`.
pub async fn bind(address: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(address)
        .await
        .map_err(|e| CliError::Transport(quorum_transport_tcp::TransportError::from(e)))
}

/// `quorum validator`: serves one validator until interrupted.
#[derive(Clone, Debug, clap::Args)]
pub struct ValidatorArgs {
    /// The validator's TOML configuration (written by `quorum keygen --listen` or
    /// `quorum dev-genesis`).
    #[arg(long)]
    pub config: PathBuf,
    /// The genesis file (default: the configuration's `genesis`, `genesis.bcs` beside it).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Serve metrics in Prometheus text format at `http://ADDR/metrics` (overrides the
    /// configuration's `metrics`).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// TESTING ONLY (chaos runs): run the validator's clock this file's number of
    /// milliseconds ahead (behind when negative), reading the file again every 100 ms, so
    /// that its clock can be offset and made to jump. Never for a real validator.
    #[arg(long, value_name = "FILE")]
    pub testing_clock_offset_file: Option<PathBuf>,
    /// TESTING ONLY (chaos runs): serve as a Byzantine validator, lying on one request in
    /// three among proposals and validated certificates (equivocating votes, false
    /// `BlobsNotFound`, wrong-round claims). Never for a real validator.
    #[arg(long)]
    pub testing_byzantine: bool,
    /// Run shard INDEX of a sharded validator (its configuration has `[shards]`); without it,
    /// such a configuration runs the validator's proxy.
    #[arg(long, value_name = "INDEX")]
    pub shard: Option<u32>,
}

/// Runs a validator until SIGINT or SIGTERM, then shuts down gracefully. Refuses to start with a
/// key file that group or others can access.
pub async fn run(args: &ValidatorArgs) -> Result<(), CliError> {
    let config = ValidatorConfig::load(&args.config)?;
    let key = keys::read_validator_key(&config.key_file)?;
    let genesis_path = args.genesis.as_ref().unwrap_or(&config.genesis);
    let genesis: Genesis = files::read(genesis_path, "genesis")?;
    if !genesis
        .committee
        .validators()
        .any(|(member, _)| *member == key.public())
    {
        warn!(
            key = %key.public(),
            genesis = %genesis_path.display(),
            "this validator's key is not in the genesis committee: it will not be asked to vote"
        );
    }
    let clock: Arc<dyn Clock> = match &args.testing_clock_offset_file {
        Some(path) => {
            warn!(file = %path.display(), "testing option: the clock follows an offset file");
            crate::operator::testing_clock::OffsetClock::follow(path.clone())
        }
        None => Arc::new(SystemClock),
    };
    if let Some(shards) = &config.shards {
        return run_sharded(args, &config, shards, &genesis, key, clock).await;
    }
    if args.shard.is_some() {
        return Err(CliError::NotSharded(args.config.clone()));
    }
    let node = open_node(&config, &genesis, key, clock, args.testing_byzantine).await?;
    let listeners = listeners::Listeners::start(node, &config).await?;
    for address in listeners.addresses() {
        println!("listening on {address}");
    }
    serve_metrics(args, &config).await?;
    wait_for_signal().await;
    info!("shutting down");
    listeners.shutdown().await;
    Ok(())
}

async fn serve_metrics(args: &ValidatorArgs, config: &ValidatorConfig) -> Result<(), CliError> {
    if let Some(address) = args.metrics.or(config.metrics) {
        let bound = crate::operator::metrics_server::serve(address).await?;
        println!("metrics at http://{bound}/metrics");
    }
    Ok(())
}

/// A sharded validator's proxy, or its shard `--shard`, until SIGINT or SIGTERM (a shard
/// also stops, with an error, if it loses its lease).
async fn run_sharded(
    args: &ValidatorArgs,
    config: &ValidatorConfig,
    shards: &crate::operator::shards_config::ShardsConfig,
    genesis: &Genesis,
    key: ValidatorSecretKey,
    clock: Arc<dyn Clock>,
) -> Result<(), CliError> {
    if args.testing_byzantine {
        return Err(CliError::ShardedByzantine);
    }
    let Some(index) = args.shard else {
        let listener = bind(&config.listen).await?;
        let database = sharded::database(config)?;
        let server = sharded::start_proxy(database, &config.limits, shards, listener).await?;
        println!("listening on {}", server.local_addr());
        serve_metrics(args, config).await?;
        wait_for_signal().await;
        info!("shutting down");
        server.shutdown().await;
        return Ok(());
    };
    let database = sharded::database(config)?;
    let limits = &config.limits;
    let mut shard =
        sharded::start_shard(database, limits, shards, genesis, key, index, clock, None).await?;
    println!("listening on {} (shard {index})", shard.server.local_addr());
    serve_metrics(args, config).await?;
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = shard.lease.lost() => {
            shard.server.shutdown().await;
            return Err(quorum_store_postgres::PostgresError::LeaseLost.into());
        }
    }
    info!("shutting down");
    shard.stop().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
