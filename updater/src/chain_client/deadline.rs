//! When a round is due for a quorum: the deadline a client waits for before asking for timeout
//! votes again (DESIGN §5.4.1). Pure.

use std::collections::BTreeMap;

use quorum_core::{Committee, Timestamp, ValidatorPublicKey};

/// How validators that named no deadline (unreachable, or not asked because a quorum call
/// stopped early) are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Silent {
    /// As possibly due from the start: the answer is then the earliest instant at which a
    /// quorum can be due, never later than the real one.
    MayBeDue,
    /// As never due: the answer is the instant by which the validators that did answer hold a
    /// quorum, once waiting for the silent ones has proved useless.
    NotDue,
}

/// The deadline by which validators holding a quorum of the weight say a round is due: the
/// quorum-th smallest of their deadlines, by weight. Each validator counts once (its earliest
/// deadline); the silent ones count as `silent` says. `None` when no quorum can be reached
/// from what was named.
pub(crate) fn quorum_deadline(
    committee: &Committee,
    deadlines: &[(ValidatorPublicKey, Timestamp)],
    silent: Silent,
) -> Option<Timestamp> {
    let mut earliest: BTreeMap<ValidatorPublicKey, Timestamp> = BTreeMap::new();
    for (validator, deadline) in deadlines {
        let entry = earliest.entry(*validator).or_insert(*deadline);
        *entry = (*entry).min(*deadline);
    }
    let mut sorted: Vec<(Timestamp, u64)> = earliest
        .into_iter()
        .map(|(validator, deadline)| (deadline, committee.weight(&validator)))
        .collect();
    let named = sorted
        .iter()
        .fold(0u64, |sum, (_, weight)| sum.saturating_add(*weight));
    let mut weight = match silent {
        Silent::MayBeDue => committee.total_votes().saturating_sub(named),
        Silent::NotDue => 0,
    };
    sorted.sort_unstable();
    for (deadline, validator_weight) in sorted {
        weight = weight.saturating_add(validator_weight);
        if weight >= committee.quorum_threshold() {
            return Some(deadline);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use quorum_testkit::{committee_of, validator_keys};

    fn setup(n: usize) -> (Committee, Vec<ValidatorPublicKey>) {
        let secrets = validator_keys(n, 5);
        let committee = committee_of(&secrets);
        let keys = secrets.iter().map(|s| s.public()).collect();
        (committee, keys)
    }

    #[test]
    fn one_far_deadline_does_not_count() {
        let (committee, keys) = setup(4);
        let named = [
            (keys[0], Timestamp(10)),
            (keys[1], Timestamp(20)),
            (keys[2], Timestamp(30)),
            (keys[3], Timestamp(u64::MAX)),
        ];
        for silent in [Silent::MayBeDue, Silent::NotDue] {
            assert_eq!(
                quorum_deadline(&committee, &named, silent),
                Some(Timestamp(30))
            );
        }
    }

    #[test]
    fn silent_validators_count_as_the_caller_says() {
        let (committee, keys) = setup(4);
        // Validator 3 named nothing; 0 is due at 10, 1 at 20, 2 at 50.
        let named = [
            (keys[0], Timestamp(10)),
            (keys[1], Timestamp(20)),
            (keys[2], Timestamp(50)),
        ];
        assert_eq!(
            quorum_deadline(&committee, &named, Silent::MayBeDue),
            Some(Timestamp(20))
        );
        assert_eq!(
            quorum_deadline(&committee, &named, Silent::NotDue),
            Some(Timestamp(50))
        );
        // Two named: a quorum is possible only with the silent ones.
        assert_eq!(
            quorum_deadline(&committee, &named[..2], Silent::NotDue),
            None
        );
    }

    proptest! {
        #[test]
        fn a_lower_bound_whatever_the_order(
            named in proptest::collection::vec((0usize..7, 0u64..1_000), 0..20),
        ) {
            let (committee, keys) = setup(7);
            let deadlines: Vec<_> = named.iter().map(|(v, t)| (keys[*v], Timestamp(*t))).collect();
            let mut reversed = deadlines.clone();
            reversed.reverse();
            for silent in [Silent::MayBeDue, Silent::NotDue] {
                prop_assert_eq!(
                    quorum_deadline(&committee, &deadlines, silent),
                    quorum_deadline(&committee, &reversed, silent)
                );
            }
            // Counting the silent ones as due can only bring the deadline earlier.
            if let Some(strict) = quorum_deadline(&committee, &deadlines, Silent::NotDue) {
                let loose = quorum_deadline(&committee, &deadlines, Silent::MayBeDue);
                prop_assert!(loose.is_some_and(|loose| loose <= strict));
                // The validators due by then hold a quorum.
                let mut due = std::collections::BTreeSet::new();
                for (v, t) in &named {
                    if *t <= strict.0 {
                        due.insert(*v);
                    }
                }
                prop_assert!(due.len() as u64 >= committee.quorum_threshold());
            }
        }
    }
}
