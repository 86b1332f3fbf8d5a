//! Quorum over QUIC and TLS 1.3 (DESIGN §6.2): the validator protocol
//! ([`Request`](quorum_core::protocol::Request) / [`Response`](quorum_core::protocol::Response))
//! with one bidirectional stream per request, so that no request waits behind another, and
//! validators known by their network key.
//!
//! * **Identity.** A validator's QUIC server proves in every handshake that it holds its
//!   [`NetworkKey`], an ed25519 key apart from its signing key, presented as a raw public key
//!   (RFC 7250). Its committee entry lists the public half ([`NetworkPublicKey`](quorum_core::NetworkPublicKey)); a
//!   [`QuicValidatorNode`] accepts exactly that key, with no certificate authority and no
//!   trust on first use, and refuses any other peer before sending a request
//!   ([`QuicError::WrongIdentity`]). Clients stay anonymous. TLS 1.3 only, no 0-RTT, and the
//!   ALPN `quorum/1` names the protocol and its version.
//! * **Messages.** Each is a big-endian `u32` length and its BCS encoding. A request stream
//!   carries one request and its answer; a subscription's stream carries its first answer and
//!   then its notifications, until either side closes it.
//! * **Bounds** (DESIGN §6.1, in QUIC's terms; each a [`ServerConfig`] field): a Retry proves
//!   every peer's address before anything is counted for it; then connections in all and per
//!   address, handshakes per second, concurrent streams per connection, QUIC's flow control
//!   windows per stream and per connection (set, never left at quinn's defaults), bytes held
//!   per connection and in all (charged as they arrive, with room for each answer set aside
//!   before the node builds it), handlers in all, and deadlines for the first request, each
//!   request, each answer and idleness.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn example(worker: Arc<dyn quorum_core::ValidatorNode>) -> Result<(), quorum_transport_quic::QuicError> {
//! use quorum_core::{ChainInfoQuery, ValidatorNode};
//! use quorum_transport_quic::{serve_validator, ClientConfig, NetworkKey, QuicValidatorNode, ServerConfig};
//!
//! let key = NetworkKey::from_bytes([7; 32]);
//! let server = serve_validator(worker, "127.0.0.1:0".parse().unwrap(), &key, ServerConfig::default()).await?;
//! let remote = QuicValidatorNode::new(server.local_addr().to_string(), key.public(), ClientConfig::default())?;
//! # let chain_id = quorum_core::ChainId(quorum_core::CryptoHash([0; 32]));
//! let info = remote.handle_chain_info_query(ChainInfoQuery::new(chain_id)).await;
//! # drop(info);
//! server.shutdown(std::time::Duration::from_secs(1)).await;
//! # Ok(()) }
//! ```

#![warn(unreachable_pub)]

mod budget;
mod client;
mod config;
mod error;
mod identity;
mod server;
mod wire;

pub use client::QuicValidatorNode;
pub use config::{ClientConfig, ServerConfig};
pub use error::{Presented, QuicError};
pub use identity::{tls_client_config, tls_server_config, NetworkKey};
pub use server::{describe_metrics, serve_validator, serve_validator_sharing, QuicServer};
