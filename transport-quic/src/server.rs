//! The QUIC server of a validator: [`serve_validator`] binds a UDP port and answers every
//! request stream through the node, within the bounds of its [`ServerConfig`].
//!
//! A peer's first packet is answered with a Retry: only a peer that proves it receives at its
//! source address is counted and may begin a handshake ([`admission`]). Each connection then
//! runs on its own ([`connection`]), each request stream on its own ([`stream`]).

mod admission;
mod connection;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::crypto::rustls::QuicServerConfig;
use quinn::Endpoint;
use quorum_core::{MemoryBudget, ValidatorNode};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::budget::{ServerBudget, WindowBudget};
use crate::config::ServerConfig;
use crate::error::QuicError;
use crate::identity::{tls_server_config, NetworkKey};
use admission::Admission;

/// The QUIC application error code a server closes connections with on shutdown.
const CODE_SHUTDOWN: u32 = 1;
/// The code of a connection closed because it stayed idle, or never asked anything.
const CODE_IDLE: u32 = 2;
/// The code of a stream reset because its request was malformed, too large or too slow.
const CODE_BAD_REQUEST: u32 = 3;

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) node: Arc<dyn ValidatorNode>,
    pub(crate) config: ServerConfig,
    pub(crate) budget: ServerBudget,
    pub(crate) handlers: Arc<Semaphore>,
    pub(crate) windows: Arc<WindowBudget>,
    /// The memory budget shared with the validator's other servers, if any (else `budget`).
    pub(crate) memory: Option<Arc<dyn MemoryBudget>>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// A running QUIC server. Dropping it stops accepting; [`QuicServer::shutdown`] also closes
/// the open connections and waits for the endpoint to go quiet.
pub struct QuicServer {
    endpoint: Endpoint,
    local_addr: SocketAddr,
    admission: Arc<Admission>,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl QuicServer {
    /// The address bound (with the port chosen when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.admission.open()
    }

    /// Stops accepting, closes every connection (requests in flight are cut) and waits, at
    /// most `grace`, for the peers to learn it.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        self.accept.abort();
        self.endpoint
            .close(quinn::VarInt::from_u32(CODE_SHUTDOWN), b"shutdown");
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
    }
}

impl Drop for QuicServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.accept.abort();
    }
}

/// Binds `address` (port 0 picks a free port, see [`QuicServer::local_addr`]) and serves `node`
/// to [`QuicValidatorNode`](crate::QuicValidatorNode) clients, proving in every handshake that
/// it holds `key`. Must be called within a tokio runtime.
///
/// Errors: [`QuicError::InvalidConfig`] if `config` is out of range, [`QuicError::Bind`] if the
/// address cannot be bound.
pub async fn serve_validator(
    node: Arc<dyn ValidatorNode>,
    address: SocketAddr,
    key: &NetworkKey,
    config: ServerConfig,
) -> Result<QuicServer, QuicError> {
    serve(node, address, key, config, None).await
}

/// [`serve_validator`], charging what peers make the server hold to `memory`, the budgets of
/// another server of the validator (e.g. its TCP server's
/// `quorum_transport_tcp::Server::memory_budget`), instead of a server budget of its own: the
/// shares of address groups and the validator's budget then hold across both transports.
pub async fn serve_validator_sharing(
    node: Arc<dyn ValidatorNode>,
    address: SocketAddr,
    key: &NetworkKey,
    config: ServerConfig,
    memory: Arc<dyn MemoryBudget>,
) -> Result<QuicServer, QuicError> {
    serve(node, address, key, config, Some(memory)).await
}

async fn serve(
    node: Arc<dyn ValidatorNode>,
    address: SocketAddr,
    key: &NetworkKey,
    config: ServerConfig,
    memory: Option<Arc<dyn MemoryBudget>>,
) -> Result<QuicServer, QuicError> {
    config.validate()?;
    let crypto = QuicServerConfig::try_from(tls_server_config(key)?).map_err(|_| {
        QuicError::InvalidConfig {
            field: "tls",
            reason: "has no cipher suite QUIC can use",
        }
    })?;
    let mut quic = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    quic.transport_config(Arc::new(config.transport()?))
        .retry_token_lifetime(config.retry_token_lifetime)
        .migration(false)
        // Handshakes waiting to be admitted, and the bytes they buffer.
        .max_incoming(config.max_connections.saturating_mul(2).max(16))
        .incoming_buffer_size(64 << 10)
        .incoming_buffer_size_total(8 << 20);
    let endpoint =
        Endpoint::server(quic, address).map_err(|source| QuicError::Bind { address, source })?;
    let local_addr = endpoint
        .local_addr()
        .map_err(|source| QuicError::Bind { address, source })?;
    let (shutdown, watching) = watch::channel(false);
    let admission = Arc::new(Admission::new(&config, Instant::now()));
    let shared = Arc::new(Shared {
        node,
        budget: ServerBudget::new(config.server_budget),
        handlers: Arc::new(Semaphore::new(config.max_handlers)),
        windows: WindowBudget::new(config.window_budget),
        memory,
        config,
        shutdown: watching,
    });
    let accept = tokio::spawn(accept(endpoint.clone(), admission.clone(), shared));
    info!(%local_addr, "serving the validator protocol over QUIC");
    Ok(QuicServer {
        endpoint,
        local_addr,
        admission,
        shutdown,
        accept,
    })
}

/// Takes every incoming connection: a Retry for a peer whose address is not yet proven, a
/// refusal beyond the counts, else a task of its own.
async fn accept(endpoint: Endpoint, admission: Arc<Admission>, shared: Arc<Shared>) {
    while let Some(incoming) = endpoint.accept().await {
        if !incoming.remote_address_validated() {
            if incoming.may_retry() {
                metrics::counter!("quorum_quic_retries_total").increment(1);
                let _ = incoming.retry();
            } else {
                incoming.ignore();
            }
            continue;
        }
        let peer = incoming.remote_address();
        match admission.admit(peer.ip(), Instant::now()) {
            Ok(admitted) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    connection::serve(incoming, shared, &admitted.lease).await;
                    drop(admitted);
                });
            }
            Err(refusal) => {
                debug!(%peer, reason = refusal.name(), "QUIC connection refused");
                metrics::counter!("quorum_quic_refused_total", "reason" => refusal.name())
                    .increment(1);
                incoming.refuse();
            }
        }
    }
}

/// Describes the server's metrics to the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "quorum_quic_retries_total",
        "QUIC handshakes answered with a Retry to prove the peer's address"
    );
    metrics::describe_counter!(
        "quorum_quic_refused_total",
        "validated QUIC peers refused, by reason (connections, connections_per_address, handshake_rate)"
    );
    metrics::describe_counter!(
        "quorum_quic_closed_total",
        "QUIC connections and request streams closed by the server, by reason"
    );
}
