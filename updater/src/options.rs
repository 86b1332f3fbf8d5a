//! Policies: retries, timeouts, grace, skew and batch sizes, as one documented value.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter for transport errors: never zero, capped, limited in
/// attempts.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry (default 20 ms).
    pub initial_delay: Duration,
    /// Growth factor per retry (default 2).
    pub multiplier: f64,
    /// Largest delay (default 1 s).
    pub max_delay: Duration,
    /// Fraction of each delay that is randomised, in `[0, 1]` (default 0.5: the delay is drawn
    /// from `[d/2, d]`).
    pub jitter: f64,
    /// Attempts in all, the first included (default 3). At least 1.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_millis(20),
            multiplier: 2.0,
            max_delay: Duration::from_secs(1),
            jitter: 0.5,
            max_attempts: 3,
        }
    }
}

/// Shortest delay a retry ever waits, so a misconfigured policy never spins (1 ms).
const MIN_RETRY_DELAY: Duration = Duration::from_millis(1);

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.multiplier.max(1.0).powi(exponent);
        let base = self.initial_delay.as_secs_f64() * factor;
        let capped = base.min(self.max_delay.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let low = capped * (1.0 - jitter);
        let drawn = if capped > low {
            rng.gen_range(low..=capped)
        } else {
            capped
        };
        // Whatever the policy's values, never panic: an unrepresentable delay is the cap.
        Duration::try_from_secs_f64(drawn)
            .unwrap_or(self.max_delay)
            .max(MIN_RETRY_DELAY)
    }

    /// Whether another attempt may follow attempt number `attempt` (1 for the first).
    pub fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts.max(1)
    }
}

/// Every setting of the client side, with documented defaults; all fields are public.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Grace after quorum, as a fraction of the time quorum took (default 0.2: keep listening
    /// for 20% of it; 0 returns at quorum).
    pub quorum_grace: f64,
    /// Upper bound on one quorum call (default 60 s).
    pub deadline: Duration,
    /// Timeout of one request to one validator (default 10 s).
    pub request_timeout: Duration,
    /// Retries of transport errors.
    pub retry: RetryPolicy,
    /// Longest wait for a validator whose clock is behind the block's timestamp (default
    /// 5 s); beyond it the proposal fails.
    pub max_clock_skew: Duration,
    /// Certificates per batch when bringing a validator up to date (default 500).
    pub certificate_upload_batch_size: usize,
    /// Time budget for calls still running after a quorum returned (default 30 s); zero
    /// cancels them at once.
    pub background_catch_up: Duration,
    /// How many generations of chains a recovery may walk up: only a chain's parent counts
    /// as a level (default 8).
    pub max_recovery_depth: usize,
    /// Recoveries one action may perform with one validator, nested calls included (default
    /// 64); a Byzantine validator inventing causes runs out of it.
    pub recovery_budget: usize,
    /// Most sends of one request to one validator, whatever its refusals (default 16): a
    /// bound beside the once-per-cause rule and `recovery_budget`, so the loop ends even if
    /// both were set carelessly.
    pub max_recoveries_per_call: usize,
    /// Timeout of one request to a suspect validator, without retries (default 500 ms; never
    /// more than `request_timeout`).
    pub probe_timeout: Duration,
    /// Most validators one hedged read asks (default 3).
    pub max_hedge_fanout: usize,
    /// Most entries of one validator's received log one sync reads, in entries (default
    /// 10,000, i.e. 400 KB per validator); the rest is read by the next sync. Bounds what a
    /// validator naming entries without end can make the client hold and check.
    pub max_received_log_entries_per_sync: usize,
    /// Certificates named by received logs downloaded at once, in downloads (default 16).
    pub received_log_downloads_in_flight: usize,
    /// Most rounds one block is tried in before the call gives up, in rounds (default 8); the
    /// error then names the lock that holds the chain, if any (`TooManyRounds`).
    pub max_rounds_per_block: u32,
    /// Most rounds a call waits out in which its owner may not propose (a single-leader
    /// round another owner leads, the fast round of a chain whose super owner it is not),
    /// in rounds (default 32). They do not count towards `max_rounds_per_block`: with two
    /// owners of equal weight, a call waits more than 32 rounds in a row once in 2³².
    pub max_waited_rounds: u32,
    /// Most times a call waits for the validators' round deadlines in one round before it
    /// gives up asking for timeout votes (default 4).
    pub max_timeout_waits: u32,
    /// How long a call waits before asking for timeout votes again when the answers named
    /// no deadline a quorum agrees on (default 100 ms).
    pub timeout_retry_delay: Duration,
    /// How a [`Listener`](crate::Listener) keeps its subscriptions and treats what they bring.
    pub listen: ListenOptions,
}

/// Settings of a [`Listener`](crate::Listener) (DESIGN §5.8 "Listening").
#[derive(Clone, Debug, PartialEq)]
pub struct ListenOptions {
    /// Delays between attempts to subscribe to one validator, growing with the failures in a
    /// row (default 100 ms doubling to 5 s, half of each drawn at random; `max_attempts` is
    /// not used: a listener never gives up).
    pub resubscribe: RetryPolicy,
    /// Failed attempts in a row after which a validator's circuit breaker opens (default 5).
    pub breaker_failures: u32,
    /// While the breaker is open, no attempt is made for this long (default 30 s).
    pub breaker_cooldown: Duration,
    /// A subscription open at least this long resets its validator's failures when it ends;
    /// one that ends sooner counts as a failure (default 10 s).
    pub stable_after: Duration,
    /// How long the hints of a validator whose signed hints led to nothing verifiable are
    /// ignored (default 10 minutes); it is marked Byzantine in its health record.
    pub byzantine_cooldown: Duration,
    /// Hints kept per chain while its sync waits, to check them afterwards (default 16); more
    /// hints still make the chain sync, they are not checked.
    pub hints_per_chain: usize,
    /// Chains synchronized at once (default 4).
    pub syncs_in_flight: usize,
    /// Seed of the random part of the delays, so that runs repeat (default 0).
    pub seed: u64,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            resubscribe: RetryPolicy {
                initial_delay: Duration::from_millis(100),
                multiplier: 2.0,
                max_delay: Duration::from_secs(5),
                jitter: 0.5,
                max_attempts: u32::MAX,
            },
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
            byzantine_cooldown: Duration::from_secs(600),
            hints_per_chain: 16,
            syncs_in_flight: 4,
            seed: 0,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            quorum_grace: 0.2,
            deadline: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            max_clock_skew: Duration::from_secs(5),
            certificate_upload_batch_size: 500,
            background_catch_up: Duration::from_secs(30),
            max_recovery_depth: 8,
            recovery_budget: 64,
            max_recoveries_per_call: 16,
            probe_timeout: Duration::from_millis(500),
            max_hedge_fanout: 3,
            max_received_log_entries_per_sync: 10_000,
            received_log_downloads_in_flight: 16,
            max_rounds_per_block: 8,
            max_waited_rounds: 32,
            max_timeout_waits: 4,
            timeout_retry_delay: Duration::from_millis(100),
            listen: ListenOptions::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    proptest! {
        #[test]
        fn delays_are_bounded_and_never_zero(
            retry in 1u32..100,
            initial_ms in 0u64..500,
            max_ms in 0u64..5_000,
            jitter in 0.0f64..1.0,
            seed in any::<u64>(),
        ) {
            let policy = RetryPolicy {
                initial_delay: Duration::from_millis(initial_ms),
                multiplier: 2.0,
                max_delay: Duration::from_millis(max_ms),
                jitter,
                max_attempts: 5,
            };
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let delay = policy.delay(retry, &mut rng);
            prop_assert!(delay >= MIN_RETRY_DELAY);
            prop_assert!(delay <= Duration::from_millis(max_ms).max(MIN_RETRY_DELAY));
        }
    }

    #[test]
    fn extreme_policies_do_not_panic() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for policy in [
            RetryPolicy {
                multiplier: f64::NAN,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                jitter: f64::NAN,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                multiplier: 1e300,
                max_delay: Duration::MAX,
                ..RetryPolicy::default()
            },
            RetryPolicy {
                initial_delay: Duration::MAX,
                max_delay: Duration::MAX,
                ..RetryPolicy::default()
            },
        ] {
            for retry in [1, 2, 50, u32::MAX] {
                assert!(policy.delay(retry, &mut rng) >= MIN_RETRY_DELAY);
            }
        }
    }

    #[test]
    fn exponential_growth_without_jitter() {
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert_eq!(policy.delay(1, &mut rng), Duration::from_millis(20));
        assert_eq!(policy.delay(2, &mut rng), Duration::from_millis(40));
        assert_eq!(policy.delay(20, &mut rng), Duration::from_secs(1));
        assert!(policy.may_retry(2));
        assert!(!policy.may_retry(3));
    }
}
