//! Clock skew: whether validators holding f+1 of the weight say our clock is ahead (DESIGN
//! §5.4.1). Pure.

use std::collections::BTreeMap;

use quorum_core::{Committee, TimeDelta, ValidatorPublicKey};

use crate::updater::SkewReport;

/// The weighted median skew, in microseconds, of the validators that report our clock ahead of
/// theirs by more than `grace` (the validators' timestamp grace), if they hold at least the
/// validity threshold (f+1) of the committee's weight; `None` otherwise.
///
/// Each validator counts once, by its weight, with the largest skew it reported; validators
/// outside the committee or of zero weight do not count.
pub(crate) fn clock_ahead(
    committee: &Committee,
    reports: &[SkewReport],
    grace: TimeDelta,
) -> Option<i64> {
    let grace = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
    let mut largest: BTreeMap<ValidatorPublicKey, i64> = BTreeMap::new();
    for (validator, skew) in reports {
        let entry = largest.entry(*validator).or_insert(*skew);
        *entry = (*entry).max(*skew);
    }
    let mut ahead: Vec<(i64, u64)> = largest
        .into_iter()
        .filter(|(_, skew)| *skew > grace)
        .map(|(validator, skew)| (skew, committee.weight(&validator)))
        .filter(|(_, weight)| *weight > 0)
        .collect();
    let weight = ahead
        .iter()
        .fold(0u64, |sum, (_, weight)| sum.saturating_add(*weight));
    if weight < committee.validity_threshold() {
        return None;
    }
    ahead.sort_unstable();
    // The smallest skew at which half of the reporting weight is reached.
    let half = weight.div_ceil(2);
    let mut cumulative = 0u64;
    for (skew, weight) in &ahead {
        cumulative = cumulative.saturating_add(*weight);
        if cumulative >= half {
            return Some(*skew);
        }
    }
    ahead.last().map(|(skew, _)| *skew)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;
    use quorum_testkit::{committee_of, validator_keys};

    const GRACE: TimeDelta = TimeDelta::from_millis(500);

    fn setup(n: usize) -> (Committee, Vec<ValidatorPublicKey>) {
        let secrets = validator_keys(n, 11);
        let committee = committee_of(&secrets);
        let keys = secrets.iter().map(|s| s.public()).collect();
        (committee, keys)
    }

    #[test]
    fn below_the_grace_or_below_f_plus_one_is_not_ahead() {
        let (committee, keys) = setup(4);
        // Latency-sized skews from everyone: within the grace.
        let small: Vec<SkewReport> = keys.iter().map(|k| (*k, 50_000)).collect();
        assert_eq!(clock_ahead(&committee, &small, GRACE), None);
        // One validator (f) far behind: not enough weight.
        assert_eq!(
            clock_ahead(&committee, &[(keys[0], 10_000_000)], GRACE),
            None
        );
        // The same validator reporting many times still counts once.
        let repeated = vec![(keys[0], 10_000_000); 10];
        assert_eq!(clock_ahead(&committee, &repeated, GRACE), None);
    }

    #[test]
    fn f_plus_one_far_behind_is_ahead_with_the_weighted_median() {
        let (committee, keys) = setup(4);
        let reports = vec![(keys[0], 9_000_000), (keys[1], 10_000_000)];
        assert_eq!(clock_ahead(&committee, &reports, GRACE), Some(9_000_000));
        let reports = vec![
            (keys[0], 9_000_000),
            (keys[1], 10_000_000),
            (keys[2], 11_000_000),
        ];
        assert_eq!(clock_ahead(&committee, &reports, GRACE), Some(10_000_000));
    }

    proptest! {
        #[test]
        fn duplicates_and_order_do_not_matter(
            skews in proptest::collection::vec((0usize..7, 0i64..20_000_000), 0..30),
            seed in any::<u64>(),
        ) {
            let (committee, keys) = setup(7);
            let reports: Vec<SkewReport> = skews.iter().map(|(v, s)| (keys[*v], *s)).collect();
            let result = clock_ahead(&committee, &reports, GRACE);
            // Reversed and repeated: the same verdict.
            let mut shuffled = reports.clone();
            shuffled.reverse();
            shuffled.extend(reports.iter().copied().filter(|_| seed % 2 == 0));
            prop_assert_eq!(clock_ahead(&committee, &shuffled, GRACE), result);
            // A verdict needs f+1 distinct validators beyond the grace, and lies among them.
            let beyond: std::collections::BTreeSet<_> = reports
                .iter()
                .filter(|(_, s)| *s > 500_000)
                .map(|(k, _)| *k)
                .collect();
            match result {
                Some(skew) => {
                    prop_assert!(beyond.len() as u64 >= committee.validity_threshold());
                    prop_assert!(skew > 500_000);
                }
                None => prop_assert!((beyond.len() as u64) < committee.validity_threshold()),
            }
        }
    }
}
