//! Running one validator: redb storage, a Worker with the system clock, served over TCP.

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::info;

use quorum_core::{ValidatorNode, ValidatorSecretKey};
use quorum_node::{Clock, Genesis, SystemClock, Worker, WorkerConfig};
use quorum_store_redb::RedbStorage;
use quorum_transport_tcp::{Server, ServerConfig, ValidatorHandler};

use crate::error::CliError;

/// A validator's Worker over redb.
pub type RedbWorker = Worker<RedbStorage>;

/// Opens (or creates) the database at `database`, writes the genesis state where missing, and
/// returns the validator's Worker.
pub async fn open_worker(
    database: &Path,
    genesis: &Genesis,
    key: ValidatorSecretKey,
) -> Result<Arc<RedbWorker>, CliError> {
    let storage = RedbStorage::open(database)?;
    let clock = SystemClock;
    let admin = genesis.initialize(&storage, clock.now()).await?;
    Ok(Arc::new(Worker::new(
        storage,
        Some(key),
        Arc::new(clock),
        WorkerConfig::new(admin),
    )))
}

/// Serves `worker` on an already bound listener.
pub fn serve(worker: Arc<RedbWorker>, listener: TcpListener) -> Result<Server, CliError> {
    let address = listener
        .local_addr()
        .map_err(quorum_transport_tcp::TransportError::from)?;
    let node: Arc<dyn ValidatorNode> = worker;
    let server = Server::serve(
        listener,
        ServerConfig::default(),
        ValidatorHandler::new(node),
    )?;
    info!(%address, "validator serving");
    Ok(server)
}

/// Binds `address`.
pub async fn bind(address: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(address)
        .await
        .map_err(|e| CliError::Transport(quorum_transport_tcp::TransportError::from(e)))
}
