//! What the demo saw of each validator's health during its run: sampled at every tick of the
//! demo's loop, from the health records the client keeps (DESIGN §5.6).

use std::time::Duration;

use quorum_updater::{Health, HealthState};

use crate::demo::summary::{quantile, ValidatorRow};

/// One validator's health over the run.
#[derive(Clone, Debug)]
pub struct HealthWatch {
    was_suspect: bool,
    times_suspect: u32,
    suspect_time: Duration,
    lowest_success: f64,
}

impl Default for HealthWatch {
    fn default() -> Self {
        HealthWatch {
            was_suspect: false,
            times_suspect: 0,
            suspect_time: Duration::ZERO,
            lowest_success: 1.0,
        }
    }
}

impl HealthWatch {
    /// Looks at `health` after `tick` has passed since the previous look.
    pub fn observe(&mut self, health: &Health, tick: Duration) {
        let record = health.snapshot();
        let suspect = record.is_suspect();
        if suspect {
            self.suspect_time += tick;
            if !self.was_suspect {
                self.times_suspect += 1;
            }
        }
        self.was_suspect = suspect;
        self.lowest_success = self.lowest_success.min(record.success_rate());
    }

    /// The summary's row for this validator, from what was watched and `health` at the end.
    pub fn row(
        &self,
        name: String,
        history: String,
        health: &Health,
        in_sync: bool,
    ) -> ValidatorRow {
        let record = health.snapshot();
        let samples = record.sorted_latencies();
        ValidatorRow {
            name,
            history,
            latency_p50: quantile(&samples, 0.5),
            latency_p99: quantile(&samples, 0.99),
            success_rate: record.success_rate(),
            lowest_success: self.lowest_success.min(record.success_rate()),
            errors: record.failures(),
            times_suspect: self.times_suspect,
            suspect_time: self.suspect_time,
            healthy_at_end: record.state() == HealthState::Healthy,
            in_sync,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorum_updater::HealthPolicy;

    #[test]
    fn counts_suspect_spells_and_their_time() {
        let health = Health::new(HealthPolicy::default());
        let mut watch = HealthWatch::default();
        let tick = Duration::from_millis(20);
        watch.observe(&health, tick);
        health.record_failure();
        health.record_failure();
        watch.observe(&health, tick);
        watch.observe(&health, tick);
        health.record_success(Duration::from_millis(3));
        watch.observe(&health, tick);
        let row = watch.row("v".into(), "h".into(), &health, true);
        assert_eq!(row.times_suspect, 1);
        assert_eq!(row.suspect_time, 2 * tick);
        assert!(row.lowest_success < 0.7);
        assert_eq!(row.errors, 2);
        assert!(row.healthy_at_end);
        assert_eq!(row.latency_p50, Some(Duration::from_millis(3)));
    }
}
