//! One server connection: reads requests, runs each through the handler concurrently, writes the
//! responses back tagged with their request id, and decides when the connection ends.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, error, warn};

use crate::codec::FrameCodec;
use crate::config::ServerConfig;
use crate::error::{log_closing, TransportError};
use crate::frame::{Envelope, WireMessage};
use crate::handler::Handler;
use crate::stall::{has_partial_frame, StallWatch};
use crate::writer::write_frames;

/// Why a connection stops reading.
enum End {
    /// The peer closed its side after whole frames.
    PeerClosed,
    /// The server is shutting down.
    Shutdown,
    /// Nothing happened for the idle timeout.
    Idle,
    /// The writer task failed (it logged why).
    WriterFailed,
    /// Unreadable input: malformed, oversize, truncated or stalled frame, or a read error.
    Fault(TransportError),
}

/// Serves one accepted connection until it ends. Requests in flight are finished and answered
/// when the peer closes, goes idle or the server shuts down; they are abandoned when the peer
/// sends bad input or stalls.
pub(crate) async fn serve_connection<Req: WireMessage, Resp: WireMessage, H: Handler<Req, Resp>>(
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    stop: CancellationToken,
) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "cannot disable Nagle's algorithm");
    }
    let (read, write) = stream.into_split();
    let (responses, queued) = mpsc::channel(config.max_in_flight);
    let writer_failed = CancellationToken::new();
    let writer = AbortOnDropHandle::new(tokio::spawn({
        let writer_failed = writer_failed.clone();
        let write_timeout = config.write_timeout;
        async move {
            if let Err(error) = write_frames(write, queued, write_timeout).await {
                log_closing(peer, &error);
                writer_failed.cancel();
            }
        }
    }));

    let mut session = Session {
        peer,
        frames: FramedRead::new(read, FrameCodec::new(config.max_frame_length)),
        requests: JoinSet::new(),
        slots: Arc::new(Semaphore::new(config.max_in_flight)),
        responses,
        handler,
        config,
        _responses: PhantomData,
    };
    match session.read_requests(&stop, &writer_failed).await {
        End::PeerClosed => debug!(%peer, "peer closed the connection"),
        End::Shutdown => debug!(%peer, "server shutting down: finishing requests in flight"),
        End::Idle => debug!(%peer, "closing idle connection"),
        End::WriterFailed => return,
        End::Fault(error) => {
            log_closing(peer, &error);
            return;
        }
    }
    // A clean end: answer what was asked, then let the writer drain and close.
    let Session {
        mut requests,
        responses,
        ..
    } = session;
    drop(responses);
    while let Some(joined) = requests.join_next().await {
        report_handler_failure(peer, joined);
    }
    if let Err(error) = writer.await {
        debug!(%peer, %error, "response writer did not finish");
    }
}

struct Session<Req, Resp, H> {
    peer: SocketAddr,
    frames: FramedRead<OwnedReadHalf, FrameCodec<Req>>,
    /// The handler calls in flight.
    requests: JoinSet<()>,
    /// One permit per request in flight.
    slots: Arc<Semaphore>,
    /// Encoded responses, to the writer task.
    responses: mpsc::Sender<Bytes>,
    handler: Arc<H>,
    config: Arc<ServerConfig>,
    _responses: PhantomData<fn() -> Resp>,
}

impl<Req: WireMessage, Resp: WireMessage, H: Handler<Req, Resp>> Session<Req, Resp, H> {
    /// Reads and dispatches requests until the connection should stop reading, and says why.
    async fn read_requests(
        &mut self,
        stop: &CancellationToken,
        writer_failed: &CancellationToken,
    ) -> End {
        let mut stalls = StallWatch::new(self.config.frame_read_timeout);
        let mut last_activity = Instant::now();
        loop {
            // Take a slot before reading: while every slot is taken the peer's data stays in the
            // socket, and TCP flow control slows it down.
            let slot = match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    let slot = tokio::select! {
                        biased;
                        () = stop.cancelled() => return End::Shutdown,
                        () = writer_failed.cancelled() => return End::WriterFailed,
                        slot = Arc::clone(&self.slots).acquire_owned() => match slot {
                            Ok(slot) => slot,
                            // The semaphore is never closed.
                            Err(_) => return End::Shutdown,
                        },
                    };
                    // Nothing was read meanwhile: the peer is not to blame for that time.
                    stalls.restart();
                    slot
                }
            };
            let envelope = loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return End::Shutdown,
                    () = writer_failed.cancelled() => return End::WriterFailed,
                    next = self.frames.next() => match next {
                        Some(Ok(envelope)) => break envelope,
                        Some(Err(error)) => return End::Fault(error),
                        None => return End::PeerClosed,
                    },
                    now = stalls.tick() => {
                        if let Some(end) = self.check(now, &mut stalls, &mut last_activity) {
                            return end;
                        }
                    }
                }
            };
            last_activity = Instant::now();
            stalls.frame_received(has_partial_frame(&self.frames));
            self.reap_finished();
            self.dispatch(envelope, slot);
        }
    }

    /// The periodic check at `now`: has the peer stalled mid-frame, or been idle for too long?
    fn check(
        &mut self,
        now: Instant,
        stalls: &mut StallWatch,
        last_activity: &mut Instant,
    ) -> Option<End> {
        if self.reap_finished() {
            *last_activity = now;
        }
        let partial = has_partial_frame(&self.frames);
        if stalls.is_stalled(now, partial) {
            let timeout = stalls.timeout();
            return Some(End::Fault(TransportError::Stalled { timeout }));
        }
        let idle_for = now.saturating_duration_since(*last_activity);
        let idle = !partial
            && self.requests.is_empty()
            && self
                .config
                .idle_timeout
                .is_some_and(|limit| idle_for >= limit);
        idle.then_some(End::Idle)
    }

    /// Collects finished handler calls; says whether there were any.
    fn reap_finished(&mut self) -> bool {
        let mut any = false;
        while let Some(joined) = self.requests.try_join_next() {
            report_handler_failure(self.peer, joined);
            any = true;
        }
        any
    }

    /// Runs the handler on one request in its own task and queues the response.
    fn dispatch(&mut self, envelope: Envelope<Req>, slot: OwnedSemaphorePermit) {
        let handler = Arc::clone(&self.handler);
        let responses = self.responses.clone();
        let max_frame_length = self.config.max_frame_length;
        let peer = self.peer;
        self.requests.spawn(async move {
            let Envelope { request_id, body } = envelope;
            let response = Envelope {
                request_id,
                body: handler.handle(body).await,
            };
            match FrameCodec::<Req>::new(max_frame_length).encode_frame(&response) {
                // The writer is gone only when the connection is closing.
                Ok(frame) => drop(responses.send(frame).await),
                Err(error) => warn!(
                    %peer,
                    request_id,
                    reason = %error,
                    "dropping a response that cannot be framed"
                ),
            }
            drop(slot);
        });
    }
}

fn report_handler_failure(peer: SocketAddr, joined: Result<(), JoinError>) {
    if let Err(failure) = joined {
        if failure.is_panic() {
            error!(%peer, %failure, "request handler panicked; its request stays unanswered");
        }
    }
}
