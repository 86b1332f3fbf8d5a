//! Votes: a validator's signature over `(kind, value hash, round)`.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::crypto::{
    CryptoError, PreparedKey, ValidatorPublicKey, ValidatorSecretKey, ValidatorSignature,
};
use crate::hash::{BcsHashable, CryptoHash, Hashed};
use crate::round::Round;
use crate::ChainId;

/// What a vote is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    /// A vote to validate a proposed block (first phase).
    Validated,
    /// A vote to confirm a block (second phase, or at once in the fast round).
    Confirmed,
    /// A vote to leave a round that timed out.
    Timeout,
}

impl fmt::Display for VoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            VoteKind::Validated => "validated",
            VoteKind::Confirmed => "confirmed",
            VoteKind::Timeout => "timeout",
        };
        f.write_str(name)
    }
}

/// A value that validators vote on and certify. Its hash (with the type's own domain) is what a
/// vote refers to.
pub trait CertificateValue: BcsHashable {
    /// The kind of vote this value receives.
    const KIND: VoteKind;

    /// The chain the value is about.
    fn chain_id(&self) -> ChainId;
}

/// The exact content a validator signs.
#[derive(Serialize)]
pub(crate) struct VoteContent {
    pub(crate) kind: VoteKind,
    pub(crate) value_hash: CryptoHash,
    pub(crate) round: Round,
}

impl BcsHashable for VoteContent {
    const DOMAIN: &'static str = "Vote";
}

/// The hash a validator signs for a vote of `kind` on `value_hash` in `round`.
pub fn vote_message(kind: VoteKind, value_hash: CryptoHash, round: Round) -> CryptoHash {
    CryptoHash::new(&VoteContent {
        kind,
        value_hash,
        round,
    })
}

/// Why a vote was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    /// The vote was signed (or claims to be signed) by another validator than the one asked.
    #[error("vote from {found:?} when {expected:?} was asked")]
    WrongSigner {
        /// The validator that was asked.
        expected: ValidatorPublicKey,
        /// The validator named in the vote.
        found: ValidatorPublicKey,
    },
    /// The signature does not verify.
    #[error("vote signature: {0}")]
    Signature(#[from] CryptoError),
}

/// A vote that carries the value's hash, not the value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LiteVote {
    /// Hash of the value voted for.
    pub value_hash: CryptoHash,
    /// What the vote is for.
    pub kind: VoteKind,
    /// The round of the vote.
    pub round: Round,
    /// The signer.
    pub validator: ValidatorPublicKey,
    /// The signature over [`vote_message`].
    pub signature: ValidatorSignature,
}

impl LiteVote {
    /// Signs a vote.
    pub fn new(
        value_hash: CryptoHash,
        kind: VoteKind,
        round: Round,
        secret: &ValidatorSecretKey,
    ) -> Self {
        let signature = secret.sign_hash(&vote_message(kind, value_hash, round));
        LiteVote {
            value_hash,
            kind,
            round,
            validator: secret.public(),
            signature,
        }
    }

    /// The hash this vote's signature covers.
    pub fn message(&self) -> CryptoHash {
        vote_message(self.kind, self.value_hash, self.round)
    }

    /// Checks the signature, and that the signer is `expected_signer` (the validator that was
    /// asked): a relayed or substituted vote is refused.
    pub fn check(&self, expected_signer: &ValidatorPublicKey) -> Result<(), VoteError> {
        if self.validator != *expected_signer {
            return Err(VoteError::WrongSigner {
                expected: *expected_signer,
                found: self.validator,
            });
        }
        self.validator
            .verify_hash(&self.message(), &self.signature)?;
        Ok(())
    }

    /// [`LiteVote::check`] against the expected signer's key decoded once
    /// ([`PreparedKey::decode`] of it), which saves decoding the key for every vote.
    pub fn check_prepared(&self, expected_signer: &PreparedKey) -> Result<(), VoteError> {
        let expected = expected_signer.public();
        if self.validator != expected {
            return Err(VoteError::WrongSigner {
                expected,
                found: self.validator,
            });
        }
        expected_signer.verify_hash(&self.message(), &self.signature)?;
        Ok(())
    }
}

/// A vote that carries the full value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: CertificateValue + Deserialize<'de>"
))]
pub struct Vote<T> {
    /// The value voted for.
    pub value: Hashed<T>,
    /// The round of the vote.
    pub round: Round,
    /// The signer.
    pub validator: ValidatorPublicKey,
    /// The signature over [`vote_message`].
    pub signature: ValidatorSignature,
}

impl<T: CertificateValue> Vote<T> {
    /// Signs a vote for `value`.
    pub fn new(value: Hashed<T>, round: Round, secret: &ValidatorSecretKey) -> Self {
        let signature = secret.sign_hash(&vote_message(T::KIND, value.hash(), round));
        Vote {
            value,
            round,
            validator: secret.public(),
            signature,
        }
    }

    /// The vote without its value.
    pub fn lite(&self) -> LiteVote {
        LiteVote {
            value_hash: self.value.hash(),
            kind: T::KIND,
            round: self.round,
            validator: self.validator,
            signature: self.signature,
        }
    }

    /// Checks the signature and that the signer is `expected_signer`.
    pub fn check(&self, expected_signer: &ValidatorPublicKey) -> Result<(), VoteError> {
        self.lite().check(expected_signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Thing(u32);
    impl BcsHashable for Thing {
        const DOMAIN: &'static str = "TestThing";
    }
    impl CertificateValue for Thing {
        const KIND: VoteKind = VoteKind::Validated;
        fn chain_id(&self) -> ChainId {
            ChainId(CryptoHash::default())
        }
    }

    #[test]
    fn a_check_with_a_prepared_key_agrees_with_the_plain_check() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let alice = ValidatorSecretKey::generate(&mut rng);
        let bob = ValidatorSecretKey::generate(&mut rng);
        let prepared = |key: &ValidatorSecretKey| {
            PreparedKey::decode(key.public().as_bytes()).unwrap_or_else(|e| panic!("{e}"))
        };
        let value = Hashed::new(Thing(1));
        let vote = LiteVote::new(value.hash(), VoteKind::Validated, Round::Fast, &alice);
        assert_eq!(vote.check_prepared(&prepared(&alice)), Ok(()));
        assert_eq!(
            vote.check_prepared(&prepared(&bob)),
            vote.check(&bob.public())
        );
        assert!(vote.check_prepared(&prepared(&bob)).is_err());
        // Bob's signature under Alice's name: refused by both.
        let mut forged = vote.clone();
        forged.signature =
            LiteVote::new(value.hash(), VoteKind::Validated, Round::Fast, &bob).signature;
        assert!(forged.check_prepared(&prepared(&alice)).is_err());
        assert_eq!(
            forged.check_prepared(&prepared(&alice)),
            forged.check(&alice.public())
        );
    }

    #[test]
    fn check_requires_the_asked_signer() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let alice = ValidatorSecretKey::generate(&mut rng);
        let bob = ValidatorSecretKey::generate(&mut rng);
        let vote = Vote::new(Hashed::new(Thing(1)), Round::MultiLeader(0), &alice);
        vote.check(&alice.public()).unwrap();
        assert!(matches!(
            vote.check(&bob.public()),
            Err(VoteError::WrongSigner { .. })
        ));
        // Claiming to be Bob with Alice's signature fails the signature check.
        let mut forged = vote.lite();
        forged.validator = bob.public();
        assert_eq!(
            forged.check(&bob.public()),
            Err(VoteError::Signature(CryptoError::InvalidSignature))
        );
    }

    #[test]
    fn kind_and_round_are_signed() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let alice = ValidatorSecretKey::generate(&mut rng);
        let vote = Vote::new(Hashed::new(Thing(1)), Round::MultiLeader(0), &alice).lite();
        for kind in [VoteKind::Confirmed, VoteKind::Timeout] {
            let mut other = vote.clone();
            other.kind = kind;
            assert!(other.check(&alice.public()).is_err());
        }
        for round in [Round::Fast, Round::MultiLeader(1), Round::SingleLeader(0)] {
            let mut other = vote.clone();
            other.round = round;
            assert!(other.check(&alice.public()).is_err());
        }
        let mut other = vote.clone();
        other.value_hash = CryptoHash::new(&Thing(2));
        assert!(other.check(&alice.public()).is_err());
        vote.check(&alice.public()).unwrap();
    }
}
