//! Target 2: the quorum tally of 100 answers from a committee of 100 equal validators, beside a
//! bare loop that sums the same weights into a map.
//!
//! Every side gets the same 100 answers in the same (shuffled, seeded) arrival order, all for the
//! same value. Ours builds the tally, counts every answer (weight look-up, duplicate check,
//! grouping, quorum and impossibility checks, keeping the values) and, in the `finish` variant,
//! produces the quorum's values in validator order as `communicate_with_quorum` does. The floors
//! only look up each weight and add it to its value's sum in a fresh map, noting when the sum
//! first reaches the quorum threshold.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

use criterion::{Criterion, Throughput};
use quorum_benches::fixtures::committee;
use quorum_benches::settings;
use quorum_core::{Committee, CryptoHash, NodeError, QuorumTally, ValidatorPublicKey};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Validators (and answers).
const VALIDATORS: usize = 100;

type Tally<'c> = QuorumTally<'c, CryptoHash, CryptoHash, NodeError>;

/// Ours: every answer through the tally; returns whether a quorum was reached.
fn ours<'c>(committee: &'c Committee, answers: &[(ValidatorPublicKey, CryptoHash)]) -> Tally<'c> {
    let mut tally = Tally::new(committee);
    for (validator, value) in answers {
        let outcome = tally.insert(*validator, Ok(*value), |value| *value);
        black_box(&outcome);
    }
    tally
}

/// The floor on hash maps: weights from a prepared map, sums in a fresh map.
fn floor_hash(
    weights: &HashMap<ValidatorPublicKey, u64>,
    threshold: u64,
    answers: &[(ValidatorPublicKey, CryptoHash)],
) -> Option<CryptoHash> {
    let mut sums: HashMap<CryptoHash, u64> = HashMap::new();
    let mut reached = None;
    for (validator, value) in answers {
        let weight = weights.get(validator).copied().unwrap_or(0);
        let sum = sums.entry(*value).or_insert(0);
        *sum += weight;
        if reached.is_none() && *sum >= threshold {
            reached = Some(*value);
        }
    }
    reached
}

/// The floor on B-trees: weights from the committee's own map, sums in a fresh map.
fn floor_btree(
    committee: &Committee,
    answers: &[(ValidatorPublicKey, CryptoHash)],
) -> Option<CryptoHash> {
    let threshold = committee.quorum_threshold();
    let mut sums: BTreeMap<CryptoHash, u64> = BTreeMap::new();
    let mut reached = None;
    for (validator, value) in answers {
        let sum = sums.entry(*value).or_insert(0);
        *sum += committee.weight(validator);
        if reached.is_none() && *sum >= threshold {
            reached = Some(*value);
        }
    }
    reached
}

fn tally(c: &mut Criterion) {
    let committee = committee(VALIDATORS).committee;
    let value = CryptoHash::of_bytes("bench", b"the value every validator answers");
    let mut answers: Vec<(ValidatorPublicKey, CryptoHash)> = committee
        .validators()
        .map(|(validator, _)| (*validator, value))
        .collect();
    answers.shuffle(&mut ChaCha8Rng::seed_from_u64(3));
    let weights: HashMap<ValidatorPublicKey, u64> = committee
        .validators()
        .map(|(validator, info)| (*validator, info.votes))
        .collect();
    let threshold = committee.quorum_threshold();
    assert_eq!(ours(&committee, &answers).quorum_key(), Some(&value));
    assert_eq!(floor_hash(&weights, threshold, &answers), Some(value));
    assert_eq!(floor_btree(&committee, &answers), Some(value));

    let mut group = c.benchmark_group("tally_100");
    settings::fast(&mut group);
    // Per-answer figures: criterion reports the time per 100 answers and the answers per second.
    group.throughput(Throughput::Elements(VALIDATORS as u64));
    group.bench_function("ours_tally_insert", |b| {
        b.iter(|| ours(black_box(&committee), black_box(&answers)))
    });
    group.bench_function("ours_tally_insert_finish", |b| {
        b.iter(|| ours(black_box(&committee), black_box(&answers)).finish())
    });
    group.bench_function("floor_hashmap_sum", |b| {
        b.iter(|| floor_hash(black_box(&weights), threshold, black_box(&answers)))
    });
    group.bench_function("floor_btreemap_sum", |b| {
        b.iter(|| floor_btree(black_box(&committee), black_box(&answers)))
    });
    group.finish();
}

fn main() {
    let mut criterion = settings::criterion();
    tally(&mut criterion);
    criterion.final_summary();
}
