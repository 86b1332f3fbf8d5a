//! One acceptance rule on every public verification path (DESIGN §3.1), checked against the
//! twelve ed25519 edge cases of "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko,
//! 2020), carried here as data from the ed25519-speccheck project's `cases.json`
//! (Apache-2.0): small-order and mixed-order keys and `R`s, non-canonical encodings of `A` and
//! `R`, and `S` out of range.
//!
//! Quorum's rule: a key must be a canonical encoding of a point of prime order, and a signature
//! must pass `verify_strict`. Every case breaks one of the two, so every path refuses every
//! case: a validator's key and an account's key checked alone, a key prepared for batches, and
//! a batch, whatever honest signatures surround the case in it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use proptest::prelude::*;
use quorum_core::{
    verify_signatures, AccountPublicKey, CryptoError, CryptoHash, PreparedKey, Signature,
    SignatureCheck, ValidatorPublicKey, ValidatorSecretKey,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The cases: (message, public key, signature), hex. Every message is 32 bytes, the length of
/// the hashes Quorum signs.
const CASES: [(&str, &str, &str); 12] = [
    // 0
    (
        "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000",
    ),
    // 1
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
    // 2
    (
        "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
    ),
    // 3
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
    ),
    // 4
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
    ),
    // 5
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
    ),
    // 6
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
    ),
    // 7
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
    ),
    // 8
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
    ),
    // 9
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
    ),
    // 10
    (
        "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
    // 11
    (
        "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
];

struct Case {
    hash: CryptoHash,
    key: [u8; 32],
    signature: Signature,
}

fn case(index: usize) -> Case {
    let (message, key, signature) = CASES[index];
    Case {
        hash: CryptoHash(hex::decode(message).unwrap().try_into().unwrap()),
        key: hex::decode(key).unwrap().try_into().unwrap(),
        signature: Signature::from_bytes(&hex::decode(signature).unwrap().try_into().unwrap()),
    }
}

/// Cases whose key is of prime order and canonically encoded: `S` is out of range (6 and 7).
/// Every other case's key is of small or mixed order, or not canonically encoded.
const STRONG_KEY_CASES: [usize; 2] = [6, 7];

#[test]
fn every_case_is_refused_by_the_single_checks() {
    for index in 0..CASES.len() {
        let case = case(index);
        assert!(
            ValidatorPublicKey::from_bytes(case.key)
                .verify_hash(&case.hash, &case.signature)
                .is_err(),
            "case {index} accepted by a validator key"
        );
        assert!(
            AccountPublicKey::from_bytes(case.key)
                .verify_hash(&case.hash, &case.signature)
                .is_err(),
            "case {index} accepted by an account key"
        );
    }
}

#[test]
fn only_prime_order_canonical_keys_can_be_prepared() {
    for index in 0..CASES.len() {
        let case = case(index);
        let prepared = PreparedKey::decode(&case.key);
        if STRONG_KEY_CASES.contains(&index) {
            let prepared = prepared.unwrap();
            assert_eq!(
                prepared.verify_hash(&case.hash, &case.signature),
                Err(CryptoError::InvalidSignature),
                "case {index}"
            );
        } else {
            assert!(
                matches!(
                    prepared,
                    Err(CryptoError::WeakKey | CryptoError::MalformedKey)
                ),
                "case {index}: {prepared:?}"
            );
            assert!(
                ValidatorPublicKey::from_bytes(case.key)
                    .check_strong()
                    .is_err(),
                "case {index}"
            );
        }
    }
}

/// `count` honest checks, signed by keys drawn from `seed`.
fn honest_checks(count: usize, seed: u64) -> Vec<SignatureCheck> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let secret = ValidatorSecretKey::generate(&mut rng);
            let hash = CryptoHash([i as u8; 32]);
            let signature = secret.sign_hash(&hash);
            let key = PreparedKey::decode(secret.public().as_bytes()).unwrap();
            SignatureCheck::new(key, hash, signature)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(31),
        ..ProptestConfig::default()
    })]

    /// A case whose key can enter a batch, among any number of honest signatures at any place:
    /// the batch names exactly that one, as the single check does, and the honest ones pass
    /// the single check too.
    #[test]
    fn a_batch_refuses_exactly_the_case_among_honest_signatures(
        which in 0..STRONG_KEY_CASES.len(),
        honest in 0usize..12,
        place in any::<prop::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let case = case(STRONG_KEY_CASES[which]);
        let mut checks = honest_checks(honest, seed);
        let at = place.index(honest + 1);
        let key = PreparedKey::decode(&case.key).unwrap();
        checks.insert(at, SignatureCheck::new(key, case.hash, case.signature));
        prop_assert_eq!(verify_signatures(&checks), Err(vec![at]));
        checks.remove(at);
        prop_assert_eq!(verify_signatures(&checks), Ok(()));
    }
}
