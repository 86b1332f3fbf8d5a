//! Rate-limited reporting of refused connections and failed `accept`s: under a flood, one line
//! per interval that says how many there were, instead of one line each.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use crate::limits::Refusal;

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
}

impl Summary {
    fn is_empty(&self) -> bool {
        self.over_total == 0 && self.over_per_ip == 0 && self.accept_errors == 0
    }

    /// Logs the summary as one warning.
    pub(crate) fn log(&self, interval: Duration) {
        warn!(
            refused_over_total = self.over_total,
            refused_over_per_ip = self.over_per_ip,
            last_refused_ip = %Shown(&self.last_ip),
            accept_errors = self.accept_errors,
            last_accept_error = %Shown(&self.last_error),
            ?interval,
            "connections refused or accept failing (at most one such line per interval)"
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
            }
        );
        assert_eq!(log.due(), None);
        assert_eq!(log.flush(start + interval * 5), None, "nothing new");
        assert!(log.refused(total, start + interval * 5).is_some());
    }
}
