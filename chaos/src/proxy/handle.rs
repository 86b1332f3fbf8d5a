//! [`ProxyHandle`]: the fault switch and the counters of one
//! [`FaultProxy`](super::FaultProxy), shared with whoever holds a clone.

use std::sync::Arc;

use tokio::sync::watch;

use super::fault::ProxyFault;
use super::proxy_stats::{Counters, ProxyStats};

/// A cheap cloneable handle on one [`FaultProxy`](super::FaultProxy)'s fault and counters.
///
/// Every clone controls the same proxy: switch its fault from a test while other tasks talk
/// through it ([`ProxyHandle::set`]) and read what it did ([`ProxyHandle::stats`]). A handle
/// may outlive its proxy; it then still reads the final counts, and setting a fault does
/// nothing. Get one with [`FaultProxy::handle`](super::FaultProxy::handle).
#[derive(Clone, Debug)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
}

/// The fault in force and the counters, shared by a proxy's tasks and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    faults: watch::Sender<FaultState>,
    pub(crate) counters: Counters,
}

/// The fault in force and how many times a fault was set, so that setting the same fault
/// again is visible (it restarts [`ProxyFault::ResetAfter`]'s count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FaultState {
    /// The fault in force.
    pub(crate) fault: ProxyFault,
    /// How many times [`ProxyHandle::set`] was called before this state.
    pub(crate) generation: u64,
}

impl Shared {
    /// A receiver that sees every later switch of fault (and the fault in force now).
    pub(crate) fn subscribe(&self) -> watch::Receiver<FaultState> {
        self.faults.subscribe()
    }

    /// The fault in force now.
    pub(crate) fn fault(&self) -> ProxyFault {
        self.faults.borrow().fault
    }
}

impl ProxyHandle {
    /// A handle on fresh shared state with `fault` in force.
    pub(crate) fn new(fault: ProxyFault) -> Self {
        let (faults, _) = watch::channel(FaultState {
            fault,
            generation: 0,
        });
        ProxyHandle {
            shared: Arc::new(Shared {
                faults,
                counters: Counters::default(),
            }),
        }
    }

    /// The state the proxy's tasks share.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Puts `fault` in force, at once, for every existing and future connection of the proxy
    /// (see [`ProxyFault`] for what a switch does to bytes in flight).
    pub fn set(&self, fault: ProxyFault) {
        tracing::debug!(?fault, "fault proxy: fault set");
        self.shared.faults.send_modify(|state| {
            state.fault = fault;
            state.generation = state.generation.wrapping_add(1);
        });
    }

    /// The fault in force.
    pub fn fault(&self) -> ProxyFault {
        self.shared.fault()
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_is_seen_by_every_clone_and_subscriber() {
        let handle = ProxyHandle::new(ProxyFault::Pass);
        let mut faults = handle.shared().subscribe();
        let clone = handle.clone();
        clone.set(ProxyFault::BlackHole);
        assert_eq!(handle.fault(), ProxyFault::BlackHole);
        assert!(faults.has_changed().unwrap());
        let state = *faults.borrow_and_update();
        assert_eq!(state.fault, ProxyFault::BlackHole);
        // Setting the same fault again is a new generation.
        handle.set(ProxyFault::BlackHole);
        assert_eq!(faults.borrow_and_update().generation, state.generation + 1);
    }
}
