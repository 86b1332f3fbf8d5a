//! Validator health (DESIGN §5.6): per validator, moving averages of latency and success,
//! consecutive failures, and a state — Healthy, or Suspect for a cooldown that doubles up to a
//! cap. Health decides whom to ask first and how long to wait on whom; it never takes a
//! validator out of quorum counting.
//!
//! [`HealthRecord`] is pure (time is passed in, as a `Duration` since any fixed origin);
//! [`Health`] wraps one in a lock with tokio's clock, to be shared by every client of a
//! process.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Shortest hedge delay: a second validator is never asked sooner than this after the first
/// (20 ms).
pub(crate) const MIN_HEDGE_DELAY: Duration = Duration::from_millis(20);
/// Hedge delay for a validator whose latency is not known yet (100 ms).
pub(crate) const UNKNOWN_HEDGE_DELAY: Duration = Duration::from_millis(100);
/// Latencies kept per validator for its 95th percentile (32).
const LATENCY_SAMPLES: usize = 32;
/// Weight of the newest observation in the moving averages.
const EWMA_WEIGHT: f64 = 0.2;

/// When a validator becomes suspect and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive timeouts or transport errors after which it is suspect (default 2).
    pub suspect_after: u32,
    /// The first cooldown (default 1 s); each failed probe doubles it.
    pub min_cooldown: Duration,
    /// The longest cooldown (default 60 s).
    pub max_cooldown: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            suspect_after: 2,
            min_cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(60),
        }
    }
}

/// Healthy, or suspect until a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// Answers normally.
    Healthy,
    /// Failed repeatedly: asked last, waited on briefly, and not sent background work before
    /// `until` (then probed: one success makes it healthy, one failure doubles `cooldown`).
    Suspect {
        /// End of the cooldown, since the record's origin.
        until: Duration,
        /// The cooldown that led there.
        cooldown: Duration,
    },
}

/// A health record as a short-lived process keeps it between runs (the `quorum client`
/// command, DESIGN §5.6): durations in microseconds, the cooldown as what was left of it when
/// it was saved.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedHealth {
    /// Whether it was suspect.
    pub suspect: bool,
    /// Cooldown left when saved, in microseconds.
    pub cooldown_left_micros: u64,
    /// The cooldown in force, in microseconds.
    pub cooldown_micros: u64,
    /// The next cooldown, in microseconds, if one was set.
    pub next_cooldown_micros: Option<u64>,
    /// Consecutive failures.
    pub consecutive_failures: u32,
    /// Average latency, in microseconds.
    pub latency_micros: Option<u64>,
    /// Average success, in `[0, 1]`.
    pub success: f64,
    /// Latest latencies, in microseconds.
    pub samples_micros: Vec<u64>,
    /// Protocol violations proven against it (see [`HealthRecord::violations`]).
    #[serde(default)]
    pub violations: u64,
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// What is known of one validator.
#[derive(Clone, Debug)]
pub struct HealthRecord {
    state: HealthState,
    consecutive_failures: u32,
    /// Requests left without an answer (timeouts, transport errors) since this process made
    /// or restored the record.
    failures: u64,
    /// Protocol violations proven against the validator: answers that it signed or named and
    /// that turned out false (a received-log entry no valid certificate backs). Byzantine is
    /// a state apart from slow (latency) and unavailable (failures).
    violations: u64,
    next_cooldown: Option<Duration>,
    latency: Option<Duration>,
    success: f64,
    samples: VecDeque<Duration>,
}

impl Default for HealthRecord {
    fn default() -> Self {
        HealthRecord {
            state: HealthState::Healthy,
            consecutive_failures: 0,
            failures: 0,
            violations: 0,
            next_cooldown: None,
            latency: None,
            success: 1.0,
            samples: VecDeque::with_capacity(LATENCY_SAMPLES),
        }
    }
}

impl HealthRecord {
    /// The state.
    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Whether the validator is suspect (in its cooldown or waiting for a successful probe).
    pub fn is_suspect(&self) -> bool {
        matches!(self.state, HealthState::Suspect { .. })
    }

    /// Whether the validator is in its cooldown at `now`: no background work is sent to it.
    pub fn in_cooldown(&self, now: Duration) -> bool {
        matches!(self.state, HealthState::Suspect { until, .. } if now < until)
    }

    /// Consecutive failures.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Requests left without an answer (timeouts, transport errors) since this process made or
    /// restored the record: an exact count, beside the moving average of success.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Moving average of the latency of its answers.
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// Moving average of success, in `[0, 1]`.
    pub fn success_rate(&self) -> f64 {
        self.success
    }

    /// The 95th percentile of the latest latencies.
    pub fn p95(&self) -> Option<Duration> {
        let sorted = self.sorted_latencies();
        if sorted.is_empty() {
            return None;
        }
        let index = (sorted.len() * 95).div_ceil(100).saturating_sub(1);
        sorted.get(index).copied()
    }

    /// The latest latencies (at most 32), shortest first.
    pub fn sorted_latencies(&self) -> Vec<Duration> {
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        sorted
    }

    /// How long to wait for this validator before asking the next one as well: its p95
    /// latency, at least 20 ms (100 ms while unknown).
    pub fn hedge_delay(&self) -> Duration {
        self.p95()
            .map_or(UNKNOWN_HEDGE_DELAY, |p95| p95.max(MIN_HEDGE_DELAY))
    }

    /// The record as saved at `now`.
    pub fn save(&self, now: Duration) -> SavedHealth {
        let (suspect, left, cooldown) = match self.state {
            HealthState::Healthy => (false, Duration::ZERO, Duration::ZERO),
            HealthState::Suspect { until, cooldown } => (true, until.saturating_sub(now), cooldown),
        };
        SavedHealth {
            suspect,
            cooldown_left_micros: micros(left),
            cooldown_micros: micros(cooldown),
            next_cooldown_micros: self.next_cooldown.map(micros),
            consecutive_failures: self.consecutive_failures,
            latency_micros: self.latency.map(micros),
            success: self.success,
            samples_micros: self.samples.iter().copied().map(micros).collect(),
            violations: self.violations,
        }
    }

    /// A record restored from `saved` at `now`, `elapsed` after it was saved. Values out of
    /// range (a file edited by hand) are clamped by `policy`.
    pub fn restore(
        saved: &SavedHealth,
        now: Duration,
        elapsed: Duration,
        policy: &HealthPolicy,
    ) -> Self {
        let clamp = |value: u64| Duration::from_micros(value).min(policy.max_cooldown);
        let left = clamp(saved.cooldown_left_micros).saturating_sub(elapsed);
        let state = if saved.suspect {
            HealthState::Suspect {
                until: now.saturating_add(left),
                cooldown: clamp(saved.cooldown_micros)
                    .max(policy.min_cooldown.min(policy.max_cooldown)),
            }
        } else {
            HealthState::Healthy
        };
        let mut samples: VecDeque<Duration> = saved
            .samples_micros
            .iter()
            .rev()
            .take(LATENCY_SAMPLES)
            .rev()
            .map(|value| Duration::from_micros(*value))
            .collect();
        samples.shrink_to_fit();
        HealthRecord {
            state,
            consecutive_failures: saved.consecutive_failures,
            failures: 0,
            violations: saved.violations,
            next_cooldown: saved.next_cooldown_micros.map(clamp),
            latency: saved.latency_micros.map(Duration::from_micros),
            success: if saved.success.is_finite() {
                saved.success.clamp(0.0, 1.0)
            } else {
                0.0
            },
            samples,
        }
    }

    /// Protocol violations proven against the validator since the record was made.
    pub fn violations(&self) -> u64 {
        self.violations
    }

    /// Whether the validator was caught breaking the protocol (at least one violation). It
    /// stays so: a Byzantine validator is asked after every other one.
    pub fn is_byzantine(&self) -> bool {
        self.violations > 0
    }

    /// A proven protocol violation.
    pub fn record_violation(&mut self) {
        self.violations = self.violations.saturating_add(1);
    }

    /// An answer (any answer, refusals included) after `latency`: healthy again.
    pub fn record_success(&mut self, latency: Duration) {
        self.state = HealthState::Healthy;
        self.consecutive_failures = 0;
        self.next_cooldown = None;
        self.latency = Some(match self.latency {
            None => latency,
            Some(average) => average.mul_f64(1.0 - EWMA_WEIGHT) + latency.mul_f64(EWMA_WEIGHT),
        });
        self.success = self.success * (1.0 - EWMA_WEIGHT) + EWMA_WEIGHT;
        if self.samples.len() == LATENCY_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(latency);
    }

    /// No answer (a timeout or a transport error) at `now`. After `suspect_after` in a row
    /// the validator is suspect for a cooldown; each failure after a cooldown ended (a failed
    /// probe) starts a cooldown twice as long, up to the cap.
    pub fn record_failure(&mut self, now: Duration, policy: &HealthPolicy) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.failures = self.failures.saturating_add(1);
        self.success *= 1.0 - EWMA_WEIGHT;
        if self.consecutive_failures < policy.suspect_after.max(1) || self.in_cooldown(now) {
            return;
        }
        let min = policy.min_cooldown.min(policy.max_cooldown);
        let cooldown = self.next_cooldown.unwrap_or(min).min(policy.max_cooldown);
        self.state = HealthState::Suspect {
            until: now.saturating_add(cooldown),
            cooldown,
        };
        self.next_cooldown = Some(cooldown.saturating_mul(2).min(policy.max_cooldown));
    }
}

/// A validator's health record, shared by every client of a process, on tokio's clock.
#[derive(Debug)]
pub struct Health {
    record: Mutex<HealthRecord>,
    policy: HealthPolicy,
    origin: Instant,
}

impl Default for Health {
    fn default() -> Self {
        Health::new(HealthPolicy::default())
    }
}

impl Health {
    /// A healthy record under `policy`.
    pub fn new(policy: HealthPolicy) -> Self {
        Health {
            record: Mutex::new(HealthRecord::default()),
            policy,
            origin: Instant::now(),
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> HealthRecord {
        self.record
            .lock()
            .map(|record| record.clone())
            .unwrap_or_default()
    }

    /// Whether the validator is suspect.
    pub fn is_suspect(&self) -> bool {
        self.snapshot().is_suspect()
    }

    /// Whether the validator is in its cooldown now.
    pub fn in_cooldown(&self) -> bool {
        self.snapshot().in_cooldown(self.now())
    }

    /// Time left in the cooldown (zero when not cooling down).
    pub fn cooldown_left(&self) -> Duration {
        match self.snapshot().state() {
            HealthState::Suspect { until, .. } => until.saturating_sub(self.now()),
            HealthState::Healthy => Duration::ZERO,
        }
    }

    /// See [`HealthRecord::hedge_delay`].
    pub fn hedge_delay(&self) -> Duration {
        self.snapshot().hedge_delay()
    }

    /// Records an answer after `latency`.
    pub fn record_success(&self, latency: Duration) {
        if let Ok(mut record) = self.record.lock() {
            record.record_success(latency);
        }
    }

    /// Records a timeout or transport error, now.
    pub fn record_failure(&self) {
        let now = self.now();
        if let Ok(mut record) = self.record.lock() {
            record.record_failure(now, &self.policy);
        }
    }

    /// Records a proven protocol violation (see [`HealthRecord::violations`]).
    pub fn record_violation(&self) {
        if let Ok(mut record) = self.record.lock() {
            record.record_violation();
        }
    }

    /// Whether the validator was caught breaking the protocol.
    pub fn is_byzantine(&self) -> bool {
        self.snapshot().is_byzantine()
    }

    /// The record as a process keeps it between runs.
    pub fn save(&self) -> SavedHealth {
        self.snapshot().save(self.now())
    }

    /// Replaces the record with `saved`, which was saved `elapsed` ago.
    pub fn restore(&self, saved: &SavedHealth, elapsed: Duration) {
        let restored = HealthRecord::restore(saved, self.now(), elapsed, &self.policy);
        if let Ok(mut record) = self.record.lock() {
            *record = restored;
        }
    }

    /// Sort key for routing: honest before Byzantine, healthy before suspect, then by
    /// average latency (unknown last among equals).
    pub fn rank(&self) -> (bool, bool, Duration) {
        let record = self.snapshot();
        (
            record.is_byzantine(),
            record.is_suspect(),
            record.latency().unwrap_or(Duration::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: HealthPolicy = HealthPolicy {
        suspect_after: 2,
        min_cooldown: Duration::from_secs(1),
        max_cooldown: Duration::from_secs(60),
    };

    #[test]
    fn two_failures_make_a_suspect_whose_cooldown_doubles_until_a_success() {
        let mut record = HealthRecord::default();
        let secs = Duration::from_secs;
        record.record_failure(secs(0), &POLICY);
        assert!(!record.is_suspect());
        record.record_failure(secs(0), &POLICY);
        assert_eq!(
            record.state(),
            HealthState::Suspect {
                until: secs(1),
                cooldown: secs(1)
            }
        );
        // Failures within the cooldown change nothing; a failed probe after it doubles it.
        record.record_failure(secs(0), &POLICY);
        assert!(record.in_cooldown(Duration::from_millis(999)));
        record.record_failure(secs(1), &POLICY);
        assert_eq!(
            record.state(),
            HealthState::Suspect {
                until: secs(3),
                cooldown: secs(2)
            }
        );
        record.record_success(Duration::from_millis(5));
        assert_eq!(record.state(), HealthState::Healthy);
        assert_eq!(record.consecutive_failures(), 0);
        // A fresh start: the first cooldown again.
        record.record_failure(secs(10), &POLICY);
        record.record_failure(secs(10), &POLICY);
        assert_eq!(
            record.state(),
            HealthState::Suspect {
                until: secs(11),
                cooldown: secs(1)
            }
        );
    }

    #[test]
    fn hedge_delay_follows_the_p95_with_a_floor() {
        let mut record = HealthRecord::default();
        assert_eq!(record.hedge_delay(), UNKNOWN_HEDGE_DELAY);
        for _ in 0..40 {
            record.record_success(Duration::from_millis(1));
        }
        assert_eq!(record.hedge_delay(), MIN_HEDGE_DELAY);
        for millis in 0..40 {
            record.record_success(Duration::from_millis(100 + millis));
        }
        let p95 = record.p95().unwrap();
        assert!(p95 >= Duration::from_millis(130) && p95 <= Duration::from_millis(139));
        assert_eq!(record.hedge_delay(), p95);
    }

    #[test]
    fn a_saved_record_comes_back_with_the_time_that_passed() {
        let mut record = HealthRecord::default();
        record.record_success(Duration::from_millis(7));
        record.record_failure(Duration::from_secs(100), &POLICY);
        record.record_failure(Duration::from_secs(100), &POLICY);
        let saved = record.save(Duration::from_millis(100_400));
        assert!(saved.suspect);
        assert_eq!(saved.cooldown_left_micros, 600_000);
        // 200 ms later, in another process whose clock starts at zero.
        let back =
            HealthRecord::restore(&saved, Duration::ZERO, Duration::from_millis(200), &POLICY);
        assert!(back.in_cooldown(Duration::from_millis(399)));
        assert!(!back.in_cooldown(Duration::from_millis(400)));
        assert_eq!(back.consecutive_failures(), 2);
        assert_eq!(back.p95(), Some(Duration::from_millis(7)));
        // Its next failure doubles the cooldown, as it would have.
        let mut back = back;
        back.record_failure(Duration::from_secs(1), &POLICY);
        assert!(
            matches!(back.state(), HealthState::Suspect { cooldown, .. } if cooldown == Duration::from_secs(2))
        );
        // Hand-edited nonsense is clamped.
        let wild = SavedHealth {
            suspect: true,
            cooldown_left_micros: u64::MAX,
            success: f64::NAN,
            ..SavedHealth::default()
        };
        let clamped = HealthRecord::restore(&wild, Duration::ZERO, Duration::ZERO, &POLICY);
        assert!(!clamped.in_cooldown(POLICY.max_cooldown));
        assert_eq!(clamped.success_rate(), 0.0);
    }

    proptest! {
        #[test]
        fn transitions_and_cooldowns_stay_within_bounds(
            events in proptest::collection::vec((any::<bool>(), 0u64..5_000, 0u64..2_000), 1..200),
        ) {
            let mut record = HealthRecord::default();
            let mut now = Duration::ZERO;
            let mut failures = 0u32;
            let mut all_failures = 0u64;
            for (success, advance, latency) in events {
                now += Duration::from_millis(advance);
                if success {
                    record.record_success(Duration::from_millis(latency));
                    failures = 0;
                    prop_assert_eq!(record.state(), HealthState::Healthy);
                } else {
                    let was_healthy = !record.is_suspect();
                    record.record_failure(now, &POLICY);
                    failures += 1;
                    all_failures += 1;
                    if failures >= POLICY.suspect_after {
                        prop_assert!(record.is_suspect());
                    } else {
                        prop_assert_eq!(record.is_suspect(), !was_healthy);
                    }
                }
                prop_assert_eq!(record.consecutive_failures(), failures);
                prop_assert_eq!(record.failures(), all_failures);
                if let HealthState::Suspect { until, cooldown } = record.state() {
                    prop_assert!(cooldown >= POLICY.min_cooldown && cooldown <= POLICY.max_cooldown);
                    prop_assert!(until <= now + POLICY.max_cooldown);
                }
                prop_assert!((0.0..=1.0).contains(&record.success_rate()));
                prop_assert!(record.hedge_delay() >= MIN_HEDGE_DELAY);
            }
        }
    }
}
