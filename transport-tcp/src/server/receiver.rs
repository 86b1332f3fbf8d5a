//! Receiving request frames on a server connection.
//!
//! The [`FrameCodec`] decides what a frame is (its length prefix, its maximum, its body); this
//! module decides when bytes are read: the body goes into a buffer that grows only as bytes
//! arrive (a length prefix alone reserves nothing), each growth charged first to the
//! connection's budget and, for a large frame, to its address's budget and the server's receive
//! budget, all within the frame's deadline and without a pause in its progress longer than
//! the progress timeout (a large frame first takes its whole length of its
//! address's share of the receive budget, a count that holds no memory); while
//! it waits for them, the socket is watched, so a peer that has gone frees what its partial
//! frame holds at once. A large body is then decoded on a blocking thread, under a decoder
//! permit.
//! Small frames that arrive together are taken from a fixed read-ahead buffer, in one system
//! call.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::{sleep, timeout_at, Instant};

use crate::error::TransportError;
use crate::server::budget::{take_share, ConnectionBudget, ConnectionCharge, ReceiveCharge};
use crate::server::deadline::FrameClock;
use crate::server::resources::{PeerShare, Resources};
use crate::server::server_stats::Recorder;
use crate::wire::codec::FrameCodec;
use crate::wire::frame::{Envelope, WireMessage, LENGTH_PREFIX_LEN};

/// Size of the read-ahead buffer of each connection, in bytes; it never grows.
const READ_AHEAD: usize = 8 * 1024;

/// Smallest growth of a frame's buffer, in bytes; it grows by a quarter of what it holds when
/// that is more, so a partial frame's buffer exceeds the bytes that arrived by at most this or
/// a quarter, and a large frame is copied only a few times while it grows.
const MIN_GROWTH: usize = 64 * 1024;

/// While a frame waits for a budget, how often its socket is looked at for the peer having
/// closed it (a socket with unread bytes is always ready, so readiness alone cannot be awaited).
const GONE_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Why a connection stopped receiving.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ReceiveError {
    /// Malformed, oversize, truncated or stalled input, or a read error.
    #[error(transparent)]
    Frame(#[from] TransportError),
    /// The frame's deadline or progress timeout ran out while it waited for the server's
    /// budgets, or its address's budget or share of them.
    #[error("frame not completed within {allowed:?}: the receive budget is exhausted")]
    Starved {
        /// The time the frame was allowed.
        allowed: Duration,
    },
    /// A blocking decoding task did not finish: it panicked (`panicked`), or the runtime
    /// shutting down cancelled it.
    #[error("decoding task failed (panicked: {panicked})")]
    DecodeTask {
        /// Whether it panicked.
        panicked: bool,
    },
    /// A shared budget was closed: the server is going away.
    #[error("server resources closed")]
    Closed,
}

impl ReceiveError {
    /// A short name of the reason, for the `reason` label of
    /// `quorum_connections_closed_total`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ReceiveError::Frame(TransportError::Stalled { .. }) => "stalled",
            ReceiveError::Frame(TransportError::FrameTooLarge { .. }) => "oversize",
            ReceiveError::Frame(TransportError::Decode(_)) => "malformed",
            ReceiveError::Frame(TransportError::Truncated) => "truncated",
            ReceiveError::Frame(_) => "read_error",
            ReceiveError::Starved { .. } => "starved",
            ReceiveError::DecodeTask { .. } => "decode_task",
            ReceiveError::Closed => "server_closing",
        }
    }

    /// Whether a deadline ended the connection.
    pub(crate) fn is_deadline(&self) -> bool {
        matches!(
            self,
            ReceiveError::Frame(TransportError::Stalled { .. }) | ReceiveError::Starved { .. }
        )
    }
}

/// A request received whole, with the memory charged for it.
pub(crate) struct Received<Req> {
    pub(crate) envelope: Envelope<Req>,
    pub(crate) charge: RequestCharge,
}

/// The bytes charged for one request, until its handler returns.
#[derive(Debug)]
pub(crate) struct RequestCharge {
    /// On the connection's budget (the request, then the reserve for its response).
    pub(crate) connection: ConnectionCharge,
    /// On the server's receive budget (large frames only).
    pub(crate) receive: ReceiveCharge,
}

/// The reading half of a server connection.
pub(crate) struct Receiver<Req> {
    read: OwnedReadHalf,
    ahead: ReadAhead,
    codec: FrameCodec<Req>,
    budget: Arc<ConnectionBudget>,
    share: Arc<PeerShare>,
    resources: Arc<Resources>,
}

impl<Req: WireMessage> Receiver<Req> {
    pub(crate) fn new(
        read: OwnedReadHalf,
        budget: Arc<ConnectionBudget>,
        share: Arc<PeerShare>,
        resources: Arc<Resources>,
    ) -> Self {
        Receiver {
            read,
            ahead: ReadAhead::new(),
            codec: FrameCodec::new(resources.config.max_frame_length),
            budget,
            share,
            resources,
        }
    }

    /// Waits for the first bytes of the next frame, and says how many are at hand; `Ok(0)`
    /// means the peer closed its side between frames. Cancel safe: dropping the future loses
    /// nothing.
    pub(crate) async fn first_bytes(&mut self) -> io::Result<usize> {
        if !self.ahead.is_empty() {
            return Ok(self.ahead.len());
        }
        self.ahead.fill(&mut self.read).await
    }

    /// Receives the rest of a frame whose first bytes [`Receiver::first_bytes`] got, within
    /// `clock`'s deadline, and decodes it. Not cancel safe: if dropped, the connection must end.
    pub(crate) async fn rest_of_frame(
        &mut self,
        clock: &mut FrameClock,
    ) -> Result<Received<Req>, ReceiveError> {
        let mut prefix = [0; LENGTH_PREFIX_LEN];
        let mut got = self.ahead.take(&mut prefix);
        while got < LENGTH_PREFIX_LEN {
            if within(clock, self.ahead.fill(&mut self.read)).await? == 0 {
                return Err(TransportError::Truncated.into());
            }
            got += self.ahead.take(&mut prefix[got..]);
        }
        let length = self.codec.body_length(prefix)?;
        clock.length_known(length);
        let (body, charge) = self.body(length, clock).await?;
        let envelope = self.decode(body, length).await?;
        Recorder::count(&self.resources.recorder.requests_received);
        Ok(Received { envelope, charge })
    }

    /// Reads a body of `length` bytes into a buffer grown as bytes arrive, charging each growth
    /// before making it.
    async fn body(
        &mut self,
        length: usize,
        clock: &mut FrameClock,
    ) -> Result<(Vec<u8>, RequestCharge), ReceiveError> {
        let large = length > self.resources.config.large_frame_length;
        let mut charge = RequestCharge {
            connection: self.budget.empty_charge(),
            receive: ReceiveCharge::empty(Arc::clone(&self.resources.recorder)),
        };
        let mut body = Vec::new();
        let mut filled = 0;
        while filled < length {
            if filled == body.len() {
                // Make room only for bytes that are there to be read (a peek waits for them;
                // readiness alone may be left over from the last read).
                if self.ahead.is_empty() && within(clock, self.read.peek(&mut [0; 1])).await? == 0 {
                    return Err(TransportError::Truncated.into());
                }
                if large && filled == 0 {
                    // The address's share is taken for the whole frame at once (it is a count,
                    // not memory: memory is charged below as bytes arrive), so the frames of
                    // one address are admitted whole, one after the other, and never wait on
                    // each other half-received.
                    let whole = u32::try_from(length).map_err(|_| ReceiveError::Closed)?;
                    let share = self
                        .within_budget(clock, take_share(&self.share.receive, whole))
                        .await?;
                    charge.receive.hold_share(share);
                }
                let grow = growth(filled, length);
                self.charge(grow, large, &mut charge, clock).await?;
                body.reserve_exact(grow);
                body.resize(filled + grow, 0);
            }
            let read = if self.ahead.is_empty() {
                within(clock, self.read.read(&mut body[filled..])).await?
            } else {
                self.ahead.take(&mut body[filled..])
            };
            if read == 0 {
                return Err(TransportError::Truncated.into());
            }
            filled += read;
        }
        Ok((body, charge))
    }

    /// Charges `bytes` more to the connection's budget (waiting for room does not count against
    /// the frame's deadline) and, for a large frame, to its address's budget and the receive
    /// budget (waiting for those does; meanwhile the socket is watched, and a peer that has
    /// gone ends the frame at once).
    async fn charge(
        &self,
        bytes: usize,
        large: bool,
        charge: &mut RequestCharge,
        clock: &mut FrameClock,
    ) -> Result<(), ReceiveError> {
        let waiting_since = Instant::now();
        self.budget.room(bytes).await;
        clock.paused(waiting_since.elapsed());
        if large {
            // `growth` keeps every step below 4 GiB.
            let count = u32::try_from(bytes).map_err(|_| ReceiveError::Closed)?;
            self.within_budget(clock, async {
                self.budget.peer_room(bytes).await;
                Some(())
            })
            .await?;
            let floor = (
                &self.share.group.receive_floor,
                self.resources.config.group_floor,
            );
            let more = self
                .within_budget(
                    clock,
                    self.resources
                        .receive
                        .charge_or_floor(count, floor.0, floor.1),
                )
                .await?;
            charge.receive.absorb(more);
        }
        charge.connection.absorb(self.budget.charge_now(bytes));
        Ok(())
    }

    /// Waits for a budget (`None`: it was closed) within the frame's deadline and its progress
    /// timeout, while watching
    /// the socket for the peer having gone.
    async fn within_budget<T>(
        &self,
        clock: &FrameClock,
        wait: impl Future<Output = Option<T>>,
    ) -> Result<T, ReceiveError> {
        let (until, allowed) = clock.wait_until(Instant::now());
        tokio::select! {
            waited = timeout_at(until, wait) => waited
                .map_err(|_| ReceiveError::Starved { allowed })?
                .ok_or(ReceiveError::Closed),
            gone = peer_gone(&self.read) => Err(gone),
        }
    }

    /// Decodes a complete body: a large one on a blocking thread, under a decoder permit.
    async fn decode(&self, body: Vec<u8>, length: usize) -> Result<Envelope<Req>, ReceiveError> {
        if length <= self.resources.config.large_frame_length {
            return Ok(FrameCodec::<Req>::decode_body(&body)?);
        }
        let permit = Arc::clone(&self.resources.decoders)
            .acquire_owned()
            .await
            .map_err(|_| ReceiveError::Closed)?;
        let decoded = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            FrameCodec::<Req>::decode_body(&body)
        })
        .await
        .map_err(|error| ReceiveError::DecodeTask {
            panicked: error.is_panic(),
        })?;
        Ok(decoded?)
    }
}

/// Bytes read from the socket ahead of need, in a buffer of fixed size.
struct ReadAhead {
    bytes: Box<[u8]>,
    /// The bytes not taken yet are `bytes[start..end]`.
    start: usize,
    end: usize,
}

impl ReadAhead {
    fn new() -> Self {
        ReadAhead {
            bytes: vec![0; READ_AHEAD].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Moves as many bytes as fit into `out`; returns how many.
    fn take(&mut self, out: &mut [u8]) -> usize {
        let count = out.len().min(self.len());
        out[..count].copy_from_slice(&self.bytes[self.start..self.start + count]);
        self.start += count;
        count
    }

    /// Reads what the socket has into the free space; `Ok(0)` at the end of the stream. Cancel
    /// safe.
    async fn fill(&mut self, read: &mut OwnedReadHalf) -> io::Result<usize> {
        if self.is_empty() {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.bytes.len() {
            self.bytes.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.len());
        }
        let count = read.read(&mut self.bytes[self.end..]).await?;
        self.end += count;
        Ok(count)
    }
}

/// Resolves once the peer has closed or reset the connection (checked every
/// [`GONE_CHECK_INTERVAL`]), with the error that ends the frame.
async fn peer_gone(read: &OwnedReadHalf) -> ReceiveError {
    loop {
        match read.ready(Interest::READABLE).await {
            Ok(ready) if ready.is_read_closed() => return TransportError::Truncated.into(),
            Ok(_) => sleep(GONE_CHECK_INTERVAL).await,
            Err(error) => return TransportError::from(error).into(),
        }
    }
}

/// How much a buffer holding `filled` of `length` bytes grows next, in bytes (below 4 GiB).
fn growth(filled: usize, length: usize) -> usize {
    MIN_GROWTH
        .max(filled / 4)
        .min(length - filled)
        .min(u32::MAX as usize)
}

/// Runs a read within the frame's deadline and its progress timeout; running out means the
/// peer stalled.
async fn within<T>(
    clock: &FrameClock,
    read: impl Future<Output = io::Result<T>>,
) -> Result<T, ReceiveError> {
    let (until, allowed) = clock.wait_until(Instant::now());
    match timeout_at(until, read).await {
        Ok(result) => result.map_err(|error| TransportError::from(error).into()),
        Err(_) => Err(TransportError::Stalled { timeout: allowed }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_grow_by_steps_that_track_what_arrived() {
        assert_eq!(growth(0, 10), 10);
        assert_eq!(growth(0, 1 << 24), MIN_GROWTH);
        assert_eq!(growth(1 << 20, 1 << 24), 1 << 18);
        assert_eq!(growth((1 << 24) - 5, 1 << 24), 5);
        // A 16 MiB frame is grown (and copied) a few dozen times, not thousands.
        let (mut filled, mut steps) = (0, 0);
        while filled < 1 << 24 {
            filled += growth(filled, 1 << 24);
            steps += 1;
        }
        assert!(steps < 40, "{steps} steps");
    }
}
