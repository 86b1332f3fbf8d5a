//! [`FaultHandle`]: the switch and the counters of one [`MemoryNode`](crate::MemoryNode),
//! shared with whoever holds a clone.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use quorum_core::protocol::RequestKind;
use quorum_core::TransportErrorKind;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::call_stats::{CallStats, Counters};
use crate::fault::{Fault, NotificationFault};

/// A cloneable handle on one [`MemoryNode`](crate::MemoryNode)'s fault and call counts.
///
/// Every clone controls the same node: switch its fault from a test while other tasks are
/// talking to it ([`FaultHandle::set_fault`]), and read what it was asked
/// ([`FaultHandle::stats`]). Get one with [`MemoryNode::handle`](crate::MemoryNode::handle).
#[derive(Clone, Debug)]
pub struct FaultHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    counters: Counters,
}

/// The fault in force and the generator its random choices come from, under one lock so that a
/// given seed and sequence of calls always gives the same choices.
#[derive(Debug)]
struct State {
    fault: Fault,
    /// What happens to the notifications the node pushes.
    notification_fault: NotificationFault,
    rng: ChaCha8Rng,
}

/// What the transport does with a call that starts now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Admission {
    /// Fail at once with this transport error.
    Fail(TransportErrorKind),
    /// Never answer.
    Hang,
    /// Wait `delay` if any, then serve the call under `fault` (a Byzantine fault or
    /// [`Fault::Honest`]).
    Serve {
        /// How long to wait first.
        delay: Option<Duration>,
        /// How the node treats the request and its answer.
        fault: Fault,
    },
}

impl FaultHandle {
    /// A handle with `fault` in force and a generator seeded with `seed`.
    pub(crate) fn new(fault: Fault, seed: u64) -> Self {
        FaultHandle {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    fault,
                    notification_fault: NotificationFault::Honest,
                    rng: ChaCha8Rng::seed_from_u64(seed),
                }),
                counters: Counters::default(),
            }),
        }
    }

    /// The state, even if a thread panicked while holding it (it is always consistent: every
    /// update is a single assignment).
    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts `fault` in force for the calls that start from now on. The seeded generator is not
    /// reset: the sequence of random choices goes on where it was.
    pub fn set_fault(&self, fault: Fault) {
        self.state().fault = fault;
    }

    /// The fault in force. After a [`Fault::CrashAfter`], this shows the honest calls left, or
    /// [`Fault::Offline`] once the node crashed.
    pub fn fault(&self) -> Fault {
        self.state().fault
    }

    /// Puts `fault` in force for the notifications pushed from now on, on every open
    /// subscription of the node.
    pub fn set_notification_fault(&self, fault: NotificationFault) {
        self.state().notification_fault = fault;
    }

    /// The notification fault in force.
    pub fn notification_fault(&self) -> NotificationFault {
        self.state().notification_fault
    }

    /// A draw in `0.0..1.0` from the seeded generator.
    pub(crate) fn random_unit(&self) -> f64 {
        self.state().rng.gen()
    }

    /// What the node was asked so far (since it was built or since [`FaultHandle::reset_stats`]).
    pub fn stats(&self) -> CallStats {
        self.shared.counters.snapshot()
    }

    /// Sets every count back to zero.
    pub fn reset_stats(&self) {
        self.shared.counters.reset();
    }

    /// Whether `self` and `other` control the same node.
    pub fn same_node(&self, other: &FaultHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Counts a call (a request of kind `request`) and decides, under the fault in force, what
    /// happens to it. Advances [`Fault::CrashAfter`] and draws [`Fault::Flaky`]'s coin.
    pub(crate) fn admit(&self, request: RequestKind) -> Admission {
        let counters = &self.shared.counters;
        counters.record_call(request);
        let admission = {
            let mut state = self.state();
            match state.fault {
                Fault::Offline => Admission::Fail(TransportErrorKind::Unavailable),
                Fault::Hang => Admission::Hang,
                Fault::Slow(delay) => Admission::Serve {
                    delay: Some(delay),
                    fault: Fault::Honest,
                },
                Fault::Flaky(probability) => {
                    let probability = if probability.is_nan() {
                        0.0
                    } else {
                        probability.clamp(0.0, 1.0)
                    };
                    // `gen::<f64>()` is in [0, 1): probability 1 always fails, 0 never does.
                    if state.rng.gen::<f64>() < probability {
                        Admission::Fail(TransportErrorKind::Io)
                    } else {
                        Admission::Serve {
                            delay: None,
                            fault: Fault::Honest,
                        }
                    }
                }
                Fault::CrashAfter(0) => {
                    state.fault = Fault::Offline;
                    Admission::Fail(TransportErrorKind::Unavailable)
                }
                Fault::CrashAfter(left) => {
                    state.fault = Fault::CrashAfter(left - 1);
                    Admission::Serve {
                        delay: None,
                        fault: Fault::Honest,
                    }
                }
                fault => Admission::Serve { delay: None, fault },
            }
        };
        match admission {
            Admission::Fail(kind) => {
                counters.record_failed();
                tracing::debug!(
                    method = request.method_name(),
                    ?kind,
                    "fault injected: call failed"
                );
            }
            Admission::Hang => {
                counters.record_hung();
                tracing::debug!(method = request.method_name(), "fault injected: call hangs");
            }
            Admission::Serve { .. } => {}
        }
        admission
    }

    /// 32 bytes from the seeded generator.
    pub(crate) fn random_bytes(&self) -> [u8; 32] {
        self.state().rng.gen()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_after_counts_down_then_stays_offline() {
        let handle = FaultHandle::new(Fault::CrashAfter(2), 0);
        let honest = Admission::Serve {
            delay: None,
            fault: Fault::Honest,
        };
        assert_eq!(handle.admit(RequestKind::DownloadBlob), honest);
        assert_eq!(handle.fault(), Fault::CrashAfter(1));
        assert_eq!(handle.admit(RequestKind::DownloadBlob), honest);
        let offline = Admission::Fail(TransportErrorKind::Unavailable);
        assert_eq!(handle.admit(RequestKind::DownloadBlob), offline);
        assert_eq!(handle.fault(), Fault::Offline);
        assert_eq!(handle.admit(RequestKind::DownloadBlob), offline);
        let stats = handle.stats();
        assert_eq!(stats.calls(RequestKind::DownloadBlob), 4);
        assert_eq!(stats.failed, 2);
    }

    #[test]
    fn flaky_bounds_and_nan() {
        let handle = FaultHandle::new(Fault::Flaky(1.5), 3);
        for _ in 0..20 {
            assert_eq!(
                handle.admit(RequestKind::UploadBlob),
                Admission::Fail(TransportErrorKind::Io)
            );
        }
        for p in [0.0, -1.0, f64::NAN] {
            handle.set_fault(Fault::Flaky(p));
            for _ in 0..20 {
                assert!(matches!(
                    handle.admit(RequestKind::UploadBlob),
                    Admission::Serve { .. }
                ));
            }
        }
    }

    #[test]
    fn clones_share_the_node() {
        let handle = FaultHandle::new(Fault::Honest, 0);
        let clone = handle.clone();
        clone.set_fault(Fault::Hang);
        assert_eq!(handle.fault(), Fault::Hang);
        assert_eq!(handle.admit(RequestKind::MissingBlobIds), Admission::Hang);
        assert_eq!(clone.stats().hung, 1);
        assert!(handle.same_node(&clone));
        assert!(!handle.same_node(&FaultHandle::new(Fault::Honest, 0)));
    }
}
