//! Gathering votes for one value into a certificate.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::certificate::Certificate;
use crate::committee::Committee;
use crate::crypto::{ValidatorPublicKey, ValidatorSignature};
use crate::hash::Hashed;
use crate::round::Round;
use crate::vote::{CertificateValue, LiteVote, VoteError};

/// Two different signed votes of one validator for the same round and kind: proof that it
/// equivocated (or, with the same value, that it produced two signatures where one is expected).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The vote that was counted.
    pub first: LiteVote,
    /// The conflicting vote.
    pub second: LiteVote,
}

/// Why a vote was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregatorError {
    /// The signer is not in the committee.
    #[error("vote from {0:?}, which is not in the committee")]
    UnknownSigner(ValidatorPublicKey),
    /// The signer has zero weight.
    #[error("vote from zero-weight validator {0:?}")]
    ZeroWeight(ValidatorPublicKey),
    /// The vote is for another kind, round or value than this aggregator's.
    #[error("vote for another kind, round or value")]
    WrongVote,
    /// The signer already voted here; its first vote stands.
    #[error("repeated vote from {0:?}")]
    Repeated(ValidatorPublicKey),
    /// The signer already voted here and now signed something else; the evidence is kept.
    #[error("validator {0:?} equivocated")]
    Equivocation(ValidatorPublicKey),
    /// The vote does not verify.
    #[error(transparent)]
    Vote(#[from] VoteError),
}

/// Adds votes for one value until their weight reaches a quorum, then yields the certificate.
#[derive(Debug)]
pub struct SignatureAggregator<'a, T> {
    committee: &'a Committee,
    value: Hashed<T>,
    round: Round,
    signatures: BTreeMap<ValidatorPublicKey, ValidatorSignature>,
    weight: u64,
    done: bool,
    evidence: Vec<Equivocation>,
}

impl<'a, T: CertificateValue + Clone> SignatureAggregator<'a, T> {
    /// An aggregator for `value` in `round`.
    pub fn new(value: Hashed<T>, round: Round, committee: &'a Committee) -> Self {
        SignatureAggregator {
            committee,
            value,
            round,
            signatures: BTreeMap::new(),
            weight: 0,
            done: false,
            evidence: Vec::new(),
        }
    }

    fn lite_vote(&self, validator: ValidatorPublicKey, signature: ValidatorSignature) -> LiteVote {
        LiteVote {
            value_hash: self.value.hash(),
            kind: T::KIND,
            round: self.round,
            validator,
            signature,
        }
    }

    /// Adds a vote. Returns the certificate the first time the weight reaches a quorum.
    pub fn add(&mut self, vote: &LiteVote) -> Result<Option<Certificate<T>>, AggregatorError> {
        let signer = vote.validator;
        let weight = match self.committee.info(&signer) {
            None => return Err(AggregatorError::UnknownSigner(signer)),
            Some(info) if info.votes == 0 => return Err(AggregatorError::ZeroWeight(signer)),
            Some(info) => info.votes,
        };
        let for_this = vote.kind == T::KIND
            && vote.round == self.round
            && vote.value_hash == self.value.hash();
        if let Some(first) = self.signatures.get(&signer).copied() {
            if for_this && first == vote.signature {
                return Err(AggregatorError::Repeated(signer));
            }
            // Only a vote that verifies is evidence of anything.
            vote.check(&signer)?;
            if vote.kind == T::KIND && vote.round == self.round {
                self.evidence.push(Equivocation {
                    first: self.lite_vote(signer, first),
                    second: vote.clone(),
                });
                return Err(AggregatorError::Equivocation(signer));
            }
            return Err(AggregatorError::WrongVote);
        }
        if !for_this {
            return Err(AggregatorError::WrongVote);
        }
        vote.check(&signer)?;
        self.signatures.insert(signer, vote.signature);
        self.weight += weight;
        if !self.done && self.weight >= self.committee.quorum_threshold() {
            self.done = true;
            return Ok(Some(self.certificate()));
        }
        Ok(None)
    }

    /// The certificate from all signatures gathered so far (valid only once a quorum signed).
    pub fn certificate(&self) -> Certificate<T> {
        let signatures = self.signatures.iter().map(|(k, s)| (*k, *s)).collect();
        Certificate::new(self.value.clone(), self.round, signatures)
    }

    /// The weight gathered.
    pub fn weight(&self) -> u64 {
        self.weight
    }

    /// Evidence of equivocation collected so far.
    pub fn evidence(&self) -> &[Equivocation] {
        &self.evidence
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificate::{CertificateError, LiteCertificate};
    use crate::committee::ValidatorInfo;
    use crate::crypto::{Signature, ValidatorSecretKey};
    use crate::hash::BcsHashable;
    use crate::vote::{Vote, VoteKind};
    use alloc::string::String;
    use alloc::vec;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct Block(u64);
    impl BcsHashable for Block {
        const DOMAIN: &'static str = "TestBlock";
    }
    impl CertificateValue for Block {
        const KIND: VoteKind = VoteKind::Confirmed;
        fn chain_id(&self) -> crate::ChainId {
            crate::ChainId(crate::hash::CryptoHash::default())
        }
    }

    struct Setup {
        secrets: Vec<ValidatorSecretKey>,
        committee: Committee,
    }

    /// `n` validators of weight 1 (plus one of weight 0 at the end of `secrets`).
    fn setup(n: usize) -> Setup {
        let mut rng = ChaCha8Rng::seed_from_u64(n as u64 + 100);
        let mut secrets: Vec<_> = (0..=n)
            .map(|_| ValidatorSecretKey::generate(&mut rng))
            .collect();
        secrets.sort_by_key(|s| s.public());
        let zero = secrets.remove(0);
        let mut validators: BTreeMap<_, _> = secrets
            .iter()
            .map(|s| {
                (
                    s.public(),
                    ValidatorInfo {
                        votes: 1,
                        address: String::new(),
                        network_key: None,
                    },
                )
            })
            .collect();
        validators.insert(
            zero.public(),
            ValidatorInfo {
                votes: 0,
                address: String::new(),
                network_key: None,
            },
        );
        secrets.push(zero);
        Setup {
            committee: Committee::new(validators).unwrap(),
            secrets,
        }
    }

    fn vote(value: u64, round: Round, secret: &ValidatorSecretKey) -> LiteVote {
        Vote::new(Hashed::new(Block(value)), round, secret).lite()
    }

    #[test]
    fn certificate_at_quorum_and_it_checks() {
        let s = setup(4);
        let mut agg = SignatureAggregator::new(Hashed::new(Block(1)), Round::Fast, &s.committee);
        assert_eq!(agg.add(&vote(1, Round::Fast, &s.secrets[0])), Ok(None));
        assert_eq!(agg.add(&vote(1, Round::Fast, &s.secrets[1])), Ok(None));
        let cert = agg
            .add(&vote(1, Round::Fast, &s.secrets[2]))
            .unwrap()
            .unwrap();
        cert.check(&s.committee).unwrap();
        assert_eq!(cert.signatures().len(), 3);
        // A fourth vote is accepted but yields nothing new.
        assert_eq!(agg.add(&vote(1, Round::Fast, &s.secrets[3])), Ok(None));
        // Lite round trip.
        let lite = cert.lite();
        lite.check(&s.committee).unwrap();
        assert_eq!(
            lite.clone().with_value(Hashed::new(Block(1))).unwrap(),
            cert
        );
        assert_eq!(
            lite.with_value(Hashed::new(Block(2))),
            Err(CertificateError::ValueMismatch)
        );
    }

    #[test]
    fn rejects_unknown_zero_weight_repeated_and_wrong() {
        let s = setup(4);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let stranger = ValidatorSecretKey::generate(&mut rng);
        let mut agg =
            SignatureAggregator::new(Hashed::new(Block(1)), Round::MultiLeader(0), &s.committee);
        let round = Round::MultiLeader(0);
        assert_eq!(
            agg.add(&vote(1, round, &stranger)),
            Err(AggregatorError::UnknownSigner(stranger.public()))
        );
        let zero = &s.secrets[4];
        assert_eq!(
            agg.add(&vote(1, round, zero)),
            Err(AggregatorError::ZeroWeight(zero.public()))
        );
        assert_eq!(
            agg.add(&vote(1, Round::MultiLeader(1), &s.secrets[0])),
            Err(AggregatorError::WrongVote)
        );
        assert_eq!(
            agg.add(&vote(2, round, &s.secrets[0])),
            Err(AggregatorError::WrongVote)
        );
        assert_eq!(agg.add(&vote(1, round, &s.secrets[0])), Ok(None));
        assert_eq!(
            agg.add(&vote(1, round, &s.secrets[0])),
            Err(AggregatorError::Repeated(s.secrets[0].public()))
        );
        // A bad signature is refused.
        let mut bad = vote(1, round, &s.secrets[1]);
        bad.signature = Signature::from_bytes(&[3; 64]);
        assert!(matches!(agg.add(&bad), Err(AggregatorError::Vote(_))));
        assert_eq!(agg.weight(), 1);
        assert!(agg.evidence().is_empty());
    }

    #[test]
    fn equivocation_evidence_is_kept() {
        let s = setup(4);
        let round = Round::SingleLeader(2);
        let mut agg = SignatureAggregator::new(Hashed::new(Block(1)), round, &s.committee);
        let first = vote(1, round, &s.secrets[0]);
        agg.add(&first).unwrap();
        let second = vote(2, round, &s.secrets[0]);
        assert_eq!(
            agg.add(&second),
            Err(AggregatorError::Equivocation(s.secrets[0].public()))
        );
        assert_eq!(agg.evidence(), &[Equivocation { first, second }]);
        assert_eq!(agg.weight(), 1);
    }

    fn signed(s: &Setup, value: u64, round: Round, signers: &[usize]) -> Certificate<Block> {
        let signatures = signers
            .iter()
            .map(|&i| {
                let v = vote(value, round, &s.secrets[i]);
                (v.validator, v.signature)
            })
            .collect();
        Certificate::new(Hashed::new(Block(value)), round, signatures)
    }

    #[test]
    fn certificate_check_failures() {
        let s = setup(4);
        let round = Round::MultiLeader(3);
        signed(&s, 7, round, &[0, 1, 2])
            .check(&s.committee)
            .unwrap();
        // Too little weight.
        assert_eq!(
            signed(&s, 7, round, &[0, 1]).check(&s.committee),
            Err(CertificateError::InsufficientWeight {
                weight: 2,
                threshold: 3
            })
        );
        // Duplicate signer (two distinct signature bytes for one signer survive normalisation).
        let good = signed(&s, 7, round, &[0, 1, 2]);
        let (value, r, mut signatures) = good.into_parts();
        signatures.push((signatures[0].0, Signature::from_bytes(&[1; 64])));
        let dup = Certificate::new(value, r, signatures);
        assert!(matches!(
            dup.check(&s.committee),
            Err(CertificateError::DuplicateOrUnsorted(_))
        ));
        // A non-member.
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let stranger = ValidatorSecretKey::generate(&mut rng);
        let v = vote(7, round, &stranger);
        let (value, r, mut signatures) = signed(&s, 7, round, &[0, 1, 2]).into_parts();
        signatures.push((v.validator, v.signature));
        assert_eq!(
            Certificate::new(value, r, signatures).check(&s.committee),
            Err(CertificateError::UnknownSigner(stranger.public()))
        );
        // A zero-weight signer.
        let (value, r, mut signatures) = signed(&s, 7, round, &[0, 1, 2]).into_parts();
        let v = vote(7, round, &s.secrets[4]);
        signatures.push((v.validator, v.signature));
        assert_eq!(
            Certificate::new(value, r, signatures).check(&s.committee),
            Err(CertificateError::ZeroWeightSigner(s.secrets[4].public()))
        );
        // One bad signature: named exactly.
        let (value, r, mut signatures) = signed(&s, 7, round, &[0, 1, 2, 3]).into_parts();
        let victim = signatures[2].0;
        signatures[2].1 = vote(8, round, &s.secrets[0]).signature;
        assert_eq!(
            Certificate::new(value, r, signatures).check(&s.committee),
            Err(CertificateError::BadSignatures(vec![victim]))
        );
        // A certificate of another round or kind does not verify.
        let cert = signed(&s, 7, round, &[0, 1, 2]);
        let mut lite = cert.lite();
        lite.round = Round::MultiLeader(4);
        assert!(matches!(
            lite.check(&s.committee),
            Err(CertificateError::BadSignatures(_))
        ));
        let mut lite = cert.lite();
        lite.kind = VoteKind::Validated;
        assert!(matches!(
            lite.check(&s.committee),
            Err(CertificateError::BadSignatures(_))
        ));
        let _ = LiteCertificate::new(
            lite.chain_id,
            lite.value_hash,
            lite.kind,
            lite.round,
            lite.signatures,
        );
    }

    #[test]
    fn bisection_names_exactly_the_bad_signers() {
        let s = setup(100);
        let round = Round::Fast;
        let all: Vec<usize> = (0..100).collect();
        let (value, r, mut signatures) = signed(&s, 9, round, &all).into_parts();
        let bad_positions = [3usize, 41, 42, 77, 99];
        let mut expected = Vec::new();
        for &p in &bad_positions {
            signatures[p].1 = vote(10, round, &s.secrets[p]).signature;
            expected.push(signatures[p].0);
        }
        assert_eq!(
            Certificate::new(value, r, signatures).check(&s.committee),
            Err(CertificateError::BadSignatures(expected))
        );
    }

    #[test]
    fn certificate_serde_roundtrip() {
        let s = setup(4);
        let cert = signed(&s, 7, Round::SingleLeader(1), &[0, 1, 2]);
        let bytes = bcs::to_bytes(&cert).unwrap();
        let back: Certificate<Block> = bcs::from_bytes(&bytes).unwrap();
        assert_eq!(back, cert);
        back.check(&s.committee).unwrap();
        assert_eq!(crate::encoding::to_bytes(&cert).unwrap(), bytes);
    }
}
