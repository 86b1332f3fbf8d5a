//! Time sources: the system clock, and a manual clock that tests move by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use quorum_core::{TimeDelta, Timestamp};

/// Where a node reads the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Timestamp(micros)
    }
}

/// A clock that only moves when told; clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            micros: Arc::new(AtomicU64::new(start.0)),
        }
    }

    /// Sets the time.
    pub fn set(&self, time: Timestamp) {
        self.micros.store(time.0, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, delta: TimeDelta) {
        self.micros.fetch_add(delta.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared() {
        let clock = ManualClock::new(Timestamp(5));
        let other = clock.clone();
        other.advance(TimeDelta(10));
        assert_eq!(clock.now(), Timestamp(15));
        clock.set(Timestamp(1));
        assert_eq!(other.now(), Timestamp(1));
        assert!(SystemClock.now() > Timestamp(1_600_000_000_000_000));
    }
}
