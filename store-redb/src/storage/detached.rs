//! Commits whose caller stopped waiting (detached): the reads that start afterwards wait for
//! them, so a caller cancelled mid-commit can never let another read the state from before and
//! write over it, while commits whose callers wait block no read.

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;

/// The count of detached commits, and a signal when one lands.
#[derive(Default)]
pub(super) struct Detached {
    /// Detached commits not landed yet (may dip below zero for a moment, see [`CommitGuard`]).
    pub(super) count: AtomicI64,
    pub(super) landed: tokio::sync::Notify,
}

impl Detached {
    /// Waits until no detached commit is in flight.
    pub(super) async fn settled(&self) {
        loop {
            let landed = self.landed.notified();
            tokio::pin!(landed);
            // Registered before checking, so a landing in between is not missed.
            landed.as_mut().enable();
            if self.count.load(Ordering::Acquire) <= 0 {
                return;
            }
            landed.await;
        }
    }
}

/// A commit's state: running, done, or running with nobody waiting (detached).
pub(super) const RUNNING: u8 = 0;
pub(super) const DONE: u8 = 1;
pub(super) const DETACHED: u8 = 2;

/// Held by a `write_batch` caller while it waits: dropped before the commit is done, it counts
/// the commit as detached (synchronously, so any read that starts afterwards waits for it).
pub(super) struct CommitGuard {
    pub(super) state: Arc<AtomicU8>,
    pub(super) detached: Arc<Detached>,
}

impl Drop for CommitGuard {
    fn drop(&mut self) {
        if self
            .state
            .compare_exchange(RUNNING, DETACHED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.detached.count.fetch_add(1, Ordering::AcqRel);
        }
    }
}
