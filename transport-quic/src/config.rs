//! What a QUIC server and client may hold and wait for: every bound of DESIGN §6.1 in its QUIC
//! form, each a documented field with its default in `Default`.

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};
use quorum_core::Limits;

use crate::error::QuicError;

/// The server's bounds. Every resource an unauthenticated peer can make the server hold is
/// capped by one of these fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Connections open at once, in all (default 1,024). One more is refused.
    pub max_connections: usize,
    /// Connections open at once from one IP address (default 64). Counted only once the
    /// address is validated by a Retry, since a UDP source address can be spoofed.
    pub max_connections_per_ip: usize,
    /// How long a connection must have had no stream open before a newer connection of its
    /// address, at `max_connections_per_ip`, displaces it (default 1 s): over UDP nothing
    /// tells the server that a client process ended without closing.
    pub evict_idle_after: Duration,
    /// Handshakes begun per second, in all (default 256; a burst of as many). Each costs a
    /// signature; beyond the rate a validated peer is refused.
    pub handshakes_per_second: u32,
    /// Requests a connection may have open at once: QUIC's concurrent bidirectional streams
    /// (default 64).
    pub max_streams_per_connection: u32,
    /// Bytes a peer may send on one stream before the server reads them: QUIC's stream flow
    /// control window (default 1 MiB).
    pub stream_receive_window: u32,
    /// Bytes a peer may send on one connection, all streams together, before the server reads
    /// them, when it starts: QUIC's connection flow control window as the handshake announces
    /// it (default 128 KiB). Every connection can make QUIC buffer this much.
    pub initial_receive_window: u32,
    /// The largest a connection's flow control window grows, with credit from
    /// `receive_window_budget` (default 4 MiB).
    pub receive_window: u32,
    /// Credit beyond the initial windows, both ways, shared by all connections (default
    /// 64 MiB): what QUIC buffers unread or unacknowledged is at most `max_connections ×
    /// (initial_receive_window + initial_send_window)` plus this.
    pub window_budget: u64,
    /// Bytes of answers the server sends on one connection before the peer acknowledges them,
    /// when it starts (default 128 KiB). Every connection can make QUIC hold this much.
    pub initial_send_window: u64,
    /// The largest a connection's send window grows, with credit from `window_budget`
    /// (default 4 MiB).
    pub send_window: u64,
    /// Bytes one connection may make the server hold: requests being received and handled,
    /// and room for each answer (default 32 MiB).
    pub connection_budget: usize,
    /// Bytes all connections together may make the server hold (default 64 MiB).
    pub server_budget: usize,
    /// Requests being handled at once, in all (default 256).
    pub max_handlers: usize,
    /// Time a new connection has to open its first request (default 5 s).
    pub first_request_timeout: Duration,
    /// Time a connection may stay with no request and no subscription open before the server
    /// closes it (default 60 s).
    pub idle_timeout: Duration,
    /// Time a peer may stay silent before QUIC drops the connection, handshakes included
    /// (default 10 s). Clients send keep-alives well within it.
    pub transport_idle_timeout: Duration,
    /// Time a request has to arrive, plus its length at `min_receive_rate` (default 5 s).
    pub request_read_timeout: Duration,
    /// The slowest a request may arrive, in bytes per second (default 1 MiB/s).
    pub min_receive_rate: u64,
    /// Time an answer has to be taken by the peer before its stream is reset (default 10 s).
    pub write_timeout: Duration,
    /// The longest message either way, in bytes (default: the protocol's, 8 MiB and a little).
    pub max_frame_length: usize,
    /// Subscriptions open at once on one connection (default 16).
    pub max_subscriptions_per_connection: usize,
    /// Chains followed at once on one connection, all its subscriptions together
    /// (default 4,096).
    pub max_chains_per_connection: usize,
    /// How long a Retry token proves an address (default 15 s).
    pub retry_token_lifetime: Duration,
    /// The protocol's limits, from which each answer's bound is derived.
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            max_connections_per_ip: 64,
            evict_idle_after: Duration::from_secs(1),
            handshakes_per_second: 256,
            max_streams_per_connection: 64,
            stream_receive_window: 1 << 20,
            initial_receive_window: 128 << 10,
            receive_window: 4 << 20,
            window_budget: 64 << 20,
            initial_send_window: 128 << 10,
            send_window: 4 << 20,
            connection_budget: 32 << 20,
            server_budget: 64 << 20,
            max_handlers: 256,
            first_request_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            transport_idle_timeout: Duration::from_secs(10),
            request_read_timeout: Duration::from_secs(5),
            min_receive_rate: 1 << 20,
            write_timeout: Duration::from_secs(10),
            max_frame_length: Limits::DEFAULT.max_frame_length(),
            max_subscriptions_per_connection: 16,
            max_chains_per_connection: 4096,
            retry_token_lifetime: Duration::from_secs(15),
            limits: Limits::DEFAULT,
        }
    }
}

impl ServerConfig {
    /// The defaults, with the frame and answer bounds of `limits`.
    pub fn from_limits(limits: &Limits) -> Self {
        ServerConfig {
            max_frame_length: limits.max_frame_length(),
            limits: *limits,
            ..ServerConfig::default()
        }
    }

    /// Checks every field, naming the first out of range.
    pub fn validate(&self) -> Result<(), QuicError> {
        let positive = [
            ("max_connections", self.max_connections == 0),
            ("max_connections_per_ip", self.max_connections_per_ip == 0),
            ("handshakes_per_second", self.handshakes_per_second == 0),
            (
                "max_streams_per_connection",
                self.max_streams_per_connection == 0,
            ),
            ("stream_receive_window", self.stream_receive_window == 0),
            ("initial_receive_window", self.initial_receive_window == 0),
            ("initial_send_window", self.initial_send_window == 0),
            ("max_handlers", self.max_handlers == 0),
            ("min_receive_rate", self.min_receive_rate == 0),
            ("max_frame_length", self.max_frame_length == 0),
            (
                "max_subscriptions_per_connection",
                self.max_subscriptions_per_connection == 0,
            ),
        ];
        all_positive(&positive)?;
        if self.receive_window < self.initial_receive_window {
            return Err(QuicError::InvalidConfig {
                field: "receive_window",
                reason: "must be at least initial_receive_window",
            });
        }
        if self.send_window < self.initial_send_window {
            return Err(QuicError::InvalidConfig {
                field: "send_window",
                reason: "must be at least initial_send_window",
            });
        }
        if self.connection_budget < self.max_frame_length {
            return Err(QuicError::InvalidConfig {
                field: "connection_budget",
                reason: "must hold at least one largest message",
            });
        }
        if self.server_budget < self.connection_budget {
            return Err(QuicError::InvalidConfig {
                field: "server_budget",
                reason: "must hold at least one connection's budget",
            });
        }
        idle(self.transport_idle_timeout, "transport_idle_timeout")?;
        Ok(())
    }

    /// QUIC's transport parameters for the server's connections.
    pub(crate) fn transport(&self) -> Result<TransportConfig, QuicError> {
        let mut transport = TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_streams_per_connection))
            // Clients open no unidirectional streams.
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(self.initial_receive_window))
            .send_window(self.initial_send_window)
            .max_idle_timeout(Some(idle(
                self.transport_idle_timeout,
                "transport_idle_timeout",
            )?))
            .datagram_receive_buffer_size(None);
        Ok(transport)
    }
}

/// The client's bounds and deadlines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Time a connection, handshake included, has to be made (default 5 s).
    pub connect_timeout: Duration,
    /// Time a request has for its answer (default 30 s).
    pub request_timeout: Duration,
    /// The longest answer accepted, in bytes (default: the protocol's, 8 MiB and a little).
    pub max_frame_length: usize,
    /// Time between keep-alives on an open connection (default 3 s), well within the server's
    /// `transport_idle_timeout`.
    pub keep_alive_interval: Duration,
    /// Time the server may stay silent before the connection is dropped (default 10 s).
    pub transport_idle_timeout: Duration,
    /// Bytes the server may send on one stream before the client reads them (default 16 MiB,
    /// above a largest download).
    pub stream_receive_window: u32,
    /// Bytes the server may send on the connection, all streams together, before the client
    /// reads them (default 32 MiB).
    pub receive_window: u32,
    /// Notifications a subscription holds that the caller has not taken yet (default 1,024);
    /// beyond them the subscription ends (the caller subscribes again and syncs).
    pub notification_buffer: usize,
    /// The local address to send from (default: any address of the server's family).
    pub local_address: Option<std::net::IpAddr>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_frame_length: Limits::DEFAULT.max_frame_length(),
            keep_alive_interval: Duration::from_secs(3),
            transport_idle_timeout: Duration::from_secs(10),
            stream_receive_window: 16 << 20,
            receive_window: 32 << 20,
            notification_buffer: 1024,
            local_address: None,
        }
    }
}

impl ClientConfig {
    /// Checks every field, naming the first out of range.
    pub fn validate(&self) -> Result<(), QuicError> {
        let positive = [
            ("max_frame_length", self.max_frame_length == 0),
            ("stream_receive_window", self.stream_receive_window == 0),
            ("receive_window", self.receive_window == 0),
            ("notification_buffer", self.notification_buffer == 0),
        ];
        all_positive(&positive)?;
        if self.keep_alive_interval >= self.transport_idle_timeout {
            return Err(QuicError::InvalidConfig {
                field: "keep_alive_interval",
                reason: "must be shorter than transport_idle_timeout",
            });
        }
        idle(self.transport_idle_timeout, "transport_idle_timeout")?;
        Ok(())
    }

    /// QUIC's transport parameters for the client's connections.
    pub(crate) fn transport(&self) -> Result<Arc<TransportConfig>, QuicError> {
        let mut transport = TransportConfig::default();
        transport
            // The server opens no streams towards the client.
            .max_concurrent_bidi_streams(VarInt::from_u32(0))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(self.receive_window))
            .keep_alive_interval(Some(self.keep_alive_interval))
            .max_idle_timeout(Some(idle(
                self.transport_idle_timeout,
                "transport_idle_timeout",
            )?));
        Ok(Arc::new(transport))
    }
}

/// Refuses the first field, of `(name, is zero)` pairs, that is zero.
fn all_positive(fields: &[(&'static str, bool)]) -> Result<(), QuicError> {
    match fields.iter().find(|(_, zero)| *zero) {
        Some((field, _)) => Err(QuicError::InvalidConfig {
            field,
            reason: "must be positive",
        }),
        None => Ok(()),
    }
}

/// A QUIC idle timeout (at most 2^62 ms).
fn idle(duration: Duration, field: &'static str) -> Result<IdleTimeout, QuicError> {
    IdleTimeout::try_from(duration).map_err(|_| QuicError::InvalidConfig {
        field,
        reason: "is too long for QUIC",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_a_zero_field_is_named() {
        assert!(ServerConfig::default().validate().is_ok());
        assert!(ClientConfig::default().validate().is_ok());
        let server = ServerConfig {
            max_handlers: 0,
            ..ServerConfig::default()
        };
        assert!(matches!(
            server.validate(),
            Err(QuicError::InvalidConfig {
                field: "max_handlers",
                ..
            })
        ));
        let client = ClientConfig {
            notification_buffer: 0,
            ..ClientConfig::default()
        };
        assert!(matches!(
            client.validate(),
            Err(QuicError::InvalidConfig {
                field: "notification_buffer",
                ..
            })
        ));
    }
}
