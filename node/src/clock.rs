//! Time sources: the system clock, and a manual clock that tests move by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use quorum_core::{TimeDelta, Timestamp};

/// Where a node reads the current time, and how it waits for a time to come.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Completes once this clock reads at least `deadline` (at once if it already does).
    ///
    /// The default sleeps on tokio's timer for the remaining time and checks the clock again,
    /// so a clock that runs at another pace than tokio's is still waited for exactly.
    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'_, ()> {
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

    fn sleep_until(&self, deadline: Timestamp) -> BoxFuture<'_, ()> {
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
}
