//! The server side of the validator protocol: [`ValidatorHandler`] answers each request
//! through a node, and opens subscriptions within the connection's caps; [`serve_validator`]
//! serves a node.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use quorum_core::protocol::{dispatch, dispatch_stream, Request, Response};
use quorum_core::{
    ChainId, Limits, NodeError, SubscriptionChange, SubscriptionId, SubscriptionLimit,
    TransportErrorKind, ValidatorNode,
};
use tokio::net::ToSocketAddrs;
use tracing::{debug, warn};

use super::ENVELOPE_OVERHEAD;
use crate::config::ServerConfig;
use crate::error::TransportError;
use crate::server::handler::{Answer, Handler};
use crate::server::streams::{StreamCap, Streams};
use crate::server::Server;

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
    /// aside before the node answers (see [`Handler::response_bound`]): the protocol's
    /// [`Request::response_bound`], never more than a frame.
    pub fn response_bound(&self, request: &Request) -> usize {
        request
            .response_bound(&self.limits)
            .min(self.max_frame_length.saturating_add(ENVELOPE_OVERHEAD))
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
/// [`TcpValidatorNode`](super::TcpValidatorNode) clients until the server is shut down or dropped. Must be called within a
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
/// Errors: an invalid configuration ([`TransportError::is_invalid_config`]) if `config` is out of range, [`TransportError::Io`]
/// if the address cannot be bound.
pub async fn serve_validator(
    node: Arc<dyn ValidatorNode>,
    address: impl ToSocketAddrs,
    config: ServerConfig,
) -> Result<Server, TransportError> {
    Server::bind(address, config, ValidatorHandler::new(node)).await
}
