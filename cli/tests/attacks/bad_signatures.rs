//! Attack 7. Certificates with bad signatures, pipelined: each costs the validator its
//! signature verification (batched with honest requests' by the Worker's Verifier, then again
//! on its own when the batch fails), and must be refused without holding honest traffic back.

use quorum_core::{
    Certificate, CertificateError, Hashed, LiteVote, Timeout, ValidatorPublicKey,
    ValidatorSecretKey, VoteKind,
};
use rand::SeedableRng;

use super::*;

/// Connections of the attack, from one address.
const BAD_SIGNATURE_CONNECTIONS: usize = 4;

/// A timeout certificate for chain 1 at its current height and round, in its committee's
/// epoch, signed for the quorum's three first validators by a key that is none of theirs:
/// well formed, every signer a member with weight, every signature a real point and scalar
/// (so each costs a full verification), and every one bad. The frame, and the signers.
fn forged_timeout_certificate(committee: &Committee) -> (Vec<u8>, Vec<ValidatorPublicKey>) {
    let chain = committee.chain(1);
    let (_, info) = query_chain(committee.target, chain, PROBE_TIMEOUT).unwrap();
    let value = Hashed::new(Timeout {
        chain_id: chain,
        height: info.info.next_block_height,
        epoch: info.info.epoch.unwrap_or(Epoch(0)),
    });
    let round = info.info.manager.current_round;
    let forger = ValidatorSecretKey::generate(&mut rand::rngs::StdRng::seed_from_u64(99));
    let quorum = committee.genesis.committee.quorum_threshold() as usize;
    let signers: Vec<ValidatorPublicKey> = committee
        .genesis
        .committee
        .validators()
        .map(|(key, _)| *key)
        .take(quorum)
        .collect();
    let signature = LiteVote::new(value.hash(), VoteKind::Timeout, round, &forger).signature;
    let signatures = signers.iter().map(|key| (*key, signature)).collect();
    let certificate = Certificate::new(value, round, signatures);
    let frame = encode_request(0, Request::TimeoutCertificate(Box::new(certificate)));
    (frame, signers)
}

/// Sends `per_connection` forged certificates pipelined on each of
/// [`BAD_SIGNATURE_CONNECTIONS`] connections at once, and checks every one is refused, naming
/// exactly the forged signers.
fn bad_signatures_row(per_connection: usize) -> Row {
    let (mut committee, baseline) = committee_with_baseline();
    let (frame, signers) = forged_timeout_certificate(&committee);
    let frame = Arc::new(frame);
    let target = committee.target;
    let attacker = pipelined_attacker(target, frame, BAD_SIGNATURE_CONNECTIONS, per_connection);
    let sent = BAD_SIGNATURE_CONNECTIONS * per_connection;
    let name = format!(
        "7. {BAD_SIGNATURE_CONNECTIONS} × {per_connection} timeout certificates with bad signatures, pipelined"
    );
    let hold = Hold {
        min: Duration::from_secs(3),
        max: Duration::from_secs(60),
    };
    let (mut row, answers) = measure(&mut committee, baseline, &name, hold, attacker);
    let mut sorted = signers.clone();
    sorted.sort();
    let expected = NodeError::InvalidCertificate(CertificateError::BadSignatures(sorted));
    let slowest = answers.iter().map(|a| a.after).max().unwrap_or_default();
    let refused = answers
        .iter()
        .filter(|a| matches!(&a.answer, Ok(Response::TimeoutCertificate(Err(e))) if *e == expected))
        .count();
    row.note(format!(
        "{refused} of {sent} refused naming the forged signers, the last {} after the first was sent",
        ms(slowest)
    ));
    row.check(
        refused == sent,
        format!(
            "not every forged certificate was refused as expected: {:?}",
            answers.iter().find(|a| !matches!(
                &a.answer,
                Ok(Response::TimeoutCertificate(Err(e))) if *e == expected
            ))
        ),
    );
    row
}

/// 4 × 200 forged certificates (a debug build verifies about 2,400 bad signatures twice).
#[test]
fn certificates_with_bad_signatures_are_refused_without_holding_honest_traffic() {
    let _serial = serial();
    bad_signatures_row(200).finish();
}

/// The same, 4 × 5,000 (60,000 bad signatures).
#[test]
#[ignore = "heavy: 20,000 forged certificates (run with --release)"]
fn many_certificates_with_bad_signatures() {
    let _serial = serial();
    bad_signatures_row(5_000).finish();
}
