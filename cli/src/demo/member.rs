//! One validator of `quorum demo`: its database and key, how it is served (a TCP or QUIC server
//! in this process, or an in-process [`MemoryNode`]), and the faults done to it: stopping and
//! restarting it, and making it stop answering.
//!
//! A hung validator over TCP: its server is shut down and a listener that accepts connections
//! but never reads from them takes its address, so clients connect, send, and get no answer,
//! which is what they see of a validator process frozen with SIGSTOP. (The demo's validators
//! live in the demo's own process, so it cannot be sent SIGSTOP itself.) Over the in-process
//! transport the node's fault becomes [`Fault::Hang`]. A hung QUIC validator's socket takes
//! every datagram and answers none.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tracing::debug;

use quorum_core::ValidatorSecretKey;
use quorum_node::Genesis;
use quorum_transport_mem::{Fault, MemoryNode};
use quorum_transport_quic::{NetworkKey, QuicError, QuicServer};
use quorum_transport_tcp::{Server, ServerConfig};

use super::args::Transport;
use super::storage::{Place, Serving};
use crate::address::Scheme;
use crate::error::CliError;
use crate::operator::validator::{self, RedbWorker};
use crate::operator::validator_config::LimitsConfig;

/// Connections a hung validator holds at once; beyond that the oldest is closed.
const MAX_HELD_CONNECTIONS: usize = 64;
/// The largest datagram a hung QUIC validator's socket takes, in bytes.
const MAX_DATAGRAM_BYTES: usize = 65_536;
/// Time a stopped QUIC server gives its peers to learn it.
const QUIC_SHUTDOWN_GRACE: Duration = Duration::from_millis(200);
/// How long a validator's address may stay in use after its server stopped.
const REBIND_WITHIN: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` of a hung validator's listener.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// A listener that accepts connections and never reads from them; closed when dropped.
struct BlackHole {
    task: JoinHandle<()>,
}

impl BlackHole {
    async fn bind(address: &str) -> Result<Self, CliError> {
        let listener = validator::bind(address).await?;
        let task = tokio::spawn(async move {
            let mut held: VecDeque<TcpStream> = VecDeque::new();
            loop {
                match listener.accept().await {
                    Ok((socket, peer)) => {
                        debug!(%peer, "hung validator holds a connection");
                        if held.len() == MAX_HELD_CONNECTIONS {
                            held.pop_front();
                        }
                        held.push_back(socket);
                    }
                    Err(_) => tokio::time::sleep(ACCEPT_RETRY_DELAY).await,
                }
            }
        });
        Ok(BlackHole { task })
    }

    /// A UDP socket that takes every datagram and answers none: a QUIC validator frozen.
    async fn bind_udp(address: &str) -> Result<Self, CliError> {
        let socket = rebind(|| tokio::net::UdpSocket::bind(address), in_use)
            .await
            .map_err(quorum_transport_tcp::TransportError::from)?;
        let task = tokio::spawn(async move {
            let mut datagram = vec![0u8; MAX_DATAGRAM_BYTES];
            loop {
                if socket.recv_from(&mut datagram).await.is_err() {
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                }
            }
        });
        Ok(BlackHole { task })
    }

    /// Closes the listener and every connection it holds, and waits until they are closed,
    /// so the address can be bound again at once.
    async fn close(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds with `bind`, again while `in_use` says the address still is, for at most
/// [`REBIND_WITHIN`]: a stopped QUIC server's socket is closed by its endpoint's task, soon
/// after the server itself is gone.
async fn rebind<T, E, F, Fut>(mut bind: F, in_use: impl Fn(&E) -> bool) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + REBIND_WITHIN;
    loop {
        match bind().await {
            Err(error) if in_use(&error) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
            }
            done => return done,
        }
    }
}

/// Whether binding failed because the address is still in use.
fn in_use(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::AddrInUse
}

/// The `host:port` of a `quic://host:port` address.
fn quic_host_port(address: &str) -> &str {
    address
        .strip_prefix(Scheme::Quic.prefix())
        .unwrap_or(address)
}

/// Serves `worker` over QUIC at `address`, proving `key`.
async fn serve_quic(
    worker: Arc<RedbWorker>,
    address: &str,
    key: &NetworkKey,
) -> Result<QuicServer, CliError> {
    let bound = quic_host_port(address)
        .parse()
        .map_err(|_| CliError::BadListen(address.to_owned()))?;
    let limits = worker.config().limits;
    let config = quorum_transport_quic::ServerConfig::from_limits(&limits);
    let serve = || {
        let node = worker.clone();
        quorum_transport_quic::serve_validator(node, bound, key, config.clone())
    };
    let bind_failed = |error: &QuicError| match error {
        QuicError::Bind { source, .. } => in_use(source),
        _ => false,
    };
    Ok(rebind(serve, bind_failed).await?)
}

/// One validator of the demo and how it is reached.
pub struct DemoValidator {
    /// Its name in the summary.
    pub name: String,
    /// Its redb database.
    pub database: PathBuf,
    /// Its key.
    pub key: ValidatorSecretKey,
    /// Its loopback address (`quic://host:port` over QUIC).
    pub address: String,
    /// Its network key, when it is served over QUIC.
    pub network_key: Option<NetworkKey>,
    quic: Option<QuicServer>,
    /// Its Worker, when open.
    pub worker: Option<Arc<RedbWorker>>,
    server: Option<Server>,
    /// Its in-process node (in-process transport).
    pub mem: Option<MemoryNode>,
    black_hole: Option<BlackHole>,
    /// Its PostgreSQL database (and shards), instead of redb.
    pub postgres: Option<Place>,
    serving: Option<Serving>,
    /// What happened to it, in order.
    pub history: Vec<&'static str>,
}

impl DemoValidator {
    /// A validator not started yet.
    pub fn new(name: String, database: PathBuf, key: ValidatorSecretKey, address: String) -> Self {
        DemoValidator {
            name,
            database,
            key,
            address,
            network_key: None,
            quic: None,
            worker: None,
            server: None,
            mem: None,
            black_hole: None,
            postgres: None,
            serving: None,
            history: Vec::new(),
        }
    }

    /// Starts serving (TCP: opens its database and serves it; in process: answers again).
    pub async fn start(&mut self, genesis: &Genesis, transport: Transport) -> Result<(), CliError> {
        match transport {
            Transport::Tcp | Transport::Quic | Transport::Mixed => {
                // A hung validator's listener gives the address back first.
                if let Some(black_hole) = self.black_hole.take() {
                    black_hole.close().await;
                }
                if let Some(place) = &self.postgres {
                    self.serving = Some(place.start(genesis, &self.key, &self.address).await?);
                    return Ok(());
                }
                let worker = validator::open_worker(
                    &self.database,
                    genesis,
                    self.key.clone(),
                    &LimitsConfig::default(),
                )
                .await?;
                match &self.network_key {
                    Some(key) => self.quic = Some(serve_quic(worker, &self.address, key).await?),
                    None => {
                        let listener = validator::bind(&self.address).await?;
                        let config = ServerConfig::default();
                        self.server = Some(validator::serve(worker, listener, config)?);
                    }
                }
            }
            Transport::Mem => {
                if let Some(node) = &self.mem {
                    node.set_fault(Fault::Honest);
                }
            }
        }
        Ok(())
    }

    /// Stops serving (TCP: shuts its server down and closes its database; in process: every
    /// call fails at once).
    pub async fn stop(&mut self, transport: Transport) {
        match transport {
            Transport::Tcp | Transport::Quic | Transport::Mixed => {
                if let Some(black_hole) = self.black_hole.take() {
                    black_hole.close().await;
                }
                if let Some(server) = self.server.take() {
                    server.shutdown().await;
                }
                if let Some(server) = self.quic.take() {
                    server.shutdown(QUIC_SHUTDOWN_GRACE).await;
                }
                if let Some(serving) = self.serving.take() {
                    serving.stop().await;
                }
                self.worker = None;
            }
            Transport::Mem => {
                if let Some(node) = &self.mem {
                    node.set_fault(Fault::Offline);
                }
            }
        }
    }

    /// Stops answering while still accepting requests (see the module's documentation);
    /// [`DemoValidator::start`] makes it answer again.
    pub async fn hang(&mut self, transport: Transport) -> Result<(), CliError> {
        match transport {
            Transport::Tcp | Transport::Quic | Transport::Mixed => {
                self.stop(transport).await;
                self.black_hole = Some(match self.network_key {
                    Some(_) => BlackHole::bind_udp(quic_host_port(&self.address)).await?,
                    None => BlackHole::bind(&self.address).await?,
                });
            }
            Transport::Mem => {
                if let Some(node) = &self.mem {
                    node.set_fault(Fault::Hang);
                }
            }
        }
        Ok(())
    }
}
