//! Committees, certificates with a chosen number of signatures, and the raw ed25519 inputs of a
//! certificate for the floors.

use quorum_core::{vote_message, CertificateValue, ConfirmedBlock, ConfirmedBlockCertificate};
use quorum_testkit::{must, TestChain, TestCommittee};

/// Seed of every committee of the benches.
pub const COMMITTEE_SEED: u64 = 0x0062_656e_6368; // "bench"

/// A committee of `size` validators of weight 1 (deterministic keys).
pub fn committee(size: usize) -> TestCommittee {
    TestCommittee::new(size, COMMITTEE_SEED)
}

/// A confirmed block certificate of a real block (one event emitted), signed by the first
/// `signers` validators of `committee` only (in the committee's key order).
pub fn partial_certificate(committee: &TestCommittee, signers: usize) -> ConfirmedBlockCertificate {
    let mut chain = TestChain::new(1, COMMITTEE_SEED);
    // Any full certificate gives the value; it is signed again by `signers` validators only.
    let full = chain.commit_blocks(committee, 1).remove(0);
    let (value, round, _) = full.into_parts();
    committee.certify_by_first(value, round, signers)
}

/// What ed25519-dalek needs to check a certificate's signatures without our layers: the signed
/// message (the vote's hash), the signatures and the signers' decoded keys, in the certificate's
/// order.
pub struct RawSignatures {
    /// The 32 bytes every signer signed.
    pub message: [u8; 32],
    /// The signatures.
    pub signatures: Vec<ed25519_dalek::Signature>,
    /// The signers' keys, decoded once (as a committee holds them).
    pub keys: Vec<ed25519_dalek::VerifyingKey>,
}

impl RawSignatures {
    /// The raw inputs of `certificate`'s signatures.
    pub fn of(certificate: &ConfirmedBlockCertificate) -> Self {
        let message = *vote_message(
            ConfirmedBlock::KIND,
            certificate.hash(),
            certificate.round(),
        )
        .as_bytes();
        let signatures = certificate
            .signatures()
            .iter()
            .map(|(_, signature)| ed25519_dalek::Signature::from_bytes(&signature.to_bytes()))
            .collect();
        let keys = certificate
            .signatures()
            .iter()
            .map(|(signer, _)| {
                must(
                    ed25519_dalek::VerifyingKey::from_bytes(signer.as_bytes()),
                    "decoding a signer's key",
                )
            })
            .collect();
        RawSignatures {
            message,
            signatures,
            keys,
        }
    }

    /// ed25519-dalek's batch verification of all the signatures at once.
    pub fn verify_batch(&self) -> bool {
        let messages: Vec<&[u8]> = vec![&self.message[..]; self.signatures.len()];
        ed25519_dalek::verify_batch(&messages, &self.signatures, &self.keys).is_ok()
    }

    /// `verify_strict` on every signature, one after the other.
    pub fn verify_each_strict(&self) -> bool {
        self.signatures
            .iter()
            .zip(&self.keys)
            .all(|(signature, key)| key.verify_strict(&self.message, signature).is_ok())
    }
}
