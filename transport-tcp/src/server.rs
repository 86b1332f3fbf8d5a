//! The server: accepts connections and serves each one with the handler, until shut down.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::ServerConfig;
use crate::error::TransportError;
use crate::frame::WireMessage;
use crate::handler::Handler;
use crate::session::serve_connection;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A running server. Dropping it stops everything at once; [`Server::shutdown`] stops gracefully.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stop: CancellationToken,
    accept_task: Option<JoinHandle<()>>,
    active_connections: Arc<AtomicUsize>,
    shutdown_grace: Duration,
}

/// How a [`Server::shutdown`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every request in flight was answered and every connection closed within the grace period.
    Graceful,
    /// The grace period ran out; the connections still open were cut, abandoning their requests.
    DeadlineExceeded {
        /// How many connections were cut.
        aborted_connections: usize,
    },
}

impl Server {
    /// Binds `address` (port 0 picks a free port, see [`Server::local_addr`]) and serves every
    /// connection with `handler`. Must be called within a tokio runtime.
    pub async fn bind<Req, Resp, H>(
        address: impl ToSocketAddrs,
        config: ServerConfig,
        handler: H,
    ) -> Result<Server, TransportError>
    where
        Req: WireMessage,
        Resp: WireMessage,
        H: Handler<Req, Resp>,
    {
        config.validate()?;
        let listener = TcpListener::bind(address).await?;
        Server::serve(listener, config, handler)
    }

    /// Serves every connection of an already bound `listener` with `handler`. Must be called
    /// within a tokio runtime.
    pub fn serve<Req, Resp, H>(
        listener: TcpListener,
        config: ServerConfig,
        handler: H,
    ) -> Result<Server, TransportError>
    where
        Req: WireMessage,
        Resp: WireMessage,
        H: Handler<Req, Resp>,
    {
        config.validate()?;
        let local_addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let active_connections = Arc::new(AtomicUsize::new(0));
        let shutdown_grace = config.shutdown_grace;
        let accept_task = tokio::spawn(accept_connections(
            listener,
            Arc::new(config),
            Arc::new(handler),
            stop.clone(),
            Arc::clone(&active_connections),
        ));
        info!(%local_addr, "serving");
        Ok(Server {
            local_addr,
            stop,
            accept_task: Some(accept_task),
            active_connections,
            shutdown_grace,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many connections are open right now.
    pub fn active_connections(&self) -> usize {
        self.active_connections.load(Ordering::SeqCst)
    }

    /// Stops accepting connections and reading requests, lets the requests in flight finish and
    /// be answered for up to [`ServerConfig::shutdown_grace`], then cuts whatever is left and
    /// returns.
    pub async fn shutdown(mut self) -> ShutdownOutcome {
        self.stop.cancel();
        let Some(mut accept_task) = self.accept_task.take() else {
            return ShutdownOutcome::Graceful;
        };
        let outcome = match timeout(self.shutdown_grace, &mut accept_task).await {
            Ok(joined) => {
                report_task_failure("accept loop", joined);
                ShutdownOutcome::Graceful
            }
            Err(_) => {
                let aborted_connections = self.active_connections();
                accept_task.abort();
                // Dropping the accept loop drops, and so aborts, every connection task.
                if let Err(error) = accept_task.await {
                    if !error.is_cancelled() {
                        error!(%error, "accept loop failed");
                    }
                }
                warn!(
                    local_addr = %self.local_addr,
                    aborted_connections,
                    grace = ?self.shutdown_grace,
                    "shutdown grace period exceeded: connections cut"
                );
                ShutdownOutcome::DeadlineExceeded {
                    aborted_connections,
                }
            }
        };
        info!(local_addr = %self.local_addr, ?outcome, "server stopped");
        outcome
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(accept_task) = self.accept_task.take() {
            accept_task.abort();
        }
    }
}

/// Counts a connection as active for as long as its task exists.
struct ActiveConnection(Arc<AtomicUsize>);

impl ActiveConnection {
    fn new(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        ActiveConnection(counter)
    }
}

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The accept loop: one task per connection, until `stop`; then waits for those tasks.
async fn accept_connections<Req, Resp, H>(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    stop: CancellationToken,
    active_connections: Arc<AtomicUsize>,
) where
    Req: WireMessage,
    Resp: WireMessage,
    H: Handler<Req, Resp>,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                report_task_failure("connection", joined);
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let active = ActiveConnection::new(Arc::clone(&active_connections));
                    let session = serve_connection(
                        stream,
                        peer,
                        Arc::clone(&config),
                        Arc::clone(&handler),
                        stop.clone(),
                    );
                    connections.spawn(async move {
                        let _active = active;
                        session.await;
                    });
                }
                Err(error) => {
                    warn!(%error, "cannot accept a connection; retrying");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    info!(
        connections = connections.len(),
        "stopped accepting; waiting for open connections"
    );
    while let Some(joined) = connections.join_next().await {
        report_task_failure("connection", joined);
    }
}

fn report_task_failure(task: &str, joined: Result<(), JoinError>) {
    if let Err(error) = joined {
        if error.is_panic() {
            error!(task, %error, "task panicked");
        }
    }
}
