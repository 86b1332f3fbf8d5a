//! Byte budgets: memory is charged to a budget before it is held, and the charge is released
//! when the memory is dropped (the shape of a semaphore permit, in bytes).
//!
//! * [`ConnectionBudget`]: one connection's memory, requests and responses together. Only the
//!   connection's reader waits on it (for room to read more, and for room for the response
//!   of each request it dispatches, from the bound the handler gives); responses larger than
//!   that are charged without waiting, and keep the reader waiting until they are written.
//!   With a single waiter that holds nothing another charge waits for, the budget cannot
//!   deadlock. Every charge to a connection's budget is mirrored up a chain of budgets of the
//!   same type: its peer address's, its address group's (an IPv4 /24, an IPv6 /48) and the
//!   server's. The readers wait on all of them between frames (without a deadline: they hold
//!   no partial frame then) and while a large frame grows (within the frame's deadline, so
//!   partial frames waiting on each other end as starved instead of waiting forever). The
//!   server's budget admits a group below its floor whatever the server holds, and a group's
//!   budget an address below its floor whatever the group holds: a new honest address is
//!   always served an ordinary request, however many addresses attack, its own /24 included.
//! * [`ReceiveBudget`]: the server's memory for large frames being received and handled, shared
//!   by all connections: a semaphore of bytes, drawn on as bytes arrive.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::server::server_stats::Recorder;

/// Which budget of the chain connection → address → address group → server a
/// [`ConnectionBudget`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// One connection's.
    Connection,
    /// All connections of one peer address.
    Address,
    /// All addresses of one group (an IPv4 /24, an IPv6 /48).
    Group,
    /// All connections of the server.
    Server,
}

/// A memory budget in bytes: one connection's, or that of an address, an address group or the
/// whole server, which every charge to a connection's budget is mirrored on.
#[derive(Debug)]
pub(crate) struct ConnectionBudget {
    level: Level,
    limit: usize,
    /// For the server's budget, a group, and for a group's, an address holding less than
    /// this is admitted up to it, however much the budget holds (its fair share; zero
    /// elsewhere).
    floor: usize,
    used: AtomicUsize,
    /// Notified whenever bytes are released.
    room: Notify,
    recorder: Arc<Recorder>,
    /// The budget one level up, charged and released with this one (`None` for the server's).
    parent: Option<Arc<ConnectionBudget>>,
}

impl ConnectionBudget {
    /// A connection's budget of `limit` bytes, reporting to `recorder`, mirrored on `peer`
    /// (its address's budget).
    pub(crate) fn new(
        limit: usize,
        recorder: Arc<Recorder>,
        peer: Option<Arc<ConnectionBudget>>,
    ) -> Arc<Self> {
        Self::level(Level::Connection, limit, 0, recorder, peer)
    }

    /// The budget of `limit` bytes shared by every connection of one peer address, mirrored
    /// on `group` (its address group's budget), if any.
    pub(crate) fn new_peer(
        limit: usize,
        recorder: Arc<Recorder>,
        group: Option<Arc<ConnectionBudget>>,
    ) -> Arc<Self> {
        Self::level(Level::Address, limit, 0, recorder, group)
    }

    /// The budget of `limit` bytes shared by every address of one group, where an address
    /// holding less than `floor` is admitted up to it whatever the group holds; mirrored on
    /// `server`.
    pub(crate) fn new_group(
        limit: usize,
        floor: usize,
        recorder: Arc<Recorder>,
        server: Arc<ConnectionBudget>,
    ) -> Arc<Self> {
        Self::level(Level::Group, limit, floor, recorder, Some(server))
    }

    /// The server's budget of `limit` bytes, where a group holding less than `floor` is
    /// admitted up to it whatever the server holds.
    pub(crate) fn new_server(limit: usize, floor: usize, recorder: Arc<Recorder>) -> Arc<Self> {
        Self::level(Level::Server, limit, floor, recorder, None)
    }

    fn level(
        level: Level,
        limit: usize,
        floor: usize,
        recorder: Arc<Recorder>,
        parent: Option<Arc<ConnectionBudget>>,
    ) -> Arc<Self> {
        Arc::new(ConnectionBudget {
            level,
            limit,
            floor,
            used: AtomicUsize::new(0),
            room: Notify::new(),
            recorder,
            parent,
        })
    }

    /// Bytes charged now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Whether `bytes` more may be charged here now, for a charge coming up from `child` (the
    /// budget one level down): when it fits, or nothing is charged (one frame always passes,
    /// except on the server's); and on a budget with a floor (the server's, a group's), while
    /// the child stays within it.
    fn admits(&self, bytes: usize, child: Option<&ConnectionBudget>) -> bool {
        let used = self.used();
        let fits =
            used.saturating_add(bytes) <= self.limit || (self.level != Level::Server && used == 0);
        fits || child.is_some_and(|child| child.used().saturating_add(bytes) <= self.floor)
    }

    /// Whether less than the limit is charged here, or the child is below this budget's
    /// floor.
    fn below(&self, child: Option<&ConnectionBudget>) -> bool {
        self.used() < self.limit || child.is_some_and(|child| child.used() < self.floor)
    }

    /// Waits until `bytes` more fit this budget and every one above it (see
    /// [`ConnectionBudget::admits`]), then charges them.
    pub(crate) async fn charge(self: &Arc<Self>, bytes: usize) -> ConnectionCharge {
        self.wait_chain(true, |budget, child| budget.admits(bytes, child))
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
        self.wait_until(|| self.admits(bytes, None)).await;
    }

    /// Waits until `bytes` more fit the budgets above this one (address, group, server),
    /// without charging them.
    pub(crate) async fn peer_room(&self, bytes: usize) {
        self.wait_chain(false, |budget, child| budget.admits(bytes, child))
            .await;
    }

    /// Waits until less than the limit is charged, on this budget and on every one above it.
    pub(crate) async fn below_limit(&self) {
        self.wait_chain(true, |budget, child| budget.below(child))
            .await;
    }

    /// Waits on each budget of the chain in turn, from this one (or, without `this_one`, the
    /// one above it) to the server's, until `ok` holds for it and the budget below it.
    async fn wait_chain(
        &self,
        this_one: bool,
        ok: impl Fn(&ConnectionBudget, Option<&ConnectionBudget>) -> bool,
    ) {
        let mut child: Option<&ConnectionBudget> = None;
        let mut current: Option<&ConnectionBudget> = Some(self);
        if !this_one {
            child = Some(self);
            current = self.parent.as_deref();
        }
        while let Some(budget) = current {
            budget.wait_until(|| ok(budget, child)).await;
            child = Some(budget);
            current = budget.parent.as_deref();
        }
    }

    /// An empty charge on this budget, to grow later.
    pub(crate) fn empty_charge(self: &Arc<Self>) -> ConnectionCharge {
        ConnectionCharge {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }

    async fn wait_until(&self, fits: impl Fn() -> bool) {
        loop {
            let released = self.room.notified();
            tokio::pin!(released);
            // Registered before checking, so a release in between is not missed.
            released.as_mut().enable();
            if fits() {
                return;
            }
            released.await;
        }
    }

    /// Charges `bytes` here and on every budget above, without looking at the limits. (The
    /// checks in [`ConnectionBudget::charge`] and its charge are not one atomic step: what can
    /// slip in between are other connections' charges, each admitted on its own.)
    fn add(&self, bytes: usize) {
        let now = self.used.fetch_add(bytes, Ordering::AcqRel) + bytes;
        let recorder = &self.recorder;
        match self.level {
            Level::Connection => {
                recorder
                    .connection_bytes
                    .fetch_add(bytes, Ordering::Relaxed);
                recorder
                    .peak_connection_bytes
                    .fetch_max(now, Ordering::Relaxed);
            }
            Level::Address => {
                recorder.peak_peer_bytes.fetch_max(now, Ordering::Relaxed);
            }
            Level::Group => {
                recorder.peak_group_bytes.fetch_max(now, Ordering::Relaxed);
            }
            Level::Server => {
                recorder.peak_server_bytes.fetch_max(now, Ordering::Relaxed);
                metrics::gauge!("quorum_server_held_bytes").set(now as f64);
            }
        }
        if let Some(parent) = &self.parent {
            parent.add(bytes);
        }
    }

    fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        match self.level {
            Level::Connection => {
                self.recorder
                    .connection_bytes
                    .fetch_sub(bytes, Ordering::Relaxed);
            }
            Level::Server => {
                metrics::gauge!("quorum_server_held_bytes")
                    .set(before.saturating_sub(bytes) as f64);
            }
            Level::Address | Level::Group => {}
        }
        if let Some(parent) = &self.parent {
            parent.release(bytes);
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
        Some(self.charge_of(permit))
    }

    /// The charge that holds `permit`, counted in the receive gauge.
    fn charge_of(&self, permit: OwnedSemaphorePermit) -> ReceiveCharge {
        self.recorder.add_receive_bytes(permit.num_permits());
        ReceiveCharge {
            permit: Some(permit),
            share: None,
            floor: None,
            recorder: Arc::clone(&self.recorder),
        }
    }

    /// Takes `bytes` at once if they are free; else, when the group whose floor use is
    /// `floor_used` stays within `floor` bytes, takes them beyond the budget, from the floor
    /// (so a new honest group is admitted however much other groups hold); else waits like
    /// [`ReceiveBudget::charge`].
    pub(crate) async fn charge_or_floor(
        &self,
        bytes: u32,
        floor_used: &Arc<AtomicUsize>,
        floor: usize,
    ) -> Option<ReceiveCharge> {
        if let Ok(permit) = Arc::clone(&self.bytes).try_acquire_many_owned(bytes) {
            return Some(self.charge_of(permit));
        }
        let wanted = bytes as usize;
        let before = floor_used.fetch_add(wanted, Ordering::AcqRel);
        if before.saturating_add(wanted) <= floor {
            self.recorder.add_receive_bytes(wanted);
            return Some(ReceiveCharge {
                permit: None,
                share: None,
                floor: Some((Arc::clone(floor_used), wanted)),
                recorder: Arc::clone(&self.recorder),
            });
        }
        floor_used.fetch_sub(wanted, Ordering::AcqRel);
        self.charge(bytes).await
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
    /// Bytes taken beyond the receive budget from the group's floor: its counter and them.
    floor: Option<(Arc<AtomicUsize>, usize)>,
    recorder: Arc<Recorder>,
}

impl ReceiveCharge {
    /// An empty charge, to grow with [`ReceiveCharge::absorb`].
    pub(crate) fn empty(recorder: Arc<Recorder>) -> Self {
        ReceiveCharge {
            permit: None,
            share: None,
            floor: None,
            recorder,
        }
    }

    /// Takes over `other`'s bytes (of the same group's floor, if any).
    pub(crate) fn absorb(&mut self, mut other: ReceiveCharge) {
        merge(&mut self.permit, other.permit.take());
        if let Some((counter, bytes)) = other.floor.take() {
            match &mut self.floor {
                Some((_, ours)) => *ours += bytes,
                None => self.floor = Some((counter, bytes)),
            }
        }
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
        if let Some((counter, bytes)) = self.floor.take() {
            counter.fetch_sub(bytes, Ordering::AcqRel);
            self.recorder.remove_receive_bytes(bytes);
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
        let queued = recorder
            .queued_response_bytes
            .fetch_add(frame.len(), Ordering::Relaxed)
            + frame.len();
        metrics::gauge!("quorum_queued_response_bytes").set(queued as f64);
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
        let before = self
            .recorder
            .queued_response_bytes
            .fetch_sub(self.frame.len(), Ordering::Relaxed);
        metrics::gauge!("quorum_queued_response_bytes")
            .set(before.saturating_sub(self.frame.len()) as f64);
    }
}

#[cfg(test)]
mod tests;
