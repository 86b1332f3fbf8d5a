//! Rate-limited reporting of refused connections, failed `accept`s and connections closed for
//! the peer's misbehaviour (bad frames, stalls, responses not read): under a flood, one line
//! per interval that says how many there were, instead of one line each.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use crate::server::connection_caps::Refusal;

/// What happened since the last line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Connections refused because the server held its maximum.
    pub(crate) over_total: u64,
    /// Connections refused because their address held its maximum.
    pub(crate) over_per_ip: u64,
    /// The last address refused for that.
    pub(crate) last_ip: Option<IpAddr>,
    /// `accept` calls that failed.
    pub(crate) accept_errors: u64,
    /// The last of their errors.
    pub(crate) last_error: Option<String>,
    /// Connections closed for the peer's misbehaviour.
    pub(crate) closed: u64,
    /// The last peer closed for that.
    pub(crate) last_closed_peer: Option<SocketAddr>,
    /// Why it was closed.
    pub(crate) last_close_reason: Option<String>,
}

impl Summary {
    /// The summary of one connection closed for misbehaviour and nothing else: `(peer,
    /// reason)`, which is logged as it is rather than as a count.
    pub(crate) fn lone_closing(&self) -> Option<(SocketAddr, &str)> {
        let only_that = self.closed == 1
            && self.over_total == 0
            && self.over_per_ip == 0
            && self.accept_errors == 0;
        match (&self.last_closed_peer, &self.last_close_reason) {
            (Some(peer), Some(reason)) if only_that => Some((*peer, reason)),
            _ => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.over_total == 0 && self.over_per_ip == 0 && self.accept_errors == 0 && self.closed == 0
    }

    /// Logs the summary as one warning.
    pub(crate) fn log(&self, interval: Duration) {
        warn!(
            refused_over_total = self.over_total,
            refused_over_per_ip = self.over_per_ip,
            last_refused_ip = %Shown(&self.last_ip),
            accept_errors = self.accept_errors,
            last_accept_error = %Shown(&self.last_error),
            closed_for_misbehaviour = self.closed,
            last_closed_peer = %Shown(&self.last_closed_peer),
            last_close_reason = %Shown(&self.last_close_reason),
            ?interval,
            "connections refused, accept failing or peers closed for misbehaving (at most one such line per interval)"
        );
    }
}

/// Shows `-` for a missing value.
struct Shown<'a, T>(&'a Option<T>);

impl<T: fmt::Display> fmt::Display for Shown<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Gathers events and says when to log them: the first at once, then at most one summary per
/// interval. Pure: the caller passes the time and logs what it is handed.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    interval: Duration,
    /// When the last line was logged.
    last_line: Option<Instant>,
    pending: Summary,
}

impl RefusalLog {
    pub(crate) fn new(interval: Duration) -> Self {
        RefusalLog {
            interval,
            last_line: None,
            pending: Summary::default(),
        }
    }

    /// The interval between two lines.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Records a refused connection at `now`; returns the summary to log now, if a line is due.
    pub(crate) fn refused(&mut self, refusal: Refusal, now: Instant) -> Option<Summary> {
        match refusal {
            Refusal::Total { .. } => self.pending.over_total += 1,
            Refusal::PerIp { ip, .. } => {
                self.pending.over_per_ip += 1;
                self.pending.last_ip = Some(ip);
            }
        }
        self.flush(now)
    }

    /// Records a failed `accept` at `now`; returns the summary to log now, if a line is due.
    pub(crate) fn accept_failed(
        &mut self,
        error: &impl fmt::Display,
        now: Instant,
    ) -> Option<Summary> {
        self.pending.accept_errors += 1;
        self.pending.last_error = Some(error.to_string());
        self.flush(now)
    }

    /// Records a connection of `peer` closed at `now` for the peer's misbehaviour (`reason`);
    /// returns the summary to log now, if a line is due.
    pub(crate) fn closed(
        &mut self,
        peer: SocketAddr,
        reason: &impl fmt::Display,
        now: Instant,
    ) -> Option<Summary> {
        self.pending.closed += 1;
        self.pending.last_closed_peer = Some(peer);
        self.pending.last_close_reason = Some(reason.to_string());
        self.flush(now)
    }

    /// When the events held back are due to be logged, if there are any.
    pub(crate) fn due(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        Some(
            self.last_line
                .map_or_else(Instant::now, |last| last + self.interval),
        )
    }

    /// The summary to log at `now`, if there is one and a line is due.
    pub(crate) fn flush(&mut self, now: Instant) -> Option<Summary> {
        if self.pending.is_empty() {
            return None;
        }
        if self
            .last_line
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_is_logged_then_one_summary_per_interval() {
        let interval = Duration::from_secs(10);
        let mut log = RefusalLog::new(interval);
        let start = Instant::now();
        let total = Refusal::Total { limit: 1 };
        let first = log
            .refused(total, start)
            .expect("the first is logged at once");
        assert_eq!(first.over_total, 1);
        assert_eq!(log.due(), None);

        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for second in 1..=9 {
            let at = start + Duration::from_secs(second);
            assert_eq!(log.refused(Refusal::PerIp { ip, limit: 1 }, at), None);
            assert_eq!(log.accept_failed(&"too many open files", at), None);
        }
        assert_eq!(log.due(), Some(start + interval));
        assert_eq!(log.flush(start + Duration::from_secs(9)), None);
        let summary = log.flush(start + interval).expect("due after the interval");
        assert_eq!(
            summary,
            Summary {
                over_total: 0,
                over_per_ip: 9,
                last_ip: Some(ip),
                accept_errors: 9,
                last_error: Some("too many open files".to_owned()),
                ..Summary::default()
            }
        );
        assert_eq!(log.due(), None);
        assert_eq!(log.flush(start + interval * 5), None, "nothing new");
        assert!(log.refused(total, start + interval * 5).is_some());
    }

    #[test]
    fn five_thousand_bad_connections_make_two_lines() {
        let interval = Duration::from_secs(10);
        let mut log = RefusalLog::new(interval);
        let start = Instant::now();
        let peer: SocketAddr = "127.1.0.1:4000".parse().unwrap();
        let mut lines = Vec::new();
        for n in 0..5_000u64 {
            let at = start + Duration::from_micros(n * 140);
            lines.extend(log.closed(peer, &"zero-length frame", at));
        }
        lines.extend(log.flush(start + interval));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].lone_closing(), Some((peer, "zero-length frame")));
        assert_eq!(lines.iter().map(|line| line.closed).sum::<u64>(), 5_000);
        assert_eq!(lines[1].lone_closing(), None);
        assert_eq!(lines[1].last_closed_peer, Some(peer));
        assert_eq!(
            lines[1].last_close_reason.as_deref(),
            Some("zero-length frame")
        );
    }
}
