//! [`Pacer`]: when one direction of a connection may send its next slice under
//! [`ProxyFault::Bandwidth`](super::ProxyFault::Bandwidth). Pure: the caller passes the time.

use std::time::Duration;

use tokio::time::Instant;

use super::CHUNK_BYTES;

/// Slices per second of pacing: each slice is about `1 s / SLICES_PER_SECOND` worth of bytes.
const SLICES_PER_SECOND: u64 = 100;

/// How far sending may run behind schedule and catch up (a burst of that much extra), so that
/// timer granularity and scheduling delays do not lower the throughput below the cap.
const CATCH_UP: Duration = Duration::from_millis(10);

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// The schedule of one direction: the earliest time its next slice may go.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pacer {
    next_send: Option<Instant>,
}

impl Pacer {
    /// When the next slice may go: `None` for "now" (nothing was sent yet).
    pub(crate) fn next_send(&self) -> Option<Instant> {
        self.next_send
    }

    /// How many bytes the next slice may carry at `bytes_per_second` (at least 1, at most a
    /// read chunk).
    pub(crate) fn slice_len(bytes_per_second: u64) -> usize {
        let bytes = (bytes_per_second / SLICES_PER_SECOND).max(1);
        usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(CHUNK_BYTES)
    }

    /// Records that `len` bytes went at `now` under a cap of `bytes_per_second` (not 0): the
    /// next slice waits for the time those bytes take at that rate.
    pub(crate) fn record_sent(&mut self, len: usize, bytes_per_second: u64, now: Instant) {
        let floor = now.checked_sub(CATCH_UP).unwrap_or(now);
        let start = self.next_send.map_or(floor, |next| next.max(floor));
        let nanos = u128::try_from(len)
            .unwrap_or(u128::MAX)
            .saturating_mul(NANOS_PER_SECOND)
            / u128::from(bytes_per_second.max(1));
        let took = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        // Past the clock's range (centuries; a slice is at most `CHUNK_BYTES`): no wait rather
        // than a panic.
        self.next_send = Some(start.checked_add(took).unwrap_or(start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_ten_milliseconds_worth_within_bounds() {
        assert_eq!(Pacer::slice_len(1), 1);
        assert_eq!(Pacer::slice_len(1_000), 10);
        assert_eq!(Pacer::slice_len(1_000_000), 10_000);
        assert_eq!(Pacer::slice_len(u64::MAX), CHUNK_BYTES);
    }

    #[test]
    fn schedule_follows_the_rate_and_catches_up_only_a_little() {
        let t0 = Instant::now();
        let mut pacer = Pacer::default();
        assert_eq!(pacer.next_send(), None);
        // 1,000 bytes at 10,000 B/s take 100 ms; the first slice may start 10 ms early.
        pacer.record_sent(1_000, 10_000, t0);
        assert_eq!(pacer.next_send(), Some(t0 + Duration::from_millis(90)));
        // Sent on schedule: the next one follows on.
        pacer.record_sent(1_000, 10_000, t0 + Duration::from_millis(90));
        assert_eq!(pacer.next_send(), Some(t0 + Duration::from_millis(190)));
        // Idle for a second: only `CATCH_UP` of credit is kept.
        let later = t0 + Duration::from_secs(2);
        pacer.record_sent(1_000, 10_000, later);
        assert_eq!(pacer.next_send(), Some(later + Duration::from_millis(90)));
    }

    #[test]
    fn huge_slices_do_not_overflow() {
        let mut pacer = Pacer::default();
        pacer.record_sent(usize::MAX, 1, Instant::now());
        assert!(pacer.next_send().is_some());
    }
}
