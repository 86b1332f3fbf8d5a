//! [`ProxyStats`]: what a [`FaultProxy`](super::FaultProxy) has done so far, and the atomic
//! counters behind it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a [`FaultProxy`](super::FaultProxy)'s counters, from
/// [`ProxyHandle::stats`](super::ProxyHandle::stats). Every count is since the proxy started.
///
/// Counters move a little after the bytes do (a byte is counted once its write returned), so
/// a test that has just read an answer should poll for the count it expects, with a timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted from clients, including those refused at once (see
    /// [`ProxyStats::connections_refused`]).
    pub connections_accepted: u64,
    /// Accepted connections reset at once, without connecting upstream: under
    /// [`ProxyFault::Reset`](super::ProxyFault::Reset), or beyond the proxy's connection limit.
    pub connections_refused: u64,
    /// Connections the proxy closed with a reset after they were set up: by
    /// [`ProxyFault::Reset`](super::ProxyFault::Reset) or
    /// [`ProxyFault::ResetAfter`](super::ProxyFault::ResetAfter), because the upstream could not
    /// be reached, or to pass on a reset or read error from one side to the other.
    pub connections_reset: u64,
    /// Connections being served now (accepted, not refused, not yet closed).
    pub connections_open: u64,
    /// Connections whose upstream could not be connected to (refused or timed out).
    pub upstream_connect_failures: u64,
    /// Bytes written to the upstream, from clients.
    pub bytes_to_upstream: u64,
    /// Bytes written to clients, from the upstream.
    pub bytes_to_client: u64,
    /// Bytes read (either way) and discarded under
    /// [`ProxyFault::BlackHole`](super::ProxyFault::BlackHole).
    pub bytes_black_holed: u64,
}

/// Which way bytes travel through a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From the client to the upstream.
    ToUpstream,
    /// From the upstream to the client.
    ToClient,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::ToUpstream => "client→upstream",
            Direction::ToClient => "upstream→client",
        })
    }
}

/// The live counters, shared by the proxy's tasks and every handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    connections_reset: AtomicU64,
    connections_open: AtomicU64,
    upstream_connect_failures: AtomicU64,
    bytes_to_upstream: AtomicU64,
    bytes_to_client: AtomicU64,
    bytes_black_holed: AtomicU64,
}

/// Adds `n` to `counter` (plain counts: relaxed ordering is enough).
fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// `n` as a count, saturating (a `usize` always fits in a `u64` on supported targets).
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Counters {
    /// The counts now.
    pub(crate) fn snapshot(&self) -> ProxyStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ProxyStats {
            connections_accepted: get(&self.connections_accepted),
            connections_refused: get(&self.connections_refused),
            connections_reset: get(&self.connections_reset),
            connections_open: get(&self.connections_open),
            upstream_connect_failures: get(&self.upstream_connect_failures),
            bytes_to_upstream: get(&self.bytes_to_upstream),
            bytes_to_client: get(&self.bytes_to_client),
            bytes_black_holed: get(&self.bytes_black_holed),
        }
    }

    pub(crate) fn record_accepted(&self) {
        add(&self.connections_accepted, 1);
    }

    pub(crate) fn record_refused(&self) {
        add(&self.connections_refused, 1);
    }

    pub(crate) fn record_reset(&self) {
        add(&self.connections_reset, 1);
    }

    pub(crate) fn record_upstream_connect_failure(&self) {
        add(&self.upstream_connect_failures, 1);
    }

    /// Counts `n` bytes written out in `direction`.
    pub(crate) fn record_forwarded(&self, direction: Direction, n: usize) {
        match direction {
            Direction::ToUpstream => add(&self.bytes_to_upstream, count(n)),
            Direction::ToClient => add(&self.bytes_to_client, count(n)),
        }
    }

    /// Counts `n` bytes read and discarded.
    pub(crate) fn record_black_holed(&self, n: usize) {
        add(&self.bytes_black_holed, count(n));
    }

    /// Counts one more open connection until the guard is dropped (also when its task is
    /// aborted).
    pub(crate) fn open_guard(&self) -> OpenGuard<'_> {
        add(&self.connections_open, 1);
        OpenGuard { counters: self }
    }
}

/// One open connection, counted in [`ProxyStats::connections_open`] while it lives.
#[derive(Debug)]
pub(crate) struct OpenGuard<'a> {
    counters: &'a Counters,
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.counters
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_open_guards_release() {
        let counters = Counters::default();
        counters.record_accepted();
        counters.record_forwarded(Direction::ToUpstream, 3);
        counters.record_forwarded(Direction::ToClient, 5);
        counters.record_black_holed(7);
        {
            let _open = counters.open_guard();
            assert_eq!(counters.snapshot().connections_open, 1);
        }
        let stats = counters.snapshot();
        assert_eq!(stats.connections_accepted, 1);
        assert_eq!(stats.connections_open, 0);
        assert_eq!(stats.bytes_to_upstream, 3);
        assert_eq!(stats.bytes_to_client, 5);
        assert_eq!(stats.bytes_black_holed, 7);
    }
}
