//! [`Schedule`]: the faults of a chaos run, drawn from a seed.
//!
//! A schedule is a list of [`Fault`]s, each hitting one validator (or restarting one client)
//! from a start to an end time counted from the start of the run. It is drawn so that at no
//! moment more than f validators are faulty, f being the most a committee of `n` equal
//! validators tolerates (`(n - 1) / 3`), a Byzantine validator counting as faulty throughout.
//! Every fault ends by the end of the run, so that healing is the schedule's last word. The
//! same seed and settings always draw the same schedule.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What one fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// `kill -9` at the start; restarted from its database at the end.
    Kill,
    /// `SIGSTOP` at the start, `SIGCONT` at the end: a process that hangs with its sockets
    /// open.
    Pause,
    /// The validator's fault proxy forwards nothing and answers nothing.
    BlackHole,
    /// The validator's fault proxy delays every chunk, each way, by this many milliseconds.
    Latency {
        /// The delay, in milliseconds.
        millis: u64,
    },
    /// The validator's fault proxy resets every connection, and every new one.
    Resets,
    /// The validator's fault proxy caps each direction of each connection.
    Bandwidth {
        /// The cap, in bytes per second.
        bytes_per_second: u64,
    },
    /// The validator's clock jumps this many milliseconds (ahead when positive) at the start,
    /// and back at the end.
    ClockJump {
        /// The offset, in milliseconds.
        millis: i64,
    },
    /// A client is stopped mid-operation and started again with nothing in memory (a client
    /// process killed and restarted). Instantaneous: its start is its end.
    ClientRestart,
}

impl FaultKind {
    /// The kind's name, as reports count kinds.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::BlackHole => "black_hole",
            FaultKind::Latency { .. } => "latency",
            FaultKind::Resets => "resets",
            FaultKind::Bandwidth { .. } => "bandwidth",
            FaultKind::ClockJump { .. } => "clock_jump",
            FaultKind::ClientRestart => "client_restart",
        }
    }
}

/// Whom a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The validator of this index (in committee order).
    Validator(usize),
    /// The client of this index.
    Client(usize),
}

/// One fault of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// When it starts, in milliseconds from the start of the run.
    pub start_ms: u64,
    /// When it is healed, in milliseconds from the start of the run (its start for an
    /// instantaneous fault).
    pub end_ms: u64,
    /// Whom it hits.
    pub target: Target,
    /// What it does.
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl Fault {
    /// When it starts, from the start of the run.
    pub fn start(&self) -> Duration {
        Duration::from_millis(self.start_ms)
    }

    /// When it is healed, from the start of the run.
    pub fn end(&self) -> Duration {
        Duration::from_millis(self.end_ms)
    }

    /// Whether it hits a validator during some part of `[start_ms, end_ms)`.
    fn overlaps(&self, start_ms: u64, end_ms: u64) -> bool {
        matches!(self.target, Target::Validator(_))
            && self.start_ms < end_ms
            && start_ms < self.end_ms
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whom = match self.target {
            Target::Validator(index) => format!("validator-{index}"),
            Target::Client(index) => format!("client-{index}"),
        };
        let what = match self.kind {
            FaultKind::Latency { millis } => format!("latency {millis} ms"),
            FaultKind::Bandwidth { bytes_per_second } => {
                format!("bandwidth {bytes_per_second} B/s")
            }
            FaultKind::ClockJump { millis } => format!("clock jump {millis:+} ms"),
            other => other.name().replace('_', " "),
        };
        let (start, end) = (self.start_ms as f64 / 1e3, self.end_ms as f64 / 1e3);
        if self.start_ms == self.end_ms {
            write!(f, "{start:>8.3} s  {whom}: {what}")
        } else {
            write!(f, "{start:>8.3} s .. {end:>8.3} s  {whom}: {what}")
        }
    }
}

/// The settings a schedule is drawn from; [`Default`] gives a four-validator committee, four
/// clients and a minute of faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Validators in the committee (equal stakes).
    pub validators: usize,
    /// Clients of the workload.
    pub clients: usize,
    /// How long the run lasts; every fault is healed by then.
    pub duration: Duration,
    /// The validator that is Byzantine throughout, if any (counts as one of the f faulty).
    pub byzantine: Option<usize>,
    /// The mean time between two fault starts (default 2 s).
    pub mean_gap: Duration,
    /// The shortest a fault lasts (default 1 s).
    pub min_length: Duration,
    /// The longest a fault lasts (default 8 s).
    pub max_length: Duration,
    /// Nothing starts before this, so that the workload is under way (default 1 s).
    pub warm_up: Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            validators: 4,
            clients: 4,
            duration: Duration::from_secs(60),
            byzantine: None,
            mean_gap: Duration::from_secs(2),
            min_length: Duration::from_secs(1),
            max_length: Duration::from_secs(8),
            warm_up: Duration::from_secs(1),
        }
    }
}

/// Settings a schedule cannot be drawn from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// No validator.
    #[error("a chaos run needs at least one validator")]
    NoValidators,
    /// The Byzantine validator is not in the committee.
    #[error("the Byzantine validator {index} is not among the {validators} validators")]
    ByzantineOutOfRange {
        /// Its index.
        index: usize,
        /// The committee's size.
        validators: usize,
    },
    /// A Byzantine validator in a committee that tolerates none.
    #[error("a committee of {validators} tolerates no faulty validator, so none may be Byzantine (4 validators tolerate one)")]
    ByzantineNotTolerated {
        /// The committee's size.
        validators: usize,
    },
    /// Fault lengths out of order, or a zero gap.
    #[error(
        "fault lengths must satisfy 0 < min_length <= max_length, and mean_gap must be positive"
    )]
    BadLengths,
}

/// The faults of one run, in order of start: never more than f validators faulty at once (a
/// Byzantine one counting throughout), every fault healed by the end of the run, the same
/// faults for the same seed and settings ([`Schedule::draw`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The seed it was drawn from.
    pub seed: u64,
    /// How many validators may be faulty at once.
    pub tolerated: usize,
    /// The faults, in order of start.
    pub faults: Vec<Fault>,
}

impl Schedule {
    /// Draws the schedule of `seed` under `config`.
    pub fn draw(seed: u64, config: &ScheduleConfig) -> Result<Schedule, ScheduleError> {
        if config.validators == 0 {
            return Err(ScheduleError::NoValidators);
        }
        if config.min_length.is_zero()
            || config.min_length > config.max_length
            || config.mean_gap.is_zero()
        {
            return Err(ScheduleError::BadLengths);
        }
        let tolerated = (config.validators - 1) / 3;
        if let Some(index) = config.byzantine {
            if index >= config.validators {
                return Err(ScheduleError::ByzantineOutOfRange {
                    index,
                    validators: config.validators,
                });
            }
            if tolerated == 0 {
                return Err(ScheduleError::ByzantineNotTolerated {
                    validators: config.validators,
                });
            }
        }
        let room = tolerated - usize::from(config.byzantine.is_some());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let duration = millis(config.duration);
        let (min_length, max_length) = (millis(config.min_length), millis(config.max_length));
        let mean_gap = millis(config.mean_gap).max(1);
        let mut faults: Vec<Fault> = Vec::new();
        let mut now = millis(config.warm_up);
        loop {
            now += rng.gen_range(mean_gap / 2..=mean_gap + mean_gap / 2);
            // The last fault must have room to last its shortest before the end.
            if now + min_length > duration {
                break;
            }
            let kind = draw_kind(&mut rng);
            if kind == FaultKind::ClientRestart {
                if config.clients > 0 {
                    let client = rng.gen_range(0..config.clients);
                    faults.push(Fault {
                        start_ms: now,
                        end_ms: now,
                        target: Target::Client(client),
                        kind,
                    });
                }
                continue;
            }
            let end = (now + rng.gen_range(min_length..=max_length)).min(duration);
            let busy: Vec<usize> = faults
                .iter()
                .filter(|fault| fault.overlaps(now, end))
                .filter_map(|fault| match fault.target {
                    Target::Validator(index) => Some(index),
                    Target::Client(_) => None,
                })
                .collect();
            if busy.len() >= room {
                continue;
            }
            let free: Vec<usize> = (0..config.validators)
                .filter(|index| Some(*index) != config.byzantine && !busy.contains(index))
                .collect();
            if free.is_empty() {
                continue;
            }
            let validator = free[rng.gen_range(0..free.len())];
            faults.push(Fault {
                start_ms: now,
                end_ms: end,
                target: Target::Validator(validator),
                kind,
            });
        }
        Ok(Schedule {
            seed,
            tolerated,
            faults,
        })
    }

    /// The most validators faulty at one moment (counting none Byzantine).
    pub fn most_faulty_at_once(&self) -> usize {
        self.faults
            .iter()
            .map(|fault| {
                self.faults
                    .iter()
                    .filter(|other| other.overlaps(fault.start_ms, fault.start_ms + 1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// How many faults of each kind, by [`FaultKind::name`].
    pub fn counts_by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for fault in &self.faults {
            *counts.entry(fault.kind.name()).or_insert(0) += 1;
        }
        counts
    }
}

impl fmt::Display for Schedule {
    /// One line per fault.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "schedule of seed {} ({} faults):",
            self.seed,
            self.faults.len()
        )?;
        for fault in &self.faults {
            writeln!(f, "  {fault}")?;
        }
        Ok(())
    }
}

/// A kind of fault, with its parameters, drawn uniformly among the kinds.
fn draw_kind(rng: &mut ChaCha8Rng) -> FaultKind {
    match rng.gen_range(0..8) {
        0 => FaultKind::Kill,
        1 => FaultKind::Pause,
        2 => FaultKind::BlackHole,
        3 => FaultKind::Latency {
            millis: rng.gen_range(20..=400),
        },
        4 => FaultKind::Resets,
        5 => FaultKind::Bandwidth {
            bytes_per_second: rng.gen_range(16_384..=262_144),
        },
        6 => {
            let millis = rng.gen_range(200..=3_000);
            FaultKind::ClockJump {
                millis: if rng.gen_bool(0.5) { millis } else { -millis },
            }
        }
        _ => FaultKind::ClientRestart,
    }
}

/// `duration` in whole milliseconds (saturating).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    /// How many validators are faulty at `at`, by the schedule.
    fn faulty_at(schedule: &Schedule, at: u64) -> usize {
        schedule
            .faults
            .iter()
            .filter(|fault| fault.overlaps(at, at + 1))
            .count()
    }

    proptest! {
        #[test]
        fn never_more_than_f_and_every_fault_healed_in_time(
            seed in any::<u64>(),
            validators in 1usize..11,
            clients in 0usize..6,
            seconds in 1u64..120,
            byzantine in any::<bool>(),
        ) {
            let tolerated = (validators - 1) / 3;
            let config = ScheduleConfig {
                validators,
                clients,
                duration: Duration::from_secs(seconds),
                byzantine: (byzantine && tolerated > 0).then_some(validators - 1),
                ..ScheduleConfig::default()
            };
            let schedule = Schedule::draw(seed, &config).unwrap();
            let room = tolerated - usize::from(config.byzantine.is_some());
            for fault in &schedule.faults {
                prop_assert!(fault.end_ms <= seconds * 1_000);
                prop_assert!(fault.start_ms <= fault.end_ms);
                prop_assert!(faulty_at(&schedule, fault.start_ms) <= room);
                match fault.target {
                    Target::Validator(index) => {
                        prop_assert!(index < validators);
                        prop_assert!(Some(index) != config.byzantine);
                        prop_assert!(fault.kind != FaultKind::ClientRestart);
                    }
                    Target::Client(index) => {
                        prop_assert!(index < clients);
                        prop_assert_eq!(fault.kind, FaultKind::ClientRestart);
                    }
                }
            }
            prop_assert!(schedule.most_faulty_at_once() <= room);
            // The same seed draws the same schedule.
            prop_assert_eq!(Schedule::draw(seed, &config).unwrap(), schedule);
        }
    }

    #[test]
    fn a_minute_with_four_validators_draws_every_kind_and_overlaps_none() {
        let schedule = Schedule::draw(7, &ScheduleConfig::default()).unwrap();
        let kinds = schedule.counts_by_kind();
        assert!(kinds.len() >= 6, "{kinds:?}");
        assert!(schedule.faults.len() >= 15, "{schedule}");
        assert_eq!(schedule.most_faulty_at_once(), 1);
        assert_ne!(
            Schedule::draw(8, &ScheduleConfig::default()).unwrap(),
            schedule
        );
    }

    #[test]
    fn a_byzantine_validator_leaves_no_room_among_four() {
        let config = ScheduleConfig {
            byzantine: Some(3),
            ..ScheduleConfig::default()
        };
        let schedule = Schedule::draw(1, &config).unwrap();
        assert!(schedule
            .faults
            .iter()
            .all(|fault| matches!(fault.target, Target::Client(_))));
        let seven = ScheduleConfig {
            validators: 7,
            byzantine: Some(6),
            ..ScheduleConfig::default()
        };
        let schedule = Schedule::draw(1, &seven).unwrap();
        assert_eq!(schedule.most_faulty_at_once(), 1);
        assert!(schedule
            .faults
            .iter()
            .all(|fault| fault.target != Target::Validator(6)));
    }

    #[test]
    fn bad_settings_are_refused() {
        let none = ScheduleConfig {
            validators: 0,
            ..ScheduleConfig::default()
        };
        assert_eq!(Schedule::draw(0, &none), Err(ScheduleError::NoValidators));
        let three = ScheduleConfig {
            validators: 3,
            byzantine: Some(0),
            ..ScheduleConfig::default()
        };
        assert_eq!(
            Schedule::draw(0, &three),
            Err(ScheduleError::ByzantineNotTolerated { validators: 3 })
        );
        let out = ScheduleConfig {
            byzantine: Some(4),
            ..ScheduleConfig::default()
        };
        assert!(matches!(
            Schedule::draw(0, &out),
            Err(ScheduleError::ByzantineOutOfRange { index: 4, .. })
        ));
    }
}
