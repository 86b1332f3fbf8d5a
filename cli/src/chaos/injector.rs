//! Applies a [`Schedule`] to the running committee and workload: each fault at its start,
//! healed at its end, on the clock of the run.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use quorum_chaos::proxy::ProxyFault;
use quorum_chaos::{Fault, FaultKind, Schedule, Target};

use super::committee::Member;
use super::workload::Workload;

/// A fault's start or its end.
#[derive(Clone, Copy, Debug)]
struct Step {
    at: Duration,
    fault: Fault,
    heal: bool,
}

/// Runs `schedule` from `started`: returns once its last fault is healed and `duration` has
/// passed. Failures to apply a fault (a validator that will not restart) are logged and the
/// schedule goes on; [`heal_all`] at the end puts every validator back in any case.
pub async fn run(
    schedule: &Schedule,
    started: Instant,
    duration: Duration,
    members: &mut [Member],
    workload: &mut Workload,
) {
    let mut steps: Vec<Step> = Vec::new();
    for fault in &schedule.faults {
        steps.push(Step {
            at: fault.start(),
            fault: *fault,
            heal: false,
        });
        if fault.kind != FaultKind::ClientRestart {
            steps.push(Step {
                at: fault.end(),
                fault: *fault,
                heal: true,
            });
        }
    }
    // Heals before starts at one instant, so that a validator is never hit twice at once.
    steps.sort_by_key(|step| (step.at, !step.heal));
    for step in steps {
        tokio::time::sleep_until(started + step.at).await;
        info!(fault = %step.fault, heal = step.heal, "chaos step");
        match step.fault.target {
            Target::Client(index) => workload.restart(index).await,
            Target::Validator(index) => {
                if let Some(member) = members.get_mut(index) {
                    apply(member, step.fault.kind, step.heal).await;
                }
            }
        }
    }
    tokio::time::sleep_until(started + duration).await;
}

/// Starts (or heals) `kind` on `member`.
async fn apply(member: &mut Member, kind: FaultKind, heal: bool) {
    match (kind, heal) {
        (FaultKind::Kill, false) => member.process.kill().await,
        (FaultKind::Kill, true) => {
            if let Err(error) = member.process.start().await {
                warn!(%error, "validator did not restart; tried again at the end");
            }
        }
        (FaultKind::Pause, false) => member.process.pause(),
        (FaultKind::Pause, true) => member.process.resume(),
        (FaultKind::BlackHole, false) => member.faults.set(ProxyFault::BlackHole),
        (FaultKind::Latency { millis }, false) => member
            .faults
            .set(ProxyFault::Latency(Duration::from_millis(millis))),
        (FaultKind::Resets, false) => member.faults.set(ProxyFault::Reset),
        (FaultKind::Bandwidth { bytes_per_second }, false) => member
            .faults
            .set(ProxyFault::Bandwidth { bytes_per_second }),
        (FaultKind::BlackHole | FaultKind::Latency { .. } | FaultKind::Resets, true)
        | (FaultKind::Bandwidth { .. }, true) => member.faults.set(ProxyFault::Pass),
        (FaultKind::ClockJump { millis }, false) => set_clock(member, millis),
        (FaultKind::ClockJump { .. }, true) => set_clock(member, 0),
        (FaultKind::ClientRestart, _) => {}
    }
}

/// Writes the validator's clock offset, in milliseconds.
fn set_clock(member: &Member, millis: i64) {
    if let Err(error) = std::fs::write(&member.clock_file, format!("{millis}\n")) {
        warn!(file = %member.clock_file.display(), %error, "cannot set the clock offset");
    }
}

/// Puts every validator back: running, resumed, its proxy passing everything, its clock
/// true. Returns the validators that would not start.
pub async fn heal_all(members: &mut [Member]) -> Vec<String> {
    let mut failed = Vec::new();
    for member in members {
        member.faults.set(ProxyFault::Pass);
        set_clock(member, 0);
        member.process.resume();
        if let Err(error) = member.process.start().await {
            warn!(%error, "validator does not start after healing");
            failed.push(member.process.name.clone());
        }
    }
    failed
}
