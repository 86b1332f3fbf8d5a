//! What the server calls for every request.

use std::future::Future;
use std::sync::Arc;

use futures::stream::BoxStream;

use crate::config::ServerConfig;
use crate::server::streams::Streams;

/// A handler's answer to a request that may open a stream ([`Handler::handle_stream`]): the
/// response, and the responses that follow it on the same request id until the stream ends
/// or the connection does.
pub struct Answer<Resp> {
    /// The first response.
    pub response: Resp,
    /// What follows, if the request opened a stream.
    pub stream: Option<BoxStream<'static, Resp>>,
}

/// Answers one request; the server calls it concurrently for every request it receives.
///
/// Any `Fn(Req) -> impl Future<Output = Resp>` closure is a handler. To serve a richer object
/// (for instance a validator behind a `ValidatorNode` trait object), wrap it in a type that maps
/// each request variant to a method call and the result to a response variant:
///
/// ```
/// use quorum_transport_tcp::Handler;
///
/// struct Doubler;
///
/// impl Handler<u64, u64> for Doubler {
///     async fn handle(&self, request: u64) -> u64 {
///         request.wrapping_mul(2)
///     }
/// }
/// ```
///
/// Errors the handler wants the client to see belong in `Resp` (e.g. `Resp = Result<T, E>`). A
/// handler that panics loses only its own request: the panic is logged and the client's request
/// times out.
pub trait Handler<Req, Resp>: Send + Sync + 'static {
    /// Produces the response to `request`.
    fn handle(&self, request: Req) -> impl Future<Output = Resp> + Send;

    /// Called once by the [`Server`](crate::Server) before it serves, with the options it
    /// serves under, so that the handler takes its limits from there instead of from a copy
    /// kept in step by hand (e.g. [`ValidatorHandler`](crate::ValidatorHandler) takes the
    /// maximum frame length, to answer "too large" instead of an answer that cannot be sent).
    /// The default does nothing.
    fn configure(&mut self, config: &ServerConfig) {
        let _ = config;
    }

    /// The most bytes the encoded response to `request` can take, if the handler knows: the
    /// server sets that much room aside, on every budget up to its own, before it runs the
    /// handler (waiting for it), so that responses are charged before they are built. A
    /// response larger than that is still sent, charged when it is built. The default,
    /// `None`, sets [`ServerConfig::response_reserve`] aside.
    fn response_bound(&self, request: &Req) -> Option<usize> {
        let _ = request;
        None
    }

    /// Answers `request` like [`Handler::handle`], but may open a stream: the server sends
    /// [`Answer::response`], then each item of [`Answer::stream`] as it comes, on the same
    /// request id, charged to the connection's budget (a peer that does not read stops the
    /// stream being read). `streams` is what the connection's streams hold, against the caps
    /// of the connection and its address; the handler reserves room there before opening a
    /// stream. The default answers with [`Handler::handle`] and opens none.
    fn handle_stream(
        &self,
        request: Req,
        streams: &Arc<Streams>,
    ) -> impl Future<Output = Answer<Resp>> + Send
    where
        Req: Send,
    {
        let _ = streams;
        let response = self.handle(request);
        async move {
            Answer {
                response: response.await,
                stream: None,
            }
        }
    }
}

impl<Req, Resp, F, Fut> Handler<Req, Resp> for F
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send,
{
    fn handle(&self, request: Req) -> impl Future<Output = Resp> + Send {
        self(request)
    }
}
