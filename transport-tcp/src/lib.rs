//! Quorum over TCP: length-delimited BCS frames, request multiplexing, a pooled client and a
//! server with graceful shutdown.
//!
//! * Every message is one frame: a big-endian `u32` length, then the BCS encoding of an
//!   [`Envelope`] `{ request_id, body }` ([`frame`], [`FrameCodec`]). Bodies longer than the
//!   configured maximum ([`DEFAULT_MAX_FRAME_LENGTH`], 16 MiB) are refused.
//! * A [`Client`] keeps a small pool of connections to one address; each carries many requests
//!   at once, matched to their responses by request id, with a bound on requests in flight and a
//!   timeout per request. A broken connection fails its requests with the reason and is replaced
//!   on the next request.
//! * A [`Server`] answers each request through a [`Handler`], concurrently; malformed, oversize,
//!   truncated or stalled input closes only the offending connection (with a logged reason), and
//!   [`Server::shutdown`] lets requests in flight finish before it returns.
//!
//! The layer is generic over the request and response types ([`WireMessage`]); the validator
//! protocol plugs in by choosing those types and a [`Handler`] that forwards to a validator.

pub mod client;
pub mod codec;
pub mod config;
pub mod error;
pub mod frame;
pub mod handler;
mod multiplexer;
pub mod server;
mod session;
mod stall;
mod writer;

pub use client::Client;
pub use codec::FrameCodec;
pub use config::{
    ClientConfig, ServerConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FRAME_READ_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_POOL_SIZE, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SHUTDOWN_GRACE, DEFAULT_WRITE_TIMEOUT,
};
pub use error::TransportError;
pub use frame::{
    Envelope, WireMessage, DEFAULT_MAX_FRAME_LENGTH, LENGTH_PREFIX_LEN, MAX_FRAME_LENGTH_LIMIT,
};
pub use handler::Handler;
pub use server::{Server, ShutdownOutcome};
