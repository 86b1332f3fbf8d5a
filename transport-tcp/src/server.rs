//! The server wing: [`Server`] accepts connections and serves each one with the handler, until
//! shut down; the modules below hold what a connection is made of.
//!
//! * `session`: one connection, from its first frame to its close; `receiver` reads its
//!   frames and `deadline` times them.
//! * `handler` and `streams`: what the server asks of the protocol, and the streams a
//!   connection opens.
//! * `connection_caps`, `budget`, `shared_memory`, `handler_slots`, `poll_gate` and
//!   `resources`: what every connection draws on, capped.
//! * `refusal_log` and `server_stats`: what was refused, and what is held.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub(crate) mod budget;
pub(crate) mod connection_caps;
pub(crate) mod deadline;
pub(crate) mod handler;
pub(crate) mod handler_slots;
pub(crate) mod poll_gate;
pub(crate) mod receiver;
pub(crate) mod refusal_log;
pub(crate) mod resources;
pub(crate) mod server_stats;
pub(crate) mod session;
pub(crate) mod shared_memory;
pub(crate) mod streams;

use crate::config::ServerConfig;
use crate::error::TransportError;
use crate::server::handler::Handler;
use crate::server::refusal_log::RefusalLog;
use crate::server::resources::Resources;
use crate::server::server_stats::{Recorder, ServerStats};
use crate::server::session::serve_connection;
use crate::wire::frame::WireMessage;

/// First pause after a failed `accept` (e.g. out of file descriptors) before trying again: 5 ms,
/// doubled after each further failure in a row up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause between two failing `accept`s: 1 s.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A running server. Dropping it stops everything at once; [`Server::shutdown`] stops gracefully.
///
/// Every resource a peer can make it spend is bounded by a [`ServerConfig`] field; what it
/// holds and has refused can be read with [`Server::stats`].
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stop: CancellationToken,
    accept_task: Option<JoinHandle<()>>,
    resources: Arc<Resources>,
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
    /// The server's memory budgets, for the validator's other servers to charge (DESIGN
    /// §6.2): their connections then draw on the same address-group shares and server budget
    /// as this server's.
    pub fn memory_budget(&self) -> Arc<dyn quorum_core::MemoryBudget> {
        Arc::new(crate::server::shared_memory::SharedMemory {
            resources: Arc::clone(&self.resources),
        })
    }

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

    /// Serves every connection of an already bound `listener` with `handler`, which is first
    /// [configured](Handler::configure) with `config`. Must be called within a tokio runtime.
    pub fn serve<Req, Resp, H>(
        listener: TcpListener,
        config: ServerConfig,
        mut handler: H,
    ) -> Result<Server, TransportError>
    where
        Req: WireMessage,
        Resp: WireMessage,
        H: Handler<Req, Resp>,
    {
        config.validate()?;
        handler.configure(&config);
        let local_addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let shutdown_grace = config.shutdown_grace;
        let resources = Resources::new(config);
        let accept_task = tokio::spawn(accept_connections(
            listener,
            Arc::clone(&resources),
            Arc::new(handler),
            stop.clone(),
        ));
        info!(%local_addr, "serving");
        Ok(Server {
            local_addr,
            stop,
            accept_task: Some(accept_task),
            resources,
            shutdown_grace,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many connections are open right now.
    pub fn active_connections(&self) -> usize {
        self.resources.limits.total()
    }

    /// The server's counters and gauges now: connections open and refused, deadlines that ran
    /// out, handlers running, and the bytes held against each memory budget.
    pub fn stats(&self) -> ServerStats {
        self.resources.stats()
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

/// The accept loop: one task per admitted connection, until `stop`; then waits for those tasks.
/// Connections over the limits are closed at once (or, when the server is full, another
/// address's connection gives way to them); refusals and `accept` failures are logged at most
/// once per [`ServerConfig::log_interval`].
async fn accept_connections<Req, Resp, H>(
    listener: TcpListener,
    resources: Arc<Resources>,
    handler: Arc<H>,
    stop: CancellationToken,
) where
    Req: WireMessage,
    Resp: WireMessage,
    H: Handler<Req, Resp>,
{
    let mut connections = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let recorder = Arc::clone(&resources.recorder);
    loop {
        let mut log_due = None;
        with_log(&resources, |log| log_due = log.due());
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                report_task_failure("connection", joined);
            }
            // A connection held a closing back: schedule its summary.
            () = resources.log_held.notified(), if log_due.is_none() => {}
            () = sleep_until(log_due.unwrap_or_else(Instant::now)), if log_due.is_some() => {
                with_log(&resources, |log| {
                    if let Some(summary) = log.flush(Instant::now()) {
                        summary.log(log.interval());
                    }
                });
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    admit(stream, peer, &resources, &handler, &stop, &mut connections);
                }
                Err(error) => {
                    Recorder::count(&recorder.accept_errors);
                    with_log(&resources, |log| {
                        if let Some(summary) = log.accept_failed(&error, Instant::now()) {
                            summary.log(log.interval());
                        }
                    });
                    if !is_per_connection(&error) {
                        // Out of file descriptors or memory: give the system time to recover.
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    }
                }
            },
        }
    }
    drop(listener);
    with_log(&resources, |log| {
        if let Some(summary) = log.flush(Instant::now() + log.interval()) {
            summary.log(log.interval());
        }
    });
    info!(
        connections = connections.len(),
        "stopped accepting; waiting for open connections"
    );
    while let Some(joined) = connections.join_next().await {
        report_task_failure("connection", joined);
    }
}

/// Serves a connection accepted from `peer` in a task of `connections`, or closes it at once
/// when the limits refuse it (when the server is full, another address's connection may give
/// way to it instead).
fn admit<Req, Resp, H>(
    stream: TcpStream,
    peer: SocketAddr,
    resources: &Arc<Resources>,
    handler: &Arc<H>,
    stop: &CancellationToken,
    connections: &mut JoinSet<()>,
) where
    Req: WireMessage,
    Resp: WireMessage,
    H: Handler<Req, Resp>,
{
    match resources.limits.admit(peer.ip()) {
        Ok(admission) => {
            if admission.evicted_another {
                Recorder::count(&resources.recorder.evicted_connections);
                metrics::counter!("quorum_connections_evicted_total").increment(1);
            }
            let permit = admission.permit;
            let session = serve_connection(
                stream,
                peer,
                Arc::clone(resources),
                Arc::clone(handler),
                stop.clone(),
                admission.ticket,
                admission.share,
            );
            metrics::gauge!("quorum_connections_open").increment(1.0);
            connections.spawn(async move {
                let _permit = permit;
                session.await;
                metrics::gauge!("quorum_connections_open").decrement(1.0);
            });
        }
        Err(refusal) => {
            // Closed at once: its place goes to the connections already open.
            drop(stream);
            Recorder::count(&resources.recorder.refused_connections);
            metrics::counter!("quorum_connections_refused_total").increment(1);
            with_log(resources, |log| {
                if let Some(summary) = log.refused(refusal, Instant::now()) {
                    summary.log(log.interval());
                }
            });
        }
    }
}

/// Runs `f` on the server's log of refusals and closings, shared with the connections.
fn with_log(resources: &Resources, f: impl FnOnce(&mut RefusalLog)) {
    let mut log = resources.log.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut log);
}

/// Whether an `accept` error concerns only the connection being accepted (the peer gave up),
/// so the next one may be accepted at once.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

fn report_task_failure(task: &str, joined: Result<(), JoinError>) {
    if let Err(error) = joined {
        if error.is_panic() {
            error!(task, %error, "task panicked");
        }
    }
}
