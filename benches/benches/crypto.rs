//! Target 1: checking a certificate of a committee of 100 equal validators signed by 67 of them,
//! beside the raw ed25519-dalek batch verification of the same 67 signatures and beside 67
//! single `verify_strict` calls.

use std::hint::black_box;

use criterion::Criterion;
use quorum_benches::fixtures::{committee, partial_certificate, RawSignatures};
use quorum_benches::settings;

/// Validators in the committee.
const VALIDATORS: usize = 100;
/// Signers: the quorum of 100 validators of weight 1.
const SIGNERS: usize = 67;

fn certificate_check(c: &mut Criterion) {
    let committee = committee(VALIDATORS);
    let certificate = partial_certificate(&committee, SIGNERS);
    assert_eq!(certificate.signatures().len(), SIGNERS);
    assert_eq!(committee.committee.quorum_threshold(), SIGNERS as u64);
    let raw = RawSignatures::of(&certificate);
    assert!(certificate.check(&committee.committee).is_ok());
    assert!(raw.verify_batch() && raw.verify_each_strict());

    let mut group = c.benchmark_group("certificate_check_100");
    settings::fast(&mut group);
    group.bench_function("ours_certificate_check", |b| {
        b.iter(|| black_box(&certificate).check(black_box(&committee.committee)))
    });
    group.bench_function("floor_raw_verify_batch", |b| {
        b.iter(|| black_box(&raw).verify_batch())
    });
    group.bench_function("floor_67_verify_strict", |b| {
        b.iter(|| black_box(&raw).verify_each_strict())
    });
    group.finish();
}

fn main() {
    let mut criterion = settings::criterion();
    certificate_check(&mut criterion);
    criterion.final_summary();
}
