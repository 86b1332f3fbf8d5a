//! Chaos runs of a Quorum committee (DESIGN §10.1): what `quorum chaos` is made of, apart from
//! the processes it starts.
//!
//! * [`proxy`]: a userspace TCP fault proxy ([`proxy::FaultProxy`]) that sits between clients
//!   and a validator on loopback and, switchable at run time, forwards, delays, black-holes,
//!   resets, throttles or cuts their connections. It stands in for `netem` and `iptables`,
//!   which test machines may not have.
//! * [`Schedule`]: the faults of a run, drawn from a seed ([`ScheduleConfig`]), never more
//!   than f validators faulty at once (a Byzantine one counts); the same seed draws the same
//!   schedule.
//! * [`Journal`]: what clients saw acknowledged, appended and synced to disk before they
//!   count it, so that the checker reads what clients were promised.
//! * [`check`]: the invariants that must hold once every fault is healed, over what every
//!   honest validator says ([`ValidatorView`], gathered by [`observe`]) and the journal:
//!   no fork, nothing acknowledged lost, balances that replay, the supply unchanged, progress
//!   after healing, no process panicked or left running. Its [`Report`] names every
//!   violation.

#![warn(unreachable_pub)]

mod checker;
mod evidence;
mod gather;
mod journal;
pub mod proxy;
mod report;
mod schedule;

pub use checker::{check, Invariant, Verdict, Violation};
pub use evidence::{
    BlockRecord, ChainProgress, ChainView, Evidence, ProcessOutcome, ValidatorView,
};
pub use gather::{observe, GatherConfig};
pub use journal::{Acknowledgement, Journal, JournalError};
pub use report::Report;
pub use schedule::{Fault, FaultKind, Schedule, ScheduleConfig, ScheduleError, Target};
