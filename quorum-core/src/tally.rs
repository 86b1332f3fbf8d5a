//! The quorum tally: the pure state machine at the heart of `communicate_with_quorum`.
//!
//! The driver feeds it one answer at a time; it says whether to keep waiting, whether a quorum
//! was just reached (the driver then starts its grace period), or whether no quorum is possible
//! any more. [`QuorumTally::finish`] turns what was gathered into a result.

use alloc::vec::Vec;

use crate::committee::Committee;
use crate::crypto::ValidatorPublicKey;

/// How many errors [`TallyError::Sample`] reports at most.
pub(crate) const ERROR_SAMPLE_SIZE: usize = 4;

/// The key that reached a quorum with the `(validator, value)` pairs gathered for it.
pub type QuorumValues<K, V> = (K, Vec<(ValidatorPublicKey, V)>);

/// What the driver should do after an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TallyOutcome<K> {
    /// Keep waiting for answers.
    Pending,
    /// The first key to reach a quorum, reported once; later answers are still recorded.
    QuorumReached(K),
    /// The best key plus all weight not yet heard from is below the quorum threshold: stop.
    QuorumImpossible,
}

/// Why an answer was not counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The validator is not in the committee.
    #[error("answer from a validator outside the committee")]
    UnknownValidator,
    /// The validator has zero weight: it is never counted.
    #[error("answer from a zero-weight validator")]
    ZeroWeight,
    /// The validator already answered; its first answer stands.
    #[error("second answer from the same validator")]
    Repeated,
}

/// The result when no key reached a quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TallyError<E> {
    /// One error has at least the validity threshold of weight: an honest validator returned it.
    Trusted(E),
    /// The heaviest errors (at most 4) with their weights, heaviest first.
    Sample(Vec<(E, u64)>),
    /// No errors at all, but the values disagree: `scores` are `(weight, number of validators)`
    /// per distinct key, heaviest first.
    NoConsensus {
        /// The quorum threshold that no key reached.
        threshold: u64,
        /// Weight and validator count of every key.
        scores: Vec<(u64, usize)>,
    },
}

/// The values gathered for one key.
#[derive(Clone, Debug)]
struct Group<K, V> {
    key: K,
    weight: u64,
    /// `(member position, validator, value)`; the position sorts them cheaply at the end.
    values: Vec<(usize, ValidatorPublicKey, V)>,
}

/// One distinct error with its accumulated weight.
#[derive(Clone, Debug)]
struct ErrorScore<E> {
    error: E,
    weight: u64,
    /// Committee index of the first (smallest) validator that returned it: breaks weight ties
    /// independently of arrival order.
    first_member: usize,
}

/// Tallies answers `(validator, Result<V, E>)` grouped by a caller-supplied key `K`.
#[derive(Clone, Debug)]
pub struct QuorumTally<'c, K, V, E> {
    /// The committee: member positions and weights.
    committee: &'c Committee,
    /// Per member position: whether it answered.
    heard: Vec<bool>,
    quorum_threshold: u64,
    validity_threshold: u64,
    /// Weight of the non-zero validators not yet heard from.
    remaining: u64,
    groups: Vec<Group<K, V>>,
    errors: Vec<ErrorScore<E>>,
    /// Index into `groups` of the key that reached a quorum.
    quorum: Option<usize>,
    /// Weight of the heaviest group.
    best: u64,
}

impl<'c, K: Clone + Eq, V, E: Clone + Eq> QuorumTally<'c, K, V, E> {
    /// A tally over `committee`.
    pub fn new(committee: &'c Committee) -> Self {
        QuorumTally {
            heard: alloc::vec![false; committee.len()],
            committee,
            quorum_threshold: committee.quorum_threshold(),
            validity_threshold: committee.validity_threshold(),
            remaining: committee.total_votes(),
            groups: Vec::new(),
            errors: Vec::new(),
            quorum: None,
            best: 0,
        }
    }

    /// Records a value of `validator` under `key`.
    pub fn insert_value(
        &mut self,
        validator: ValidatorPublicKey,
        key: K,
        value: V,
    ) -> Result<TallyOutcome<K>, Rejected> {
        let (member, weight) = self.admit(&validator)?;
        let index = match self.groups.iter().position(|group| group.key == key) {
            Some(index) => index,
            None => {
                self.groups.push(Group {
                    key,
                    weight: 0,
                    values: Vec::with_capacity(self.heard.len()),
                });
                self.groups.len() - 1
            }
        };
        let group = &mut self.groups[index];
        group.weight += weight;
        group.values.push((member, validator, value));
        self.best = self.best.max(group.weight);
        if self.quorum.is_none() && group.weight >= self.quorum_threshold {
            self.quorum = Some(index);
            return Ok(TallyOutcome::QuorumReached(group.key.clone()));
        }
        Ok(self.outcome())
    }

    /// Records an error of `validator`.
    pub fn insert_error(
        &mut self,
        validator: ValidatorPublicKey,
        error: E,
    ) -> Result<TallyOutcome<K>, Rejected> {
        let (member, weight) = self.admit(&validator)?;
        match self.errors.iter_mut().find(|score| score.error == error) {
            Some(score) => {
                score.weight += weight;
                score.first_member = score.first_member.min(member);
            }
            None => self.errors.push(ErrorScore {
                error,
                weight,
                first_member: member,
            }),
        }
        Ok(self.outcome())
    }

    /// Records an answer, with `key_of` giving the grouping key of a value.
    pub fn insert(
        &mut self,
        validator: ValidatorPublicKey,
        answer: Result<V, E>,
        key_of: impl FnOnce(&V) -> K,
    ) -> Result<TallyOutcome<K>, Rejected> {
        match answer {
            Ok(value) => {
                let key = key_of(&value);
                self.insert_value(validator, key, value)
            }
            Err(error) => self.insert_error(validator, error),
        }
    }

    /// Checks that `validator` may answer now and marks it heard; returns its index and weight.
    fn admit(&mut self, validator: &ValidatorPublicKey) -> Result<(usize, u64), Rejected> {
        let member = self
            .committee
            .position(validator)
            .ok_or(Rejected::UnknownValidator)?;
        let weight = self
            .committee
            .member_at(member)
            .map_or(0, |(_, weight)| weight);
        if weight == 0 {
            return Err(Rejected::ZeroWeight);
        }
        if self.heard[member] {
            return Err(Rejected::Repeated);
        }
        self.heard[member] = true;
        self.remaining -= weight;
        Ok((member, weight))
    }

    fn outcome(&self) -> TallyOutcome<K> {
        if self.quorum.is_none() && self.best + self.remaining < self.quorum_threshold {
            TallyOutcome::QuorumImpossible
        } else {
            TallyOutcome::Pending
        }
    }

    /// The key that reached a quorum, if any.
    pub fn quorum_key(&self) -> Option<&K> {
        self.quorum.map(|index| &self.groups[index].key)
    }

    /// Whether no quorum can be reached any more.
    pub fn is_quorum_impossible(&self) -> bool {
        self.outcome() == TallyOutcome::QuorumImpossible
    }

    /// Weight of the validators not heard from yet.
    pub fn remaining_weight(&self) -> u64 {
        self.remaining
    }

    /// Whether every voting validator has answered.
    pub fn all_heard(&self) -> bool {
        self.remaining == 0
    }

    /// The validators (non-zero weight) not heard from yet, in key order.
    pub fn pending_validators(&self) -> impl Iterator<Item = &ValidatorPublicKey> + '_ {
        self.committee
            .validators()
            .zip(&self.heard)
            .filter(|((_, info), heard)| info.votes > 0 && !**heard)
            .map(|((key, _), _)| key)
    }

    /// The outcome: the quorum key with its `(validator, value)` pairs in validator order, or why
    /// there is none.
    pub fn finish(self) -> Result<QuorumValues<K, V>, TallyError<E>> {
        let mut groups = self.groups;
        if let Some(index) = self.quorum {
            let mut group = groups.swap_remove(index);
            // Positions follow key order: sorting by them is sorting by validator.
            group.values.sort_unstable_by_key(|(member, _, _)| *member);
            let values = group
                .values
                .into_iter()
                .map(|(_, validator, value)| (validator, value))
                .collect();
            return Ok((group.key, values));
        }
        let mut errors = self.errors;
        errors.sort_unstable_by(|a, b| {
            b.weight
                .cmp(&a.weight)
                .then(a.first_member.cmp(&b.first_member))
        });
        if let Some(first) = errors.first() {
            if first.weight >= self.validity_threshold {
                return Err(TallyError::Trusted(first.error.clone()));
            }
            return Err(TallyError::Sample(
                errors
                    .into_iter()
                    .take(ERROR_SAMPLE_SIZE)
                    .map(|score| (score.error, score.weight))
                    .collect(),
            ));
        }
        let mut scores: Vec<(u64, usize)> = groups
            .iter()
            .map(|group| (group.weight, group.values.len()))
            .collect();
        scores.sort_unstable_by(|a, b| b.cmp(a));
        Err(TallyError::NoConsensus {
            threshold: self.quorum_threshold,
            scores,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::committee::ValidatorInfo;
    use crate::crypto::ValidatorSecretKey;
    use alloc::collections::BTreeMap;
    use alloc::string::String;
    use alloc::vec;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    type Tally<'c> = QuorumTally<'c, u8, u32, &'static str>;

    /// Keys, generated once per size (key generation is the slow part of these tests).
    fn keys(n: usize) -> Vec<ValidatorPublicKey> {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let mut keys: Vec<_> = (0..n)
            .map(|_| ValidatorSecretKey::generate(&mut rng).public())
            .collect();
        keys.sort();
        keys
    }

    fn committee(keys: &[ValidatorPublicKey], weights: &[u64]) -> Committee {
        let validators: BTreeMap<_, _> = keys
            .iter()
            .zip(weights)
            .map(|(k, w)| {
                (
                    *k,
                    ValidatorInfo {
                        votes: *w,
                        address: String::new(),
                        network_key: None,
                    },
                )
            })
            .collect();
        Committee::new(validators).unwrap()
    }

    #[test]
    fn quorum_reached_once_then_recorded() {
        let keys = keys(4);
        let committee = committee(&keys, &[1, 1, 1, 1]);
        let mut tally = Tally::new(&committee);
        assert_eq!(
            tally.insert_value(keys[0], 7, 10),
            Ok(TallyOutcome::Pending)
        );
        assert_eq!(
            tally.insert_value(keys[1], 7, 11),
            Ok(TallyOutcome::Pending)
        );
        assert_eq!(
            tally.insert_value(keys[2], 7, 12),
            Ok(TallyOutcome::QuorumReached(7))
        );
        assert_eq!(
            tally.insert_value(keys[3], 7, 13),
            Ok(TallyOutcome::Pending)
        );
        let (key, values) = tally.finish().unwrap();
        assert_eq!(key, 7);
        assert_eq!(
            values,
            vec![(keys[0], 10), (keys[1], 11), (keys[2], 12), (keys[3], 13)]
        );
    }

    #[test]
    fn quorum_impossible_as_soon_as_true() {
        let keys = keys(4);
        let committee = committee(&keys, &[1, 1, 1, 1]);
        let mut tally = Tally::new(&committee);
        assert_eq!(tally.insert_value(keys[0], 1, 0), Ok(TallyOutcome::Pending));
        // best 1 + remaining 2 = 3 = quorum: still reachable.
        assert_eq!(tally.insert_value(keys[1], 2, 0), Ok(TallyOutcome::Pending));
        // best 1 + remaining 1 < 3.
        assert_eq!(
            tally.insert_error(keys[2], "e"),
            Ok(TallyOutcome::QuorumImpossible)
        );
        assert!(tally.is_quorum_impossible());
    }

    #[test]
    fn trusted_error() {
        let keys = keys(4);
        let committee = committee(&keys, &[1, 1, 1, 1]);
        let mut tally = Tally::new(&committee);
        tally.insert_error(keys[0], "late").unwrap();
        tally.insert_error(keys[1], "late").unwrap();
        tally.insert_value(keys[2], 1, 0).unwrap();
        assert_eq!(tally.finish(), Err(TallyError::Trusted("late")));
    }

    #[test]
    fn sample_heaviest_four_descending() {
        let keys = keys(10);
        let weights = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
        let committee = committee(&keys, &weights);
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let mut tally = Tally::new(&committee);
        // Insert lightest first; every error is below validity (55 - 37 + 1 = 19).
        for i in (0..10).rev() {
            tally.insert_error(keys[i], names[i]).unwrap();
        }
        assert_eq!(
            tally.finish(),
            Err(TallyError::Sample(vec![
                ("a", 10),
                ("b", 9),
                ("c", 8),
                ("d", 7)
            ]))
        );
    }

    #[test]
    fn no_consensus_with_scores() {
        let keys = keys(4);
        let committee = committee(&keys, &[1, 1, 1, 1]);
        let mut tally = Tally::new(&committee);
        tally.insert_value(keys[0], 1, 0).unwrap();
        tally.insert_value(keys[1], 2, 0).unwrap();
        tally.insert_value(keys[2], 2, 0).unwrap();
        tally.insert_value(keys[3], 3, 0).unwrap();
        assert_eq!(
            tally.finish(),
            Err(TallyError::NoConsensus {
                threshold: 3,
                scores: vec![(2, 2), (1, 1), (1, 1)]
            })
        );
    }

    #[test]
    fn repeated_and_zero_weight_and_unknown() {
        let keys = keys(5);
        let committee = committee(&keys[..4], &[1, 1, 1, 0]);
        let mut tally = Tally::new(&committee);
        assert_eq!(tally.insert_value(keys[0], 1, 0), Ok(TallyOutcome::Pending));
        assert_eq!(tally.insert_value(keys[0], 1, 0), Err(Rejected::Repeated));
        assert_eq!(tally.insert_error(keys[0], "x"), Err(Rejected::Repeated));
        assert_eq!(tally.insert_value(keys[3], 1, 0), Err(Rejected::ZeroWeight));
        assert_eq!(
            tally.insert_value(keys[4], 1, 0),
            Err(Rejected::UnknownValidator)
        );
        // Total 3: quorum 3, one counted.
        assert_eq!(tally.remaining_weight(), 2);
        assert_eq!(tally.pending_validators().count(), 2);
        tally.insert_value(keys[1], 1, 0).unwrap();
        assert_eq!(
            tally.insert_value(keys[2], 1, 0),
            Ok(TallyOutcome::QuorumReached(1))
        );
    }

    /// Answers: per validator, `Ok(key)` or `Err(error code)`.
    fn answers_strategy() -> impl Strategy<Value = (Vec<u64>, Vec<Result<u8, u8>>, Vec<usize>)> {
        (1usize..12).prop_flat_map(|n| {
            (
                proptest::collection::vec(0u64..20, n),
                proptest::collection::vec(
                    prop_oneof![3 => (0u8..3).prop_map(Ok), 1 => (0u8..3).prop_map(Err)],
                    n,
                ),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            )
        })
    }

    fn run<'c>(
        keys: &[ValidatorPublicKey],
        committee: &'c Committee,
        answers: &[Result<u8, u8>],
        order: &[usize],
    ) -> (Vec<TallyOutcome<u8>>, QuorumTally<'c, u8, usize, u8>) {
        let mut tally = QuorumTally::new(committee);
        let mut outcomes = Vec::new();
        for &i in order {
            let outcome = match answers[i] {
                Ok(key) => tally.insert_value(keys[i], key, i),
                Err(code) => tally.insert_error(keys[i], code),
            };
            match outcome {
                Ok(outcome) => outcomes.push(outcome),
                Err(rejected) => assert_eq!(rejected, Rejected::ZeroWeight),
            }
        }
        (outcomes, tally)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn order_independent((weights, answers, order) in answers_strategy()) {
            prop_assume!(weights.iter().sum::<u64>() > 0);
            let keys = keys(weights.len());
            let committee = committee(&keys, &weights);
            let in_order: Vec<usize> = (0..weights.len()).collect();
            let (_, a) = run(&keys, &committee, &answers, &in_order);
            let (_, b) = run(&keys, &committee, &answers, &order);
            prop_assert_eq!(a.finish(), b.finish());
        }

        #[test]
        fn weights_counted_once_and_never_sub_quorum((weights, answers, order) in answers_strategy()) {
            prop_assume!(weights.iter().sum::<u64>() > 0);
            let keys = keys(weights.len());
            let committee = committee(&keys, &weights);
            let mut tally: QuorumTally<'_, u8, usize, u8> = QuorumTally::new(&committee);
            // Feed every answer twice: the second is always rejected.
            for &i in &order {
                let first = match answers[i] {
                    Ok(key) => tally.insert_value(keys[i], key, i),
                    Err(code) => tally.insert_error(keys[i], code),
                };
                let again = tally.insert_value(keys[i], 0, i);
                if weights[i] == 0 {
                    prop_assert_eq!(first, Err(Rejected::ZeroWeight));
                } else {
                    prop_assert!(first.is_ok());
                    prop_assert_eq!(again, Err(Rejected::Repeated));
                }
            }
            prop_assert_eq!(tally.remaining_weight(), 0);
            if let Ok((key, values)) = tally.finish() {
                let weight: u64 = values.iter().map(|(k, _)| committee.weight(k)).sum();
                prop_assert!(weight >= committee.quorum_threshold());
                // Exactly the validators that answered `key`, once each.
                let expected: u64 = answers.iter().zip(&weights).filter(|(a, _)| **a == Ok(key)).map(|(_, w)| *w).sum();
                prop_assert_eq!(weight, expected);
            }
        }

        #[test]
        fn impossible_only_when_true((weights, answers, order) in answers_strategy()) {
            prop_assume!(weights.iter().sum::<u64>() > 0);
            let keys = keys(weights.len());
            let committee = committee(&keys, &weights);
            let mut tally: QuorumTally<'_, u8, usize, u8> = QuorumTally::new(&committee);
            let mut seen = Vec::new();
            let mut reached = 0;
            for &i in &order {
                let outcome = match answers[i] {
                    Ok(key) => tally.insert_value(keys[i], key, i),
                    Err(code) => tally.insert_error(keys[i], code),
                };
                if weights[i] > 0 { seen.push(i); }
                if let Ok(outcome) = outcome {
                    let unseen: Vec<usize> = (0..weights.len()).filter(|j| !seen.contains(j)).collect();
                    // Could some key still reach a quorum if every unseen validator agreed on it?
                    let reachable = (0u8..3).any(|key| {
                        let have: u64 = seen.iter().filter(|&&j| answers[j] == Ok(key)).map(|&j| weights[j]).sum();
                        let rest: u64 = unseen.iter().map(|&j| weights[j]).sum();
                        have + rest >= committee.quorum_threshold()
                    });
                    match outcome {
                        TallyOutcome::QuorumImpossible => prop_assert!(!reachable),
                        TallyOutcome::QuorumReached(_) => reached += 1,
                        TallyOutcome::Pending => {
                            prop_assert!(reachable || tally.quorum_key().is_some());
                        }
                    }
                }
            }
            prop_assert!(reached <= 1);
        }
    }
}
