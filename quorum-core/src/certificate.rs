//! Certificates: a value with the signatures of a quorum of the committee.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::committee::Committee;
use crate::crypto::{self, BatchItem, ValidatorPublicKey, ValidatorSignature};
use crate::hash::{CryptoHash, Hashed};
use crate::round::Round;
use crate::vote::{vote_message, CertificateValue, VoteKind};
use crate::ChainId;

/// Why a certificate was refused.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
pub enum CertificateError {
    /// A signer is not a member of the committee.
    #[error("signer {0:?} is not in the committee")]
    UnknownSigner(ValidatorPublicKey),
    /// A signer has zero weight.
    #[error("signer {0:?} has zero weight")]
    ZeroWeightSigner(ValidatorPublicKey),
    /// Signers are repeated or not in increasing key order.
    #[error("signers are not distinct and sorted (at {0:?})")]
    DuplicateOrUnsorted(ValidatorPublicKey),
    /// The signers' weight is below the quorum threshold.
    #[error("signers' weight {weight} is below the quorum threshold {threshold}")]
    InsufficientWeight {
        /// The signers' weight.
        weight: u64,
        /// The quorum threshold.
        threshold: u64,
    },
    /// These signers' signatures do not verify.
    #[error("invalid signatures from {0:?}")]
    BadSignatures(Vec<ValidatorPublicKey>),
    /// A lite certificate was completed with a value whose hash or kind does not match.
    #[error("value does not match the certificate")]
    ValueMismatch,
}

/// Checks signatures over `(kind, hash, round)` against `committee`: every signer a member with
/// weight, signers strictly increasing (so distinct), total weight at least a quorum, and all
/// signatures valid in one batch.
pub(crate) fn check_signatures(
    committee: &Committee,
    kind: VoteKind,
    value_hash: CryptoHash,
    round: Round,
    signatures: &[(ValidatorPublicKey, ValidatorSignature)],
) -> Result<(), CertificateError> {
    check_signers(committee, kind, value_hash, round, signatures, true)
}

/// What [`check_signatures`] checks, the signatures themselves only if `verify`.
fn check_signers(
    committee: &Committee,
    kind: VoteKind,
    value_hash: CryptoHash,
    round: Round,
    signatures: &[(ValidatorPublicKey, ValidatorSignature)],
    verify: bool,
) -> Result<(), CertificateError> {
    let message = vote_message(kind, value_hash, round);
    let mut weight: u64 = 0;
    let mut previous: Option<&ValidatorPublicKey> = None;
    let mut items: Vec<BatchItem<'_>> = Vec::with_capacity(signatures.len());
    for (signer, signature) in signatures {
        if previous.is_some_and(|previous| previous >= signer) {
            return Err(CertificateError::DuplicateOrUnsorted(*signer));
        }
        previous = Some(signer);
        let member = match committee.member(signer) {
            None => return Err(CertificateError::UnknownSigner(*signer)),
            Some(member) if member.info.votes == 0 => {
                return Err(CertificateError::ZeroWeightSigner(*signer))
            }
            Some(member) => member,
        };
        // Cannot overflow: distinct members' weights sum to at most the committee total.
        weight += member.info.votes;
        items.push(BatchItem {
            signer: &member.key,
            hash: &message,
            signature,
        });
    }
    if weight < committee.quorum_threshold() {
        return Err(CertificateError::InsufficientWeight {
            weight,
            threshold: committee.quorum_threshold(),
        });
    }
    if !verify {
        return Ok(());
    }
    crypto::verify_batch(&items).map_err(|bad| {
        CertificateError::BadSignatures(bad.into_iter().map(|index| signatures[index].0).collect())
    })
}

/// Sorts signatures by signer and drops exact repeats.
fn normalize(
    mut signatures: Vec<(ValidatorPublicKey, ValidatorSignature)>,
) -> Vec<(ValidatorPublicKey, ValidatorSignature)> {
    signatures.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    signatures.dedup();
    signatures
}

/// A value certified by a quorum of validators in a round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: CertificateValue + Deserialize<'de>"
))]
pub struct Certificate<T> {
    value: Hashed<T>,
    round: Round,
    signatures: Vec<(ValidatorPublicKey, ValidatorSignature)>,
}

impl<T: CertificateValue> Certificate<T> {
    /// Assembles a certificate; signatures are sorted by signer (not checked: see
    /// [`Certificate::check`]).
    pub fn new(
        value: Hashed<T>,
        round: Round,
        signatures: Vec<(ValidatorPublicKey, ValidatorSignature)>,
    ) -> Self {
        Certificate {
            value,
            round,
            signatures: normalize(signatures),
        }
    }

    /// Checks the certificate against `committee` (see [`CertificateError`] for what is checked).
    pub fn check(&self, committee: &Committee) -> Result<(), CertificateError> {
        check_signatures(
            committee,
            T::KIND,
            self.value.hash(),
            self.round,
            &self.signatures,
        )
    }

    /// Checks everything [`Certificate::check`] does but the signatures themselves (signers
    /// sorted, distinct, members of `committee` with weight, together a quorum): for a
    /// certificate assembled from votes that were each checked on arrival
    /// ([`LiteVote::check`](crate::LiteVote::check)), so that no signature is verified twice.
    pub fn check_signers(&self, committee: &Committee) -> Result<(), CertificateError> {
        check_signers(
            committee,
            T::KIND,
            self.value.hash(),
            self.round,
            &self.signatures,
            false,
        )
    }

    /// The certificate without its value.
    pub fn lite(&self) -> LiteCertificate {
        LiteCertificate {
            chain_id: self.value.chain_id(),
            value_hash: self.value.hash(),
            kind: T::KIND,
            round: self.round,
            signatures: self.signatures.clone(),
        }
    }

    /// The certified value.
    pub fn value(&self) -> &Hashed<T> {
        &self.value
    }

    /// The certified value's hash.
    pub fn hash(&self) -> CryptoHash {
        self.value.hash()
    }

    /// The round in which the value was certified.
    pub fn round(&self) -> Round {
        self.round
    }

    /// The signatures, sorted by signer.
    pub fn signatures(&self) -> &[(ValidatorPublicKey, ValidatorSignature)] {
        &self.signatures
    }

    /// Splits the certificate into value, round and signatures.
    pub fn into_parts(
        self,
    ) -> (
        Hashed<T>,
        Round,
        Vec<(ValidatorPublicKey, ValidatorSignature)>,
    ) {
        (self.value, self.round, self.signatures)
    }
}

/// A certificate that carries the value's hash and kind instead of the value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LiteCertificate {
    /// The chain the value is about (routing only: the value's hash is what is signed).
    pub chain_id: ChainId,
    /// Hash of the certified value.
    pub value_hash: CryptoHash,
    /// Kind of the votes.
    pub kind: VoteKind,
    /// Round of the votes.
    pub round: Round,
    /// Signatures, sorted by signer.
    pub signatures: Vec<(ValidatorPublicKey, ValidatorSignature)>,
}

impl LiteCertificate {
    /// Assembles a lite certificate, sorting signatures by signer.
    pub fn new(
        chain_id: ChainId,
        value_hash: CryptoHash,
        kind: VoteKind,
        round: Round,
        signatures: Vec<(ValidatorPublicKey, ValidatorSignature)>,
    ) -> Self {
        LiteCertificate {
            chain_id,
            value_hash,
            kind,
            round,
            signatures: normalize(signatures),
        }
    }

    /// Checks the signatures against `committee`, as [`Certificate::check`] does.
    pub fn check(&self, committee: &Committee) -> Result<(), CertificateError> {
        check_signatures(
            committee,
            self.kind,
            self.value_hash,
            self.round,
            &self.signatures,
        )
    }

    /// Completes the certificate with its value, which must hash to `value_hash` and be of the
    /// certificate's kind.
    pub fn with_value<T: CertificateValue>(
        self,
        value: Hashed<T>,
    ) -> Result<Certificate<T>, CertificateError> {
        if value.hash() != self.value_hash
            || T::KIND != self.kind
            || value.chain_id() != self.chain_id
        {
            return Err(CertificateError::ValueMismatch);
        }
        Ok(Certificate {
            value,
            round: self.round,
            signatures: self.signatures,
        })
    }
}
