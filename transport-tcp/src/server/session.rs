//! One server connection: reads requests, runs each through the handler concurrently, writes the
//! responses back tagged with their request id, and decides when the connection ends.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, error, warn};

use crate::error::TransportError;
use crate::server::budget::{ChargedFrame, ConnectionBudget};
use crate::server::connection_caps::Ticket;
use crate::server::deadline::{ConnectionClock, Expiry, FrameClock};
use crate::server::handler::{Answer, Handler};
use crate::server::poll_gate::Metered;
use crate::server::receiver::{ReceiveError, Received, Receiver};
use crate::server::resources::{PeerShare, Resources};
use crate::server::server_stats::Recorder;
use crate::server::streams::Streams;
use crate::wire::codec::FrameCodec;
use crate::wire::frame::{Envelope, WireMessage};
use crate::wire::writer::write_frames;

/// Why a connection stops reading.
enum End {
    /// The peer closed its side after whole frames.
    PeerClosed,
    /// The server is shutting down.
    Shutdown,
    /// The first-frame or the idle deadline ran out.
    Expired(Expiry),
    /// The writer task failed (it logged why).
    WriterFailed,
    /// The server is full and this connection gave way to a newcomer from an address with
    /// fewer connections.
    Evicted,
    /// Unreadable input: malformed, oversize, truncated or stalled frame, or a read error.
    Fault(ReceiveError),
}

/// Serves one accepted connection until it ends. Requests in flight are finished and answered
/// when the peer closes, goes idle or the server shuts down; they are abandoned when the peer
/// sends bad input or stalls.
pub(crate) async fn serve_connection<Req: WireMessage, Resp: WireMessage, H: Handler<Req, Resp>>(
    stream: TcpStream,
    peer: SocketAddr,
    resources: Arc<Resources>,
    handler: Arc<H>,
    stop: CancellationToken,
    ticket: Arc<Ticket>,
    share: Arc<PeerShare>,
) {
    let accepted = Instant::now();
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "cannot disable Nagle's algorithm");
    }
    let config = &resources.config;
    let (read, write) = stream.into_split();
    let (responses, queued) = mpsc::channel(config.max_in_flight);
    let writer_failed = CancellationToken::new();
    let writer = AbortOnDropHandle::new(tokio::spawn({
        let writer_failed = writer_failed.clone();
        let write_timeout = config.write_timeout;
        let resources = Arc::clone(&resources);
        async move {
            if let Err(error) = write_frames(write, queued, write_timeout).await {
                resources.report_closing(peer, &error, error.is_peer_gone(), "write_failed");
                writer_failed.cancel();
            }
        }
    }));

    let budget = resources.connection_budget(&share);
    let streams = Arc::new(Streams::new(config, Arc::clone(&share.streams)));
    let mut session = Session {
        peer,
        receiver: Receiver::new(
            read,
            Arc::clone(&budget),
            Arc::clone(&share),
            Arc::clone(&resources),
        ),
        ticket,
        share,
        clock: ConnectionClock::new(config, accepted),
        budget,
        requests: JoinSet::new(),
        streams,
        streams_end: CancellationToken::new(),
        slots: Arc::new(Semaphore::new(config.max_in_flight)),
        responses,
        handler,
        resources: Arc::clone(&resources),
        _responses: PhantomData,
    };
    match session.read_requests(&stop, &writer_failed).await {
        End::PeerClosed => debug!(%peer, "peer closed the connection"),
        End::Shutdown => debug!(%peer, "server shutting down: finishing requests in flight"),
        End::Expired(Expiry::Idle) => debug!(%peer, "closing idle connection"),
        End::Expired(Expiry::FirstFrame(timeout)) => {
            Recorder::count(&resources.recorder.timed_out_connections);
            debug!(%peer, ?timeout, "closing connection: no frame began in time");
        }
        End::WriterFailed => return,
        End::Evicted => {
            // Its requests are abandoned: the connection's place is someone else's now.
            debug!(%peer, "closing connection: it gave way to a newcomer");
            return;
        }
        End::Fault(ReceiveError::Closed) => debug!(%peer, "server resources closed"),
        End::Fault(fault) => {
            if fault.is_deadline() {
                Recorder::count(&resources.recorder.timed_out_connections);
            }
            let gone = matches!(&fault, ReceiveError::Frame(error) if error.is_peer_gone());
            resources.report_closing(peer, &fault, gone, fault.reason());
            return;
        }
    }
    // A clean end: answer what was asked, then let the writer drain and close.
    let Session {
        mut requests,
        responses,
        streams_end,
        ..
    } = session;
    // Streams end with the reading; what they queued is still written.
    streams_end.cancel();
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
    receiver: Receiver<Req>,
    /// The connection as the limits see it.
    ticket: Arc<Ticket>,
    /// What it shares with the other connections of its address.
    share: Arc<PeerShare>,
    clock: ConnectionClock,
    budget: Arc<ConnectionBudget>,
    /// The handler calls in flight, and the streams they opened.
    requests: JoinSet<()>,
    /// What the connection's streams hold, against the caps.
    streams: Arc<Streams>,
    /// Cancelled when the connection stops reading: every stream stops.
    streams_end: CancellationToken,
    /// One permit per request in flight.
    slots: Arc<Semaphore>,
    /// Encoded responses, to the writer task.
    responses: mpsc::Sender<ChargedFrame>,
    handler: Arc<H>,
    resources: Arc<Resources>,
    _responses: PhantomData<fn() -> Resp>,
}

impl<Req: WireMessage, Resp: WireMessage, H: Handler<Req, Resp>> Session<Req, Resp, H> {
    /// Reads and dispatches requests until the connection should stop reading, and says why.
    async fn read_requests(
        &mut self,
        stop: &CancellationToken,
        writer_failed: &CancellationToken,
    ) -> End {
        loop {
            // Take a slot and wait for room in the budget before reading: meanwhile the peer's
            // data stays in the socket, and TCP flow control slows it down. So a peer that does
            // not read its responses stops being read.
            let slot = tokio::select! {
                biased;
                () = stop.cancelled() => return End::Shutdown,
                () = writer_failed.cancelled() => return End::WriterFailed,
                () = self.ticket.evicted() => return End::Evicted,
                slot = Arc::clone(&self.slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    // The semaphore is never closed.
                    Err(_) => return End::Shutdown,
                },
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => return End::Shutdown,
                () = writer_failed.cancelled() => return End::WriterFailed,
                () = self.ticket.evicted() => return End::Evicted,
                () = self.budget.below_limit() => {}
            }
            let began = match self.next_frame_begins(stop, writer_failed).await {
                Ok(began) => began,
                Err(end) => return end,
            };
            self.clock.frame_began();
            self.ticket.touch();
            let mut frame = FrameClock::new(&self.resources.config, began);
            let received = tokio::select! {
                biased;
                () = stop.cancelled() => return End::Shutdown,
                () = writer_failed.cancelled() => return End::WriterFailed,
                () = self.ticket.evicted() => return End::Evicted,
                received = self.receiver.rest_of_frame(&mut frame) => received,
            };
            let mut received = match received {
                Ok(received) => received,
                Err(fault) => return End::Fault(fault),
            };
            self.clock.activity(Instant::now());
            // Set room aside for the answer, as large as the handler says it can be (what the
            // request holds already counts), on every budget up to the server's: so a peer
            // that does not read its answers is not answered beyond the budgets.
            let reserve = self
                .handler
                .response_bound(&received.envelope.body)
                .unwrap_or_else(|| self.resources.config.effective_response_reserve())
                .saturating_sub(received.charge.connection.bytes());
            let stopping = tokio::select! {
                biased;
                () = writer_failed.cancelled() => return End::WriterFailed,
                () = self.ticket.evicted() => return End::Evicted,
                // Shutting down: still answer the request that was read.
                () = stop.cancelled() => true,
                more = self.budget.charge(reserve) => {
                    received.charge.connection.absorb(more);
                    false
                }
            };
            self.reap_finished();
            self.dispatch(received, slot);
            if stopping {
                return End::Shutdown;
            }
        }
    }

    /// Waits for the first bytes of the next frame, while the first-frame or idle deadline
    /// allows, and returns when they came.
    async fn next_frame_begins(
        &mut self,
        stop: &CancellationToken,
        writer_failed: &CancellationToken,
    ) -> Result<Instant, End> {
        loop {
            // A connection with a request in flight or a stream open is not idle.
            let deadline = self.clock.between_frames(!self.requests.is_empty());
            let expired = async {
                match deadline {
                    Some((at, expiry)) => {
                        sleep_until(at).await;
                        expiry
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => return Err(End::Shutdown),
                () = writer_failed.cancelled() => return Err(End::WriterFailed),
                () = self.ticket.evicted() => return Err(End::Evicted),
                Some(joined) = self.requests.join_next(), if !self.requests.is_empty() => {
                    report_handler_failure(self.peer, joined);
                    self.clock.activity(Instant::now());
                    self.ticket.touch();
                }
                read = self.receiver.first_bytes() => return match read {
                    Ok(0) => Err(End::PeerClosed),
                    Ok(_) => Ok(Instant::now()),
                    Err(error) => Err(End::Fault(TransportError::from(error).into())),
                },
                expiry = expired => return Err(End::Expired(expiry)),
            }
        }
    }

    /// Collects finished handler calls.
    fn reap_finished(&mut self) {
        while let Some(joined) = self.requests.try_join_next() {
            report_handler_failure(self.peer, joined);
        }
    }

    /// Runs the handler on one request in its own task and queues the response, charged to the
    /// connection's budget. The handler starts once a handler permit of its address and one of
    /// its group are free and the server's handler slots grant it one, and is polled in turns
    /// on the cores; slots and turns go to the group that used the least handler time when
    /// they are all taken.
    fn dispatch(&mut self, received: Received<Req>, slot: OwnedSemaphorePermit) {
        let handler = Arc::clone(&self.handler);
        let responses = self.responses.clone();
        let resources = Arc::clone(&self.resources);
        let share = Arc::clone(&self.share);
        let streams = Arc::clone(&self.streams);
        let streams_end = self.streams_end.clone();
        let budget = Arc::clone(&self.budget);
        let peer = self.peer;
        self.requests.spawn(async move {
            let Received {
                envelope: Envelope { request_id, body },
                charge,
            } = received;
            let answer = {
                // The address's handler first, then its group's, so that one waiting for
                // them holds no server-wide handler. The semaphores are never closed.
                let Ok(_ours) = share.handlers.acquire().await else {
                    return;
                };
                let Ok(_group) = share.group.handlers.acquire().await else {
                    return;
                };
                let group = &share.group.slots;
                let _running = resources.handlers.acquire(group).await;
                let gate = Arc::clone(&resources.polls);
                let answer = handler.handle_stream(body, &streams);
                Metered::new(answer, gate, Arc::clone(group)).await
            };
            let Answer { response, stream } = answer;
            // The request is gone: its bytes now stand for the response.
            drop(charge.receive);
            let response = Envelope {
                request_id,
                body: response,
            };
            let max_frame_length = resources.config.max_frame_length;
            let encoded = share
                .group
                .slots
                .metered(|| FrameCodec::<Req>::new(max_frame_length).encode_frame(&response));
            match encoded {
                // The writer is gone only when the connection is closing.
                Ok(frame) => drop(
                    responses
                        .send(ChargedFrame::new(frame, charge.connection))
                        .await,
                ),
                Err(error) => warn!(
                    %peer,
                    request_id,
                    reason = %error,
                    "dropping a response that cannot be framed"
                ),
            }
            drop(slot);
            if let Some(stream) = stream {
                let pushed = Pushed {
                    request_id,
                    max_frame_length,
                    budget,
                    responses,
                    peer,
                };
                pushed.forward(stream, streams_end).await;
            }
        });
    }
}

/// Where a stream's items go: frames on the stream's request id, charged to the connection.
struct Pushed {
    request_id: u64,
    max_frame_length: usize,
    budget: Arc<ConnectionBudget>,
    responses: mpsc::Sender<ChargedFrame>,
    peer: SocketAddr,
}

impl Pushed {
    /// Sends each item of `stream` until it ends, the connection stops reading (`end`), or
    /// the writer is gone. An item waits for room in the connection's budget before it is
    /// taken from the stream's source, so a peer that does not read holds one item here and
    /// leaves the rest to the source's own bounds.
    async fn forward<Resp: WireMessage>(
        self,
        mut stream: futures::stream::BoxStream<'static, Resp>,
        end: CancellationToken,
    ) {
        loop {
            let item = tokio::select! {
                () = end.cancelled() => return,
                item = stream.next() => item,
            };
            let Some(item) = item else { return };
            let envelope = Envelope {
                request_id: self.request_id,
                body: item,
            };
            let frame = match FrameCodec::<Resp>::new(self.max_frame_length).encode_frame(&envelope)
            {
                Ok(frame) => frame,
                Err(error) => {
                    warn!(peer = %self.peer, reason = %error, "dropping a pushed frame that cannot be framed");
                    continue;
                }
            };
            let charge = tokio::select! {
                () = end.cancelled() => return,
                charge = self.budget.charge(frame.len()) => charge,
            };
            if self
                .responses
                .send(ChargedFrame::new(frame, charge))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

fn report_handler_failure(peer: SocketAddr, joined: Result<(), JoinError>) {
    if let Err(failure) = joined {
        if failure.is_panic() {
            error!(%peer, %failure, "request handler panicked; its request stays unanswered");
        }
    }
}
