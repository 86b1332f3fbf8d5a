//! The time a server connection is given: for its first frame, for each frame, and to be idle.
//!
//! Pure arithmetic on instants, so the rules are tested without sockets; the session sleeps
//! until what these return.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::ServerConfig;

/// Which deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No first frame within this time of the connection being accepted.
    FirstFrame(Duration),
    /// Nothing happened on the connection for this long.
    Idle,
}

/// The deadlines of one connection between frames.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionClock {
    /// Until the first frame's first byte has arrived: the latest time it may.
    first_frame_by: Option<Instant>,
    first_frame_timeout: Duration,
    idle_timeout: Option<Duration>,
    /// The last frame received or request answered.
    last_activity: Instant,
}

impl ConnectionClock {
    /// The clock of a connection accepted at `accepted`.
    pub(crate) fn new(config: &ServerConfig, accepted: Instant) -> Self {
        ConnectionClock {
            first_frame_by: Some(accepted + config.first_frame_timeout),
            first_frame_timeout: config.first_frame_timeout,
            idle_timeout: config.idle_timeout,
            last_activity: accepted,
        }
    }

    /// Something happened at `now`: a frame was received or a request answered.
    pub(crate) fn activity(&mut self, now: Instant) {
        self.last_activity = self.last_activity.max(now);
    }

    /// A frame's first byte arrived: the first-frame deadline gives way to the frame's own.
    pub(crate) fn frame_began(&mut self) {
        self.first_frame_by = None;
    }

    /// While waiting for the next frame's first byte, with `busy` telling whether requests are
    /// in flight: the deadline that applies, and what its expiry means.
    pub(crate) fn between_frames(&self, busy: bool) -> Option<(Instant, Expiry)> {
        let first = self
            .first_frame_by
            .map(|by| (by, Expiry::FirstFrame(self.first_frame_timeout)));
        let idle = self
            .idle_timeout
            .filter(|_| !busy)
            .map(|limit| (self.last_activity + limit, Expiry::Idle));
        match (first, idle) {
            (Some(first), Some(idle)) => Some(if idle.0 < first.0 { idle } else { first }),
            (first, idle) => first.or(idle),
        }
    }
}

/// The deadline of one frame, from its first byte.
#[derive(Debug, Clone)]
pub(crate) struct FrameClock {
    deadline: Instant,
    /// Time allowed so far (grows when the length is known and when reading pauses).
    allowed: Duration,
    min_receive_rate: u64,
    /// [`ServerConfig::frame_progress_timeout`].
    progress_timeout: Duration,
}

impl FrameClock {
    /// A frame whose first byte arrived at `began`.
    pub(crate) fn new(config: &ServerConfig, began: Instant) -> Self {
        FrameClock {
            deadline: began + config.frame_read_timeout,
            allowed: config.frame_read_timeout,
            min_receive_rate: config.min_receive_rate,
            progress_timeout: config.frame_progress_timeout,
        }
    }

    /// The frame's body is `length` bytes long: it gets the time to receive them at the
    /// minimum rate on top of the base timeout.
    pub(crate) fn length_known(&mut self, length: usize) {
        let rate = self.min_receive_rate.max(1) as f64;
        let extra = Duration::try_from_secs_f64(length as f64 / rate).unwrap_or(Duration::MAX);
        self.extend(extra);
    }

    /// The server did not read for `paused` (not the peer's doing): the deadline moves back.
    pub(crate) fn paused(&mut self, paused: Duration) {
        self.extend(paused);
    }

    fn extend(&mut self, by: Duration) {
        self.allowed = self.allowed.saturating_add(by);
        self.deadline = self
            .deadline
            .checked_add(by)
            .unwrap_or(self.deadline + Duration::from_secs(365 * 24 * 3600));
    }

    /// When the frame must be complete.
    #[cfg(test)]
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The latest a wait for the frame's next byte or next room, begun at `now`, may end: the
    /// frame's deadline, or sooner when the frame would go without progress for longer than
    /// [`ServerConfig::frame_progress_timeout`]. With it, the time that running out means was
    /// allowed, for the log.
    pub(crate) fn wait_until(&self, now: Instant) -> (Instant, Duration) {
        match now.checked_add(self.progress_timeout) {
            Some(by) if by < self.deadline => (by, self.progress_timeout),
            _ => (self.deadline, self.allowed),
        }
    }

    /// The time the frame has been allowed so far.
    #[cfg(test)]
    pub(crate) fn allowed(&self) -> Duration {
        self.allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig {
            first_frame_timeout: Duration::from_secs(5),
            frame_read_timeout: Duration::from_secs(2),
            min_receive_rate: 1000,
            idle_timeout: Some(Duration::from_secs(60)),
            ..ServerConfig::default()
        }
    }

    #[test]
    fn the_first_frame_deadline_applies_until_a_frame_begins() {
        let start = Instant::now();
        let mut clock = ConnectionClock::new(&config(), start);
        let five = Duration::from_secs(5);
        assert_eq!(
            clock.between_frames(false),
            Some((start + five, Expiry::FirstFrame(five)))
        );
        assert_eq!(
            clock.between_frames(true),
            Some((start + five, Expiry::FirstFrame(five)))
        );
        clock.frame_began();
        clock.activity(start + Duration::from_secs(1));
        assert_eq!(
            clock.between_frames(false),
            Some((start + Duration::from_secs(61), Expiry::Idle))
        );
        assert_eq!(clock.between_frames(true), None, "busy is not idle");
    }

    #[test]
    fn no_idle_timeout_means_no_deadline_once_served() {
        let config = ServerConfig {
            idle_timeout: None,
            ..config()
        };
        let mut clock = ConnectionClock::new(&config, Instant::now());
        clock.frame_began();
        assert_eq!(clock.between_frames(false), None);
    }

    #[test]
    fn a_frame_gets_the_base_time_plus_its_length_at_the_minimum_rate() {
        let start = Instant::now();
        let mut frame = FrameClock::new(&config(), start);
        assert_eq!(frame.deadline(), start + Duration::from_secs(2));
        frame.length_known(3000);
        assert_eq!(frame.deadline(), start + Duration::from_secs(5));
        frame.paused(Duration::from_millis(500));
        assert_eq!(frame.deadline(), start + Duration::from_millis(5500));
        assert_eq!(frame.allowed(), Duration::from_millis(5500));
    }

    #[test]
    fn a_wait_ends_at_the_frame_deadline_or_after_the_progress_timeout() {
        let config = ServerConfig {
            frame_progress_timeout: Duration::from_secs(1),
            ..config()
        };
        let start = Instant::now();
        let mut frame = FrameClock::new(&config, start);
        frame.length_known(3000);
        // A wait that starts now ends after 1 s without progress, well before the frame's
        // deadline (5 s)...
        assert_eq!(
            frame.wait_until(start),
            (start + Duration::from_secs(1), Duration::from_secs(1))
        );
        // ... and one that starts 4.5 s in ends at the deadline.
        let late = start + Duration::from_millis(4500);
        assert_eq!(
            frame.wait_until(late),
            (start + Duration::from_secs(5), Duration::from_secs(5))
        );
    }
}
