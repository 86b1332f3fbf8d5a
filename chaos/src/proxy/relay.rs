//! [`relay`]: one connection's bytes, both ways, under the fault in force. Each direction is
//! a reader and a writer joined by a bounded queue; the four run together in the
//! connection's task, so they end with it.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::fault::ProxyFault;
use super::handle::FaultState;
use super::pacer::Pacer;
use super::proxy_stats::{Counters, Direction};
use super::CHUNK_BYTES;

/// How many chunks may wait between a direction's reader and its writer. With
/// [`CHUNK_BYTES`], this bounds what a connection holds: per direction the queue, the
/// reader's buffer, one chunk waiting for room and one being written, so at most
/// `2 × (QUEUE_CHUNKS + 3) × CHUNK_BYTES` (608 KiB). Beyond it, reading pauses and the sender
/// feels TCP backpressure.
const QUEUE_CHUNKS: usize = 16;

/// Why a connection is reset (rather than closed in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Teardown {
    /// [`ProxyFault::Reset`] is in force.
    Fault,
    /// [`ProxyFault::ResetAfter`]'s budget ran out in this direction.
    ResetAfter(Direction),
    /// Reading failed on the side this direction reads from (usually a reset by that peer):
    /// passed on, in order behind the bytes read before it.
    ReadFailed(Direction, io::ErrorKind),
    /// Writing failed on the side this direction writes to (that peer is gone).
    WriteFailed(Direction, io::ErrorKind),
}

/// What a reader hands its writer.
#[derive(Debug)]
struct Segment {
    /// When the proxy read it.
    arrived: Instant,
    kind: SegmentKind,
}

#[derive(Debug)]
enum SegmentKind {
    /// Bytes to forward (never empty).
    Data(Vec<u8>),
    /// The source closed its side in order: close the destination's side (FIN).
    End,
    /// Reading the source failed: reset the connection.
    Failed(io::ErrorKind),
}

/// Carries bytes between `client` and `upstream` until both directions have ended in order
/// (`Ok`), or one of them calls for a reset (`Err`). Does not watch for [`ProxyFault::Reset`]
/// on an idle connection: the caller does.
pub(crate) async fn relay(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    faults: &watch::Receiver<FaultState>,
    counters: &Counters,
) -> Result<(), Teardown> {
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let (to_upstream, to_upstream_queue) = mpsc::channel(QUEUE_CHUNKS);
    let (to_client, to_client_queue) = mpsc::channel(QUEUE_CHUNKS);
    tokio::try_join!(
        read(client_read, to_upstream, faults.clone(), counters),
        Writer::new(
            upstream_write,
            Direction::ToUpstream,
            faults.clone(),
            counters
        )
        .run(to_upstream_queue),
        read(upstream_read, to_client, faults.clone(), counters),
        Writer::new(client_write, Direction::ToClient, faults.clone(), counters)
            .run(to_client_queue),
    )?;
    Ok(())
}

/// Reads `source` into `queue` until end of stream, a read error (both passed on) or the
/// writer is gone. Under [`ProxyFault::BlackHole`], what it reads is discarded. Never fails:
/// the writer decides what a segment does.
async fn read(
    mut source: ReadHalf<'_>,
    queue: mpsc::Sender<Segment>,
    faults: watch::Receiver<FaultState>,
    counters: &Counters,
) -> Result<(), Teardown> {
    let mut buffer = vec![0_u8; CHUNK_BYTES];
    loop {
        let read = source.read(&mut buffer).await;
        let arrived = Instant::now();
        let kind = match read {
            Ok(0) => SegmentKind::End,
            Ok(n) => {
                let data = buffer.get(..n).unwrap_or_default();
                if faults.borrow().fault == ProxyFault::BlackHole {
                    counters.record_black_holed(data.len());
                    continue;
                }
                SegmentKind::Data(data.to_vec())
            }
            Err(error) => SegmentKind::Failed(error.kind()),
        };
        let last = !matches!(kind, SegmentKind::Data(_));
        if queue.send(Segment { arrived, kind }).await.is_err() || last {
            return Ok(());
        }
    }
}

/// One direction's sending side: applies the fault in force to each segment, in order.
struct Writer<'a> {
    destination: WriteHalf<'a>,
    direction: Direction,
    faults: watch::Receiver<FaultState>,
    counters: &'a Counters,
    pacer: Pacer,
    /// Under [`ProxyFault::ResetAfter`]: the generation of the fault the count belongs to and
    /// how many bytes may still go.
    reset_after: Option<(u64, u64)>,
}

impl<'a> Writer<'a> {
    fn new(
        destination: WriteHalf<'a>,
        direction: Direction,
        faults: watch::Receiver<FaultState>,
        counters: &'a Counters,
    ) -> Self {
        Writer {
            destination,
            direction,
            faults,
            counters,
            pacer: Pacer::default(),
            reset_after: None,
        }
    }

    /// Forwards what the reader queues until end of stream (`Ok`) or a reset (`Err`).
    async fn run(mut self, mut queue: mpsc::Receiver<Segment>) -> Result<(), Teardown> {
        while let Some(segment) = queue.recv().await {
            match segment.kind {
                SegmentKind::Data(bytes) => self.forward(&bytes, segment.arrived).await?,
                SegmentKind::End => {
                    self.release(segment.arrived).await?;
                    if let Err(error) = self.destination.shutdown().await {
                        tracing::debug!(direction = %self.direction, %error, "fault proxy: cannot pass on end of stream");
                    }
                    return Ok(());
                }
                SegmentKind::Failed(kind) => {
                    self.release(segment.arrived).await?;
                    return Err(Teardown::ReadFailed(self.direction, kind));
                }
            }
        }
        Ok(())
    }

    /// Writes `bytes`, read at `arrived`, as the fault in force allows: all at once, after a
    /// delay, slice by slice, or up to the [`ProxyFault::ResetAfter`] budget.
    async fn forward(&mut self, bytes: &[u8], arrived: Instant) -> Result<(), Teardown> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let state = self.release(arrived).await?;
            let allowed = match state.fault {
                ProxyFault::Bandwidth { bytes_per_second } => Pacer::slice_len(bytes_per_second),
                ProxyFault::ResetAfter { bytes } => {
                    let left = self.budget(state.generation, bytes);
                    if left == 0 {
                        return Err(Teardown::ResetAfter(self.direction));
                    }
                    usize::try_from(left).unwrap_or(usize::MAX)
                }
                _ => rest.len(),
            };
            let (now, later) = rest.split_at_checked(allowed).unwrap_or((rest, &[]));
            let started = Instant::now();
            if let Err(error) = self.destination.write_all(now).await {
                return Err(Teardown::WriteFailed(self.direction, error.kind()));
            }
            self.counters.record_forwarded(self.direction, now.len());
            if let ProxyFault::Bandwidth { bytes_per_second } = state.fault {
                self.pacer.record_sent(now.len(), bytes_per_second, started);
            }
            // Reset as soon as the budget is spent, not when the next byte comes.
            if matches!(state.fault, ProxyFault::ResetAfter { .. }) && self.spend(now.len()) == 0 {
                return Err(Teardown::ResetAfter(self.direction));
            }
            rest = later;
        }
        Ok(())
    }

    /// Waits until the fault in force lets a segment read at `arrived` go, and returns that
    /// state; fails at once under [`ProxyFault::Reset`]. Re-evaluates on every switch.
    async fn release(&mut self, arrived: Instant) -> Result<FaultState, Teardown> {
        loop {
            let state = *self.faults.borrow_and_update();
            let now = Instant::now();
            let until = match state.fault {
                ProxyFault::Reset => return Err(Teardown::Fault),
                ProxyFault::Pass | ProxyFault::ResetAfter { .. } => return Ok(state),
                ProxyFault::BlackHole
                | ProxyFault::Bandwidth {
                    bytes_per_second: 0,
                } => None,
                ProxyFault::Latency(delay) => match arrived.checked_add(delay) {
                    Some(due) if due <= now => return Ok(state),
                    due => due,
                },
                ProxyFault::Bandwidth { .. } => match self.pacer.next_send() {
                    Some(due) if due > now => Some(due),
                    _ => return Ok(state),
                },
            };
            self.wait(until).await;
        }
    }

    /// Waits until `until` (forever if `None`) or the next switch of fault, whichever is first.
    async fn wait(&mut self, until: Option<Instant>) {
        let switched = async {
            if self.faults.changed().await.is_err() {
                // The proxy is gone; its task ends this one soon.
                std::future::pending::<()>().await;
            }
        };
        match until {
            Some(due) => {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = switched => {}
                }
            }
            None => switched.await,
        }
    }

    /// The bytes left under the [`ProxyFault::ResetAfter`] of `generation` with a budget of
    /// `bytes`, starting the count if that fault is new to this direction.
    fn budget(&mut self, generation: u64, bytes: u64) -> u64 {
        match self.reset_after {
            Some((counted, left)) if counted == generation => left,
            _ => {
                self.reset_after = Some((generation, bytes));
                bytes
            }
        }
    }

    /// Takes `n` bytes off the [`ProxyFault::ResetAfter`] budget and returns what is left.
    fn spend(&mut self, n: usize) -> u64 {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        match &mut self.reset_after {
            Some((_, left)) => {
                *left = left.saturating_sub(n);
                *left
            }
            None => 0,
        }
    }
}
