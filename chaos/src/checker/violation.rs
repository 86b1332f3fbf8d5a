//! [`Violation`]: one thing a chaos run's checker found that should not have happened, named
//! as reports print it.

use std::fmt;

use serde::Serialize;

/// One thing that should not have happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "violation")]
pub enum Violation {
    /// Different blocks certified at one height.
    Fork {
        /// The chain.
        chain: String,
        /// The height.
        height: u64,
        /// Each validator and the hash it holds there.
        holders: Vec<(String, String)>,
    },
    /// A block whose certificate does not carry a quorum of the committee's signatures.
    Uncertified {
        /// Who holds it.
        validator: String,
        /// The chain.
        chain: String,
        /// The height.
        height: u64,
    },
    /// An honest validator that did not answer after healing.
    Unreachable {
        /// The validator.
        validator: String,
        /// What failed.
        error: String,
    },
    /// An acknowledged block the validator does not hold.
    AcknowledgedMissing {
        /// The validator.
        validator: String,
        /// The client that saw it acknowledged.
        client: usize,
        /// The chain.
        chain: String,
        /// The height.
        height: u64,
    },
    /// The validator holds another block where an acknowledged one was.
    AcknowledgedReplaced {
        /// The validator.
        validator: String,
        /// The client that saw it acknowledged.
        client: usize,
        /// The chain.
        chain: String,
        /// The height.
        height: u64,
        /// The acknowledged hash.
        acknowledged: String,
        /// What the validator holds.
        found: String,
    },
    /// A chain's reported balance differs from the replay of its blocks.
    BalanceMismatch {
        /// The validator.
        validator: String,
        /// The chain.
        chain: String,
        /// What it reports.
        reported: u64,
        /// What its blocks add up to.
        replayed: i128,
    },
    /// A height below the chain's next height with no block given.
    BlockMissing {
        /// The validator.
        validator: String,
        /// The chain.
        chain: String,
        /// The height.
        height: u64,
    },
    /// The chain's tip is not its last block.
    TipMismatch {
        /// The validator.
        validator: String,
        /// The chain.
        chain: String,
    },
    /// Balances and messages in flight do not add up to the genesis supply.
    SupplyChanged {
        /// The validator.
        validator: String,
        /// The genesis supply.
        expected: u64,
        /// Balances plus messages in flight.
        found: i128,
    },
    /// A block consumed a bundle its origin block did not send as consumed.
    ConsumedNeverSent {
        /// The validator.
        validator: String,
        /// The consuming chain.
        chain: String,
        /// The origin chain.
        origin: String,
        /// The origin block's height.
        height: u64,
        /// The amount consumed.
        amount: u64,
    },
    /// A chain that did not commit within the bound after healing.
    NoProgress {
        /// The chain.
        chain: String,
        /// The bound, in milliseconds.
        bound_ms: u64,
        /// What failed.
        error: String,
    },
    /// A process that panicked.
    Panicked {
        /// The process.
        process: String,
        /// The line that says so.
        line: String,
    },
    /// A process that had to be killed at the end.
    LeftRunning {
        /// The process.
        process: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Fork {
                chain,
                height,
                holders,
            } => {
                write!(f, "fork on chain {chain} at height {height}:")?;
                for (validator, hash) in holders {
                    write!(f, " {validator}={hash}")?;
                }
                Ok(())
            }
            Violation::Uncertified {
                validator,
                chain,
                height,
            } => write!(
                f,
                "{validator} holds a block of chain {chain} at height {height} without a quorum's signatures"
            ),
            Violation::Unreachable { validator, error } => {
                write!(f, "{validator} did not answer after healing: {error}")
            }
            Violation::AcknowledgedMissing {
                validator,
                client,
                chain,
                height,
            } => write!(
                f,
                "{validator} lacks the block client-{client} saw acknowledged on chain {chain} at height {height}"
            ),
            Violation::AcknowledgedReplaced {
                validator,
                client,
                chain,
                height,
                acknowledged,
                found,
            } => write!(
                f,
                "{validator} holds {found} where client-{client} saw {acknowledged} acknowledged on chain {chain} at height {height}"
            ),
            Violation::BalanceMismatch {
                validator,
                chain,
                reported,
                replayed,
            } => write!(
                f,
                "{validator} reports balance {reported} on chain {chain}, its blocks replay to {replayed}"
            ),
            Violation::BlockMissing {
                validator,
                chain,
                height,
            } => write!(f, "{validator} gave no block of chain {chain} at height {height} below its tip"),
            Violation::TipMismatch { validator, chain } => {
                write!(f, "{validator}'s tip of chain {chain} is not its last block")
            }
            Violation::SupplyChanged {
                validator,
                expected,
                found,
            } => write!(
                f,
                "{validator}: balances plus messages in flight are {found}, the genesis supply is {expected}"
            ),
            Violation::ConsumedNeverSent {
                validator,
                chain,
                origin,
                height,
                amount,
            } => write!(
                f,
                "{validator}: chain {chain} consumed {amount} from chain {origin} at height {height}, which that block did not send"
            ),
            Violation::NoProgress {
                chain,
                bound_ms,
                error,
            } => write!(
                f,
                "chain {chain} committed nothing within {} s after healing: {error}",
                *bound_ms as f64 / 1e3
            ),
            Violation::Panicked { process, line } => write!(f, "{process} panicked: {line}"),
            Violation::LeftRunning { process } => {
                write!(f, "{process} was still running when told to stop")
            }
        }
    }
}
