//! The demo's closing summary.

use std::time::Duration;

use quorum_updater::{QuorumTiming, RecoveryKind};

/// What the demo measured.
#[derive(Debug)]
pub struct Summary {
    /// Validators in the committee.
    pub validators: usize,
    /// Chains used.
    pub chains: usize,
    /// Transport used.
    pub transport: &'static str,
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
    /// Per validator: name, what happened to it, whether it ended in sync.
    pub validators_state: Vec<(String, String, bool)>,
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
            "committee            {} validators, {} chains, {} transport\n",
            self.validators, self.chains, self.transport
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
        out.push_str("validators\n");
        for (name, history, in_sync) in &self.validators_state {
            let status = if *in_sync { "in sync" } else { "OUT OF SYNC" };
            out.push_str(&format!("  {name:<14} {history:<34} {status}\n"));
        }
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
}
