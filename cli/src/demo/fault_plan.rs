//! What `quorum demo --faults` asks for: which validators misbehave, and how.
//!
//! Either a number of faulty validators (the first starts late, the others are stopped
//! mid-run and restarted), or a comma-separated list of kinds, one validator each, e.g.
//! `--faults hang` or `--faults late,hang`; `none` (or `0`) for an honest run. Faulty
//! validators are the last ones of the committee, in the order given.

use std::fmt;
use std::str::FromStr;

/// Fraction of the workload after which a late validator starts.
pub const LATE_START_AT: f64 = 1.0 / 3.0;
/// Fraction of the workload after which validators are stopped or hung.
pub const FAULT_AT: f64 = 0.4;
/// Fraction of the workload after which stopped or hung validators come back.
pub const RECOVER_AT: f64 = 0.7;

/// How one validator misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Starts after [`LATE_START_AT`] of the workload, and must be brought up to date.
    Late,
    /// Is stopped (its server shut down) at [`FAULT_AT`] and restarted from its database at
    /// [`RECOVER_AT`].
    Restart,
    /// Stops answering at [`FAULT_AT`] (connections are accepted, nothing is answered: what a
    /// client sees of a process frozen with SIGSTOP) and answers again at [`RECOVER_AT`].
    Hang,
}

impl FaultKind {
    /// The kind's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Late => "late",
            FaultKind::Restart => "restart",
            FaultKind::Hang => "hang",
        }
    }
}

/// Why `--faults` was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultPlanError {
    /// A kind that does not exist.
    #[error(
        "unknown fault kind {0:?} (expected a number, `none`, or kinds among late, restart, hang)"
    )]
    UnknownKind(String),
}

/// The faults of a demo run, one validator each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultPlan(pub Vec<FaultKind>);

impl FaultPlan {
    /// How many validators misbehave.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl FromStr for FaultPlan {
    type Err = FaultPlanError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(count) = text.parse::<usize>() {
            let kinds = (0..count)
                .map(|i| {
                    if i == 0 {
                        FaultKind::Late
                    } else {
                        FaultKind::Restart
                    }
                })
                .collect();
            return Ok(FaultPlan(kinds));
        }
        if text.eq_ignore_ascii_case("none") {
            return Ok(FaultPlan(Vec::new()));
        }
        text.split(',')
            .map(|kind| match kind.trim().to_ascii_lowercase().as_str() {
                "late" => Ok(FaultKind::Late),
                "restart" | "stop" => Ok(FaultKind::Restart),
                "hang" => Ok(FaultKind::Hang),
                _ => Err(FaultPlanError::UnknownKind(kind.trim().to_string())),
            })
            .collect::<Result<_, _>>()
            .map(FaultPlan)
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.0.iter().map(|kind| kind.name()).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn numbers_kinds_and_errors() {
        use FaultKind::*;
        assert_eq!("1".parse::<FaultPlan>().unwrap().0, vec![Late]);
        assert_eq!(
            "3".parse::<FaultPlan>().unwrap().0,
            vec![Late, Restart, Restart]
        );
        assert!("0".parse::<FaultPlan>().unwrap().0.is_empty());
        assert!("none".parse::<FaultPlan>().unwrap().0.is_empty());
        assert_eq!("hang".parse::<FaultPlan>().unwrap().0, vec![Hang]);
        assert_eq!(
            " late, Hang ,restart".parse::<FaultPlan>().unwrap().0,
            vec![Late, Hang, Restart]
        );
        assert_eq!(
            "late,sleep".parse::<FaultPlan>(),
            Err(FaultPlanError::UnknownKind("sleep".into()))
        );
        assert_eq!(
            "late,hang".parse::<FaultPlan>().unwrap().to_string(),
            "late,hang"
        );
    }
}
