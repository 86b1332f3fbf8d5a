//! The client wing: [`Client`], a small pool of multiplexed connections to one address;
//! `multiplexer` is one connection and `stall` notices a server that stops mid-frame.

pub(crate) mod multiplexer;
pub(crate) mod stall;

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Mutex};
use tokio::time::timeout;

use crate::client::multiplexer::Connection;
use crate::config::ClientConfig;
use crate::error::TransportError;
use crate::wire::codec::FrameCodec;
use crate::wire::frame::{Envelope, WireMessage};

/// Sends `Req`s to one server and returns its `Resp`s.
///
/// Holds up to [`ClientConfig::pool_size`] connections, opened on first use and used round-robin;
/// each carries up to [`ClientConfig::max_in_flight`] requests at once. A connection that fails
/// fails the requests waiting on it (with the reason) and is replaced by the next request that
/// lands on its slot. Cloning is cheap and shares the pool; dropping the last clone closes the
/// connections.
pub struct Client<Req, Resp> {
    pool: Arc<Pool<Resp>>,
    _requests: PhantomData<fn(Req)>,
}

struct Pool<Resp> {
    address: String,
    config: ClientConfig,
    /// One slot per pooled connection; the lock is held while (re)connecting so that concurrent
    /// callers wait for one connection instead of each opening their own.
    slots: Vec<Mutex<Option<Arc<Connection<Resp>>>>>,
    next_slot: AtomicUsize,
    next_request_id: AtomicU64,
}

impl<Req: WireMessage, Resp: WireMessage> Client<Req, Resp> {
    /// A client of the server at `address` (`"host:port"`, resolved at each connection). No
    /// connection is opened until the first request.
    pub fn new(address: impl Into<String>, config: ClientConfig) -> Result<Self, TransportError> {
        config.validate()?;
        let slots = (0..config.pool_size).map(|_| Mutex::new(None)).collect();
        Ok(Client {
            pool: Arc::new(Pool {
                address: address.into(),
                config,
                slots,
                next_slot: AtomicUsize::new(0),
                next_request_id: AtomicU64::new(0),
            }),
            _requests: PhantomData,
        })
    }

    /// Sends `request` and waits for its response, for at most
    /// [`ClientConfig::request_timeout`] in all.
    ///
    /// Errors: [`TransportError::FrameTooLarge`] or [`TransportError::Encode`] if the request
    /// cannot be framed (nothing is sent); [`TransportError::Connect`] if no connection could be
    /// opened; [`TransportError::Timeout`]; or the reason the connection broke
    /// ([`TransportError::ConnectionClosed`], [`TransportError::Io`], [`TransportError::Decode`],
    /// ...), in which case the next request reconnects.
    pub async fn request(&self, request: Req) -> Result<Resp, TransportError> {
        let pool = &self.pool;
        let (request_id, frame) = self.frame(request)?;
        let limit = pool.config.request_timeout;
        let exchange = async {
            let connection = pool.connection().await?;
            connection.call(request_id, frame).await
        };
        timeout(limit, exchange)
            .await
            .unwrap_or(Err(TransportError::Timeout(limit)))
    }

    /// Sends `request`, which opens a stream, and waits (at most
    /// [`ClientConfig::request_timeout`]) for its first response: returned with the frames
    /// that follow it on the same request id (at most [`ClientConfig::stream_buffer`] waiting
    /// to be read) and the connection that carries them, on which requests about the stream
    /// must go ([`Client::request_on`]).
    pub(crate) async fn open_stream(
        &self,
        request: Req,
    ) -> Result<OpenedStream<Resp>, TransportError> {
        let pool = &self.pool;
        let (request_id, frame) = self.frame(request)?;
        let limit = pool.config.request_timeout;
        let exchange = async {
            let connection = pool.connection().await?;
            let (first, rest) = connection
                .call_stream(request_id, frame, pool.config.stream_buffer)
                .await?;
            Ok(OpenedStream {
                first,
                rest,
                connection,
                request_id,
            })
        };
        timeout(limit, exchange)
            .await
            .unwrap_or(Err(TransportError::Timeout(limit)))
    }

    /// [`Client::request`] on a given connection (one that carries a stream), without
    /// reconnecting: a closed connection fails it with [`TransportError::ConnectionClosed`].
    pub(crate) async fn request_on(
        &self,
        connection: &Connection<Resp>,
        request: Req,
    ) -> Result<Resp, TransportError> {
        let (request_id, frame) = self.frame(request)?;
        let limit = self.pool.config.request_timeout;
        timeout(limit, connection.call(request_id, frame))
            .await
            .unwrap_or(Err(TransportError::Timeout(limit)))
    }

    /// A new request id and the frame of `request` under it.
    fn frame(&self, request: Req) -> Result<(u64, Bytes), TransportError> {
        let pool = &self.pool;
        let request_id = pool.next_request_id.fetch_add(1, Ordering::Relaxed);
        let frame =
            FrameCodec::<Resp>::new(pool.config.max_frame_length).encode_frame(&Envelope {
                request_id,
                body: request,
            })?;
        Ok((request_id, frame))
    }

    /// The address this client connects to.
    pub fn address(&self) -> &str {
        &self.pool.address
    }

    /// The options this client was created with.
    pub fn config(&self) -> &ClientConfig {
        &self.pool.config
    }
}

impl<Resp: WireMessage> Pool<Resp> {
    /// The next slot's connection, (re)opened if it is missing or broken.
    async fn connection(&self) -> Result<Arc<Connection<Resp>>, TransportError> {
        let index = self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        // `pool_size` is validated to be at least 1, so the index is in range.
        let mut slot = self.slots[index].lock().await;
        if let Some(connection) = slot.as_ref().filter(|connection| connection.is_open()) {
            return Ok(Arc::clone(connection));
        }
        // Drop a broken connection before dialling, so its tasks stop now.
        *slot = None;
        let connection = Arc::new(Connection::open(&self.address, &self.config).await?);
        *slot = Some(Arc::clone(&connection));
        Ok(connection)
    }
}

/// A stream opened by [`Client::open_stream`].
pub(crate) struct OpenedStream<Resp> {
    /// The first response.
    pub(crate) first: Resp,
    /// The frames that follow.
    pub(crate) rest: mpsc::Receiver<Resp>,
    /// The connection that carries them.
    pub(crate) connection: Arc<Connection<Resp>>,
    /// The request id they come under.
    pub(crate) request_id: u64,
}

impl<Req, Resp> Clone for Client<Req, Resp> {
    fn clone(&self) -> Self {
        Client {
            pool: Arc::clone(&self.pool),
            _requests: PhantomData,
        }
    }
}

impl<Req, Resp> fmt::Debug for Client<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.pool.address)
            .field("config", &self.pool.config)
            .finish_non_exhaustive()
    }
}
