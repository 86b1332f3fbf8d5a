//! The one error type of the TCP transport.

use std::fmt::Display;
use std::io;
use std::time::Duration;

use thiserror::Error;
use tracing::{debug, warn};

/// Everything that can go wrong while framing, sending or serving a request over TCP.
///
/// The type is `Clone + Eq` (I/O errors are kept as their [`io::ErrorKind`] and message) so one
/// connection failure can be handed to every request that was waiting on that connection, and so a
/// caller can later map it into a serializable error of its own.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransportError {
    /// An I/O operation on an established connection failed.
    #[error("I/O error ({kind:?}): {message}")]
    Io {
        /// The kind of the underlying [`io::Error`].
        kind: io::ErrorKind,
        /// The underlying error's message.
        message: String,
    },
    /// A connection to `address` could not be established (refused, unreachable, or it did not
    /// complete within the connect timeout).
    #[error("cannot connect to {address}: {message}")]
    Connect {
        /// The address that was dialled, as given to the client.
        address: String,
        /// Why it failed.
        message: String,
    },
    /// The request got no response within the per-request timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The connection was closed (by the peer, by a shutdown, or after a failure on it) before
    /// the response arrived. The next request through the same client reconnects.
    #[error("connection closed")]
    ConnectionClosed,
    /// A frame's body is longer than the configured maximum frame length (in bytes).
    #[error("frame of {length} bytes exceeds the maximum frame length of {max} bytes")]
    FrameTooLarge {
        /// The body length that was declared (incoming) or produced (outgoing), in bytes.
        length: u64,
        /// The maximum frame length in force, in bytes.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The peer began a frame and did not complete it within the frame read timeout.
    #[error("peer stalled mid-frame: frame not completed within {timeout:?}")]
    Stalled {
        /// The frame read timeout in force.
        timeout: Duration,
    },
    /// A complete frame's body is not a valid BCS encoding of the expected envelope.
    #[error("undecodable frame body: {0}")]
    Decode(bcs::Error),
    /// A message could not be BCS-encoded.
    #[error("cannot encode message: {0}")]
    Encode(bcs::Error),
    /// A count, size or rate of [`ClientConfig`](crate::ClientConfig) or
    /// [`ServerConfig`](crate::ServerConfig) under its least value.
    #[error("invalid configuration: {field} must be at least {min}, got {value}")]
    ConfigTooSmall {
        /// The field's name.
        field: &'static str,
        /// Its least value, in the field's unit.
        min: u64,
        /// The value given.
        value: u64,
    },
    /// A count or size of a configuration over its largest value.
    #[error("invalid configuration: {field} must be at most {max}, got {value}")]
    ConfigTooLarge {
        /// The field's name.
        field: &'static str,
        /// Its largest value, in the field's unit.
        max: u64,
        /// The value given.
        value: u64,
    },
    /// A duration of a configuration that is zero where a wait must be possible.
    #[error("invalid configuration: {field} must be longer than zero")]
    ConfigZeroDuration {
        /// The field's name.
        field: &'static str,
    },
}

impl TransportError {
    /// Whether the error says that a configuration value is out of range (found when a client
    /// or server is built, never per request).
    pub fn is_invalid_config(&self) -> bool {
        matches!(
            self,
            TransportError::ConfigTooSmall { .. }
                | TransportError::ConfigTooLarge { .. }
                | TransportError::ConfigZeroDuration { .. }
        )
    }

    /// Whether the error only says that the peer went away (connection reset, broken pipe, ...)
    /// rather than that something misbehaved.
    pub fn is_peer_gone(&self) -> bool {
        matches!(
            self,
            TransportError::ConnectionClosed
                | TransportError::Io {
                    kind: io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::NotConnected
                        | io::ErrorKind::UnexpectedEof,
                    ..
                }
        )
    }
}

/// Logs that the connection to `peer` is being closed because of `error`: quietly when the peer
/// simply went away, as a warning naming the reason otherwise.
pub(crate) fn log_closing(peer: impl Display, error: &TransportError) {
    if error.is_peer_gone() {
        debug!(%peer, reason = %error, "connection lost");
    } else {
        warn!(%peer, reason = %error, "closing connection");
    }
}

impl From<io::Error> for TransportError {
    fn from(error: io::Error) -> Self {
        TransportError::Io {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}
