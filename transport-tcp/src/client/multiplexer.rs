//! One client connection carrying many requests at once.
//!
//! Callers encode their request, register a oneshot sender under its request id and queue the
//! frame for the writer task; the reader task routes each response to the sender registered under
//! its request id. When either task fails, every waiting caller gets the failure and the
//! connection is marked closed, so the pool replaces it on the next request.
//!
//! A request that opens a stream ([`Connection::call_stream`]) also registers a bounded
//! channel under its request id: its first response goes to the caller as usual, every later
//! frame with that id into the channel. A full channel loses the frame (the stream's own
//! numbering shows the gap to its reader); a channel whose reader is gone is forgotten. When
//! the connection fails, every stream ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::timeout;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::debug;

use crate::client::stall::{has_partial_frame, StallWatch};
use crate::config::ClientConfig;
use crate::error::{log_closing, TransportError};
use crate::wire::codec::FrameCodec;
use crate::wire::frame::{Envelope, WireMessage};
use crate::wire::writer::write_frames;

/// Where a caller's response will be delivered.
type ResponseSender<Resp> = oneshot::Sender<Result<Resp, TransportError>>;

/// A live (or dead, see [`Connection::is_open`]) connection to one server.
pub(crate) struct Connection<Resp> {
    shared: Arc<Shared<Resp>>,
    frames: mpsc::Sender<Bytes>,
    _reader: AbortOnDropHandle<()>,
    _writer: AbortOnDropHandle<()>,
}

/// What the callers and the two tasks share.
struct Shared<Resp> {
    address: String,
    state: Mutex<State<Resp>>,
    /// One permit per request in flight; closed when the connection fails.
    permits: Semaphore,
    /// Cancelled when the connection fails; stops both tasks.
    closed: CancellationToken,
}

struct State<Resp> {
    pending: HashMap<u64, ResponseSender<Resp>>,
    /// Streams open on this connection, by the request id that opened them.
    streams: HashMap<u64, mpsc::Sender<Resp>>,
    /// Why the connection stopped, once it has.
    failure: Option<TransportError>,
}

impl<Resp: WireMessage> Connection<Resp> {
    /// Connects to `address` and starts the reader and writer tasks.
    pub(crate) async fn open(address: &str, config: &ClientConfig) -> Result<Self, TransportError> {
        let connect_error = |message: String| TransportError::Connect {
            address: address.to_owned(),
            message,
        };
        let stream = match timeout(config.connect_timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(connect_error(error.to_string())),
            Err(_) => {
                return Err(connect_error(format!(
                    "not connected within {:?}",
                    config.connect_timeout
                )))
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(peer = %address, %error, "cannot disable Nagle's algorithm");
        }
        debug!(peer = %address, "connected");
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared {
            address: address.to_owned(),
            state: Mutex::new(State {
                pending: HashMap::new(),
                streams: HashMap::new(),
                failure: None,
            }),
            permits: Semaphore::new(config.max_in_flight),
            closed: CancellationToken::new(),
        });
        let (frames, queued) = mpsc::channel(config.max_in_flight);

        let reader = tokio::spawn(read_responses(
            FramedRead::new(read, FrameCodec::new(config.max_frame_length)),
            StallWatch::new(config.frame_read_timeout),
            Arc::clone(&shared),
        ));
        let writer = tokio::spawn({
            let shared = Arc::clone(&shared);
            let write_timeout = config.write_timeout;
            async move {
                let written = tokio::select! {
                    () = shared.closed.cancelled() => return,
                    written = write_frames(write, queued, write_timeout) => written,
                };
                let error = written.err().unwrap_or(TransportError::ConnectionClosed);
                log_closing(&shared.address, &error);
                shared.fail(error);
            }
        });
        Ok(Connection {
            shared,
            frames,
            _reader: AbortOnDropHandle::new(reader),
            _writer: AbortOnDropHandle::new(writer),
        })
    }

    /// Whether the connection can still carry requests.
    pub(crate) fn is_open(&self) -> bool {
        !self.shared.closed.is_cancelled()
    }

    /// Sends `frame` (the encoded request `request_id`) and waits for its response. Waits first
    /// for a free in-flight slot.
    pub(crate) async fn call(&self, request_id: u64, frame: Bytes) -> Result<Resp, TransportError> {
        let _slot = self
            .shared
            .permits
            .acquire()
            .await
            .map_err(|_| self.shared.failure())?;
        let response = self.shared.register(request_id)?;
        // Unregisters the request however this call ends (response, error, or the caller's
        // timeout dropping this future).
        let _registered = Registration {
            shared: &self.shared,
            request_id,
        };
        self.frames
            .send(frame)
            .await
            .map_err(|_| self.shared.failure())?;
        response
            .await
            .unwrap_or_else(|_| Err(self.shared.failure()))
    }
}

impl<Resp: WireMessage> Connection<Resp> {
    /// Sends `frame` (the encoded request `request_id`, which opens a stream), waits for its
    /// first response, and returns it with the receiver of the frames that follow on the same
    /// request id (at most `capacity` waiting; see the module's documentation). The stream
    /// ends when the connection does.
    pub(crate) async fn call_stream(
        &self,
        request_id: u64,
        frame: Bytes,
        capacity: usize,
    ) -> Result<(Resp, mpsc::Receiver<Resp>), TransportError> {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        {
            let mut state = self.shared.state();
            if let Some(failure) = &state.failure {
                return Err(failure.clone());
            }
            state.streams.insert(request_id, sender);
        }
        match self.call(request_id, frame).await {
            Ok(first) => Ok((first, receiver)),
            Err(error) => {
                self.shared.state().streams.remove(&request_id);
                Err(error)
            }
        }
    }
}

impl<Resp> Connection<Resp> {
    /// Ends the stream opened by request `request_id` here: its reader sees its end.
    pub(crate) fn end_stream(&self, request_id: u64) {
        self.shared.state().streams.remove(&request_id);
    }
}

impl<Resp> Shared<Resp> {
    fn state(&self) -> MutexGuard<'_, State<Resp>> {
        // The lock is never held across code that can panic, but a poisoned map is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Why the connection is unusable.
    fn failure(&self) -> TransportError {
        self.state()
            .failure
            .clone()
            .unwrap_or(TransportError::ConnectionClosed)
    }

    /// Registers a waiting caller, unless the connection has already failed.
    fn register(
        &self,
        request_id: u64,
    ) -> Result<oneshot::Receiver<Result<Resp, TransportError>>, TransportError> {
        let mut state = self.state();
        if let Some(failure) = &state.failure {
            return Err(failure.clone());
        }
        let (sender, receiver) = oneshot::channel();
        state.pending.insert(request_id, sender);
        Ok(receiver)
    }

    /// Delivers a response to its caller, if it is still waiting, or a later frame of a
    /// stream to the stream's channel.
    fn complete(&self, envelope: Envelope<Resp>) {
        let mut state = self.state();
        let sender = state.pending.remove(&envelope.request_id);
        match sender {
            // The caller may have given up in the meantime; nothing to do then.
            Some(sender) => drop(sender.send(Ok(envelope.body))),
            None => {
                let request_id = envelope.request_id;
                let pushed = state
                    .streams
                    .get(&request_id)
                    .map(|stream| stream.try_send(envelope.body));
                match pushed {
                    Some(Ok(())) => {}
                    Some(Err(mpsc::error::TrySendError::Full(_))) => debug!(
                        peer = %self.address,
                        request_id,
                        "stream reader behind: dropping a pushed frame"
                    ),
                    Some(Err(mpsc::error::TrySendError::Closed(_))) => {
                        state.streams.remove(&request_id);
                    }
                    None => debug!(
                        peer = %self.address,
                        request_id,
                        "dropping a response nobody waits for (late or unknown request id)"
                    ),
                }
            }
        }
    }

    /// Marks the connection failed and hands `error` to every waiting caller. Only the first
    /// failure counts.
    fn fail(&self, error: TransportError) {
        let pending = {
            let mut state = self.state();
            if state.failure.is_some() {
                return;
            }
            state.failure = Some(error.clone());
            // Every stream ends with the connection.
            state.streams.clear();
            std::mem::take(&mut state.pending)
        };
        self.permits.close();
        self.closed.cancel();
        for sender in pending.into_values() {
            drop(sender.send(Err(error.clone())));
        }
    }
}

/// Removes a request from the pending map when its call ends.
struct Registration<'a, Resp> {
    shared: &'a Shared<Resp>,
    request_id: u64,
}

impl<Resp> Drop for Registration<'_, Resp> {
    fn drop(&mut self) {
        self.shared.state().pending.remove(&self.request_id);
    }
}

/// The reader task: routes responses until the connection ends, then fails it.
async fn read_responses<Resp: WireMessage>(
    mut frames: FramedRead<OwnedReadHalf, FrameCodec<Resp>>,
    mut stalls: StallWatch,
    shared: Arc<Shared<Resp>>,
) {
    let error = loop {
        let next = tokio::select! {
            () = shared.closed.cancelled() => return,
            next = frames.next() => next,
            now = stalls.tick() => {
                if stalls.is_stalled(now, has_partial_frame(&frames)) {
                    break TransportError::Stalled { timeout: stalls.timeout() };
                }
                continue;
            }
        };
        match next {
            Some(Ok(envelope)) => {
                shared.complete(envelope);
                stalls.frame_received(has_partial_frame(&frames));
            }
            Some(Err(error)) => break error,
            None => break TransportError::ConnectionClosed,
        }
    };
    log_closing(&shared.address, &error);
    shared.fail(error);
}
