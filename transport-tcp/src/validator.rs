//! A validator over TCP: [`TcpValidatorNode`], a client that is a
//! [`ValidatorNode`], and [`serve_validator`] / [`ValidatorHandler`], which serve any
//! [`ValidatorNode`] (normally a Worker) to such clients.
//!
//! The protocol is [`Request`] / [`Response`] over the generic [`Client`] and [`Server`]. A
//! node's own refusals travel back as the [`NodeError`] it returned; failures on the way are
//! mapped to [`NodeError::Transport`], [`NodeError::Timeout`] or
//! [`NodeError::MalformedResponse`] (the table is on the `From<TransportError> for NodeError`
//! implementation, listed with [`TransportError`]'s trait implementations).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use async_trait::async_trait;
use futures::StreamExt;
use quorum_core::{
    ChainId, Limits, NodeError, Subscription, SubscriptionChange, SubscriptionId,
    SubscriptionLimit, TransportErrorKind, ValidatorNode,
};
use tokio::net::ToSocketAddrs;
use tracing::{debug, warn};

use crate::client::Client;
use crate::config::{ClientConfig, ServerConfig};
use crate::error::TransportError;
use crate::handler::{Answer, Handler};
use crate::multiplexer::Connection;
use crate::server::Server;
use crate::streams::{StreamCap, Streams};
use quorum_core::protocol::{dispatch, dispatch_stream, Carrier, Request, RequestKind, Response};

/// Bytes an [`Envelope`](crate::Envelope) adds to its body: the BCS `u64` request id.
const ENVELOPE_OVERHEAD: usize = 8;

/// Bound on the bytes of an ordinary response (chain information without pending values, a
/// vote, an id, an error), in bytes: 64 KiB. A chain's information carries its description,
/// which a block of at most `Limits::max_block_bytes` made; one larger than this is still
/// sent, charged as it is built.
const ORDINARY_RESPONSE_BYTES: usize = 64 << 10;
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
/// | `InvalidConfig` (only when a client is built, never per request) | `Transport(Unavailable)` |
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
            TransportError::InvalidConfig(_) => {
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
/// subscribes again). Dropping its stream stops delivery here; the server closes it with
/// [`ValidatorNode::unsubscribe`] or when the connection ends.
#[derive(Clone)]
pub struct TcpValidatorNode {
    client: Client<Request, Response>,
    /// The connection each open subscription is on.
    subscriptions: Arc<Mutex<HashMap<SubscriptionId, Pin>>>,
}

impl TcpValidatorNode {
    /// A node at `address` (`"host:port"`); connects on the first request.
    ///
    /// Fails only if `config` is out of range ([`TransportError::InvalidConfig`]).
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
        let events =
            futures::stream::unfold((pushed, connection), move |(mut pushed, connection)| {
                let address = address.clone();
                async move {
                    loop {
                        match pushed.recv().await? {
                            Response::Notification(envelope) => {
                                return Some((envelope, (pushed, connection)))
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

/// The server side: answers each [`Request`] by calling the node's method and wrapping its
/// result in the matching [`Response`] variant.
///
/// An answer too large for a frame (larger than the server's
/// [`ServerConfig::max_frame_length`], which the [`Server`] hands to the handler through
/// [`Handler::configure`] before serving; e.g. a download of many large certificates) is
/// replaced by `Err(`[`NodeError::Transport`]`(`[`TransportErrorKind::FrameTooLarge`]`))` in
/// the same variant, so the client learns at once why instead of waiting for its timeout.
#[derive(Clone)]
pub struct ValidatorHandler {
    node: Arc<dyn ValidatorNode>,
    max_frame_length: usize,
    /// The protocol's limits, from which each response's bound is derived.
    limits: Limits,
}

impl ValidatorHandler {
    /// A handler that forwards to `node`. Served by a [`Server`], it takes the server's maximum
    /// frame length; until then (e.g. when calling [`Handler::handle`] directly) it assumes the
    /// frame of [`Limits::DEFAULT`] ([`Limits::max_frame_length`]).
    pub fn new(node: Arc<dyn ValidatorNode>) -> Self {
        ValidatorHandler::with_limits(node, &Limits::DEFAULT)
    }

    /// A handler that forwards to `node`, assuming the largest frame of `limits`
    /// ([`Limits::max_frame_length`]). A [`Server`] replaces it with its own
    /// [`ServerConfig::max_frame_length`] (built with [`ServerConfig::from_limits`] from the
    /// same limits) when it starts serving the handler, so this matters only for a handler
    /// used outside a server.
    pub fn with_limits(node: Arc<dyn ValidatorNode>, limits: &Limits) -> Self {
        ValidatorHandler {
            node,
            max_frame_length: limits.max_frame_length(),
            limits: *limits,
        }
    }

    /// The most bytes the response to `request` takes, from the limits: what the server sets
    /// aside before the node answers (see [`Handler::response_bound`]). Responses that are
    /// chain information with no pending values, votes or ids take at most an ordinary
    /// response (64 KiB) plus what the query asks for; downloads their
    /// byte budget plus one largest certificate (a download always gives at least one).
    pub fn response_bound(&self, request: &Request) -> usize {
        let limits = &self.limits;
        // A certificate: its block, an outcome no larger (its events are the block's), and
        // the signatures of a largest committee, within an ordinary response.
        let certificate = limits
            .max_block_bytes
            .saturating_mul(2)
            .saturating_add(ORDINARY_RESPONSE_BYTES);
        let bound = match request {
            Request::ChainInfoQuery(query) => {
                let hashes = usize::try_from(limits.max_certificate_hashes_per_query)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(32);
                let log = limits
                    .max_received_log_entries_per_query
                    .saturating_mul(quorum_core::ReceivedEntry::ENCODED_BYTES);
                // A proposal and a locking block, each a block with a little more.
                let values = if query.request_manager_values {
                    certificate.saturating_mul(2)
                } else {
                    0
                };
                ORDINARY_RESPONSE_BYTES
                    .saturating_add(hashes)
                    .saturating_add(log)
                    .saturating_add(values)
            }
            Request::DownloadBlob(_) => limits
                .max_blob_bytes
                .saturating_add(ORDINARY_RESPONSE_BYTES),
            Request::MissingBlobIds(_) => limits
                .max_certificates_per_batch
                .saturating_mul(33)
                .saturating_add(ORDINARY_RESPONSE_BYTES),
            Request::DownloadCertificate(_) => certificate,
            Request::DownloadCertificatesByHeights { .. } => {
                limits.max_download_bytes.saturating_add(certificate)
            }
            _ => ORDINARY_RESPONSE_BYTES,
        };
        bound.min(self.max_frame_length.saturating_add(ENVELOPE_OVERHEAD))
    }

    /// The node served.
    pub fn node(&self) -> &Arc<dyn ValidatorNode> {
        &self.node
    }

    /// Calls the node's method for `request` and wraps its answer (without the size check):
    /// [`quorum_core::protocol::dispatch`].
    pub async fn dispatch(&self, request: Request) -> Response {
        dispatch(&*self.node, request).await
    }

    /// Replaces an answer that cannot be framed by the reason, in the same variant.
    fn fit(&self, request: &'static str, response: Response) -> Response {
        let reason = match bcs::serialized_size(&response) {
            Ok(length) if length.saturating_add(ENVELOPE_OVERHEAD) <= self.max_frame_length => {
                return response
            }
            Ok(length) => {
                warn!(
                    request,
                    length,
                    max = self.max_frame_length,
                    "answer exceeds the maximum frame length; answering FrameTooLarge"
                );
                TransportErrorKind::FrameTooLarge
            }
            Err(error) => {
                warn!(request, %error, "answer cannot be encoded; answering a codec error");
                TransportErrorKind::Codec
            }
        };
        response.with_error(NodeError::Transport(reason))
    }
}

impl fmt::Debug for ValidatorHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorHandler")
            .field("max_frame_length", &self.max_frame_length)
            .finish_non_exhaustive()
    }
}

impl ValidatorHandler {
    /// Counts and times an answer, and fits it in a frame.
    fn finish(
        &self,
        kind: &'static str,
        started: std::time::Instant,
        response: Response,
    ) -> Response {
        let outcome = match response.error() {
            Some(error) => {
                debug!(request = kind, %error, "node refused the request");
                "refused"
            }
            None => "ok",
        };
        metrics::counter!("quorum_requests_total", "method" => kind, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("quorum_handler_seconds", "method" => kind)
            .record(started.elapsed().as_secs_f64());
        self.fit(kind, response)
    }

    /// Opens a subscription within the connection's caps; its notifications follow the
    /// answer as [`Response::Notification`]s.
    async fn subscribe(&self, chains: Vec<ChainId>, streams: &Arc<Streams>) -> Answer<Response> {
        let distinct = chains.iter().collect::<HashSet<_>>().len();
        let reservation = match streams.reserve(distinct) {
            Ok(reservation) => reservation,
            Err(cap) => {
                return Answer {
                    response: Response::Subscribe(Err(refused(cap))),
                    stream: None,
                }
            }
        };
        let (response, events) = dispatch_stream(&*self.node, Request::Subscribe(chains)).await;
        match (&response, events) {
            (Response::Subscribe(Ok(id)), Some(events)) => {
                reservation.open(id.0);
                Answer {
                    response,
                    stream: Some(events.map(Response::Notification).boxed()),
                }
            }
            _ => Answer {
                response,
                stream: None,
            },
        }
    }

    /// Changes a subscription of this connection, its growth within the caps first.
    async fn change(
        &self,
        id: SubscriptionId,
        change: SubscriptionChange,
        streams: &Streams,
    ) -> Response {
        let Some(current) = streams.items(id.0) else {
            return Response::ChangeSubscription(Err(NodeError::UnknownSubscription(id)));
        };
        let added = change.add.iter().collect::<HashSet<_>>().len();
        if let Some(Err(cap)) = streams.resize(id.0, current.saturating_add(added)) {
            return Response::ChangeSubscription(Err(refused(cap)));
        }
        let answer = self.node.change_subscription(id, change).await;
        let now = match &answer {
            Ok(chains) => usize::try_from(*chains).unwrap_or(usize::MAX),
            Err(_) => current,
        };
        streams.resize(id.0, now);
        Response::ChangeSubscription(answer)
    }

    /// Closes a subscription of this connection.
    async fn unsubscribe(&self, id: SubscriptionId, streams: &Streams) -> Response {
        if !streams.owns(id.0) {
            return Response::Unsubscribe(Err(NodeError::UnknownSubscription(id)));
        }
        let answer = self.node.unsubscribe(id).await;
        streams.close(id.0);
        Response::Unsubscribe(answer)
    }
}

/// A refusal by a cap of the connection or its address, counted.
fn refused(cap: StreamCap) -> NodeError {
    let limit = match cap {
        StreamCap::StreamsPerConnection => SubscriptionLimit::SubscriptionsPerConnection,
        StreamCap::StreamsPerAddress => SubscriptionLimit::SubscriptionsPerAddress,
        StreamCap::ItemsPerConnection => SubscriptionLimit::ChainsPerConnection,
        StreamCap::ItemsPerAddress => SubscriptionLimit::ChainsPerAddress,
    };
    metrics::counter!("quorum_subscriptions_refused_total", "cap" => limit.name()).increment(1);
    NodeError::SubscriptionLimit(limit)
}

impl Handler<Request, Response> for ValidatorHandler {
    async fn handle(&self, request: Request) -> Response {
        let kind = request.kind().name();
        let started = std::time::Instant::now();
        let response = self.dispatch(request).await;
        self.finish(kind, started, response)
    }

    async fn handle_stream(&self, request: Request, streams: &Arc<Streams>) -> Answer<Response> {
        let kind = request.kind().name();
        let started = std::time::Instant::now();
        let answer = match request {
            Request::Subscribe(chains) => self.subscribe(chains, streams).await,
            Request::ChangeSubscription { id, change } => Answer {
                response: self.change(id, change, streams).await,
                stream: None,
            },
            Request::Unsubscribe(id) => Answer {
                response: self.unsubscribe(id, streams).await,
                stream: None,
            },
            other => Answer {
                response: self.dispatch(other).await,
                stream: None,
            },
        };
        Answer {
            response: self.finish(kind, started, answer.response),
            stream: answer.stream,
        }
    }

    fn configure(&mut self, config: &ServerConfig) {
        self.max_frame_length = config.max_frame_length;
    }

    fn response_bound(&self, request: &Request) -> Option<usize> {
        Some(ValidatorHandler::response_bound(self, request))
    }
}

/// Binds `address` (port 0 picks a free port, see [`Server::local_addr`]) and serves `node` to
/// [`TcpValidatorNode`] clients until the server is shut down or dropped. Must be called within a
/// tokio runtime.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use quorum_core::ValidatorNode;
/// # use quorum_transport_tcp::TransportError;
/// # async fn example(worker: Arc<dyn ValidatorNode>) -> Result<(), TransportError> {
/// use quorum_transport_tcp::{serve_validator, ServerConfig};
///
/// let server = serve_validator(worker, "0.0.0.0:7000", ServerConfig::default()).await?;
/// println!("serving on {}", server.local_addr());
/// // ... later:
/// server.shutdown().await;
/// # Ok(()) }
/// ```
///
/// Errors: [`TransportError::InvalidConfig`] if `config` is out of range, [`TransportError::Io`]
/// if the address cannot be bound.
pub async fn serve_validator(
    node: Arc<dyn ValidatorNode>,
    address: impl ToSocketAddrs,
    config: ServerConfig,
) -> Result<Server, TransportError> {
    Server::bind(address, config, ValidatorHandler::new(node)).await
}

#[cfg(test)]
mod tests {
    use std::io;
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
                TransportError::InvalidConfig(crate::ConfigError::ZeroDuration {
                    field: "write_timeout",
                }),
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
            Err(TransportError::InvalidConfig(_))
        ));
    }
}
