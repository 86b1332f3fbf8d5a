//! What can go wrong on the way to a validator over QUIC, and how it shows to the code that
//! asked ([`NodeError`]).

use std::fmt;
use std::net::SocketAddr;

use quorum_core::{NetworkPublicKey, NodeError, TransportErrorKind};

/// A failure of the QUIC transport.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// A configuration field is out of range (named, with the reason).
    #[error("invalid QUIC configuration: {field} {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The address is not `host:port`, or its host is unknown.
    #[error("cannot resolve {address}: {source}")]
    Resolve {
        /// The address given.
        address: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The address resolved to nothing.
    #[error("{address} resolves to no address")]
    NoAddress {
        /// The address given.
        address: String,
    },
    /// The UDP socket could not be bound.
    #[error("cannot bind {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
    /// The validator at `address` proved it holds another key than its committee entry lists:
    /// nothing was sent to it.
    #[error(
        "refused {address}: its committee entry lists the network key {expected}, \
         but it presented {presented}; no request was sent"
    )]
    WrongIdentity {
        /// The address dialled.
        address: SocketAddr,
        /// The key the committee lists.
        expected: NetworkPublicKey,
        /// What the server presented instead.
        presented: Presented,
    },
    /// The handshake with `address` failed for another reason (no QUIC server there, another
    /// protocol, a timeout).
    #[error("handshake with {address} failed: {source}")]
    Handshake {
        /// The address dialled.
        address: SocketAddr,
        /// The connection's error.
        source: quinn::ConnectionError,
    },
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The connection closed before the answer arrived.
    #[error("connection lost: {0}")]
    ConnectionLost(#[from] quinn::ConnectionError),
    /// The peer reset the stream or stopped reading it.
    #[error("stream closed by the peer")]
    StreamClosed,
    /// The stream ended inside a message.
    #[error("stream ended inside a message")]
    Truncated,
    /// A message longer than allowed.
    #[error("message of {length} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Its length.
        length: usize,
        /// The maximum.
        max: usize,
    },
    /// A message that does not decode.
    #[error("cannot decode a message: {0}")]
    Decode(bcs::Error),
    /// A message that does not encode.
    #[error("cannot encode a message: {0}")]
    Encode(bcs::Error),
}

/// How a failure to reach the node shows to the code that asked it.
///
/// | [`QuicError`] | [`NodeError`] |
/// |---|---|
/// | `Timeout` | `Timeout` |
/// | `Handshake`, `ConnectionLost`, `Bind` | `Transport(Io)` |
/// | `StreamClosed`, `Truncated` | `Transport(ConnectionClosed)` |
/// | `TooLarge` | `Transport(FrameTooLarge)` |
/// | `Decode`, `Encode` | `Transport(Codec)` |
/// | `WrongIdentity`, `InvalidConfig`, `Resolve`, `NoAddress`, `Tls` | `Transport(Unavailable)` |
impl From<QuicError> for NodeError {
    fn from(error: QuicError) -> Self {
        let kind = match error {
            QuicError::Timeout(_) => return NodeError::Timeout,
            QuicError::Handshake { .. } | QuicError::ConnectionLost(_) | QuicError::Bind { .. } => {
                TransportErrorKind::Io
            }
            QuicError::StreamClosed | QuicError::Truncated => TransportErrorKind::ConnectionClosed,
            QuicError::TooLarge { .. } => TransportErrorKind::FrameTooLarge,
            QuicError::Decode(_) | QuicError::Encode(_) => TransportErrorKind::Codec,
            QuicError::WrongIdentity { .. }
            | QuicError::InvalidConfig { .. }
            | QuicError::Resolve { .. }
            | QuicError::NoAddress { .. }
            | QuicError::Tls(_) => TransportErrorKind::Unavailable,
        };
        NodeError::Transport(kind)
    }
}

/// What a server presented that was not the key expected of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// Another ed25519 key.
    Key(NetworkPublicKey),
    /// Something that is not an ed25519 raw public key (e.g. an X.509 certificate chain).
    NotAKey,
}

impl fmt::Display for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presented::Key(key) => write!(f, "the network key {key}"),
            Presented::NotAKey => f.write_str("no ed25519 raw public key"),
        }
    }
}
