//! A validator clock for testing only: the system clock shifted by an offset that a file holds
//! and that may change while the validator runs (`quorum validator
//! --testing-clock-offset-file`). Chaos runs use it for clock offsets and jumps; a real
//! validator never should.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quorum_core::Timestamp;
use quorum_node::{Clock, SystemClock};

/// How often the offset file is read again.
const REREAD_EVERY: Duration = Duration::from_millis(100);

/// The system clock plus an offset in milliseconds (behind when negative), read from a file
/// every [`REREAD_EVERY`]. A file that is missing or does not hold an integer leaves the
/// offset as it was (0 at first).
#[derive(Debug)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    /// A clock following the offset in `path`, with the task that re-reads it (it ends when
    /// the clock is dropped).
    pub fn follow(path: PathBuf) -> Arc<OffsetClock> {
        let clock = Arc::new(OffsetClock {
            offset_ms: AtomicI64::new(read_offset(&path).unwrap_or(0)),
        });
        let weak = Arc::downgrade(&clock);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REREAD_EVERY).await;
                let Some(clock) = weak.upgrade() else { return };
                if let Some(offset) = read_offset(&path) {
                    let before = clock.offset_ms.swap(offset, Ordering::Relaxed);
                    if before != offset {
                        tracing::warn!(offset_ms = offset, "testing clock offset changed");
                    }
                }
            }
        });
        clock
    }
}

/// The offset `path` holds, if it holds one.
fn read_offset(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now().0;
        let offset = self.offset_ms.load(Ordering::Relaxed).saturating_mul(1_000);
        Timestamp(now.saturating_add_signed(offset))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// How far `clock` reads from the system clock, in milliseconds.
    fn offset_of(clock: &OffsetClock) -> i64 {
        let micros = i128::from(clock.now().0) - i128::from(SystemClock.now().0);
        (micros / 1_000) as i64
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_its_file_and_ignores_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offset");
        std::fs::write(&path, "5000\n").unwrap();
        let clock = OffsetClock::follow(path.clone());
        assert!((offset_of(&clock) - 5_000).abs() < 1_000);
        std::fs::write(&path, "-2000").unwrap();
        tokio::time::sleep(REREAD_EVERY * 3).await;
        assert!((offset_of(&clock) + 2_000).abs() < 1_000);
        // A file that does not hold an integer leaves the offset as it was.
        std::fs::write(&path, "soon").unwrap();
        tokio::time::sleep(REREAD_EVERY * 3).await;
        assert!((offset_of(&clock) + 2_000).abs() < 1_000);
    }
}
