//! How the Byzantine faults alter a node's answers.

use quorum_core::{
    ChainInfoResponse, CryptoHash, LiteVote, Signature, ValidatorSecretKey, VoteKind,
};

use crate::fault::Fault;

/// Domain of the hashes that [`Fault::Equivocate`] votes for instead of the real value.
const EQUIVOCATION_DOMAIN: &str = "quorum-transport-mem/equivocation";

/// The keys the faults sign with.
#[derive(Clone, Copy)]
pub(crate) struct Signers<'a> {
    /// The node's own key, if it was given one.
    pub(crate) own: Option<&'a ValidatorSecretKey>,
    /// The key [`Fault::WrongKey`] signs with.
    pub(crate) wrong: &'a ValidatorSecretKey,
}

/// `signature` with one bit flipped, so that it no longer verifies.
pub(crate) fn corrupt_signature(signature: &Signature) -> Signature {
    let mut bytes = signature.to_bytes();
    bytes[0] ^= 0x01;
    Signature::from_bytes(&bytes)
}

/// The hash an equivocating node votes for instead of `value_hash`: different from it, and the
/// same for the same input.
pub(crate) fn equivocation_hash(value_hash: &CryptoHash) -> CryptoHash {
    CryptoHash::of_bytes(EQUIVOCATION_DOMAIN, value_hash.as_bytes())
}

/// Signs `response` again with `key` after its information changed. A response that was not
/// signed stays unsigned; without a key the stale signature is dropped.
fn reseal(response: &mut ChainInfoResponse, key: Option<&ValidatorSecretKey>) {
    if response.signature.is_some() {
        response.signature = key.map(|key| key.sign(&*response.info));
    }
}

/// Applies `f` to every vote in `response` (pending and timeout); `f` returns the replacement,
/// or `None` to remove the vote.
fn map_votes(response: &mut ChainInfoResponse, mut f: impl FnMut(LiteVote) -> Option<LiteVote>) {
    let manager = &mut response.info.manager;
    manager.pending = manager.pending.take().and_then(&mut f);
    manager.timeout_vote = manager.timeout_vote.take().and_then(&mut f);
}

/// Removes the votes of `kind` (every vote if `kind` is `None`) from `response`, signing it
/// again with `key` if anything was removed.
pub(crate) fn strip_votes(
    response: &mut ChainInfoResponse,
    kind: Option<VoteKind>,
    key: Option<&ValidatorSecretKey>,
) {
    let mut changed = false;
    map_votes(response, |vote| {
        if kind.is_none_or(|kind| vote.kind == kind) {
            changed = true;
            None
        } else {
            Some(vote)
        }
    });
    if changed {
        reseal(response, key);
    }
}

/// Alters, as `fault` says, a response the wrapped node gave.
pub(crate) fn tamper_response(
    fault: &Fault,
    signers: Signers<'_>,
    response: &mut ChainInfoResponse,
) {
    match fault {
        Fault::BadSignature => {
            map_votes(response, |mut vote| {
                vote.signature = corrupt_signature(&vote.signature);
                Some(vote)
            });
            response.signature = response.signature.as_ref().map(corrupt_signature);
        }
        Fault::WrongKey => {
            map_votes(response, |vote| {
                Some(LiteVote::new(
                    vote.value_hash,
                    vote.kind,
                    vote.round,
                    signers.wrong,
                ))
            });
            reseal(response, Some(signers.wrong));
        }
        Fault::Equivocate => match signers.own {
            Some(key) => {
                map_votes(response, |vote| {
                    Some(LiteVote::new(
                        equivocation_hash(&vote.value_hash),
                        vote.kind,
                        vote.round,
                        key,
                    ))
                });
                reseal(response, Some(key));
            }
            None => {
                tracing::warn!("Equivocate without the validator's key: removing the votes");
                strip_votes(response, None, None);
            }
        },
        Fault::DontSendValidateVote => {
            strip_votes(response, Some(VoteKind::Validated), signers.own);
        }
        Fault::DontSendConfirmVote => {
            strip_votes(response, Some(VoteKind::Confirmed), signers.own);
        }
        Fault::Honest
        | Fault::Offline
        | Fault::Slow(_)
        | Fault::Hang
        | Fault::Flaky(_)
        | Fault::CrashAfter(_)
        | Fault::FalseBlobsNotFound
        | Fault::DontProcessValidated => {}
    }
}
