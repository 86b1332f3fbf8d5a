//! Time sources: the system clock, and a manual clock that tests move by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quorum_core::{TimeDelta, Timestamp};

/// A future a [`Clock`] returns from [`Clock::sleep_until`].
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where a node reads the current time, and how it waits for a time to come.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Completes once this clock reads at least `deadline` (at once if it already does).
    ///
    /// The default sleeps on tokio's timer for the remaining time and checks the clock again,
    /// so a clock that runs at another pace than tokio's is still waited for exactly.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let now = self.now();
                if now >= deadline {
                    return;
                }
                let remaining = Duration::from_micros(deadline.0 - now.0);
                // Tokio's timer has millisecond granularity: never sleep for nothing.
                tokio::time::sleep(remaining.max(Duration::from_millis(1))).await;
            }
        })
    }
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

/// A clock that only moves when told; clones share the same time. A sleep on it ends when the
/// clock is moved past its deadline, however much tokio time passes.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
    moved: Arc<tokio::sync::Notify>,
}

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            micros: Arc::new(AtomicU64::new(start.0)),
            moved: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Sets the time.
    pub fn set(&self, time: Timestamp) {
        self.micros.store(time.0, Ordering::SeqCst);
        self.moved.notify_waiters();
    }

    /// Moves the time forward.
    pub fn advance(&self, delta: TimeDelta) {
        self.micros.fetch_add(delta.0, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                // Register before reading, so a move between the two is not missed.
                let moved = self.moved.notified();
                if self.now() >= deadline {
                    return;
                }
                moved.await;
            }
        })
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
    async fn manual_clock_sleeps_until_moved() {
        let clock = ManualClock::new(Timestamp(100));
        let sleeper = clock.clone();
        let sleep = tokio::spawn(async move { sleeper.sleep_until(Timestamp(300)).await });
        // Tokio time alone does not end the sleep.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!sleep.is_finished());
        clock.advance(TimeDelta(150));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!sleep.is_finished());
        clock.set(Timestamp(300));
        tokio::time::timeout(Duration::from_secs(1), sleep)
            .await
            .expect("the sleep ends once the clock reaches its deadline")
            .expect("no panic");
        // A deadline already passed returns at once.
        clock.sleep_until(Timestamp(5)).await;
    }

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
