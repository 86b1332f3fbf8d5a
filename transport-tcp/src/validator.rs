//! A validator over TCP: [`TcpValidatorNode`], a client that is a
//! [`ValidatorNode`], and [`serve_validator`] / [`ValidatorHandler`], which serve any
//! [`ValidatorNode`] (normally a Worker) to such clients.
//!
//! The protocol is [`Request`] / [`Response`] over the generic [`Client`] and [`Server`]. A
//! node's own refusals travel back as the [`NodeError`] it returned; failures on the way are
//! mapped to [`NodeError::Transport`], [`NodeError::Timeout`] or
//! [`NodeError::MalformedResponse`] (the table is on the `From<TransportError> for NodeError`
//! implementation, listed with [`TransportError`]'s trait implementations).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use async_trait::async_trait;
#[cfg(doc)]
use quorum_core::ValidatorNode;
use quorum_core::{ChainId, Limits, NodeError, Subscription, SubscriptionId, TransportErrorKind};
use tracing::{debug, warn};

use crate::client::multiplexer::Connection;
use crate::client::Client;
use crate::config::ClientConfig;
use crate::error::TransportError;
#[cfg(doc)]
use crate::server::Server;
use quorum_core::protocol::{Carrier, Request, RequestKind, Response};

/// Bytes an [`Envelope`](crate::Envelope) adds to its body: the BCS `u64` request id.
const ENVELOPE_OVERHEAD: usize = 8;

// The frame the limits derive counts the envelope in their message overhead.
const _: () = assert!(ENVELOPE_OVERHEAD <= Limits::MESSAGE_OVERHEAD);

/// How a failure to reach the node shows to the code that asked it.
///
/// | [`TransportError`] | [`NodeError`] |
/// |---|---|
/// | `Timeout`, `Stalled` (the answer did not arrive in time) | `Timeout` |
/// | `Connect`, `Io` | `Transport(Io)` |
/// | `ConnectionClosed`, `Truncated` | `Transport(ConnectionClosed)` |
/// | `FrameTooLarge` | `Transport(FrameTooLarge)` |
/// | `Decode`, `Encode` | `Transport(Codec)` |
/// | `Config*` (only when a client is built, never per request) | `Transport(Unavailable)` |
impl From<TransportError> for NodeError {
    fn from(error: TransportError) -> Self {
        match error {
            TransportError::Timeout(_) | TransportError::Stalled { .. } => NodeError::Timeout,
            TransportError::Connect { .. } | TransportError::Io { .. } => {
                NodeError::Transport(TransportErrorKind::Io)
            }
            TransportError::ConnectionClosed | TransportError::Truncated => {
                NodeError::Transport(TransportErrorKind::ConnectionClosed)
            }
            TransportError::FrameTooLarge { .. } => {
                NodeError::Transport(TransportErrorKind::FrameTooLarge)
            }
            TransportError::Decode(_) | TransportError::Encode(_) => {
                NodeError::Transport(TransportErrorKind::Codec)
            }
            TransportError::ConfigTooSmall { .. }
            | TransportError::ConfigTooLarge { .. }
            | TransportError::ConfigZeroDuration { .. } => {
                NodeError::Transport(TransportErrorKind::Unavailable)
            }
        }
    }
}

/// A remote validator reached over TCP: every [`ValidatorNode`] method is one request on a
/// pooled, multiplexed [`Client`] (it is a [`Carrier`] of the protocol, and so a
/// `ValidatorNode`).
///
/// Cloning is cheap and shares the connections. Answers come back as the node gave them;
/// failures on the way become [`NodeError::Timeout`] or [`NodeError::Transport`] (see the
/// `From<TransportError> for NodeError` implementation). An answer of another kind than the
/// request asked for is [`NodeError::MalformedResponse`]. Nothing is retried here: retry
/// policies belong to the caller.
///
/// A subscription ([`ValidatorNode::subscribe`]) stays on the connection that opened it, and
/// so do the requests that change or close it; it ends when that connection does (the caller
/// subscribes again). Dropping its stream without [`ValidatorNode::unsubscribe`] sends the
/// `unsubscribe` from a task of its own (within a tokio runtime); the server also closes it
/// when the connection ends.
#[derive(Clone)]
pub struct TcpValidatorNode {
    client: Client<Request, Response>,
    /// The connection each open subscription is on.
    subscriptions: Arc<Mutex<HashMap<SubscriptionId, Pin>>>,
}

impl TcpValidatorNode {
    /// A node at `address` (`"host:port"`); connects on the first request.
    ///
    /// Fails only if `config` is out of range ([`TransportError::is_invalid_config`]).
    pub fn new(address: impl Into<String>, config: ClientConfig) -> Result<Self, TransportError> {
        Ok(TcpValidatorNode::from_client(Client::new(address, config)?))
    }

    /// A node reached through an existing client (sharing its connections).
    pub fn from_client(client: Client<Request, Response>) -> Self {
        TcpValidatorNode {
            client,
            subscriptions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn pins(&self) -> std::sync::MutexGuard<'_, HashMap<SubscriptionId, Pin>> {
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Carries a request about subscription `id` on the connection that carries it; one
    /// this client does not hold open is answered `UnknownSubscription` here.
    async fn exchange_on_subscription(
        &self,
        id: SubscriptionId,
        request: Request,
    ) -> Result<Response, NodeError> {
        let closing = matches!(request, Request::Unsubscribe(_));
        let pinned = {
            let mut pins = self.pins();
            let pinned = pins
                .get(&id)
                .and_then(|pin| Some((pin.connection.upgrade()?, pin.request_id)));
            if closing || pinned.is_none() {
                pins.remove(&id);
            }
            pinned
        };
        let Some((connection, request_id)) = pinned.filter(|(c, _)| c.is_open()) else {
            let refusal: Result<(), NodeError> = Err(NodeError::UnknownSubscription(id));
            return Ok(if closing {
                Response::Unsubscribe(refusal)
            } else {
                Response::ChangeSubscription(refusal.map(|()| 0))
            });
        };
        let answer = self
            .client
            .request_on(&connection, request)
            .await
            .map_err(NodeError::from);
        if closing {
            // Closed or not at the server, the stream ends here.
            connection.end_stream(request_id);
        }
        answer
    }

    /// The underlying client.
    pub fn client(&self) -> &Client<Request, Response> {
        &self.client
    }

    /// The address this node is reached at.
    pub fn address(&self) -> &str {
        self.client.address()
    }

    /// Sends `request`; transport failures become [`NodeError`]s.
    async fn exchange(&self, request: Request) -> Result<Response, NodeError> {
        let kind = request.kind().name();
        self.client.request(request).await.map_err(|error| {
            debug!(address = self.address(), request = kind, %error, "request failed");
            NodeError::from(error)
        })
    }

    /// Reports an answer of the wrong kind.
    fn malformed(&self, expected: RequestKind, found: &Response) -> NodeError {
        warn!(
            address = self.address(),
            expected = expected.name(),
            found = found.kind().name(),
            "validator answered with the wrong kind of response"
        );
        NodeError::MalformedResponse
    }
}

/// Closes a subscription at the server when its stream is dropped without
/// [`ValidatorNode::unsubscribe`] (in a task of its own, if a runtime is there to run it), and
/// keeps its connection open while the stream lives.
struct Closing {
    node: TcpValidatorNode,
    id: SubscriptionId,
    _connection: Arc<Connection<Response>>,
}

impl Drop for Closing {
    fn drop(&mut self) {
        // Still pinned: nobody unsubscribed it.
        if !self.node.pins().contains_key(&self.id) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (node, id) = (self.node.clone(), self.id);
        runtime.spawn(async move {
            if let Err(error) = node.carry(Request::Unsubscribe(id)).await {
                debug!(address = node.address(), %error, "closing a dropped subscription failed");
            }
        });
    }
}

/// Where an open subscription is carried.
struct Pin {
    connection: Weak<Connection<Response>>,
    /// The request that opened it.
    request_id: u64,
}

impl fmt::Debug for TcpValidatorNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpValidatorNode")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Carrier for TcpValidatorNode {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        match &request {
            Request::ChangeSubscription { id, .. } | Request::Unsubscribe(id) => {
                let id = *id;
                self.exchange_on_subscription(id, request).await
            }
            _ => self.exchange(request).await,
        }
    }

    fn malformed(&self, expected: RequestKind, found: &Response) -> NodeError {
        TcpValidatorNode::malformed(self, expected, found)
    }

    async fn carry_subscription(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        let opened = self
            .client
            .open_stream(Request::Subscribe(chains))
            .await
            .map_err(|error| {
                debug!(address = self.address(), %error, "subscription failed");
                NodeError::from(error)
            })?;
        let (pushed, connection) = (opened.rest, opened.connection);
        let id = match opened.first {
            Response::Subscribe(answer) => answer?,
            other => return Err(self.malformed(RequestKind::Subscribe, &other)),
        };
        {
            let mut pins = self.pins();
            pins.retain(|_, pin| pin.connection.strong_count() > 0);
            let pin = Pin {
                connection: Arc::downgrade(&connection),
                request_id: opened.request_id,
            };
            pins.insert(id, pin);
        }
        let address = self.address().to_owned();
        let guard = Closing {
            node: self.clone(),
            id,
            _connection: connection,
        };
        let events = futures::stream::unfold((pushed, guard), move |(mut pushed, guard)| {
            let address = address.clone();
            async move {
                loop {
                    match pushed.recv().await? {
                        Response::Notification(envelope) => {
                            return Some((envelope, (pushed, guard)))
                        }
                        other => warn!(
                            %address,
                            found = other.kind().name(),
                            "validator pushed something else than a notification"
                        ),
                    }
                }
            }
        });
        Ok(Subscription {
            id,
            events: Box::pin(events),
        })
    }
}

mod serve;

pub use serve::{serve_validator, ValidatorHandler};

#[cfg(test)]
mod tests {
    use std::io;

    use crate::config::ServerConfig;
    use std::time::Duration;

    use super::*;
    use quorum_core::Blob;

    #[test]
    fn transport_errors_map_to_node_errors() {
        let io = TransportErrorKind::Io;
        let cases = [
            (
                TransportError::Timeout(Duration::from_secs(1)),
                NodeError::Timeout,
            ),
            (
                TransportError::Stalled {
                    timeout: Duration::from_secs(1),
                },
                NodeError::Timeout,
            ),
            (
                TransportError::Connect {
                    address: "x".into(),
                    message: "refused".into(),
                },
                NodeError::Transport(io),
            ),
            (
                TransportError::from(io::Error::from(io::ErrorKind::ConnectionReset)),
                NodeError::Transport(io),
            ),
            (
                TransportError::ConnectionClosed,
                NodeError::Transport(TransportErrorKind::ConnectionClosed),
            ),
            (
                TransportError::Truncated,
                NodeError::Transport(TransportErrorKind::ConnectionClosed),
            ),
            (
                TransportError::FrameTooLarge { length: 9, max: 8 },
                NodeError::Transport(TransportErrorKind::FrameTooLarge),
            ),
            (
                TransportError::Decode(bcs::Error::Eof),
                NodeError::Transport(TransportErrorKind::Codec),
            ),
            (
                TransportError::Encode(bcs::Error::Eof),
                NodeError::Transport(TransportErrorKind::Codec),
            ),
            (
                TransportError::ConfigZeroDuration {
                    field: "write_timeout",
                },
                NodeError::Transport(TransportErrorKind::Unavailable),
            ),
        ];
        for (transport, expected) in cases {
            assert_eq!(NodeError::from(transport.clone()), expected, "{transport}");
        }
    }

    #[test]
    fn envelope_overhead_is_the_request_id() {
        let response = Response::DownloadBlob(Ok(Blob::data(vec![3; 300])));
        let envelope = crate::Envelope {
            request_id: u64::MAX,
            body: response.clone(),
        };
        assert_eq!(
            bcs::serialized_size(&envelope).unwrap(),
            bcs::serialized_size(&response).unwrap() + ENVELOPE_OVERHEAD
        );
    }

    #[test]
    fn the_default_frame_is_the_limits_frame_and_carries_the_largest_blob_messages() {
        let limits = Limits::DEFAULT;
        let max = limits.max_frame_length();
        assert_eq!(ServerConfig::default().max_frame_length, max);
        assert_eq!(ClientConfig::default().max_frame_length, max);
        assert_eq!(ServerConfig::from_limits(&limits), ServerConfig::default());
        let blob = Blob::data(vec![1; limits.max_blob_bytes]);
        let chain_id = quorum_core::ChainId(quorum_core::CryptoHash([2; 32]));
        let requests = [
            Request::UploadBlob(blob.clone()),
            Request::PendingBlob {
                chain_id,
                blob: blob.clone(),
            },
        ];
        for body in requests {
            let envelope = crate::Envelope {
                request_id: u64::MAX,
                body,
            };
            let length = bcs::serialized_size(&envelope).unwrap();
            assert!(length <= limits.max_bounded_message_bytes() && length <= max);
        }
        let response = Response::DownloadBlob(Ok(blob));
        let length = bcs::serialized_size(&response).unwrap() + ENVELOPE_OVERHEAD;
        assert!(length <= limits.max_bounded_message_bytes() && length <= max);
        // Larger limits, a larger frame: both configurations follow them.
        let larger = Limits {
            max_blob_bytes: 32 << 20,
            ..limits
        };
        assert_eq!(
            ServerConfig::from_limits(&larger).max_frame_length,
            larger.max_frame_length()
        );
        assert_eq!(
            ClientConfig::from_limits(&larger).max_frame_length,
            larger.max_frame_length()
        );
    }

    #[test]
    fn client_with_an_invalid_config_is_refused() {
        let config = ClientConfig {
            pool_size: 0,
            ..ClientConfig::default()
        };
        assert!(matches!(
            TcpValidatorNode::new("127.0.0.1:1", config),
            Err(error) if error.is_invalid_config()
        ));
    }
}
