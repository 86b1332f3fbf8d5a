//! Consensus rounds within one block height.

use core::fmt;

use serde::{Deserialize, Serialize};

/// A consensus round at one height. Totally ordered: `Fast < MultiLeader(_) < SingleLeader(_)`,
/// and by number within each kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Round {
    /// The fast round: only a chain's super owner proposes, and a valid proposal is confirmed at
    /// once.
    Fast,
    /// A round in which any owner may propose.
    MultiLeader(u32),
    /// A round with a single designated leader.
    SingleLeader(u32),
}

impl Round {
    /// Whether this is the fast round.
    pub fn is_fast(self) -> bool {
        matches!(self, Round::Fast)
    }

    /// The round after this one, given how many multi-leader rounds the chain has before its
    /// single-leader rounds start. `None` when the numbers run out.
    pub fn next(self, multi_leader_rounds: u32) -> Option<Round> {
        match self {
            Round::Fast if multi_leader_rounds > 0 => Some(Round::MultiLeader(0)),
            Round::Fast => Some(Round::SingleLeader(0)),
            Round::MultiLeader(n) if n.saturating_add(1) < multi_leader_rounds => {
                Some(Round::MultiLeader(n + 1))
            }
            Round::MultiLeader(_) => Some(Round::SingleLeader(0)),
            Round::SingleLeader(n) => n.checked_add(1).map(Round::SingleLeader),
        }
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Round::Fast => write!(f, "fast round"),
            Round::MultiLeader(n) => write!(f, "multi-leader round {n}"),
            Round::SingleLeader(n) => write!(f, "single-leader round {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_next() {
        assert!(Round::Fast < Round::MultiLeader(0));
        assert!(Round::MultiLeader(u32::MAX) < Round::SingleLeader(0));
        assert_eq!(Round::Fast.next(2), Some(Round::MultiLeader(0)));
        assert_eq!(Round::MultiLeader(1).next(2), Some(Round::SingleLeader(0)));
        assert_eq!(Round::Fast.next(0), Some(Round::SingleLeader(0)));
        assert_eq!(Round::SingleLeader(u32::MAX).next(2), None);
    }
}
