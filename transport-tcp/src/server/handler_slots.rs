//! The server's handler slots, shared between address groups by the handler time each has
//! used (DESIGN §6.1): the runtime's cores are not handed out first come, first served, so
//! one group's flood of requests cannot keep everyone else's waiting behind it.
//!
//! A handler runs only while it holds one of [`ServerConfig::max_handlers`] slots. While
//! slots are free, anyone takes one at once. When none is, handlers wait, and each slot given
//! back goes to the waiting group that has used the least handler time lately: every group
//! keeps the time its handlers spent being polled (and encoding their answers), decayed by
//! half every [`ServerConfig::handler_time_half_life`]. A group that has just arrived has used
//! nothing and goes first; a group whose requests keep the cores busy goes last, behind
//! everyone who asks less. (The cores themselves are shared the same way, poll by poll, by
//! [`PollGate`](crate::server::poll_gate::PollGate).) Within a group, handlers go in the order they came. The time a
//! handler waited for its slot is the histogram `quorum_handler_slot_wait_seconds`.
//!
//! [`ServerConfig::max_handlers`]: crate::ServerConfig::max_handlers
//! [`ServerConfig::handler_time_half_life`]: crate::ServerConfig::handler_time_half_life

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// The handler time a group has used, decayed.
#[derive(Debug)]
pub(crate) struct HandlerTime {
    /// Decayed seconds of handler time, as of `as_of`.
    state: Mutex<(f64, Instant)>,
    half_life: Duration,
}

impl HandlerTime {
    /// No time used yet; what is used halves every `half_life`.
    pub(crate) fn new(half_life: Duration) -> Self {
        HandlerTime {
            state: Mutex::new((0.0, Instant::now())),
            half_life,
        }
    }

    /// Adds `spent` of handler time, at `now`.
    pub(crate) fn charge(&self, spent: Duration, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let used = decayed(state.0, state.1, now, self.half_life);
        *state = (used + spent.as_secs_f64(), now.max(state.1));
    }

    /// The decayed seconds used, as of `now`.
    pub(crate) fn used(&self, now: Instant) -> f64 {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        decayed(state.0, state.1, now, self.half_life)
    }
}

/// `used` seconds as of `as_of`, decayed to `now` with `half_life`.
fn decayed(used: f64, as_of: Instant, now: Instant, half_life: Duration) -> f64 {
    let elapsed = now.saturating_duration_since(as_of).as_secs_f64();
    let half_life = half_life.as_secs_f64().max(f64::MIN_POSITIVE);
    used * (-elapsed / half_life).exp2()
}

/// A group as the slots see it: an identity, and its handler time.
#[derive(Debug)]
pub(crate) struct SlotGroup {
    id: u64,
    pub(crate) time: HandlerTime,
}

impl SlotGroup {
    /// The group's identity, unique in the process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Runs `work` (on the caller's thread) and charges the time it took to the group.
    pub(crate) fn metered<T>(&self, work: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let done = work();
        self.time.charge(started.elapsed(), Instant::now());
        done
    }

    /// A new group, with an identity of its own.
    pub(crate) fn new(half_life: Duration) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        SlotGroup {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            time: HandlerTime::new(half_life),
        }
    }
}

/// Waiters of several groups: each group's in the order they came, and the groups by the
/// handler time they used. Shared by the handler slots and the turns on the cores
/// ([`PollGate`](crate::server::poll_gate::PollGate)).
#[derive(Debug)]
pub(crate) struct FairQueue<T> {
    /// Groups with waiters, by group id; a group leaves when it has none.
    waiting: HashMap<u64, (Arc<SlotGroup>, VecDeque<T>)>,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        FairQueue {
            waiting: HashMap::new(),
        }
    }
}

impl<T> FairQueue<T> {
    /// Whether nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// `waiter` joins the end of `group`'s queue.
    pub(crate) fn push(&mut self, group: &Arc<SlotGroup>, waiter: T) {
        self.waiting
            .entry(group.id())
            .or_insert_with(|| (Arc::clone(group), VecDeque::new()))
            .1
            .push_back(waiter);
    }

    /// The first waiter of the group that used the least handler time as of `now`.
    pub(crate) fn pop_least_used(&mut self, now: Instant) -> Option<T> {
        let id = self
            .waiting
            .iter()
            .map(|(id, (group, _))| (*id, group.time.used(now)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(id, _)| id)?;
        let (_, queue) = self.waiting.get_mut(&id)?;
        let waiter = queue.pop_front();
        if queue.is_empty() {
            self.waiting.remove(&id);
        }
        waiter
    }

    /// Removes the waiters of `group` for which `leaves` holds.
    pub(crate) fn remove_from(&mut self, group: &SlotGroup, leaves: impl Fn(&T) -> bool) {
        if let Some((_, queue)) = self.waiting.get_mut(&group.id()) {
            queue.retain(|waiter| !leaves(waiter));
            if queue.is_empty() {
                self.waiting.remove(&group.id());
            }
        }
    }
}

#[derive(Debug)]
struct State {
    free: usize,
    waiting: FairQueue<oneshot::Sender<()>>,
}

/// The server's handler slots.
#[derive(Debug)]
pub(crate) struct HandlerSlots {
    state: Mutex<State>,
    capacity: usize,
}

impl HandlerSlots {
    /// `capacity` slots, all free.
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(HandlerSlots {
            state: Mutex::new(State {
                free: capacity,
                waiting: FairQueue::default(),
            }),
            capacity,
        })
    }

    /// Slots taken now.
    pub(crate) fn taken(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.capacity.saturating_sub(state.free)
    }

    /// Waits for a slot for a handler of `group`. Cancel safe: a slot granted to a waiter that
    /// is dropped goes to the next one.
    pub(crate) async fn acquire(self: &Arc<Self>, group: &Arc<SlotGroup>) -> Slot {
        loop {
            let receiver = {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.free > 0 && state.waiting.is_empty() {
                    state.free -= 1;
                    return Slot {
                        slots: Arc::clone(self),
                    };
                }
                let (sender, receiver) = oneshot::channel();
                state.waiting.push(group, sender);
                receiver
            };
            let mut wait = Wait {
                receiver,
                slots: Arc::clone(self),
                done: false,
            };
            let waiting_since = Instant::now();
            let granted = (&mut wait.receiver).await;
            wait.done = true;
            if granted.is_ok() {
                metrics::histogram!("quorum_handler_slot_wait_seconds")
                    .record(waiting_since.elapsed().as_secs_f64());
                return Slot {
                    slots: Arc::clone(self),
                };
            }
            // The sender went without sending, which `release` never does: wait again.
        }
    }

    /// A slot given back: to the waiting group that has used the least time, or freed.
    fn release(&self) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // A waiter that was dropped does not take it: the next one is tried.
        while let Some(sender) = state.waiting.pop_least_used(now) {
            if sender.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }
}

/// A waiter's side while it waits: if dropped after its slot was granted but before it
/// took it, the slot is given back.
struct Wait {
    receiver: oneshot::Receiver<()>,
    slots: Arc<HandlerSlots>,
    /// The waiter has taken what it was sent.
    done: bool,
}

impl Drop for Wait {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.receiver.close();
        if self.receiver.try_recv().is_ok() {
            self.slots.release();
        }
    }
}

/// A handler slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<HandlerSlots>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF_LIFE: Duration = Duration::from_secs(1);

    #[test]
    fn handler_time_halves_every_half_life() {
        let time = HandlerTime::new(HALF_LIFE);
        let start = Instant::now();
        time.charge(Duration::from_millis(800), start);
        assert!((time.used(start) - 0.8).abs() < 1e-9);
        assert!((time.used(start + HALF_LIFE) - 0.4).abs() < 1e-9);
        assert!((time.used(start + 3 * HALF_LIFE) - 0.1).abs() < 1e-9);
        time.charge(Duration::from_millis(100), start + 3 * HALF_LIFE);
        assert!((time.used(start + 3 * HALF_LIFE) - 0.2).abs() < 1e-9);
    }

    #[tokio::test]
    async fn free_slots_are_taken_at_once_and_counted() {
        let slots = HandlerSlots::new(2);
        let group = Arc::new(SlotGroup::new(HALF_LIFE));
        let first = slots.acquire(&group).await;
        let second = slots.acquire(&group).await;
        assert_eq!(slots.taken(), 2);
        drop(first);
        assert_eq!(slots.taken(), 1);
        drop(second);
        assert_eq!(slots.taken(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_given_back_goes_to_the_group_that_used_least() {
        let slots = HandlerSlots::new(1);
        let busy = Arc::new(SlotGroup::new(HALF_LIFE));
        let quiet = Arc::new(SlotGroup::new(HALF_LIFE));
        busy.time.charge(Duration::from_millis(500), Instant::now());
        let held = slots.acquire(&busy).await;
        // The busy group's handlers queue first, then one of the quiet group's.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, group) in [("busy 1", &busy), ("busy 2", &busy), ("quiet", &quiet)] {
            let (slots, group, order) = (Arc::clone(&slots), Arc::clone(group), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire(&group).await;
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }));
            tokio::task::yield_now().await;
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["quiet", "busy 1", "busy 2"]);
        assert_eq!(slots.taken(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_dropped_after_its_grant_hands_the_slot_on() {
        let slots = HandlerSlots::new(1);
        let group = Arc::new(SlotGroup::new(HALF_LIFE));
        let held = slots.acquire(&group).await;
        let mut dropped = Box::pin(slots.acquire(&group));
        assert!(futures::poll!(dropped.as_mut()).is_pending());
        let next = tokio::spawn({
            let (slots, group) = (Arc::clone(&slots), Arc::clone(&group));
            async move { drop(slots.acquire(&group).await) }
        });
        tokio::task::yield_now().await;
        // The slot is granted to the first waiter, which is dropped before it takes it.
        drop(held);
        drop(dropped);
        tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .expect("the slot was lost")
            .unwrap();
        assert_eq!(slots.taken(), 0);
    }
}
