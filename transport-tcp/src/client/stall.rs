//! Detecting a server that begins a response frame and does not finish it in time (the
//! client's side; the server times its peers with `deadline.rs`).

use std::time::Duration;

use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};
use tokio_util::codec::FramedRead;

use crate::wire::codec::FrameCodec;

/// Checks run this many times per frame read timeout.
const CHECKS_PER_TIMEOUT: u32 = 4;
/// Shortest interval between two checks.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(1);

/// Times partly received frames against a timeout, on a fixed grid of checks.
///
/// A frame is noticed at the first check after its first byte and declared stalled at the first
/// check a whole timeout later: between 1 and 1.5 timeouts after it began.
pub(crate) struct StallWatch {
    timeout: Duration,
    checks: Interval,
    /// When the current partial frame was first noticed.
    partial_since: Option<Instant>,
}

impl StallWatch {
    pub(crate) fn new(timeout: Duration) -> Self {
        let every = (timeout / CHECKS_PER_TIMEOUT).max(MIN_CHECK_INTERVAL);
        let mut checks = interval_at(Instant::now() + every, every);
        checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        StallWatch {
            timeout,
            checks,
            partial_since: None,
        }
    }

    /// The timeout this watch enforces.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Waits for the next check and returns its scheduled time.
    pub(crate) async fn tick(&mut self) -> Instant {
        self.checks.tick().await
    }

    /// At a check made at `now`: whether the frame partly received (if `partial`) has been so for
    /// the whole timeout.
    pub(crate) fn is_stalled(&mut self, now: Instant, partial: bool) -> bool {
        if !partial {
            self.partial_since = None;
            return false;
        }
        let since = *self.partial_since.get_or_insert(now);
        now.saturating_duration_since(since) >= self.timeout
    }

    /// After a complete frame: a frame already begun behind it is timed from now.
    pub(crate) fn frame_received(&mut self, partial: bool) {
        self.partial_since = partial.then(Instant::now);
    }
}

/// Whether part of a frame has been received: bytes wait in the read buffer, or the codec has
/// read a length prefix and waits for the body.
pub(crate) fn has_partial_frame<R, T>(frames: &FramedRead<R, FrameCodec<T>>) -> bool {
    frames.decoder().is_mid_frame() || !frames.read_buffer().is_empty()
}
