//! Which votes go into a certificate the client forms.

use quorum_core::{Committee, LiteVote, ValidatorPublicKey, ValidatorSignature};

/// The signatures a certificate needs out of `votes`: the first ones, in the order given, that
/// together hold a quorum of `committee`'s weight (all of them if they never do; the
/// certificate's own check then reports the missing weight).
///
/// A quorum call waits a grace period after the quorum and so often returns more votes than a
/// quorum. Every signature in a certificate is verified by every validator that receives it,
/// so the votes beyond the quorum are left out: with four equal validators, each lite
/// certificate then costs the validators three signature verifications fewer in all.
pub(super) fn quorum_signatures(
    committee: &Committee,
    votes: &[(ValidatorPublicKey, LiteVote)],
) -> Vec<(ValidatorPublicKey, ValidatorSignature)> {
    let threshold = committee.quorum_threshold();
    let mut weight: u64 = 0;
    let mut signatures = Vec::with_capacity(votes.len());
    for (key, vote) in votes {
        if weight >= threshold {
            break;
        }
        let votes = committee.weight(key);
        if votes == 0 {
            continue;
        }
        weight = weight.saturating_add(votes);
        signatures.push((*key, vote.signature));
    }
    signatures
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use quorum_core::{
        Certificate, Committee, CryptoHash, Hashed, Round, Timeout, ValidatorInfo, VoteKind,
    };
    use quorum_testkit::validator_keys;

    use super::*;

    fn committee(weights: &[u64]) -> (Committee, Vec<quorum_core::ValidatorSecretKey>) {
        let keys = validator_keys(weights.len(), 3);
        let members: BTreeMap<_, _> = keys
            .iter()
            .zip(weights)
            .map(|(key, &votes)| {
                let address = String::new();
                (
                    key.public(),
                    ValidatorInfo {
                        votes,
                        address,
                        network_key: None,
                    },
                )
            })
            .collect();
        (Committee::new(members).unwrap(), keys)
    }

    fn timeout() -> Hashed<Timeout> {
        Hashed::new(Timeout {
            chain_id: quorum_core::ChainId(CryptoHash([1; 32])),
            height: quorum_core::BlockHeight(0),
            epoch: quorum_core::Epoch(0),
        })
    }

    fn votes(
        keys: &[quorum_core::ValidatorSecretKey],
        order: &[usize],
    ) -> Vec<(ValidatorPublicKey, LiteVote)> {
        let value = timeout();
        order
            .iter()
            .map(|&i| {
                let vote = LiteVote::new(value.hash(), VoteKind::Timeout, Round::Fast, &keys[i]);
                (keys[i].public(), vote)
            })
            .collect()
    }

    #[test]
    fn four_equal_validators_need_three_signatures_and_they_certify() {
        let (committee, keys) = committee(&[1, 1, 1, 1]);
        let all = votes(&keys, &[2, 0, 3, 1]);
        let signatures = quorum_signatures(&committee, &all);
        let signers: Vec<_> = signatures.iter().map(|(key, _)| *key).collect();
        assert_eq!(
            signers,
            vec![keys[2].public(), keys[0].public(), keys[3].public()]
        );
        Certificate::new(timeout(), Round::Fast, signatures)
            .check(&committee)
            .unwrap();
    }

    #[test]
    fn weights_decide_how_many_and_zero_weight_votes_are_skipped() {
        // Total 10, quorum 7: the heavy validator and one more.
        let (committee, keys) = committee(&[6, 0, 2, 2]);
        let threshold = committee.quorum_threshold();
        let all = votes(&keys, &[1, 0, 2, 3]);
        let signatures = quorum_signatures(&committee, &all);
        let weight: u64 = signatures.iter().map(|(k, _)| committee.weight(k)).sum();
        assert!(weight >= threshold);
        assert_eq!(signatures.len(), 2);
        assert!(signatures.iter().all(|(k, _)| *k != keys[1].public()));
    }

    #[test]
    fn without_a_quorum_every_vote_is_kept() {
        let (committee, keys) = committee(&[1, 1, 1, 1]);
        let some = votes(&keys, &[0, 1]);
        assert_eq!(quorum_signatures(&committee, &some).len(), 2);
    }
}
