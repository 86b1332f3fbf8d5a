//! Write batches whose caller stopped waiting. A batch runs in a task of its own; if its
//! caller's future is dropped before the batch is done, the batch goes on (it may already be
//! committing) and counts as detached until it is done. Every read waits until no batch is
//! detached, so a caller that gave up can never let a later reader see the state from before
//! its batch while the batch still lands afterwards (the contract of `Storage::write_batch`).
//! Batches whose callers still wait hold back no read.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// The number of detached batches not done yet.
#[derive(Debug)]
pub(crate) struct Detached {
    pending: watch::Sender<usize>,
}

impl Default for Detached {
    fn default() -> Self {
        Detached {
            pending: watch::Sender::new(0),
        }
    }
}

/// A batch is running, done, or running with nobody waiting.
const RUNNING: u8 = 0;
const DONE: u8 = 1;
const DETACHED: u8 = 2;

impl Detached {
    /// Waits until no detached batch is running.
    pub(crate) async fn settled(&self) {
        let mut pending = self.pending.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = pending.wait_for(|count| *count == 0).await;
    }

    /// The two halves of one batch's bookkeeping: the caller's guard and the task's mark.
    pub(crate) fn track(self: &Arc<Self>) -> (WaitGuard, DoneMark) {
        let state = Arc::new(AtomicU8::new(RUNNING));
        (
            WaitGuard {
                state: state.clone(),
                detached: self.clone(),
            },
            DoneMark {
                state,
                detached: self.clone(),
            },
        )
    }
}

/// Held by the caller while it waits; dropped before the batch is done, it counts the batch as
/// detached (at once, so a read that starts afterwards waits for it).
pub(crate) struct WaitGuard {
    state: Arc<AtomicU8>,
    detached: Arc<Detached>,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if self
            .state
            .compare_exchange(RUNNING, DETACHED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.detached.pending.send_modify(|count| *count += 1);
        }
    }
}

/// Held by the batch's task; dropped when the batch is done (landed, failed or panicked).
pub(crate) struct DoneMark {
    state: Arc<AtomicU8>,
    detached: Arc<Detached>,
}

impl Drop for DoneMark {
    fn drop(&mut self) {
        if self.state.swap(DONE, Ordering::AcqRel) == DETACHED {
            self.detached
                .pending
                .send_modify(|count| *count = count.saturating_sub(1));
        }
    }
}
