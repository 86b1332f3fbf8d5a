//! The demo's closing summary.

use std::time::Duration;

use quorum_updater::{QuorumTiming, RecoveryKind};

use crate::operator::setup::FastRound;

/// What the demo measured.
#[derive(Debug)]
pub struct Summary {
    /// Validators in the committee.
    pub validators: usize,
    /// Chains used.
    pub chains: usize,
    /// How their blocks were agreed.
    pub rounds: FastRound,
    /// Transport used.
    pub transport: &'static str,
    /// Where validators keep their data (`redb`, `postgres`, `postgres, N shard(s) per
    /// validator`).
    pub storage: String,
    /// Blocks committed by the workload.
    pub blocks: usize,
    /// Wall time of the workload.
    pub elapsed: Duration,
    /// Timings of every quorum call.
    pub timings: Vec<QuorumTiming>,
    /// Repairs by kind.
    pub recoveries: Vec<(RecoveryKind, u64)>,
    /// Largest clock skew reported, in µs, if any.
    pub max_skew_micros: Option<u64>,
    /// Per validator: what happened to it, its health and whether it ended in sync.
    pub validator_rows: Vec<ValidatorRow>,
    /// Per block of the chains a listening client followed: from the first validator's
    /// announcement of its commit to the client's verified report (the demo's notification probe, `demo/notify_probe.rs`).
    pub notification_latencies: Vec<Duration>,
    /// On PostgreSQL: database round trips per committed block per validator, (reads,
    /// writes), over the run (the workload and the final catch-up).
    pub round_trips_per_block: Option<(f64, f64)>,
}

/// One validator's line of the summary.
#[derive(Clone, Debug)]
pub struct ValidatorRow {
    /// Its name.
    pub name: String,
    /// What happened to it.
    pub history: String,
    /// Median latency of its latest answers (the health record's samples).
    pub latency_p50: Option<Duration>,
    /// 99th percentile latency of its latest answers.
    pub latency_p99: Option<Duration>,
    /// Moving average of its success (answers over requests), at the end, in `[0, 1]`.
    pub success_rate: f64,
    /// The lowest that average went during the run.
    pub lowest_success: f64,
    /// Requests it left without an answer (timeouts, transport errors) during the run.
    pub errors: u64,
    /// How many times it became suspect.
    pub times_suspect: u32,
    /// How long it was suspect in all.
    pub suspect_time: Duration,
    /// Whether its health record said healthy at the end.
    pub healthy_at_end: bool,
    /// Whether it ended with every chain exactly as the client has it.
    pub in_sync: bool,
}

/// The `q`-quantile (0..=1) of `values`, which must be sorted.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted.get(rank).copied()
}

impl Summary {
    /// Renders the summary as a text table.
    pub fn render(&self) -> String {
        let mut latencies: Vec<Duration> = self.timings.iter().map(|t| t.to_quorum).collect();
        latencies.sort_unstable();
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_string(), |d| {
                format!("{:.2} ms", d.as_secs_f64() * 1e3)
            })
        };
        let rate = if self.elapsed.is_zero() {
            0.0
        } else {
            self.blocks as f64 / self.elapsed.as_secs_f64()
        };
        let mut out = String::new();
        out.push_str("\n=== quorum demo summary ===\n");
        out.push_str(&format!(
            "committee            {} validators, {} chains ({}), {} transport, {} storage\n",
            self.validators, self.chains, self.rounds, self.transport, self.storage
        ));
        out.push_str(&format!("blocks committed     {}\n", self.blocks));
        out.push_str(&format!(
            "elapsed              {:.2} s\n",
            self.elapsed.as_secs_f64()
        ));
        out.push_str(&format!("certificates/s       {rate:.1}\n"));
        out.push_str(&format!("quorum calls         {}\n", latencies.len()));
        out.push_str(&format!(
            "quorum latency p50   {}\n",
            ms(quantile(&latencies, 0.5))
        ));
        out.push_str(&format!(
            "quorum latency p99   {}\n",
            ms(quantile(&latencies, 0.99))
        ));
        let mut notified = self.notification_latencies.clone();
        notified.sort_unstable();
        out.push_str(&format!(
            "notified p50 / p99   {} / {} (commit to a listening client, {} blocks)\n",
            ms(quantile(&notified, 0.5)),
            ms(quantile(&notified, 0.99)),
            notified.len()
        ));
        if let Some((reads, writes)) = self.round_trips_per_block {
            out.push_str(&format!(
                "database round trips {reads:.2} reads + {writes:.2} writes per block per validator\n"
            ));
        }
        match self.max_skew_micros {
            Some(skew) => out.push_str(&format!("max clock skew       {skew} µs\n")),
            None => out.push_str("max clock skew       none reported\n"),
        }
        out.push_str("recoveries by kind\n");
        if self.recoveries.is_empty() {
            out.push_str("  (none)\n");
        }
        for (kind, count) in &self.recoveries {
            out.push_str(&format!("  {:<22} {count}\n", kind.name()));
        }
        out.push_str(&self.validator_table());
        out
    }

    /// The per-validator table: what happened, latency of the latest answers, success rate
    /// (at the end / lowest), time suspect, health at the end, sync.
    fn validator_table(&self) -> String {
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_string(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
        };
        let mut out = String::from("validators (latency of the latest answers, in ms)\n");
        out.push_str(&format!(
            "  {:<12} {:<38} {:>8} {:>8} {:>13} {:>7} {:>14} {:<8} {}\n",
            "name", "what happened", "p50", "p99", "success", "errors", "suspect", "health", "sync"
        ));
        for row in &self.validator_rows {
            let success = format!(
                "{:.0}% / {:.0}%",
                row.success_rate * 100.0,
                row.lowest_success * 100.0
            );
            let suspect = format!(
                "{}× {:.1} s",
                row.times_suspect,
                row.suspect_time.as_secs_f64()
            );
            out.push_str(&format!(
                "  {:<12} {:<38} {:>8} {:>8} {:>13} {:>7} {:>14} {:<8} {}\n",
                row.name,
                row.history,
                ms(row.latency_p50),
                ms(row.latency_p99),
                success,
                row.errors,
                suspect,
                if row.healthy_at_end {
                    "healthy"
                } else {
                    "suspect"
                },
                if row.in_sync {
                    "in sync"
                } else {
                    "OUT OF SYNC"
                },
            ));
        }
        out.push_str(
            "  (success: moving average at the end / lowest during the run; errors: requests \
             left without an answer)\n",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&values, 0.5), Some(Duration::from_millis(51)));
        assert_eq!(quantile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_validator_table_shows_health_and_sync() {
        let row = ValidatorRow {
            name: "validator-3".into(),
            history: "hung mid-run, answers again".into(),
            latency_p50: Some(Duration::from_micros(1_500)),
            latency_p99: None,
            success_rate: 0.995,
            lowest_success: 0.21,
            errors: 17,
            times_suspect: 1,
            suspect_time: Duration::from_millis(2_200),
            healthy_at_end: false,
            in_sync: true,
        };
        let summary = Summary {
            validators: 4,
            chains: 4,
            rounds: FastRound::Enabled,
            transport: "tcp",
            storage: "redb".into(),
            blocks: 10,
            elapsed: Duration::from_secs(1),
            timings: Vec::new(),
            recoveries: Vec::new(),
            max_skew_micros: None,
            validator_rows: vec![row],
            notification_latencies: vec![Duration::from_millis(3), Duration::from_millis(5)],
            round_trips_per_block: None,
        };
        let text = summary.render();
        assert!(text.contains("4 validators, 4 chains (fast round), tcp transport, redb storage"));
        assert!(
            text.contains("notified p50 / p99   5.00 ms / 5.00 ms"),
            "{text}"
        );
        let line = text
            .lines()
            .find(|line| line.contains("validator-3"))
            .unwrap_or_default();
        for needle in [
            "hung mid-run",
            "1.50",
            "100% / 21%",
            " 17 ",
            "1× 2.2 s",
            "suspect",
            "in sync",
        ] {
            assert!(line.contains(needle), "{needle}: {line}");
        }
    }
}
