//! [`ProxyFault`]: what a [`FaultProxy`](super::FaultProxy) does to the bytes it carries.

use std::time::Duration;

/// What a [`FaultProxy`](super::FaultProxy) does to its connections. One fault is in force at
/// a time, for every connection at once; switch it at run time with
/// [`ProxyHandle::set`](super::ProxyHandle::set).
///
/// A switch applies to existing connections as well as new ones, and to bytes already read
/// but not yet forwarded (the proxy holds at most a bounded queue of them per direction): a
/// chunk waiting out a [`ProxyFault::Latency`] is sent at once when the fault becomes
/// [`ProxyFault::Pass`], and is held back when it becomes [`ProxyFault::BlackHole`]. A chunk
/// whose write has already started is written to the end.
///
/// Everything the proxy forwards keeps its order, per direction; end of stream (FIN) travels
/// in order behind the data, under the same fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProxyFault {
    /// Forward every byte both ways as soon as it is read, and end of stream with it.
    #[default]
    Pass,
    /// Forward every chunk (what one read returned) this long after the proxy read it, in
    /// each direction separately: a request and its answer are delayed twice. Chunks are
    /// pipelined, not serialised: latency adds delay, not a throughput limit. A duration too
    /// large to add to the clock holds the chunks until the fault changes.
    Latency(Duration),
    /// A hung machine: new connections are still accepted (and connected upstream) and bytes
    /// are still read in both directions, but nothing is forwarded and nothing is answered;
    /// end of stream and resets from either side are held back too, so the connection stays
    /// open. Bytes read while the fault is in force are discarded (counted in
    /// [`ProxyStats::bytes_black_holed`](super::ProxyStats::bytes_black_holed)) and lost even
    /// when the fault is lifted; bytes read before it are held and forwarded after.
    BlackHole,
    /// Close every connection at once with a TCP reset (`SO_LINGER` 0, so the peers read
    /// `ECONNRESET`, or end of stream at worst), on both sides, and refuse new connections the
    /// same way: they are accepted, then reset at once, never connected upstream.
    Reset,
    /// Cap the throughput of each direction of each connection at `bytes_per_second` on
    /// average, sending in slices of about 10 ms worth of bytes (at least one byte), with
    /// bursts of at most about 20 ms worth. `bytes_per_second: 0` forwards nothing (like
    /// [`ProxyFault::BlackHole`], but what is read stays queued, and reading stops once the
    /// queue is full).
    Bandwidth {
        /// The cap, per direction and per connection, in bytes per second.
        bytes_per_second: u64,
    },
    /// Forward at most `bytes` more bytes in each direction of each connection, then reset
    /// the connection (both sides, as with [`ProxyFault::Reset`]) as soon as one direction
    /// has forwarded that many: a message cut mid-frame, then a dead connection. The count
    /// starts when a connection first moves bytes under this fault (setting the fault again
    /// starts it afresh); a direction through which nothing flows never triggers it, so
    /// `bytes: 0` resets a connection on the first byte either way.
    ResetAfter {
        /// How many bytes each direction may still forward, in bytes.
        bytes: u64,
    },
}
