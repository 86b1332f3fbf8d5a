//! DESIGN §9, "BCS+hash vs raw hash": `CryptoHash::new` of a confirmed block (our BCS encoder
//! streaming into SHA-256) beside raw SHA-256 over the very same bytes (domain prefix and BCS
//! encoding, prepared beforehand), and beside the naive way (`bcs::to_bytes`, then SHA-256).
//!
//! Three blocks: one emitting a small event, one with 100 transfers (many small fields), and one
//! emitting a 64 KiB event (bulk bytes).

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use quorum_benches::fixtures::committee;
use quorum_benches::settings;
use quorum_core::{BcsHashable, ConfirmedBlock, CryptoHash, Operation, StreamId};
use quorum_testkit::TestChain;
use sha2::{Digest, Sha256};

/// The bytes `CryptoHash::new` hashes: `"quorum::" ‖ DOMAIN ‖ "::" ‖ BCS(value)`.
fn hashed_bytes(value: &ConfirmedBlock) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"quorum::");
    bytes.extend_from_slice(<ConfirmedBlock as BcsHashable>::DOMAIN.as_bytes());
    bytes.extend_from_slice(b"::");
    bytes.extend_from_slice(&quorum_testkit::must(
        bcs::to_bytes(value),
        "encoding a block",
    ));
    bytes
}

/// The naive way: encode with `bcs`, then hash prefix and bytes.
fn naive(value: &ConfirmedBlock) -> [u8; 32] {
    let bytes = quorum_testkit::must(bcs::to_bytes(value), "encoding a block");
    let mut hasher = Sha256::new();
    hasher.update(b"quorum::");
    hasher.update(<ConfirmedBlock as BcsHashable>::DOMAIN.as_bytes());
    hasher.update(b"::");
    hasher.update(&bytes);
    hasher.finalize().into()
}

fn blocks() -> Vec<(&'static str, ConfirmedBlock)> {
    let committee = committee(4);
    let recipient = TestChain::new(2, 2).id();
    let mut chain = TestChain::new(1, 1);
    let event = |payload: Vec<u8>| Operation::EmitEvent {
        stream: StreamId::user("bench"),
        payload,
    };
    let small = chain.commit_next(&committee, vec![event(b"a small event".to_vec())]);
    let transfers = (0..100)
        .map(|_| Operation::Transfer {
            recipient,
            amount: 1,
        })
        .collect();
    let many = chain.commit_next(&committee, transfers);
    let bulk = chain.commit_next(&committee, vec![event(vec![0xa5; 64 * 1024])]);
    vec![
        ("block_1_event", small.value().inner().clone()),
        ("block_100_transfers", many.value().inner().clone()),
        ("block_64k_event", bulk.value().inner().clone()),
    ]
}

fn hashing(c: &mut Criterion) {
    for (name, value) in blocks() {
        let bytes = hashed_bytes(&value);
        let raw: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(
            CryptoHash::new(&value).0,
            raw,
            "the floor hashes other bytes"
        );
        assert_eq!(naive(&value), raw);

        let mut group = c.benchmark_group(format!("hash_{name}"));
        settings::fast(&mut group);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("ours_cryptohash_new", |b| {
            b.iter(|| CryptoHash::new(black_box(&value)))
        });
        group.bench_function("floor_raw_sha256", |b| {
            b.iter(|| Sha256::digest(black_box(&bytes)))
        });
        group.bench_function("naive_bcs_then_sha256", |b| {
            b.iter(|| naive(black_box(&value)))
        });
        group.finish();
    }
}

fn main() {
    let mut criterion = settings::criterion();
    hashing(&mut criterion);
    criterion.final_summary();
}
