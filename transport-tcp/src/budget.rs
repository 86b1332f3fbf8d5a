//! Byte budgets: memory is charged to a budget before it is held, and the charge is released
//! when the memory is dropped (the shape of a semaphore permit, in bytes).
//!
//! * [`ConnectionBudget`]: one connection's memory, requests and responses together. Only the
//!   connection's reader waits on it (for room to read more); responses are charged without
//!   waiting, even beyond the limit, and keep the reader waiting until they are written. With a
//!   single waiter that holds nothing another charge waits for, the budget cannot deadlock.
//!   Every charge to a connection's budget is mirrored on its peer address's budget (a
//!   [`ConnectionBudget`] too, made with [`ConnectionBudget::new_peer`]): the readers of that
//!   address's connections wait for it between frames (without a deadline: they hold no partial
//!   frame then) and while a large frame grows (within the frame's deadline, so partial frames
//!   of one address waiting on each other end as starved instead of waiting forever).
//! * [`ReceiveBudget`]: the server's memory for large frames being received and handled, shared
//!   by all connections: a semaphore of bytes, drawn on as bytes arrive.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::stats::Recorder;

/// The memory budget of one connection, in bytes.
#[derive(Debug)]
pub(crate) struct ConnectionBudget {
    limit: usize,
    used: AtomicUsize,
    /// Notified whenever bytes are released.
    room: Notify,
    recorder: Arc<Recorder>,
    /// The budget of the connection's peer address, charged and released with this one
    /// (`None` for a peer's budget itself).
    peer: Option<Arc<ConnectionBudget>>,
}

impl ConnectionBudget {
    /// A connection's budget of `limit` bytes, reporting to `recorder`, mirrored on `peer`
    /// (its address's budget).
    pub(crate) fn new(
        limit: usize,
        recorder: Arc<Recorder>,
        peer: Option<Arc<ConnectionBudget>>,
    ) -> Arc<Self> {
        Arc::new(ConnectionBudget {
            limit,
            used: AtomicUsize::new(0),
            room: Notify::new(),
            recorder,
            peer,
        })
    }

    /// The budget of `limit` bytes shared by every connection of one peer address.
    pub(crate) fn new_peer(limit: usize, recorder: Arc<Recorder>) -> Arc<Self> {
        Arc::new(ConnectionBudget {
            limit,
            used: AtomicUsize::new(0),
            room: Notify::new(),
            recorder,
            peer: None,
        })
    }

    /// Bytes charged now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Waits until `bytes` more fit under the limit (or nothing is charged at all), then
    /// charges them.
    pub(crate) async fn charge(self: &Arc<Self>, bytes: usize) -> ConnectionCharge {
        self.wait_until(|used| used == 0 || used.saturating_add(bytes) <= self.limit)
            .await;
        self.add(bytes);
        ConnectionCharge {
            budget: Arc::clone(self),
            bytes,
        }
    }

    /// Charges `bytes` at once, whatever the limits say.
    pub(crate) fn charge_now(self: &Arc<Self>, bytes: usize) -> ConnectionCharge {
        self.add(bytes);
        ConnectionCharge {
            budget: Arc::clone(self),
            bytes,
        }
    }

    /// Waits until `bytes` more fit under this budget's limit (or nothing is charged), without
    /// charging them.
    pub(crate) async fn room(&self, bytes: usize) {
        self.wait_until(|used| used == 0 || used.saturating_add(bytes) <= self.limit)
            .await;
    }

    /// Waits until `bytes` more fit under the peer address's budget, without charging them.
    pub(crate) async fn peer_room(&self, bytes: usize) {
        if let Some(peer) = &self.peer {
            peer.room(bytes).await;
        }
    }

    /// Waits until less than the limit is charged, on this budget and then on the peer
    /// address's.
    pub(crate) async fn below_limit(&self) {
        self.wait_until(|used| used < self.limit).await;
        if let Some(peer) = &self.peer {
            peer.wait_until(|used| used < peer.limit).await;
        }
    }

    /// An empty charge on this budget, to grow later.
    pub(crate) fn empty_charge(self: &Arc<Self>) -> ConnectionCharge {
        ConnectionCharge {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }

    async fn wait_until(&self, fits: impl Fn(usize) -> bool) {
        loop {
            let released = self.room.notified();
            tokio::pin!(released);
            // Registered before checking, so a release in between is not missed.
            released.as_mut().enable();
            if fits(self.used()) {
                return;
            }
            released.await;
        }
    }

    /// Charges `bytes` without looking at the limit. (The check in [`ConnectionBudget::charge`]
    /// and its charge are not one atomic step; only the connection's reader calls it, so what
    /// can slip in between are charges that may exceed the limit anyway.)
    fn add(&self, bytes: usize) {
        let now = self.used.fetch_add(bytes, Ordering::AcqRel) + bytes;
        match &self.peer {
            Some(peer) => {
                peer.add(bytes);
                self.recorder
                    .connection_bytes
                    .fetch_add(bytes, Ordering::Relaxed);
                self.recorder
                    .peak_connection_bytes
                    .fetch_max(now, Ordering::Relaxed);
            }
            None => {
                self.recorder
                    .peak_peer_bytes
                    .fetch_max(now, Ordering::Relaxed);
            }
        }
    }

    fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        if let Some(peer) = &self.peer {
            peer.release(bytes);
            self.recorder
                .connection_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
        }
        self.room.notify_waiters();
    }
}

/// Bytes charged to a [`ConnectionBudget`], released on drop.
#[derive(Debug)]
pub(crate) struct ConnectionCharge {
    budget: Arc<ConnectionBudget>,
    bytes: usize,
}

impl ConnectionCharge {
    /// Bytes charged.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes over `other`'s bytes (both must be on the same budget).
    pub(crate) fn absorb(&mut self, mut other: ConnectionCharge) {
        debug_assert!(Arc::ptr_eq(&self.budget, &other.budget));
        self.bytes += std::mem::take(&mut other.bytes);
    }

    /// Makes the charge exactly `bytes`: releases the excess, or charges the difference
    /// without waiting (this is how a response larger than its reserve is charged).
    pub(crate) fn set(&mut self, bytes: usize) {
        if bytes > self.bytes {
            self.budget.add(bytes - self.bytes);
        } else {
            self.budget.release(self.bytes - bytes);
        }
        self.bytes = bytes;
    }
}

impl Drop for ConnectionCharge {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// The server-wide budget for large frames, in bytes.
#[derive(Debug)]
pub(crate) struct ReceiveBudget {
    bytes: Arc<Semaphore>,
    recorder: Arc<Recorder>,
}

impl ReceiveBudget {
    /// A budget of `limit` bytes (at most [`Semaphore::MAX_PERMITS`], checked by the config).
    pub(crate) fn new(limit: usize, recorder: Arc<Recorder>) -> Self {
        ReceiveBudget {
            bytes: Arc::new(Semaphore::new(limit)),
            recorder,
        }
    }

    /// Waits (in line with the other connections) until `bytes` are free, and takes them.
    /// `None` only if the budget was closed, which never happens while the server runs.
    pub(crate) async fn charge(&self, bytes: u32) -> Option<ReceiveCharge> {
        let permit = Arc::clone(&self.bytes)
            .acquire_many_owned(bytes)
            .await
            .ok()?;
        self.recorder.add_receive_bytes(permit.num_permits());
        Some(ReceiveCharge {
            permit: Some(permit),
            share: None,
            recorder: Arc::clone(&self.recorder),
        })
    }
}

/// Takes `bytes` of a peer address's share of the receive budget (a semaphore of bytes), in
/// line with the address's other connections. `None` only if the share was closed, which never
/// happens.
pub(crate) async fn take_share(share: &Arc<Semaphore>, bytes: u32) -> Option<OwnedSemaphorePermit> {
    Arc::clone(share).acquire_many_owned(bytes).await.ok()
}

/// Bytes taken from the [`ReceiveBudget`], released on drop.
#[derive(Debug)]
pub(crate) struct ReceiveCharge {
    permit: Option<OwnedSemaphorePermit>,
    /// Bytes of the peer address's share of the receive budget (a whole frame's length).
    share: Option<OwnedSemaphorePermit>,
    recorder: Arc<Recorder>,
}

impl ReceiveCharge {
    /// An empty charge, to grow with [`ReceiveCharge::absorb`].
    pub(crate) fn empty(recorder: Arc<Recorder>) -> Self {
        ReceiveCharge {
            permit: None,
            share: None,
            recorder,
        }
    }

    /// Takes over `other`'s bytes.
    pub(crate) fn absorb(&mut self, mut other: ReceiveCharge) {
        merge(&mut self.permit, other.permit.take());
    }

    /// Holds `share` (bytes of the peer address's share) until dropped.
    pub(crate) fn hold_share(&mut self, share: OwnedSemaphorePermit) {
        merge(&mut self.share, Some(share));
    }
}

/// Merges `theirs` into `ours` (permits of the same semaphore).
fn merge(ours: &mut Option<OwnedSemaphorePermit>, theirs: Option<OwnedSemaphorePermit>) {
    let Some(theirs) = theirs else {
        return;
    };
    match ours {
        Some(ours) => ours.merge(theirs),
        None => *ours = Some(theirs),
    }
}

impl Drop for ReceiveCharge {
    fn drop(&mut self) {
        if let Some(permit) = &self.permit {
            self.recorder.remove_receive_bytes(permit.num_permits());
        }
    }
}

/// An encoded frame queued for the writer, with the bytes charged for it; both are released
/// once the frame has been written.
#[derive(Debug)]
pub(crate) struct ChargedFrame {
    frame: Bytes,
    _charge: ConnectionCharge,
    recorder: Arc<Recorder>,
}

impl ChargedFrame {
    /// `frame`, whose bytes `charge` now covers exactly.
    pub(crate) fn new(frame: Bytes, mut charge: ConnectionCharge) -> Self {
        charge.set(frame.len());
        let recorder = Arc::clone(&charge.budget.recorder);
        recorder
            .queued_response_bytes
            .fetch_add(frame.len(), Ordering::Relaxed);
        ChargedFrame {
            frame,
            _charge: charge,
            recorder,
        }
    }
}

impl AsRef<[u8]> for ChargedFrame {
    fn as_ref(&self) -> &[u8] {
        &self.frame
    }
}

impl Drop for ChargedFrame {
    fn drop(&mut self) {
        self.recorder
            .queued_response_bytes
            .fetch_sub(self.frame.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn budget(limit: usize) -> Arc<ConnectionBudget> {
        let recorder = Arc::new(Recorder::default());
        let peer = ConnectionBudget::new_peer(usize::MAX, Arc::clone(&recorder));
        ConnectionBudget::new(limit, recorder, Some(peer))
    }

    #[tokio::test(start_paused = true)]
    async fn a_charge_waits_for_room_and_gets_it_on_release() {
        let budget = budget(100);
        let first = budget.charge(80).await;
        let waiting = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.charge(30).await.bytes() }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "80 + 30 does not fit in 100");
        drop(first);
        assert_eq!(waiting.await.ok(), Some(30));
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forced_response_keeps_the_reader_waiting_until_written() {
        let budget = budget(100);
        let mut reserve = budget.charge(10).await;
        reserve.set(150);
        assert_eq!(budget.used(), 150);
        assert_eq!(
            budget
                .recorder
                .peak_connection_bytes
                .load(Ordering::Relaxed),
            150
        );
        let frame = ChargedFrame::new(Bytes::from(vec![0; 150]), reserve);
        let reader = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.below_limit().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!reader.is_finished(), "over budget: the reader pauses");
        assert_eq!(
            budget
                .recorder
                .queued_response_bytes
                .load(Ordering::Relaxed),
            150
        );
        drop(frame);
        assert!(reader.await.is_ok());
        assert_eq!(budget.used(), 0);
        assert_eq!(
            budget
                .recorder
                .queued_response_bytes
                .load(Ordering::Relaxed),
            0
        );
    }

    #[tokio::test]
    async fn receive_charges_merge_and_release() {
        let recorder = Arc::new(Recorder::default());
        let receive = ReceiveBudget::new(100, Arc::clone(&recorder));
        let share = Arc::new(Semaphore::new(1000));
        let mut held = ReceiveCharge::empty(Arc::clone(&recorder));
        for _ in 0..4 {
            held.hold_share(take_share(&share, 25).await.unwrap());
            held.absorb(receive.charge(25).await.unwrap());
        }
        assert_eq!(share.available_permits(), 900);
        assert_eq!(recorder.receive_bytes.load(Ordering::Relaxed), 100);
        assert!(Arc::clone(&receive.bytes).try_acquire_owned().is_err());
        drop(held);
        assert_eq!(share.available_permits(), 1000);
        assert_eq!(recorder.receive_bytes.load(Ordering::Relaxed), 0);
        assert_eq!(recorder.peak_receive_bytes.load(Ordering::Relaxed), 100);
        assert_eq!(receive.bytes.available_permits(), 100);
    }
}
