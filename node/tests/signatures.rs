//! Signatures at the reference validator: which answers are signed (DESIGN §4.2), and the
//! proposer's signature, verified before the worker-wide lock and in batches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quorum_core::{ChainInfoQuery, NodeError, PreparedKey, Round, ValidatorNode};
use quorum_testkit::TestNet as Net;

/// DESIGN §4.2: answers to chain-info queries are signed by the validator; answers to proposals
/// carry their votes, each signed on its own, and no signature over the whole answer.
#[tokio::test]
async fn only_answers_to_queries_are_signed_as_a_whole() {
    let net = Net::new(4, 2, false).await;
    let public = net.secrets[0].public();
    let block = net.block(1, vec![]).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    let answer = net.workers[0]
        .handle_block_proposal(proposal)
        .await
        .unwrap();
    assert_eq!(answer.signature, None);
    answer.info.manager.pending.unwrap().check(&public).unwrap();
    let query = ChainInfoQuery::new(net.chains[1]).with_manager_values();
    let answer = net.workers[0].handle_chain_info_query(query).await.unwrap();
    answer.check(&public).unwrap();
    assert!(answer.check(&net.secrets[1].public()).is_err());
}

/// The proposer's signature is verified before the worker-wide lock, yet refusals come in the
/// same order as before: a wrong round first, then a bad signature. A proposal the node's own
/// client signed is recorded without that verification (`handle_own_block_proposal`).
#[tokio::test]
async fn proposal_signatures_are_verified_before_the_lock_in_the_same_order() {
    let net = Net::new(4, 2, false).await;
    let block = net.block(1, vec![]).await;
    let other = net.block(0, vec![]).await;
    let forged = |round| {
        let mut proposal = net.proposal(1, block.clone(), round);
        proposal.signature = net.proposal(0, other.clone(), round).signature;
        proposal
    };
    let worker = &net.workers[0];
    assert!(matches!(
        worker
            .handle_block_proposal(forged(Round::MultiLeader(0)))
            .await,
        Err(NodeError::InvalidSignature(_))
    ));
    assert_eq!(
        worker
            .handle_block_proposal(forged(Round::MultiLeader(1)))
            .await
            .unwrap_err(),
        NodeError::WrongRound(Round::MultiLeader(0))
    );
    let own = net.proposal(1, block.clone(), Round::MultiLeader(0));
    let answer = worker.handle_own_block_proposal(own.clone()).await.unwrap();
    let vote = answer.info.manager.pending.unwrap();
    vote.check(&net.secrets[0].public()).unwrap();
    // The same proposal through the public path gets the same vote.
    let again = net.workers[0].handle_block_proposal(own).await.unwrap();
    assert_eq!(again.info.manager.pending, Some(vote));
}

/// `BlockProposal::signature_check` (what the Worker verifies in batches, with the owner's key
/// decoded once) agrees with `check_signature`, and refuses a key that is not the proposer's.
#[tokio::test]
async fn a_proposals_signature_check_agrees_with_check_signature() {
    let net = Net::new(4, 2, false).await;
    let block = net.block(1, vec![]).await;
    let good = net.proposal(1, block.clone(), Round::MultiLeader(0));
    let mut bad = good.clone();
    bad.signature = net
        .proposal(0, net.block(0, vec![]).await, Round::Fast)
        .signature;
    let owner = PreparedKey::decode(good.owner().as_bytes()).unwrap();
    for proposal in [&good, &bad] {
        let check = proposal.signature_check(&owner).unwrap();
        let batched = quorum_core::verify_signatures(&[check]).is_ok();
        assert_eq!(batched, proposal.check_signature().is_ok());
    }
    assert!(good.check_signature().is_ok() && bad.check_signature().is_err());
    let stranger = net
        .proposal(0, net.block(0, vec![]).await, Round::Fast)
        .owner();
    let stranger = PreparedKey::decode(stranger.as_bytes()).unwrap();
    assert!(good.signature_check(&stranger).is_err());
}
