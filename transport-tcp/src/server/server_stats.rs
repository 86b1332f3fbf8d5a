//! What a server holds and has refused, as counters and gauges that tests and operators read
//! through [`Server::stats`](crate::Server::stats).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of a server's counters (since it started) and gauges (now).
///
/// Memory gauges count bytes charged to the budgets of [`ServerConfig`](crate::ServerConfig):
/// frame buffers, requests being handled with their response reserves, and encoded responses
/// not yet written. More fields may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections open now.
    pub open_connections: usize,
    /// Connections closed at once because [`ServerConfig::max_connections`] or
    /// [`ServerConfig::max_connections_per_ip`] was reached.
    ///
    /// [`ServerConfig::max_connections`]: crate::ServerConfig::max_connections
    /// [`ServerConfig::max_connections_per_ip`]: crate::ServerConfig::max_connections_per_ip
    pub refused_connections: u64,
    /// `accept` calls that failed (e.g. out of file descriptors).
    pub accept_errors: u64,
    /// Connections closed to make room for a newcomer from an address holding fewer
    /// connections, while the server held [`ServerConfig::max_connections`].
    ///
    /// [`ServerConfig::max_connections`]: crate::ServerConfig::max_connections
    pub evicted_connections: u64,
    /// Connections closed by a deadline: no first frame in time, or a frame not completed in
    /// time.
    pub timed_out_connections: u64,
    /// Request frames received whole and decoded.
    pub requests_received: u64,
    /// Handlers running now, across all connections.
    pub running_handlers: usize,
    /// Bytes held now against [`ServerConfig::receive_budget`](crate::ServerConfig) (large
    /// frames, from their first byte until their handler returns).
    pub receive_bytes: usize,
    /// The most [`receive_bytes`](Self::receive_bytes) ever held at once.
    pub peak_receive_bytes: usize,
    /// Bytes charged now to the connection budgets, summed over all connections.
    pub connection_bytes: usize,
    /// The most bytes ever charged to one connection's budget at once (responses larger than
    /// their reserve included, so this can exceed the budget by what the budget's
    /// documentation allows).
    pub peak_connection_bytes: usize,
    /// Bytes of encoded responses waiting to be written, summed over all connections.
    pub queued_response_bytes: usize,
    /// The most bytes ever charged at once to the connections of one peer address together
    /// (bounded by [`ServerConfig::peer_budget`](crate::ServerConfig::peer_budget) and what its
    /// documentation allows beyond it).
    pub peak_peer_bytes: usize,
    /// The most bytes ever charged at once to the addresses of one group (an IPv4 /24, an
    /// IPv6 /48) together (bounded by [`ServerConfig::group_budget`](crate::ServerConfig)).
    pub peak_group_bytes: usize,
    /// The most bytes ever charged at once to all connections together (bounded by
    /// [`ServerConfig::server_budget`](crate::ServerConfig), plus at most one
    /// [`ServerConfig::group_floor`](crate::ServerConfig) per group).
    pub peak_server_bytes: usize,
}

/// The live counters behind [`ServerStats`], shared by every part of a server.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) refused_connections: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) evicted_connections: AtomicU64,
    pub(crate) timed_out_connections: AtomicU64,
    pub(crate) requests_received: AtomicU64,
    pub(crate) receive_bytes: AtomicUsize,
    pub(crate) peak_receive_bytes: AtomicUsize,
    pub(crate) connection_bytes: AtomicUsize,
    pub(crate) peak_connection_bytes: AtomicUsize,
    pub(crate) queued_response_bytes: AtomicUsize,
    pub(crate) peak_peer_bytes: AtomicUsize,
    pub(crate) peak_group_bytes: AtomicUsize,
    pub(crate) peak_server_bytes: AtomicUsize,
}

impl Recorder {
    /// Adds one to a counter.
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `bytes` to the receive gauge and updates its peak.
    pub(crate) fn add_receive_bytes(&self, bytes: usize) {
        let now = self.receive_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak_receive_bytes.fetch_max(now, Ordering::Relaxed);
        metrics::gauge!("quorum_receive_buffered_bytes").set(now as f64);
    }

    /// Takes `bytes` off the receive gauge.
    pub(crate) fn remove_receive_bytes(&self, bytes: usize) {
        let before = self.receive_bytes.fetch_sub(bytes, Ordering::Relaxed);
        metrics::gauge!("quorum_receive_buffered_bytes").set(before.saturating_sub(bytes) as f64);
    }

    /// The snapshot, with the gauges owned elsewhere filled in.
    pub(crate) fn snapshot(&self, open_connections: usize, running_handlers: usize) -> ServerStats {
        ServerStats {
            open_connections,
            refused_connections: self.refused_connections.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
            evicted_connections: self.evicted_connections.load(Ordering::Relaxed),
            timed_out_connections: self.timed_out_connections.load(Ordering::Relaxed),
            requests_received: self.requests_received.load(Ordering::Relaxed),
            running_handlers,
            receive_bytes: self.receive_bytes.load(Ordering::Relaxed),
            peak_receive_bytes: self.peak_receive_bytes.load(Ordering::Relaxed),
            connection_bytes: self.connection_bytes.load(Ordering::Relaxed),
            peak_connection_bytes: self.peak_connection_bytes.load(Ordering::Relaxed),
            queued_response_bytes: self.queued_response_bytes.load(Ordering::Relaxed),
            peak_peer_bytes: self.peak_peer_bytes.load(Ordering::Relaxed),
            peak_group_bytes: self.peak_group_bytes.load(Ordering::Relaxed),
            peak_server_bytes: self.peak_server_bytes.load(Ordering::Relaxed),
        }
    }
}
