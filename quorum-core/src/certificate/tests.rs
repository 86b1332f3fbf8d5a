//! `Certificate::check_except`: a node's own vote is not verified again, and nothing else
//! changes.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::{BlockHeight, Epoch, Timeout, ValidatorInfo, ValidatorSecretKey};

/// Validators of the test committee, each of weight 1 (a quorum is 3).
const MEMBERS: usize = 4;

fn keys() -> Vec<ValidatorSecretKey> {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut keys: Vec<ValidatorSecretKey> = (0..MEMBERS)
        .map(|_| ValidatorSecretKey::generate(&mut rng))
        .collect();
    keys.sort_by_key(ValidatorSecretKey::public);
    keys
}

fn committee(keys: &[ValidatorSecretKey]) -> Committee {
    let members: BTreeMap<_, _> = keys
        .iter()
        .map(|key| {
            let info = ValidatorInfo {
                votes: 1,
                address: String::new(),
                network_key: None,
            };
            (key.public(), info)
        })
        .collect();
    Committee::new(members).unwrap_or_else(|error| panic!("the test committee: {error}"))
}

fn timeout(height: u64) -> Hashed<Timeout> {
    Hashed::new(Timeout {
        chain_id: ChainId(CryptoHash([7; 32])),
        height: BlockHeight(height),
        epoch: Epoch(0),
    })
}

/// A certificate of `value` in `round` signed by `signers`; the signers in `forged` sign
/// another value instead (their signatures do not verify).
fn certificate(
    keys: &[ValidatorSecretKey],
    value: &Hashed<Timeout>,
    round: Round,
    signers: &[usize],
    forged: &[usize],
) -> Certificate<Timeout> {
    let other = timeout(99);
    let signatures = signers
        .iter()
        .map(|&index| {
            let signed = if forged.contains(&index) {
                other.hash()
            } else {
                value.hash()
            };
            let vote = LiteVote::new(signed, VoteKind::Timeout, round, &keys[index]);
            (vote.validator, vote.signature)
        })
        .collect();
    Certificate::new(value.clone(), round, signatures)
}

#[test]
fn the_own_vote_is_taken_as_made_and_every_other_signature_is_verified() {
    let keys = keys();
    let committee = committee(&keys);
    let value = timeout(1);
    let round = Round::MultiLeader(0);
    let own = LiteVote::new(value.hash(), VoteKind::Timeout, round, &keys[0]);

    let good = certificate(&keys, &value, round, &[0, 1, 2], &[]);
    assert_eq!(good.check_except(&committee, &own), Ok(()));

    // A bad signature of another signer is found and named, whatever the skipped position.
    let bad = certificate(&keys, &value, round, &[0, 1, 2], &[2]);
    assert_eq!(
        bad.check_except(&committee, &own),
        Err(CertificateError::BadSignatures(Vec::from([
            keys[2].public()
        ])))
    );

    // Weight still counts the own vote: two signers are not a quorum.
    let short = certificate(&keys, &value, round, &[0, 1], &[]);
    assert!(matches!(
        short.check_except(&committee, &own),
        Err(CertificateError::InsufficientWeight { .. })
    ));
}

#[test]
fn a_known_vote_of_another_message_skips_nothing() {
    let keys = keys();
    let committee = committee(&keys);
    let value = timeout(1);
    let round = Round::MultiLeader(0);
    // Validator 0's signature in the certificate is over another value; the known vote is
    // that very signature, but for its own message: it must not vouch for this certificate.
    let forged = certificate(&keys, &value, round, &[0, 1, 2], &[0]);
    let (_, signature) = forged.signatures()[0];
    let known = LiteVote {
        value_hash: timeout(99).hash(),
        kind: VoteKind::Timeout,
        round,
        validator: keys[0].public(),
        signature,
    };
    assert_eq!(known.check(&keys[0].public()), Ok(()));
    assert_eq!(
        forged.check_except(&committee, &known),
        Err(CertificateError::BadSignatures(Vec::from([
            keys[0].public()
        ])))
    );
    // The same for a known vote of another round.
    let earlier = LiteVote::new(value.hash(), VoteKind::Timeout, Round::Fast, &keys[0]);
    let good = certificate(&keys, &value, round, &[0, 1, 2], &[]);
    assert_eq!(good.check_except(&committee, &earlier), Ok(()));
}

proptest! {
    /// For a valid known vote (one really signed over its message), `check_except` accepts
    /// and refuses exactly what `check` does, naming the same bad signers.
    #[test]
    fn check_except_agrees_with_check_for_any_valid_known_vote(
        signers in proptest::sample::subsequence((0..MEMBERS).collect::<Vec<_>>(), 0..=MEMBERS),
        forged in proptest::collection::vec(0..MEMBERS, 0..3),
        known_signer in 0..MEMBERS,
        known_same_value in any::<bool>(),
        round in 0u32..3,
    ) {
        let keys = keys();
        let committee = committee(&keys);
        let value = timeout(1);
        let round = Round::MultiLeader(round);
        let certificate = certificate(&keys, &value, round, &signers, &forged);
        let known_hash = if known_same_value { value.hash() } else { timeout(2).hash() };
        let known = LiteVote::new(known_hash, VoteKind::Timeout, round, &keys[known_signer]);
        prop_assert_eq!(
            certificate.check_except(&committee, &known),
            certificate.check(&committee)
        );
    }

    /// Verifying the pending signatures of several certificates as one batch, then giving each
    /// its share of the outcome, gives every certificate the verdict of its own `check`
    /// (the bad signers named alike).
    #[test]
    fn pending_signatures_verified_together_agree_with_check(
        certificates in proptest::collection::vec(
            (
                proptest::sample::subsequence((0..MEMBERS).collect::<Vec<_>>(), 0..=MEMBERS),
                proptest::collection::vec(0..MEMBERS, 0..2),
            ),
            1..5,
        ),
    ) {
        let keys = keys();
        let committee = committee(&keys);
        let value = timeout(1);
        let round = Round::MultiLeader(0);
        let mut all = Vec::new();
        let mut shares = Vec::new();
        for (signers, forged) in &certificates {
            let certificate = certificate(&keys, &value, round, signers, forged);
            let expected = certificate.check(&committee);
            match certificate.pending_signatures(&committee, None) {
                Err(error) => prop_assert_eq!(Err(error), expected),
                Ok(mut pending) => {
                    let offset = all.len();
                    all.extend(pending.take_checks());
                    shares.push((pending, offset, expected));
                }
            }
        }
        let bad = crate::verify_signatures(&all).err().unwrap_or_default();
        for (pending, offset, expected) in shares {
            prop_assert_eq!(pending.finish_in_batch(offset, &bad), expected);
        }
    }
}
