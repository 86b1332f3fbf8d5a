//! [`TokioClock`]: a node clock that follows tokio's time, for tests with paused time.

use quorum_core::Timestamp;
use quorum_node::Clock;

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
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_sleeps_on_its_own_time() {
        // A clock 2 s ahead reaches a deadline 3 s away on it after 1 s of tokio time.
        let clock = TokioClock::new(Timestamp(0)).with_offset(2_000_000);
        let start = tokio::time::Instant::now();
        clock.sleep_until(Timestamp(3_000_000)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(clock.now() >= Timestamp(3_000_000));
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
