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

/// A clock that follows tokio's time, so that tests with paused time (`start_paused`) are
/// deterministic: it reads `start + offset + (tokio now − tokio start)`. An offset makes a
/// node's clock run ahead (positive) or behind (negative) of the others.
#[derive(Clone, Debug)]
pub struct TokioClock {
    start: Timestamp,
    origin: tokio::time::Instant,
    offset_micros: i64,
}

impl TokioClock {
    /// A clock reading `start` now.
    pub fn new(start: Timestamp) -> Self {
        TokioClock {
            start,
            origin: tokio::time::Instant::now(),
            offset_micros: 0,
        }
    }

    /// The same clock, shifted by `offset_micros` (negative: behind).
    pub fn with_offset(&self, offset_micros: i64) -> Self {
        TokioClock {
            offset_micros,
            ..self.clone()
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        let base = self.start.0.saturating_add(elapsed);
        Timestamp(base.saturating_add_signed(self.offset_micros))
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

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new(Timestamp(1_000));
        let behind = clock.with_offset(-500);
        // Tokio's timer has millisecond granularity.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        assert_eq!(clock.now(), Timestamp(251_000));
        assert_eq!(behind.now(), Timestamp(250_500));
    }
}
