//! The Byzantine faults against a real Worker: BadSignature, WrongKey, Equivocate,
//! FalseBlobsNotFound, DontSendValidateVote, DontSendConfirmVote, DontProcessValidated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quorum_core::protocol::RequestKind;
use quorum_core::{
    AggregatorError, Blob, BlockHeight, BlockProposal, ChainInfoQuery, CrossChainDelivery,
    CryptoError, Hashed, NodeError, Operation, Round, SignatureAggregator, ValidatedBlock,
    ValidatorNode, VoteError, VoteKind,
};
use quorum_testkit::TestNet;
use quorum_transport_mem::{Fault, MemoryNode};

/// The blob ids a `BlobsNotFound` names.
fn claimed(error: NodeError) -> Vec<quorum_core::BlobId> {
    match error {
        NodeError::BlobsNotFound(ids) => ids,
        other => panic!("expected BlobsNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_signature_corrupts_votes_and_the_response_signature() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    let public = net.secrets[0].public();
    node.set_fault(Fault::BadSignature);

    let answer = node
        .handle_block_proposal(net.empty_proposal(1).await)
        .await
        .unwrap();
    let vote = answer.info.manager.pending.clone().unwrap();
    // The vote is about the right value and names the right validator, but does not verify.
    let real = net.direct_vote(0, 1).await.unwrap();
    real.check(&public).unwrap();
    assert_eq!(
        (vote.value_hash, vote.kind, vote.round, vote.validator),
        (real.value_hash, real.kind, real.round, real.validator)
    );
    assert_eq!(
        vote.check(&public),
        Err(VoteError::Signature(CryptoError::InvalidSignature))
    );
    // Only answers to queries are signed as a whole (below); this one carries its vote only.
    assert_eq!(answer.signature, None);

    // Timeout votes too, and the signature of the query's answer.
    net.pass_deadline(1).await;
    let query =
        ChainInfoQuery::new(net.chains[1]).with_timeout(BlockHeight(0), Round::MultiLeader(0));
    let answer = node.handle_chain_info_query(query).await.unwrap();
    let timeout = answer.info.manager.timeout_vote.clone().unwrap();
    assert_eq!(timeout.kind, VoteKind::Timeout);
    assert!(timeout.check(&public).is_err());
    assert!(answer.check(&public).is_err());
    let real = net.workers[0]
        .handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
        .await
        .unwrap();
    real.info
        .manager
        .timeout_vote
        .unwrap()
        .check(&public)
        .unwrap();
}

#[tokio::test]
async fn wrong_key_relays_another_validators_votes() {
    let net = TestNet::new(4, 2, false).await;
    let public = net.secrets[0].public();
    let other = net.secrets[1].public();
    let node = MemoryNode::new(net.workers[0].clone(), Some(net.secrets[0].clone()), 0)
        .with_wrong_key(net.secrets[1].clone())
        .with_fault(Fault::WrongKey);
    assert_eq!(node.wrong_public_key(), other);

    let answer = node
        .handle_block_proposal(net.empty_proposal(1).await)
        .await
        .unwrap();
    let vote = answer.info.manager.pending.clone().unwrap();
    assert_eq!(
        vote.check(&public),
        Err(VoteError::WrongSigner {
            expected: public,
            found: other
        })
    );
    // A valid vote, just not from the validator that was asked.
    vote.check(&other).unwrap();
    assert_eq!(answer.signature, None);
    // The answer to a query is signed as a whole: by the other key too.
    let query = ChainInfoQuery::new(net.chains[1]).with_manager_values();
    let answer = node.handle_chain_info_query(query).await.unwrap();
    answer.check(&other).unwrap();
    assert!(answer.check(&public).is_err());
    assert_eq!(
        vote.value_hash,
        net.direct_vote(0, 1).await.unwrap().value_hash
    );

    // By default the other key is one outside the committee, derived from the seed.
    let stranger = MemoryNode::new(net.workers[2].clone(), Some(net.secrets[2].clone()), 9)
        .with_fault(Fault::WrongKey);
    assert!(net.committee.info(&stranger.wrong_public_key()).is_none());
    let answer = stranger
        .handle_block_proposal(net.empty_proposal(1).await)
        .await
        .unwrap();
    let vote = answer.info.manager.pending.unwrap();
    assert_eq!(vote.validator, stranger.wrong_public_key());
    vote.check(&stranger.wrong_public_key()).unwrap();
}

#[tokio::test]
async fn equivocate_signs_a_vote_for_another_value() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    let public = net.secrets[0].public();
    node.set_fault(Fault::Equivocate);

    let proposal = net.empty_proposal(1).await;
    let answer = node.handle_block_proposal(proposal.clone()).await.unwrap();
    let vote = answer.info.manager.pending.clone().unwrap();
    let real = net.direct_vote(0, 1).await.unwrap();
    // Signed by the node's real key, same kind and round, another value.
    vote.check(&public).unwrap();
    assert_eq!(answer.signature, None);
    assert_eq!((vote.kind, vote.round), (real.kind, real.round));
    assert_ne!(vote.value_hash, real.value_hash);

    // An aggregator that saw the real vote keeps the forged one as evidence.
    let value = Hashed::new(ValidatedBlock(net.value(proposal.block()).await));
    let mut aggregator = SignatureAggregator::new(value, proposal.round(), &net.committee);
    assert_eq!(aggregator.add(&real).unwrap(), None);
    assert_eq!(
        aggregator.add(&vote),
        Err(AggregatorError::Equivocation(public))
    );

    // Timeout votes are equivocated too.
    net.pass_deadline(1).await;
    let query =
        ChainInfoQuery::new(net.chains[1]).with_timeout(BlockHeight(0), Round::MultiLeader(0));
    let answer = node.handle_chain_info_query(query).await.unwrap();
    let timeout = answer.info.manager.timeout_vote.unwrap();
    timeout.check(&public).unwrap();
    let real = net
        .direct_info(0, 1)
        .await
        .info
        .manager
        .timeout_vote
        .unwrap();
    assert_eq!((timeout.kind, timeout.round), (real.kind, real.round));
    assert_ne!(timeout.value_hash, real.value_hash);
}

#[tokio::test]
async fn equivocate_without_a_key_withholds_votes() {
    let net = TestNet::new(4, 2, false).await;
    let node = MemoryNode::new(net.workers[0].clone(), None, 0).with_fault(Fault::Equivocate);
    let answer = node
        .handle_block_proposal(net.empty_proposal(1).await)
        .await
        .unwrap();
    assert_eq!(answer.info.manager.pending, None);
    assert_eq!(answer.signature, None);
    assert!(net.direct_vote(0, 1).await.is_some());
}

#[tokio::test]
async fn false_blobs_not_found_claims_blobs_the_request_does_not_need() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    node.set_fault(Fault::FalseBlobsNotFound);

    // A proposal that reads an unknown blob: the honest answer names it, the false one does not.
    let unknown = Blob::data(b"never published".to_vec()).id();
    let block = net.block(1, vec![Operation::ReadBlob(unknown)]).await;
    let reading = net.proposal(1, block, Round::MultiLeader(0));
    let honest = net.workers[0]
        .handle_block_proposal(reading.clone())
        .await
        .unwrap_err();
    assert_eq!(claimed(honest), vec![unknown]);
    let ids = claimed(node.handle_block_proposal(reading).await.unwrap_err());
    assert!(!ids.is_empty());
    assert!(!ids.contains(&unknown));

    // A good proposal is not forwarded either: the worker does not vote.
    let proposal = net.empty_proposal(1).await;
    let ids = claimed(
        node.handle_block_proposal(proposal.clone())
            .await
            .unwrap_err(),
    );
    assert!(!ids.is_empty());
    assert_eq!(net.direct_vote(0, 1).await, None);

    // Certificates: validated, lite, confirmed, batch.
    let validated = net.validate(&[1, 2, 3], &proposal).await;
    claimed(
        node.handle_validated_certificate(validated.clone())
            .await
            .unwrap_err(),
    );
    claimed(
        node.handle_lite_certificate(validated.lite(), CrossChainDelivery::Blocking)
            .await
            .unwrap_err(),
    );
    let confirmed = net.confirm(&[1, 2, 3], &validated).await;
    claimed(
        node.handle_confirmed_certificate(confirmed.clone(), CrossChainDelivery::Blocking)
            .await
            .unwrap_err(),
    );
    let outcome = node
        .handle_confirmed_certificates(vec![confirmed.clone()], CrossChainDelivery::Blocking)
        .await
        .unwrap();
    assert_eq!((outcome.processed, outcome.info), (0, None));
    claimed(outcome.error.unwrap());
    assert_eq!(
        net.direct_info(0, 1).await.info.next_block_height,
        BlockHeight(0)
    );

    // Queries are answered honestly.
    node.handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
        .await
        .unwrap();

    // Honest again: the certificate is processed.
    node.set_fault(Fault::Honest);
    let answer = node
        .handle_confirmed_certificate(confirmed, CrossChainDelivery::Blocking)
        .await
        .unwrap();
    assert_eq!(answer.info.next_block_height, BlockHeight(1));
    assert_eq!(node.stats().calls(RequestKind::ConfirmedCertificate), 2);
}

#[tokio::test]
async fn false_blobs_not_found_for_timeout_certificates() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    net.pass_deadline(1).await;
    let certificate = net.timeout(&[1, 2, 3], 1, Round::MultiLeader(0)).await;
    node.set_fault(Fault::FalseBlobsNotFound);
    claimed(
        node.handle_timeout_certificate(certificate.clone())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        net.direct_info(0, 1).await.info.manager.current_round,
        Round::MultiLeader(0)
    );
    node.set_fault(Fault::Honest);
    let answer = node.handle_timeout_certificate(certificate).await.unwrap();
    assert_eq!(answer.info.manager.current_round, Round::MultiLeader(1));
}

#[tokio::test]
async fn dont_send_validate_vote_processes_but_withholds_the_validated_vote() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    let public = net.secrets[0].public();
    node.set_fault(Fault::DontSendValidateVote);

    let proposal = net.empty_proposal(1).await;
    let answer = node.handle_block_proposal(proposal.clone()).await.unwrap();
    assert_eq!(answer.info.manager.pending, None);
    // The response is otherwise the node's: only the vote is missing.
    assert_eq!(answer.info.next_block_height, BlockHeight(0));
    // The worker did vote.
    assert_eq!(
        net.direct_vote(0, 1).await.unwrap().kind,
        VoteKind::Validated
    );
    let query = node
        .handle_chain_info_query(ChainInfoQuery::new(net.chains[1]))
        .await
        .unwrap();
    assert_eq!(query.info.manager.pending, None);

    // Confirmation votes still come through.
    let validated = net.validate(&[1, 2, 3], &proposal).await;
    let answer = node.handle_validated_certificate(validated).await.unwrap();
    let vote = answer.info.manager.pending.unwrap();
    assert_eq!(vote.kind, VoteKind::Confirmed);
    vote.check(&public).unwrap();
}

#[tokio::test]
async fn dont_send_confirm_vote_processes_but_withholds_the_confirmed_vote() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    node.set_fault(Fault::DontSendConfirmVote);

    // Validated votes come through.
    let proposal = net.empty_proposal(1).await;
    let answer = node.handle_block_proposal(proposal.clone()).await.unwrap();
    assert_eq!(
        answer.info.manager.pending.unwrap().kind,
        VoteKind::Validated
    );

    let validated = net.validate(&[1, 2, 3], &proposal).await;
    let answer = node.handle_validated_certificate(validated).await.unwrap();
    assert_eq!(answer.info.manager.pending, None);
    assert_eq!(answer.info.next_block_height, BlockHeight(0));
    assert_eq!(
        net.direct_vote(0, 1).await.unwrap().kind,
        VoteKind::Confirmed
    );

    // In the fast round a proposal is answered with a confirmation vote: withheld too.
    let fast = TestNet::new(4, 2, true).await;
    let node = &fast.nodes[0];
    node.set_fault(Fault::DontSendConfirmVote);
    let block = fast.block(1, vec![]).await;
    let proposal = fast.proposal(1, block, Round::Fast);
    let answer = node.handle_block_proposal(proposal).await.unwrap();
    assert_eq!(answer.info.manager.pending, None);
    assert_eq!(
        fast.direct_vote(0, 1).await.unwrap().kind,
        VoteKind::Confirmed
    );
}

#[tokio::test]
async fn dont_process_validated_answers_current_info_without_a_vote() {
    let net = TestNet::new(4, 2, false).await;
    let node = &net.nodes[0];
    let public = net.secrets[0].public();

    let proposal = net.empty_proposal(1).await;
    let answer = node.handle_block_proposal(proposal.clone()).await.unwrap();
    assert_eq!(
        answer.info.manager.pending.unwrap().kind,
        VoteKind::Validated
    );
    let validated = net.validate(&[1, 2, 3], &proposal).await;

    node.set_fault(Fault::DontProcessValidated);
    for answer in [
        node.handle_validated_certificate(validated.clone())
            .await
            .unwrap(),
        node.handle_lite_certificate(validated.lite(), CrossChainDelivery::Blocking)
            .await
            .unwrap(),
    ] {
        assert_eq!(answer.info.chain_id, net.chains[1]);
        assert_eq!(answer.info.manager.pending, None);
        assert_eq!(answer.info.manager.timeout_vote, None);
        answer.check(&public).unwrap();
    }
    // The worker never saw the certificate: its vote is still the validated one.
    assert_eq!(
        net.direct_vote(0, 1).await.unwrap().kind,
        VoteKind::Validated
    );
    // Nor does a re-proposal carrying the certificate lock it (issue 28).
    let retry = BlockProposal::new_retry(proposal.round(), validated.clone(), &net.owners[1]);
    let answer = node.handle_block_proposal(retry).await.unwrap();
    assert_eq!(answer.info.manager.pending, None);
    answer.check(&public).unwrap();
    let state = net.workers[0].chain_state(net.chains[1]).await.unwrap();
    assert!(state.manager().locking_certificate().is_none());
    let stats = node.stats();
    assert_eq!(stats.calls(RequestKind::ValidatedCertificate), 1);
    assert_eq!(stats.calls(RequestKind::LiteCertificate), 1);

    // Honest again: the lite certificate is processed and confirmed.
    node.set_fault(Fault::Honest);
    let answer = node
        .handle_lite_certificate(validated.lite(), CrossChainDelivery::Blocking)
        .await
        .unwrap();
    let vote = answer.info.manager.pending.unwrap();
    assert_eq!(vote.kind, VoteKind::Confirmed);
    vote.check(&public).unwrap();
}
