//! [`QuicValidatorNode`]: a validator reached over QUIC, a [`Carrier`] of the protocol and so
//! a [`ValidatorNode`](quorum_core::ValidatorNode).

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::StreamExt;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use quorum_core::protocol::{Carrier, Request, RequestKind, Response};
use quorum_core::{ChainId, NetworkPublicKey, NodeError, Subscription};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::{debug, warn};

use crate::config::ClientConfig;
use crate::error::Presented;
use crate::error::QuicError;
use crate::identity::client_tls;
use crate::wire::{read_message, write_message};

/// The name the client gives in its handshake. Servers hold one identity and ignore it; the
/// server is known by its key, not its name.
const SERVER_NAME: &str = "quorum-validator";

/// A remote validator reached over QUIC: each [`ValidatorNode`](quorum_core::ValidatorNode)
/// method is one request on a stream of its own, over one connection that is made on the
/// first request and made again when it is lost.
///
/// The server must prove that it holds `network_key`, the key the validator's committee entry
/// lists; any other peer is refused before a request is sent
/// ([`QuicError::WrongIdentity`], which requests see as
/// `NodeError::Transport(Unavailable)`). Clients present no certificate.
///
/// A subscription keeps a stream of its own on the connection; it ends when the connection
/// does (the caller subscribes again). Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct QuicValidatorNode {
    inner: Arc<Inner>,
}

struct Inner {
    address: String,
    expected: NetworkPublicKey,
    config: ClientConfig,
    quic: quinn::ClientConfig,
    /// What the last handshake's server presented, when it was not `expected`.
    seen: Arc<Mutex<Option<Presented>>>,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    endpoint: Option<Endpoint>,
    connection: Option<Connection>,
}

impl QuicValidatorNode {
    /// A node at `address` (`host:port`, resolved when connecting) that must prove it holds
    /// `network_key`; connects on the first request. Fails only if `config` is out of range.
    pub fn new(
        address: impl Into<String>,
        network_key: NetworkPublicKey,
        config: ClientConfig,
    ) -> Result<Self, QuicError> {
        config.validate()?;
        let seen = Arc::new(Mutex::new(None));
        let tls = client_tls(network_key, seen.clone())?;
        let crypto = QuicClientConfig::try_from(tls).map_err(|_| QuicError::InvalidConfig {
            field: "tls",
            reason: "has no cipher suite QUIC can use",
        })?;
        let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
        quic.transport_config(config.transport()?);
        Ok(QuicValidatorNode {
            inner: Arc::new(Inner {
                address: address.into(),
                expected: network_key,
                config,
                quic,
                seen,
                state: tokio::sync::Mutex::new(State::default()),
            }),
        })
    }

    /// The address this node is reached at.
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// The network key the server must prove it holds.
    pub fn network_key(&self) -> NetworkPublicKey {
        self.inner.expected
    }

    /// The open connection, or a new one: the handshake must prove the expected key within
    /// `connect_timeout`.
    pub async fn connect(&self) -> Result<Connection, QuicError> {
        let inner = &*self.inner;
        let mut state = inner.state.lock().await;
        if let Some(connection) = &state.connection {
            if connection.close_reason().is_none() {
                return Ok(connection.clone());
            }
        }
        let address = resolve(&inner.address).await?;
        let endpoint = match &state.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => {
                let any: SocketAddr = match inner.config.local_address {
                    Some(ip) => SocketAddr::new(ip, 0),
                    None if address.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
                    None => SocketAddr::from(([0u16; 8], 0)),
                };
                let endpoint = Endpoint::client(any).map_err(|source| QuicError::Bind {
                    address: any,
                    source,
                })?;
                state.endpoint = Some(endpoint.clone());
                endpoint
            }
        };
        *inner.seen.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let connecting = endpoint
            .connect_with(inner.quic.clone(), address, SERVER_NAME)
            .map_err(|_| QuicError::InvalidConfig {
                field: "address",
                reason: "cannot be dialled over QUIC",
            })?;
        let connection = match timeout(inner.config.connect_timeout, connecting).await {
            Err(_) => return Err(QuicError::Timeout(inner.config.connect_timeout)),
            Ok(Err(source)) => {
                let presented = inner
                    .seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                return Err(match presented {
                    Some(presented) => {
                        warn!(
                            address = %inner.address,
                            expected = %inner.expected,
                            %presented,
                            "validator refused: it does not hold the network key its committee entry lists"
                        );
                        QuicError::WrongIdentity {
                            address,
                            expected: inner.expected,
                            presented,
                        }
                    }
                    None => QuicError::Handshake { address, source },
                });
            }
            Ok(Ok(connection)) => connection,
        };
        state.connection = Some(connection.clone());
        Ok(connection)
    }

    /// Closes the connection, if one is open: a server cannot see a client process end over
    /// UDP, and would count a connection left open against the client's address until its
    /// idle timeout. The close is sent by the endpoint's task, so the runtime should keep
    /// running a moment after (a few milliseconds). The next request connects again.
    pub async fn close(&self) {
        let mut state = self.inner.state.lock().await;
        if let Some(connection) = state.connection.take() {
            connection.close(quinn::VarInt::from_u32(0), b"done");
        }
    }

    /// Opens a stream and sends `request` on it.
    async fn send(&self, request: &Request) -> Result<(SendStream, RecvStream), QuicError> {
        let connection = self.connect().await?;
        let (mut send, recv) = connection.open_bi().await?;
        write_message(&mut send, request, self.inner.config.max_frame_length).await?;
        Ok((send, recv))
    }

    /// Reads the one answer of a stream.
    async fn receive(&self, recv: &mut RecvStream) -> Result<Response, QuicError> {
        let max = self.inner.config.max_frame_length;
        match read_message::<Response>(recv, max, None).await? {
            Some(received) => Ok(received.message),
            None => Err(QuicError::Truncated),
        }
    }

    /// One request and its answer, within `request_timeout`.
    async fn exchange(&self, request: Request) -> Result<Response, QuicError> {
        let deadline = self.inner.config.request_timeout;
        let exchange = async {
            let (mut send, mut recv) = self.send(&request).await?;
            let _ = send.finish();
            self.receive(&mut recv).await
        };
        timeout(deadline, exchange)
            .await
            .unwrap_or(Err(QuicError::Timeout(deadline)))
    }
}

/// The first address `address` (`host:port`) resolves to.
async fn resolve(address: &str) -> Result<SocketAddr, QuicError> {
    let mut found =
        tokio::net::lookup_host(address)
            .await
            .map_err(|source| QuicError::Resolve {
                address: address.to_owned(),
                source,
            })?;
    found.next().ok_or_else(|| QuicError::NoAddress {
        address: address.to_owned(),
    })
}

impl fmt::Debug for QuicValidatorNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicValidatorNode")
            .field("address", &self.inner.address)
            .field("network_key", &self.inner.expected)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Carrier for QuicValidatorNode {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        let kind = request.kind().name();
        self.exchange(request).await.map_err(|error| {
            debug!(address = %self.inner.address, request = kind, %error, "request failed");
            NodeError::from(error)
        })
    }

    fn malformed(&self, expected: RequestKind, found: &Response) -> NodeError {
        warn!(
            address = %self.inner.address,
            expected = expected.name(),
            found = found.kind().name(),
            "validator answered with the wrong kind of response"
        );
        NodeError::MalformedResponse
    }

    async fn carry_subscription(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        let deadline = self.inner.config.request_timeout;
        let opening = async {
            let (send, mut recv) = self.send(&Request::Subscribe(chains)).await?;
            let first = self.receive(&mut recv).await?;
            Ok::<_, QuicError>((send, recv, first))
        };
        let (send, recv, first) = timeout(deadline, opening)
            .await
            .unwrap_or(Err(QuicError::Timeout(deadline)))
            .map_err(NodeError::from)?;
        let id = match first {
            Response::Subscribe(answer) => answer?,
            other => return Err(self.malformed(RequestKind::Subscribe, &other)),
        };
        let (events, taken) = mpsc::channel(self.inner.config.notification_buffer);
        tokio::spawn(follow(
            send,
            recv,
            events,
            self.inner.config.max_frame_length,
        ));
        let events = futures::stream::unfold(taken, |mut taken| async move {
            taken.recv().await.map(|event| (event, taken))
        })
        .boxed();
        Ok(Subscription { id, events })
    }
}

/// Passes a subscription's notifications to its stream until either side ends: the server's
/// half closing, a message that is not a notification, the caller dropping its stream, or the
/// caller falling `notification_buffer` behind. Dropping `send` closes the client's half,
/// which ends the subscription at the server.
async fn follow(
    send: SendStream,
    mut recv: RecvStream,
    events: mpsc::Sender<quorum_core::NotificationEnvelope>,
    max: usize,
) {
    loop {
        let next = tokio::select! {
            next = read_message::<Response>(&mut recv, max, None) => next,
            () = events.closed() => break,
        };
        match next {
            Ok(Some(received)) => match received.message {
                Response::Notification(event) => {
                    if events.try_send(event).is_err() {
                        debug!("subscription ended: its notifications were not taken");
                        break;
                    }
                }
                other => {
                    warn!(
                        found = other.kind().name(),
                        "not a notification on a subscription"
                    );
                    break;
                }
            },
            Ok(None) => break,
            Err(error) => {
                debug!(%error, "subscription stream ended");
                break;
            }
        }
    }
    drop(send);
}
