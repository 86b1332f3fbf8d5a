//! The cores, shared between address groups by handler time (DESIGN §6.1): a handler is
//! polled only while it holds one of [`ServerConfig::max_polling_handlers`] turns, and when
//! every turn is taken, the next one goes to the waiting group that used the least handler
//! time lately ([`HandlerTime`]).
//!
//! A turn lasts one poll: from the moment a handler's future is polled until it returns
//! `Pending` or its answer, usually well under a millisecond. So however many handlers a group
//! has running, a handler of a group that has asked little waits for at most one poll of
//! someone else's before it runs, rather than behind every runnable task of the flood. Tasks
//! that are not handlers (the Worker's own, decoding, writing) are not gated.
//!
//! [`ServerConfig::max_polling_handlers`]: crate::ServerConfig::max_polling_handlers

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::time::Instant;

use crate::server::handler_slots::{FairQueue, SlotGroup};

/// One handler waiting for a turn: whether it was granted one, and how to wake it.
#[derive(Debug, Default)]
struct Ticket {
    granted: bool,
    waker: Option<Waker>,
}

#[derive(Debug)]
struct State {
    free: usize,
    waiting: FairQueue<Arc<Mutex<Ticket>>>,
}

/// The turns of the server's handlers on the cores.
#[derive(Debug)]
pub(crate) struct PollGate {
    state: Mutex<State>,
}

impl PollGate {
    /// `turns` turns, all free.
    pub(crate) fn new(turns: usize) -> Arc<Self> {
        Arc::new(PollGate {
            state: Mutex::new(State {
                free: turns,
                waiting: FairQueue::default(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A turn at once if one is free and nobody waits; otherwise a ticket in `group`'s queue,
    /// woken through `waker` once granted.
    fn take_or_queue(&self, group: &Arc<SlotGroup>, waker: &Waker) -> Option<Arc<Mutex<Ticket>>> {
        let mut state = self.state();
        if state.free > 0 && state.waiting.is_empty() {
            state.free -= 1;
            return None;
        }
        let ticket = Arc::new(Mutex::new(Ticket {
            granted: false,
            waker: Some(waker.clone()),
        }));
        state.waiting.push(group, Arc::clone(&ticket));
        Some(ticket)
    }

    /// A turn given back: granted to the first waiter of the group that used the least time,
    /// or freed.
    fn give_back(&self) {
        let now = Instant::now();
        let mut state = self.state();
        let Some(ticket) = state.waiting.pop_least_used(now) else {
            state.free += 1;
            return;
        };
        let waker = {
            let mut ticket = ticket.lock().unwrap_or_else(PoisonError::into_inner);
            ticket.granted = true;
            ticket.waker.take()
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// A waiter gone: out of its queue, or, if it was granted a turn it did not use, the turn
    /// goes on.
    fn leave(&self, group: &SlotGroup, ticket: &Arc<Mutex<Ticket>>) {
        let mut state = self.state();
        let granted = ticket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .granted;
        if granted {
            drop(state);
            self.give_back();
            return;
        }
        state
            .waiting
            .remove_from(group, |queued| Arc::ptr_eq(queued, ticket));
    }
}

/// A handler's work, polled only in turns of the [`PollGate`], its time charged to its group.
pub(crate) struct Metered<F> {
    work: Pin<Box<F>>,
    gate: Arc<PollGate>,
    group: Arc<SlotGroup>,
    /// While waiting for a turn.
    ticket: Option<Arc<Mutex<Ticket>>>,
}

impl<F: Future> Metered<F> {
    /// `work`, to run in turns of `gate` for `group`.
    pub(crate) fn new(work: F, gate: Arc<PollGate>, group: Arc<SlotGroup>) -> Self {
        Metered {
            work: Box::pin(work),
            gate,
            group,
            ticket: None,
        }
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        match &this.ticket {
            Some(ticket) => {
                let mut ticket = ticket.lock().unwrap_or_else(PoisonError::into_inner);
                if !ticket.granted {
                    ticket.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
            None => {
                if let Some(ticket) = this.gate.take_or_queue(&this.group, cx.waker()) {
                    this.ticket = Some(ticket);
                    return Poll::Pending;
                }
            }
        }
        // This handler holds a turn now.
        this.ticket = None;
        let work = &mut this.work;
        let polled = this.group.metered(|| work.as_mut().poll(cx));
        this.gate.give_back();
        polled
    }
}

impl<F> Drop for Metered<F> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.gate.leave(&self.group, &ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const HALF_LIFE: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn work_runs_and_is_charged_to_its_group() {
        let gate = PollGate::new(1);
        let group = Arc::new(SlotGroup::new(Duration::from_secs(3600)));
        let answer = Metered::new(
            async {
                std::thread::sleep(Duration::from_millis(20));
                tokio::task::yield_now().await;
                7
            },
            Arc::clone(&gate),
            Arc::clone(&group),
        )
        .await;
        assert_eq!(answer, 7);
        assert!(group.time.used(Instant::now()) >= 0.019);
        assert_eq!(gate.state().free, 1, "the turn was given back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_goes_to_the_group_that_used_least_and_a_dropped_waiter_passes_it_on() {
        let gate = PollGate::new(1);
        let busy = Arc::new(SlotGroup::new(HALF_LIFE));
        let quiet = Arc::new(SlotGroup::new(HALF_LIFE));
        busy.time.charge(Duration::from_millis(500), Instant::now());
        // The one turn is held: every handler below waits.
        gate.state().free = 0;
        let waker = futures::task::noop_waker();
        let mut context = Context::from_waker(&waker);
        let mut first = Box::pin(Metered::new(
            async { "busy 1" },
            Arc::clone(&gate),
            Arc::clone(&busy),
        ));
        let mut second = Box::pin(Metered::new(
            async { "busy 2" },
            Arc::clone(&gate),
            Arc::clone(&busy),
        ));
        let mut third = Box::pin(Metered::new(
            async { "quiet" },
            Arc::clone(&gate),
            Arc::clone(&quiet),
        ));
        assert!(first.as_mut().poll(&mut context).is_pending());
        assert!(second.as_mut().poll(&mut context).is_pending());
        assert!(third.as_mut().poll(&mut context).is_pending());
        // The turn given back goes to the quiet group, though it came last.
        gate.give_back();
        assert!(first.as_mut().poll(&mut context).is_pending());
        assert_eq!(third.as_mut().poll(&mut context), Poll::Ready("quiet"));
        // Its turn went on to busy 1, which is dropped before it polls: busy 2 gets it.
        drop(first);
        assert_eq!(second.as_mut().poll(&mut context), Poll::Ready("busy 2"));
        assert_eq!(gate.state().free, 1);
        assert!(gate.state().waiting.is_empty());
    }
}
