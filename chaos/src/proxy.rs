//! A userspace TCP fault proxy for loopback tests: [`FaultProxy`] sits between a client and
//! a server (a validator, say), forwards every connection both ways, and misbehaves on demand
//! ([`ProxyFault`]), switchable at run time through a cheap cloneable [`ProxyHandle`] that also
//! reads its counters ([`ProxyStats`]).
//!
//! It is what `netem` and `iptables` would do, without either: latency, a black hole (a hung
//! machine), resets, a bandwidth cap, and connections cut after some bytes. It only ever runs
//! on loopback: it listens on `127.0.0.1` and refuses an upstream that is not a loopback
//! address ([`ProxyError::NotLoopback`]).
//!
//! Bounded and owned: every connection is one task, owned by the proxy, which holds at most a
//! bounded queue of bytes per direction (reading pauses beyond it); dropping the proxy or
//! [`FaultProxy::shutdown`] ends every task and closes every socket. Nothing a peer sends or
//! does can make it panic; a connection that fails is logged (`tracing`, at debug level),
//! counted, and reset on the other side.
//!
//! ```no_run
//! # async fn demo(validator: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use quorum_chaos::proxy::{FaultProxy, ProxyFault};
//!
//! let proxy = FaultProxy::start(validator).await?;
//! let faults = proxy.handle();
//! // Point the client at `proxy.local_addr()` instead of `validator`, then:
//! faults.set(ProxyFault::Latency(Duration::from_millis(50)));
//! // ... the client sees a slow validator ...
//! faults.set(ProxyFault::BlackHole);
//! // ... a hung one: its requests time out ...
//! faults.set(ProxyFault::Pass);
//! assert!(faults.stats().bytes_to_upstream > 0);
//! proxy.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod connection;
mod error;
mod fault;
mod handle;
mod pacer;
mod proxy_stats;
mod relay;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

pub use error::ProxyError;
pub use fault::ProxyFault;
pub use handle::ProxyHandle;
pub use proxy_stats::ProxyStats;

use connection::{reset, serve};
use error::ensure_loopback;
use handle::Shared;

/// How many connections one proxy serves at once; beyond it, new ones are reset on arrival
/// (counted in [`ProxyStats::connections_refused`]).
pub const MAX_OPEN_CONNECTIONS: usize = 1_024;

/// The most one read takes from a socket, in bytes (16 KiB): the unit that
/// [`ProxyFault::Latency`] delays and the pacer slices by.
const CHUNK_BYTES: usize = 16 * 1024;

/// How long the proxy waits after a failed `accept` (out of file descriptors, say) before it
/// tries again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// A TCP proxy on `127.0.0.1` in front of one loopback upstream, with a switchable
/// [`ProxyFault`] (see the [module documentation](self)).
///
/// Each accepted connection gets its own connection to the upstream. The proxy starts with
/// [`ProxyFault::Pass`]. Dropping it, or [`FaultProxy::shutdown`], stops it: the listener
/// closes (new connections are refused by the kernel) and every proxied connection is closed
/// on both sides, as an exiting process would close them.
#[derive(Debug)]
#[must_use = "the proxy stops when it is dropped"]
pub struct FaultProxy {
    local_addr: SocketAddr,
    upstream: SocketAddr,
    handle: ProxyHandle,
    stop: Option<oneshot::Sender<()>>,
    accept_task: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1` on a free port and forwards every connection to `upstream`,
    /// which must be a loopback address ([`ProxyError::NotLoopback`] otherwise). The upstream
    /// need not be listening yet: it is connected to once per accepted connection.
    ///
    /// Must be called within a Tokio runtime, whose tasks the proxy uses.
    pub async fn start(upstream: SocketAddr) -> Result<FaultProxy, ProxyError> {
        ensure_loopback(upstream)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let bind_error = |source| ProxyError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let handle = ProxyHandle::new(ProxyFault::Pass);
        let (stop, stopped) = oneshot::channel();
        let shared = Arc::clone(handle.shared());
        let accept_task = tokio::spawn(accept(listener, upstream, shared, stopped));
        tracing::debug!(%local_addr, %upstream, "fault proxy started");
        Ok(FaultProxy {
            local_addr,
            upstream,
            handle,
            stop: Some(stop),
            accept_task: Some(accept_task),
        })
    }

    /// The address clients connect to instead of the upstream.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address every connection is forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// A handle to switch the fault and read the counters; cheap to clone, usable from any
    /// task.
    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }

    /// Stops the proxy and waits until it has: when this returns, the listener and every
    /// proxied socket are closed and no task of the proxy is left
    /// ([`ProxyStats::connections_open`] is 0).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // The accept task may already be gone; then there is nothing to stop.
            let _ = stop.send(());
        }
        if let Some(task) = self.accept_task.take() {
            if let Err(error) = task.await {
                tracing::error!(%error, "fault proxy: accept task failed");
            }
        }
        tracing::debug!(local_addr = %self.local_addr, "fault proxy stopped");
    }
}

impl Drop for FaultProxy {
    /// Aborts the accept task, which owns the listener and every connection task: they are all
    /// aborted and their sockets closed by the runtime, promptly but not before `drop`
    /// returns (use [`FaultProxy::shutdown`] to wait).
    fn drop(&mut self) {
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
    }
}

/// Accepts connections until told to stop, serving each in a task of its own; then ends
/// every connection task and waits for them.
async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            Some(joined) = connections.join_next() => {
                if let Err(error) = joined {
                    tracing::error!(%error, "fault proxy: connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    shared.counters.record_accepted();
                    if shared.fault() == ProxyFault::Reset {
                        tracing::debug!(%peer, "fault proxy: connection refused (fault)");
                        shared.counters.record_refused();
                        reset(&client);
                    } else if connections.len() >= MAX_OPEN_CONNECTIONS {
                        tracing::warn!(%peer, limit = MAX_OPEN_CONNECTIONS, "fault proxy: too many connections; refused");
                        shared.counters.record_refused();
                        reset(&client);
                    } else {
                        connections.spawn(serve(client, peer, upstream, Arc::clone(&shared)));
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "fault proxy: accept failed; retrying");
                    tokio::select! {
                        _ = &mut stopped => break,
                        () = tokio::time::sleep(ACCEPT_RETRY_DELAY) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
}
