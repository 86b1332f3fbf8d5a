//! [`Report`]: what a chaos run did and what held, printed and written as JSON.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::checker::Verdict;
use crate::schedule::Schedule;

/// A chaos run's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The seed, which replays the schedule.
    pub seed: u64,
    /// Validators in the committee.
    pub validators: usize,
    /// Clients of the workload.
    pub clients: usize,
    /// The Byzantine validator, if any.
    pub byzantine: Option<usize>,
    /// How long the faults ran, in seconds.
    pub duration_secs: f64,
    /// Operations the clients saw acknowledged (journaled).
    pub acknowledged: usize,
    /// Operations that failed and were tried again by the workload.
    pub failed_attempts: usize,
    /// Faults injected, by kind.
    pub faults_by_kind: BTreeMap<String, usize>,
    /// From the end of the last fault until every honest validator held every chain as the
    /// checker's client did, in seconds; `None` if that did not happen within the catch-up
    /// window.
    pub heal_to_sync_secs: Option<f64>,
    /// The schedule.
    pub schedule: Schedule,
    /// One verdict per invariant.
    pub verdicts: Vec<Verdict>,
}

impl Report {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(Verdict::held)
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // A report holds numbers, strings, maps and lists only: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl fmt::Display for Report {
    /// The figures, one line per invariant, and on a failure the seed and the schedule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "chaos: seed {}, {} validators{}, {} clients, {:.0} s of faults",
            self.seed,
            self.validators,
            match self.byzantine {
                Some(index) => format!(" (validator-{index} Byzantine)"),
                None => String::new(),
            },
            self.clients,
            self.duration_secs
        )?;
        let kinds: Vec<String> = self
            .faults_by_kind
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        writeln!(
            f,
            "operations acknowledged: {} ({} failed attempts retried)",
            self.acknowledged, self.failed_attempts
        )?;
        writeln!(f, "faults injected: {}", kinds.join(", "))?;
        match self.heal_to_sync_secs {
            Some(secs) => writeln!(f, "healed to all in sync: {secs:.3} s")?,
            None => writeln!(f, "healed to all in sync: not within the catch-up window")?,
        }
        for verdict in &self.verdicts {
            writeln!(f, "{verdict}")?;
        }
        if self.passed() {
            write!(f, "every invariant held")
        } else {
            writeln!(f, "FAILED: replay with --seed {}", self.seed)?;
            write!(f, "{}", self.schedule)
        }
    }
}
