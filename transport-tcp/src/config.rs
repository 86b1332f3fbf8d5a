//! Options of the client and of the server, each field with its unit and default.
//!
//! Both structs have public fields and a [`Default`]: start from the default and override what
//! you need, e.g. `ClientConfig { request_timeout: Duration::from_secs(2), ..Default::default() }`.
//! Values are checked when a client or server is created. The largest frame is not a setting
//! of its own: it is derived from the protocol's [`Limits`] ([`Limits::max_frame_length`], 16
//! MiB by default), with [`ClientConfig::from_limits`] and [`ServerConfig::from_limits`] for
//! other limits.

use std::time::Duration;

use quorum_core::Limits;
use tokio::sync::Semaphore;

use crate::error::TransportError;
use crate::wire::frame::{LENGTH_PREFIX_LEN, MAX_FRAME_LENGTH_LIMIT};

/// Default [`ClientConfig::request_timeout`]: 30 s.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ClientConfig::connect_timeout`]: 5 s.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`ClientConfig::pool_size`]: 2 connections per address.
pub(crate) const DEFAULT_POOL_SIZE: usize = 2;
/// Default bound on requests in flight on one connection, both sides: 256 requests.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// Default [`ClientConfig::frame_read_timeout`]: 30 s.
pub(crate) const DEFAULT_FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ServerConfig::frame_read_timeout`]: 5 s (plus the frame's length at
/// the default `min_receive_rate`).
pub(crate) const DEFAULT_SERVER_FRAME_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`ServerConfig::first_frame_timeout`]: 5 s.
pub(crate) const DEFAULT_FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`ServerConfig::min_receive_rate`]: 1 MiB per second.
pub(crate) const DEFAULT_MIN_RECEIVE_RATE: u64 = 1024 * 1024;
/// Default [`ServerConfig::max_connections`]: 1,024 connections.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default [`ServerConfig::max_connections_per_ip`]: 64 connections.
pub(crate) const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
/// Default [`ServerConfig::connection_budget`]: 32 MiB (one largest request, then its largest
/// response, at the default maximum frame length).
pub(crate) const DEFAULT_CONNECTION_BUDGET: usize = 32 * 1024 * 1024;
/// Default [`ServerConfig::response_reserve`]: 1 MiB (so at most 32 handlers of one connection
/// run at once with the default budget, and answers up to 1 MiB, such as most blob and
/// certificate downloads, never take a connection over its budget).
pub(crate) const DEFAULT_RESPONSE_RESERVE: usize = 1024 * 1024;
/// Default [`ServerConfig::receive_budget`]: 256 MiB (sixteen frames of the default maximum
/// length).
pub(crate) const DEFAULT_RECEIVE_BUDGET: usize = 256 * 1024 * 1024;
/// Default [`ServerConfig::peer_budget`]: 64 MiB (two connections' budgets: an honest client's
/// pool of two connections, each with a largest request and its largest response).
pub(crate) const DEFAULT_PEER_BUDGET: usize = 64 * 1024 * 1024;
/// Default [`ServerConfig::receive_share_per_ip`]: 32 MiB (two largest frames; an eighth of the
/// default receive budget).
pub(crate) const DEFAULT_RECEIVE_SHARE_PER_IP: usize = 32 * 1024 * 1024;
/// Default [`ServerConfig::max_handlers_per_ip`]: 32 handlers.
pub(crate) const DEFAULT_MAX_HANDLERS_PER_IP: usize = 32;
/// Default [`ServerConfig::large_frame_length`]: 64 KiB.
pub(crate) const DEFAULT_LARGE_FRAME_LENGTH: usize = 64 * 1024;
/// Default [`ServerConfig::max_blocking_decodes`]: 4 decoders.
pub(crate) const DEFAULT_MAX_BLOCKING_DECODES: usize = 4;
/// Default [`ServerConfig::max_handlers`]: 512 handlers.
pub(crate) const DEFAULT_MAX_HANDLERS: usize = 512;
/// Default [`ServerConfig::log_interval`]: 10 s.
pub(crate) const DEFAULT_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Default [`ServerConfig::idle_timeout`]: 10 minutes.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default write timeout, both sides: 30 s.
pub(crate) const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ServerConfig::shutdown_grace`]: 10 s.
pub(crate) const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Options of a [`Client`](crate::Client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Largest frame body sent or accepted, in bytes. Default [`Limits::max_frame_length`] of
    /// [`Limits::DEFAULT`] (16 MiB; [`ClientConfig::from_limits`] for other limits); at most
    /// `u32::MAX`, the most a length prefix states. A request that encodes larger fails with
    /// [`TransportError::FrameTooLarge`] without touching the connection.
    pub max_frame_length: usize,
    /// Time allowed for one whole request (getting a connection, waiting for an in-flight slot,
    /// sending, and receiving the response). Default 30 s.
    pub request_timeout: Duration,
    /// Time allowed to establish one TCP connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Connections kept to the address, used round-robin. Default 2;
    /// at least 1.
    pub pool_size: usize,
    /// Requests in flight at once on one connection; further callers wait for a slot (this is the
    /// backpressure). Default 256; at least 1.
    pub max_in_flight: usize,
    /// Time allowed for one write to the socket before the connection is declared broken.
    /// Default 30 s.
    pub write_timeout: Duration,
    /// Once the first byte of a response frame has arrived, the whole frame must arrive within
    /// this time or the connection is closed as stalled (failing the requests waiting on it), so
    /// that a server stuck mid-frame does not wedge the connection. Disconnected between 1 and
    /// 1.5 times this after the frame began. Default 30 s.
    pub frame_read_timeout: Duration,
    /// Frames a server pushed on one stream (notifications of a subscription) kept until the
    /// stream's reader takes them; one more is dropped, which the stream's numbering shows.
    /// Default 256.
    pub stream_buffer: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_frame_length: Limits::DEFAULT.max_frame_length(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            frame_read_timeout: DEFAULT_FRAME_READ_TIMEOUT,
            stream_buffer: 256,
        }
    }
}

impl ClientConfig {
    /// The default options, with the largest frame that `limits` need
    /// ([`Limits::max_frame_length`]).
    pub fn from_limits(limits: &Limits) -> Self {
        ClientConfig {
            max_frame_length: limits.max_frame_length(),
            ..ClientConfig::default()
        }
    }

    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), TransportError> {
        check_frame_length(self.max_frame_length)?;
        check_at_least_one("pool_size", self.pool_size)?;
        check_in_flight(self.max_in_flight)?;
        check_positive("request_timeout", self.request_timeout)?;
        check_positive("connect_timeout", self.connect_timeout)?;
        check_positive("frame_read_timeout", self.frame_read_timeout)?;
        check_positive("write_timeout", self.write_timeout)
    }
}

/// Options of a [`Server`](crate::Server).
///
/// Every resource an unauthenticated peer can make the server spend is bounded by one of these
/// fields (DESIGN §6.1): connections (in all and per IP), time (a deadline for the first frame,
/// for each frame, and for idleness), memory (per connection, per peer address, and across all
/// connections for large requests), handlers running at once (in all and per address), and
/// decoders of large frames.
///
/// Resources shared by all peers are shared fairly: one address holds at most its
/// [`peer_budget`](Self::peer_budget) of memory, its
/// [`receive_share_per_ip`](Self::receive_share_per_ip) of the receive budget and its
/// [`max_handlers_per_ip`](Self::max_handlers_per_ip) of the handlers; and when the server holds
/// [`max_connections`](Self::max_connections), the address with the most connections gives one
/// up to a newcomer from an address with fewer.
///
/// In all, the memory held for one address's requests and responses is at most its peer
/// budget, plus what its connections read past it: a small frame (at most
/// [`large_frame_length`](Self::large_frame_length)) and a response reserve each, and the
/// overshoot of responses larger than their reserve (see
/// [`response_reserve`](Self::response_reserve)); of it, large requests at most its receive
/// share, and for all addresses together at most `receive_budget`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest frame body accepted or sent, in bytes. Default [`Limits::max_frame_length`] of
    /// [`Limits::DEFAULT`] (16 MiB; [`ServerConfig::from_limits`] for other limits); at most
    /// `u32::MAX`, the most a length prefix states. A longer length prefix closes the connection.
    pub max_frame_length: usize,
    /// Requests of one connection handled at once; when all slots are taken the server stops
    /// reading that connection until one frees up. Default 256;
    /// at least 1.
    pub max_in_flight: usize,
    /// Connections open at once, from all peers. When the server holds this many, a newcomer
    /// is admitted if some address holds at least two more connections than the newcomer's
    /// does: that address's least recently active connection is closed for it (counted in
    /// [`ServerStats::evicted_connections`](crate::ServerStats)). Otherwise the newcomer is
    /// closed as soon as it is accepted (counted in
    /// [`ServerStats::refused_connections`](crate::ServerStats) and summarised in at most one
    /// log line per [`log_interval`](Self::log_interval)), so the connections already open
    /// keep being served. Default 1,024; at least 1.
    pub max_connections: usize,
    /// Connections open at once from one IP address (an IPv6 address counts with its whole
    /// `/64` network, an IPv4-mapped IPv6 address as the IPv4 address); refused like those
    /// beyond [`max_connections`](Self::max_connections). Default
    /// 64; at least 1.
    pub max_connections_per_ip: usize,
    /// A new connection is closed unless the first byte of its first frame has arrived within
    /// this time after it was accepted; from then on the frame deadline
    /// ([`frame_read_timeout`](Self::frame_read_timeout)) applies, so a peer that sends only a
    /// length prefix is closed by that. Default 5 s.
    pub first_frame_timeout: Duration,
    /// The frame deadline: once the first byte of a frame has arrived, the whole frame must
    /// arrive within this time plus its length divided by
    /// [`min_receive_rate`](Self::min_receive_rate) (counted from when its length prefix is
    /// complete), or the connection is closed as stalled. Time the server spends not reading
    /// that connection (waiting for an in-flight slot or for room in the connection's memory
    /// budget) does not count; time spent waiting for the server-wide
    /// [`receive_budget`](Self::receive_budget) does. Default
    /// 5 s.
    pub frame_read_timeout: Duration,
    /// Slowest transfer a large frame is granted, in bytes per second: a frame of `n` bytes
    /// gets `n / min_receive_rate` seconds on top of
    /// [`frame_read_timeout`](Self::frame_read_timeout). Default
    /// 1 MiB/s, so a 16 MiB frame gets 5 s + 16 s; at least 1.
    pub min_receive_rate: u64,
    /// Once a frame has begun, the longest it may go without progress: no byte of it arriving
    /// while the server reads it, or no room granted by the server-wide, group or address
    /// budgets while it waits for them. The connection is then closed and what the partial
    /// frame held is freed, so a peer that sends most of a large frame and then stops (or
    /// whose frame waits behind others' held memory) holds its bytes for this long, not until
    /// [`frame_read_timeout`](Self::frame_read_timeout) plus its length at
    /// [`min_receive_rate`](Self::min_receive_rate). Waiting for room in the connection's own
    /// budget (the peer not reading its responses) does not count. Default 5 s.
    pub frame_progress_timeout: Duration,
    /// A connection with no request in flight, no partial frame and no frame received for this
    /// long is closed. `None` keeps idle connections open forever. Default
    /// `Some(10 minutes)`.
    pub idle_timeout: Option<Duration>,
    /// Memory one connection may hold, in bytes, requests and responses together: the buffer
    /// of the frame being received, the requests being handled, a reserve of
    /// [`response_reserve`](Self::response_reserve) for the answer of each, and the encoded
    /// responses not yet written to the socket. While it is used up, the server reads nothing
    /// more from that connection (a peer that does not read its responses stops being read).
    /// A response larger than its reserve is queued even over the budget (the overshoot is
    /// bounded under [`response_reserve`](Self::response_reserve)). Values below one largest
    /// frame (`max_frame_length` + 4) are raised to it. Not counted: a fixed 8 KiB read-ahead
    /// buffer per connection. Default 32 MiB.
    pub connection_budget: usize,
    /// Bytes of the connection budget set aside for the response of each request while its
    /// handler runs (a request already holding more for itself sets nothing more aside), so
    /// that at most `connection_budget / response_reserve` handlers of one connection run at
    /// once and responses up to this size never take the connection over its budget; larger
    /// ones take it over by at most `connection_budget / response_reserve` times
    /// (`max_frame_length` + 4 − `response_reserve`). Default
    /// 1 MiB; values above the connection budget are lowered to it.
    pub response_reserve: usize,
    /// Memory all connections of one peer address (as counted by
    /// [`max_connections_per_ip`](Self::max_connections_per_ip)) may hold together, in bytes,
    /// counted as each connection's [`connection_budget`](Self::connection_budget) counts. While
    /// it is used up, those connections read no new frame, and a large frame of theirs grows
    /// only when there is room, waiting within its frame deadline. Each connection may still
    /// read one small frame and set one response reserve aside past it, and responses larger
    /// than their reserve are charged whatever it says. Values below one largest frame are
    /// raised to it. Default 64 MiB.
    pub peer_budget: usize,
    /// Large frames the connections of one peer address may receive at once, as the sum of
    /// their lengths in bytes: each takes its whole length of this share when its first body
    /// bytes arrive (a count, not memory: the frame's memory is charged to the
    /// [`receive_budget`](Self::receive_budget) as its bytes arrive), so one address holds at
    /// most this much of the receive budget, a few addresses stalling large frames cannot
    /// starve everyone else's (at the defaults, eight addresses are needed to take the whole
    /// receive budget), and the large frames of one address are admitted whole, one after the
    /// other, never waiting on each other half-received. A frame waiting for it counts that
    /// time against its frame deadline. Values below one largest frame are raised to it, values
    /// above the receive budget lowered to it. Default
    /// 32 MiB.
    pub receive_share_per_ip: usize,
    /// Memory all connections together may hold for large frames (longer than
    /// [`large_frame_length`](Self::large_frame_length)), in bytes: from the first byte of
    /// such a frame until its handler returns. A frame's buffer grows, and draws on this
    /// budget, as its bytes arrive (never by its declared length), so stalled partial frames
    /// hold at most this much; a frame waiting for it counts that time against its frame
    /// deadline. Values below one largest frame (`max_frame_length` + 4) are raised to it.
    /// Default 256 MiB.
    pub receive_budget: usize,
    /// Frames with a longer body, in bytes, are "large": they draw on the
    /// [`receive_budget`](Self::receive_budget) and are decoded on tokio's blocking threads
    /// (at most [`max_blocking_decodes`](Self::max_blocking_decodes) at once) instead of the
    /// runtime's. Default 64 KiB.
    pub large_frame_length: usize,
    /// Large frames decoded at once, across all connections; further large frames wait, fully
    /// received, for a decoder. Default 4; at least 1.
    pub max_blocking_decodes: usize,
    /// Handlers running at once, across all connections; further requests wait (read and
    /// counted against their connection's budget) for one to finish. Default
    /// 512; at least 1.
    pub max_handlers: usize,
    /// Handlers running at once for the connections of one peer address; further requests of
    /// that address wait (read and counted against their connection's budget) for one of its
    /// handlers to finish, so one address cannot take every handler or the runtime's time.
    /// Default 32; at least 1.
    pub max_handlers_per_ip: usize,
    /// Memory all addresses of one group (an IPv4 `/24`, an IPv6 `/48`) may hold together, in
    /// bytes, counted like [`peer_budget`](Self::peer_budget); while it is used up, their
    /// connections read no new frame (an address's own [`peer_budget`](Self::peer_budget)
    /// is bounded by it too). Values below one largest frame are raised to it. Default 32 MiB:
    /// half the [`server_budget`](Self::server_budget), so the addresses of one group, their
    /// floors included, cannot hold all of it and keep the others of their group waiting.
    pub group_budget: usize,
    /// Memory all connections together may hold, in bytes, counted like
    /// [`connection_budget`](Self::connection_budget) (frames being received, requests being
    /// handled with room for their responses, responses not yet written): while it is used
    /// up, no connection reads a new frame or starts a handler, except those of a group
    /// holding less than [`group_floor`](Self::group_floor). So the total is at most this
    /// plus one floor per group, whatever the number of attacking addresses. It binds large
    /// frames too, before the [`receive_budget`](Self::receive_budget). Values below one
    /// largest frame are raised to it. Default 64 MiB: with the floors of 254 groups
    /// (64 MiB), the memory of the answers being built beside their encoding and of large
    /// requests being decoded, and what the allocator keeps for a moment, a validator under
    /// attack from 254 /24s stays within 256 MiB of its idle size.
    pub server_budget: usize,
    /// A group (see [`group_budget`](Self::group_budget)) holding less than this many bytes
    /// is admitted up to it however much the server holds, for its frames, its responses and
    /// its large frames' share of the [`receive_budget`](Self::receive_budget): a new honest
    /// address is always served an ordinary request. Default 256 KiB.
    pub group_floor: usize,
    /// An address holding less than this many bytes is admitted up to it however much its
    /// group (see [`group_budget`](Self::group_budget)) holds, for its frames and its
    /// responses: an honest address whose /24 is full of attackers is still served an ordinary
    /// request (the server's budget, with its [`group_floor`](Self::group_floor), still bounds
    /// the total). Default 256 KiB.
    pub address_floor: usize,
    /// Handlers running at once for the addresses of one group, so that one group cannot take
    /// every handler or the runtime's time. Default 64; at least 1.
    pub max_handlers_per_group: usize,
    /// How long the handler time a group has used counts when the server's
    /// [`max_handlers`](Self::max_handlers) slots are all taken: a slot given back goes to the
    /// waiting group that has used the least handler time (time spent polling its handlers and
    /// encoding their answers), each group's time halving every this long. So a group whose
    /// requests keep the cores busy waits behind everyone who asks less. Default 1 s.
    pub handler_time_half_life: Duration,
    /// Handlers being polled at once (running on a core). A handler is polled only in turns;
    /// when every turn is taken, the next goes to the waiting group that has used the least
    /// handler time (see [`handler_time_half_life`](Self::handler_time_half_life)), so a
    /// group whose requests keep the cores busy cannot keep another group's handler off them
    /// for longer than a poll. Default: the number of cores
    /// ([`std::thread::available_parallelism`]); at least 1.
    pub max_polling_handlers: usize,
    /// Refused connections and failed `accept`s are logged at most once per this interval, in
    /// one line that says how many there were since the last line. Default
    /// 10 s.
    pub log_interval: Duration,
    /// Time allowed for one write to the socket; a peer that stops reading its responses for
    /// longer is disconnected. Default 30 s.
    pub write_timeout: Duration,
    /// On [`Server::shutdown`](crate::Server::shutdown), how long requests in flight may take to
    /// finish and be answered before their connections are cut. Default
    /// 10 s.
    pub shutdown_grace: Duration,
    /// Subscriptions (streams of notifications, DESIGN §4.7.1) open at once on one connection;
    /// one more is refused, naming this cap. Default 4.
    pub max_subscriptions_per_connection: usize,
    /// Subscriptions open at once from one address, all its connections together. Default 16.
    pub max_subscriptions_per_address: usize,
    /// Chains followed by the subscriptions of one connection, counted once per subscription.
    /// Default 100,000.
    pub max_subscribed_chains_per_connection: usize,
    /// Chains followed by the subscriptions of one address. Default 100,000.
    pub max_subscribed_chains_per_address: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_length: Limits::DEFAULT.max_frame_length(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            first_frame_timeout: DEFAULT_FIRST_FRAME_TIMEOUT,
            frame_read_timeout: DEFAULT_SERVER_FRAME_READ_TIMEOUT,
            min_receive_rate: DEFAULT_MIN_RECEIVE_RATE,
            frame_progress_timeout: Duration::from_secs(5),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            connection_budget: DEFAULT_CONNECTION_BUDGET,
            response_reserve: DEFAULT_RESPONSE_RESERVE,
            peer_budget: DEFAULT_PEER_BUDGET,
            receive_share_per_ip: DEFAULT_RECEIVE_SHARE_PER_IP,
            receive_budget: DEFAULT_RECEIVE_BUDGET,
            large_frame_length: DEFAULT_LARGE_FRAME_LENGTH,
            max_blocking_decodes: DEFAULT_MAX_BLOCKING_DECODES,
            max_handlers: DEFAULT_MAX_HANDLERS,
            max_handlers_per_ip: DEFAULT_MAX_HANDLERS_PER_IP,
            group_budget: 32 << 20,
            server_budget: 64 << 20,
            group_floor: 256 << 10,
            address_floor: 256 << 10,
            max_handlers_per_group: 64,
            handler_time_half_life: Duration::from_secs(1),
            max_polling_handlers: std::thread::available_parallelism()
                .map_or(2, |cores| cores.get()),
            log_interval: DEFAULT_LOG_INTERVAL,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_subscriptions_per_connection: 4,
            max_subscriptions_per_address: 16,
            max_subscribed_chains_per_connection: 100_000,
            max_subscribed_chains_per_address: 100_000,
        }
    }
}

impl ServerConfig {
    /// The default options, with the largest frame that `limits` need
    /// ([`Limits::max_frame_length`]).
    pub fn from_limits(limits: &Limits) -> Self {
        ServerConfig {
            max_frame_length: limits.max_frame_length(),
            ..ServerConfig::default()
        }
    }

    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), TransportError> {
        check_frame_length(self.max_frame_length)?;
        check_in_flight(self.max_in_flight)?;
        check_at_least_one("max_connections", self.max_connections)?;
        check_at_least_one("max_connections_per_ip", self.max_connections_per_ip)?;
        check_positive("first_frame_timeout", self.first_frame_timeout)?;
        check_positive("frame_read_timeout", self.frame_read_timeout)?;
        if self.min_receive_rate == 0 {
            return Err(TransportError::ConfigTooSmall {
                field: "min_receive_rate",
                min: 1,
                value: 0,
            });
        }
        if let Some(idle) = self.idle_timeout {
            check_positive("idle_timeout", idle)?;
        }
        check_positive("frame_progress_timeout", self.frame_progress_timeout)?;
        check_positive("handler_time_half_life", self.handler_time_half_life)?;
        check_permits("max_blocking_decodes", self.max_blocking_decodes)?;
        check_permits("max_handlers", self.max_handlers)?;
        check_permits("max_handlers_per_ip", self.max_handlers_per_ip)?;
        check_permits("max_handlers_per_group", self.max_handlers_per_group)?;
        check_permits("max_polling_handlers", self.max_polling_handlers)?;
        check_permits("receive_budget", self.effective_receive_budget())?;
        check_positive("log_interval", self.log_interval)?;
        check_positive("write_timeout", self.write_timeout)
    }

    /// One largest frame, length prefix included, in bytes.
    fn largest_frame(&self) -> usize {
        self.max_frame_length.saturating_add(LENGTH_PREFIX_LEN)
    }

    /// [`connection_budget`](Self::connection_budget), raised to one largest frame.
    pub fn effective_connection_budget(&self) -> usize {
        self.connection_budget.max(self.largest_frame())
    }

    /// [`response_reserve`](Self::response_reserve), lowered to the connection budget.
    pub fn effective_response_reserve(&self) -> usize {
        self.response_reserve
            .min(self.effective_connection_budget())
    }

    /// [`receive_budget`](Self::receive_budget), raised to one largest frame.
    pub fn effective_receive_budget(&self) -> usize {
        self.receive_budget.max(self.largest_frame())
    }

    /// [`peer_budget`](Self::peer_budget), raised to one largest frame.
    pub fn effective_peer_budget(&self) -> usize {
        self.peer_budget.max(self.largest_frame())
    }

    /// [`group_budget`](Self::group_budget), raised to one largest frame.
    pub fn effective_group_budget(&self) -> usize {
        self.group_budget.max(self.largest_frame())
    }

    /// [`server_budget`](Self::server_budget), raised to one largest frame.
    pub fn effective_server_budget(&self) -> usize {
        self.server_budget.max(self.largest_frame())
    }

    /// [`receive_share_per_ip`](Self::receive_share_per_ip), raised to one largest frame and
    /// lowered to the receive budget.
    pub fn effective_receive_share(&self) -> usize {
        self.receive_share_per_ip
            .max(self.largest_frame())
            .min(self.effective_receive_budget())
    }
}

fn check_frame_length(max_frame_length: usize) -> Result<(), TransportError> {
    check_at_least_one("max_frame_length", max_frame_length)?;
    check_at_most("max_frame_length", max_frame_length, MAX_FRAME_LENGTH_LIMIT)
}

fn check_in_flight(max_in_flight: usize) -> Result<(), TransportError> {
    check_permits("max_in_flight", max_in_flight)
}

/// A value used as the size of a [`Semaphore`]: at least 1, at most what one can hold.
fn check_permits(field: &'static str, value: usize) -> Result<(), TransportError> {
    check_at_least_one(field, value)?;
    check_at_most(field, value, Semaphore::MAX_PERMITS)
}

/// `usize` as `u64` for an error report (saturating; `usize` is at most 64 bits here).
fn wide(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

fn check_at_least_one(field: &'static str, value: usize) -> Result<(), TransportError> {
    if value == 0 {
        return Err(TransportError::ConfigTooSmall {
            field,
            min: 1,
            value: 0,
        });
    }
    Ok(())
}

fn check_at_most(field: &'static str, value: usize, max: usize) -> Result<(), TransportError> {
    if value > max {
        return Err(TransportError::ConfigTooLarge {
            field,
            max: wide(max),
            value: wide(value),
        });
    }
    Ok(())
}

fn check_positive(field: &'static str, value: Duration) -> Result<(), TransportError> {
    if value.is_zero() {
        return Err(TransportError::ConfigZeroDuration { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
