//! Certificates: a value with the signatures of a quorum of the committee.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::committee::Committee;
use crate::crypto::{self, SignatureCheck, ValidatorPublicKey, ValidatorSignature};
use crate::hash::{CryptoHash, Hashed};
use crate::round::Round;
use crate::vote::{vote_message, CertificateValue, LiteVote, VoteKind};
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
    check_signers(committee, kind, value_hash, round, signatures, Verify::All)
}

/// Which signatures [`check_signers`] verifies.
#[derive(Clone, Copy)]
enum Verify<'a> {
    /// Every one.
    All,
    /// Every one but `known`'s, if the certificate holds exactly it: a vote this node made or
    /// verified itself, over the same kind, value and round.
    AllBut(&'a LiteVote),
    /// None (the caller verified each as a vote).
    None,
}

/// What [`check_signatures`] checks, the signatures themselves as `verify` says.
fn check_signers(
    committee: &Committee,
    kind: VoteKind,
    value_hash: CryptoHash,
    round: Round,
    signatures: &[(ValidatorPublicKey, ValidatorSignature)],
    verify: Verify<'_>,
) -> Result<(), CertificateError> {
    let known = match verify {
        Verify::AllBut(vote) => Some(vote),
        Verify::All | Verify::None => None,
    };
    let collect = !matches!(verify, Verify::None);
    pending_signatures(
        committee, kind, value_hash, round, signatures, known, collect,
    )?
    .verify()
}

/// Checks the signers of `signatures` over `(kind, value_hash, round)` (sorted, distinct,
/// members of `committee` with weight, together a quorum) and returns their signatures to
/// verify (none unless `collect`), but `known`'s if the certificate holds exactly it.
fn pending_signatures(
    committee: &Committee,
    kind: VoteKind,
    value_hash: CryptoHash,
    round: Round,
    signatures: &[(ValidatorPublicKey, ValidatorSignature)],
    known: Option<&LiteVote>,
    collect: bool,
) -> Result<PendingSignatures, CertificateError> {
    let message = vote_message(kind, value_hash, round);
    let known = known
        .filter(|vote| vote.kind == kind && vote.value_hash == value_hash && vote.round == round)
        .map(|vote| (&vote.validator, &vote.signature));
    let mut weight: u64 = 0;
    let mut previous: Option<&ValidatorPublicKey> = None;
    let capacity = if collect { signatures.len() } else { 0 };
    let mut pending = PendingSignatures {
        checks: Vec::with_capacity(capacity),
        signers: Vec::with_capacity(capacity),
    };
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
        if !collect || known == Some((signer, signature)) {
            continue;
        }
        pending
            .checks
            .push(SignatureCheck::new(member.key, message, *signature));
        pending.signers.push(*signer);
    }
    if weight < committee.quorum_threshold() {
        return Err(CertificateError::InsufficientWeight {
            weight,
            threshold: committee.quorum_threshold(),
        });
    }
    Ok(pending)
}

/// The signatures of a certificate whose signers were checked (sorted, distinct, members with
/// weight, together a quorum), left to verify: here ([`PendingSignatures::verify`]), or by a
/// caller that verifies the checks of several requests together
/// ([`PendingSignatures::take_checks`], then [`PendingSignatures::finish`] with the outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignatures {
    checks: Vec<SignatureCheck>,
    /// The signer of each check, to name the bad ones.
    signers: Vec<ValidatorPublicKey>,
}

impl PendingSignatures {
    /// Takes the signatures to verify, leaving none (the signers stay, for
    /// [`PendingSignatures::finish`]).
    pub fn take_checks(&mut self) -> Vec<SignatureCheck> {
        core::mem::take(&mut self.checks)
    }

    /// The certificate's verdict from the outcome of verifying its checks, in their order
    /// ([`verify_signatures`](crate::verify_signatures)'s): the bad ones' signers named as
    /// [`Certificate::check`] names them.
    pub fn finish(&self, outcome: Result<(), Vec<usize>>) -> Result<(), CertificateError> {
        outcome.map_err(|bad| {
            CertificateError::BadSignatures(
                bad.into_iter()
                    .filter_map(|index| self.signers.get(index).copied())
                    .collect(),
            )
        })
    }

    /// [`PendingSignatures::finish`] for checks that were verified within a larger batch,
    /// from `offset` on: `bad` are the indices of the bad signatures of that whole batch.
    pub fn finish_in_batch(&self, offset: usize, bad: &[usize]) -> Result<(), CertificateError> {
        let range = offset..offset.saturating_add(self.signers.len());
        let mine: Vec<usize> = bad
            .iter()
            .filter(|index| range.contains(index))
            .map(|index| index - offset)
            .collect();
        self.finish(if mine.is_empty() { Ok(()) } else { Err(mine) })
    }

    /// Verifies the signatures here, in one batch.
    pub fn verify(mut self) -> Result<(), CertificateError> {
        let checks = self.take_checks();
        if checks.is_empty() {
            return Ok(());
        }
        self.finish(crypto::verify_signatures(&checks))
    }
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
        self.check_verifying(committee, Verify::All)
    }

    /// Checks everything [`Certificate::check`] does but the signatures themselves (signers
    /// sorted, distinct, members of `committee` with weight, together a quorum): for a
    /// certificate assembled from votes that were each checked on arrival
    /// ([`LiteVote::check`](crate::LiteVote::check)), so that no signature is verified twice.
    pub fn check_signers(&self, committee: &Committee) -> Result<(), CertificateError> {
        self.check_verifying(committee, Verify::None)
    }

    /// Checks everything [`Certificate::check`] does, but does not verify again the signature
    /// of `known`, a vote this node made (or verified) itself, when the certificate holds
    /// exactly it: the same signer and signature, over the same kind, value and round. Any
    /// other signature, and `known`'s if it differs in anything, is verified as usual. A
    /// validator checking a certificate it voted for so verifies its own signature once: when
    /// it made it.
    pub fn check_except(
        &self,
        committee: &Committee,
        known: &LiteVote,
    ) -> Result<(), CertificateError> {
        self.check_verifying(committee, Verify::AllBut(known))
    }

    /// Checks everything [`Certificate::check_except`] does but the signatures themselves, and
    /// returns those to verify (without `known`'s, as there): for a node that verifies the
    /// signatures of several requests together. `finish` the result with the outcome.
    pub fn pending_signatures(
        &self,
        committee: &Committee,
        known: Option<&LiteVote>,
    ) -> Result<PendingSignatures, CertificateError> {
        pending_signatures(
            committee,
            T::KIND,
            self.value.hash(),
            self.round,
            &self.signatures,
            known,
            true,
        )
    }

    /// The checks of [`Certificate::check`], verifying the signatures `verify` says.
    fn check_verifying(
        &self,
        committee: &Committee,
        verify: Verify<'_>,
    ) -> Result<(), CertificateError> {
        check_signers(
            committee,
            T::KIND,
            self.value.hash(),
            self.round,
            &self.signatures,
            verify,
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

#[cfg(test)]
mod tests;
