//! Quorum over TCP: length-delimited BCS frames, request multiplexing, a pooled client and a
//! server with graceful shutdown.
//!
//! * Every message is one frame: a big-endian `u32` length, then the BCS encoding of an
//!   [`Envelope`] `{ request_id, body }` ([`FrameCodec`]). Bodies longer than the
//!   configured maximum are refused; by default it is the largest frame the protocol's
//!   [`Limits`](quorum_core::Limits) need
//!   ([`max_frame_length`](quorum_core::Limits::max_frame_length), 16 MiB).
//! * A [`Client`] keeps a small pool of connections to one address; each carries many requests
//!   at once, matched to their responses by request id, with a bound on requests in flight and a
//!   timeout per request. A broken connection fails its requests with the reason and is replaced
//!   on the next request.
//! * A [`Server`] answers each request through a [`Handler`], concurrently; malformed, oversize,
//!   truncated or stalled input closes only the offending connection (with a logged reason), and
//!   [`Server::shutdown`] lets requests in flight finish before it returns.
//! * A request may open a stream ([`Handler::handle_stream`]): the server pushes its later
//!   answers on the same request id, each charged to the connection's budget; streams and
//!   what they follow are capped per connection and per address ([`Streams`]). Notifications
//!   of the validator protocol (DESIGN §4.7.1) travel this way.
//! * Hostile peers cannot take the server down (DESIGN §6.1): connections (in all and per IP),
//!   time (first frame, each frame, idleness), memory (per connection, requests and responses
//!   together, and across connections for large frames), handlers and decoders are each bounded
//!   by a documented [`ServerConfig`] field; [`Server::stats`] shows what is held
//!   ([`ServerStats`]).
//!
//! The layer is generic over the request and response types ([`WireMessage`]); the validator
//! protocol plugs in by choosing those types and a [`Handler`] that forwards to a validator:
//!
//! * [`Request`](quorum_core::protocol::Request) (one variant per `ValidatorNode` method) and
//!   [`Response`](quorum_core::protocol::Response) (each answer as
//!   `Result<_, NodeError>`, so a node's refusals cross the wire intact), defined once in
//!   [`quorum_core::protocol`] with the one dispatch onto a node.
//! * [`TcpValidatorNode`], a client that is a `ValidatorNode`, and
//!   [`serve_validator`] / [`ValidatorHandler`], which serve any `ValidatorNode` (e.g. a Worker).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use quorum_transport_tcp::TransportError;
//! # async fn example(worker: Arc<dyn quorum_core::ValidatorNode>) -> Result<(), TransportError> {
//! use quorum_core::{ChainInfoQuery, ValidatorNode};
//! use quorum_transport_tcp::{serve_validator, ClientConfig, ServerConfig, TcpValidatorNode};
//!
//! // Validator side: serve the node.
//! let server = serve_validator(worker, "127.0.0.1:0", ServerConfig::default()).await?;
//! // Client side: the remote node is a `ValidatorNode` like any other.
//! let remote = TcpValidatorNode::new(server.local_addr().to_string(), ClientConfig::default())?;
//! # let chain_id = quorum_core::ChainId(quorum_core::CryptoHash([0; 32]));
//! let info = remote.handle_chain_info_query(ChainInfoQuery::new(chain_id)).await;
//! # drop(info);
//! server.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(unreachable_pub)]

mod client;
mod config;
mod error;
mod metrics;
#[cfg(test)]
mod protocol_on_the_wire;
mod server;
mod validator;
mod wire;

pub use client::Client;
pub use config::{ClientConfig, ServerConfig};
pub use error::TransportError;
pub use metrics::describe_metrics;
pub use server::handler::{Answer, Handler};
pub use server::server_stats::ServerStats;
pub use server::streams::{Reservation, StreamCap, Streams};
pub use server::{Server, ShutdownOutcome};
pub use validator::{serve_validator, TcpValidatorNode, ValidatorHandler};
pub use wire::codec::FrameCodec;
pub use wire::frame::{Envelope, WireMessage, LENGTH_PREFIX_LEN};
