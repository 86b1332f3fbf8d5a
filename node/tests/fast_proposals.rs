//! A client's node learning the super owner's fast-round proposal from what validators
//! report (DESIGN §4.3): only the super owner's, correctly signed, with the blobs its block
//! needs; the first one at a height is kept, and a validator that voted for it reports it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use quorum_core::{
    AccountSecretKey, Blob, BlockProposal, CryptoError, NodeError, Operation, Round, ValidatorNode,
};
use quorum_testkit::TestNet as Net;
use rand::SeedableRng;

#[tokio::test]
async fn a_node_keeps_only_the_super_owners_signed_fast_proposal_with_its_blobs() {
    // Chain 1's owner is its super owner: each height starts in the fast round.
    let net = Net::new(4, 2, true).await;
    let local = net.new_worker(None).await;
    let blob = Blob::data(b"read by the fast block".to_vec());
    let block = net.block(1, vec![Operation::PublishBlob(blob.id())]).await;
    let fast = net.proposal(1, block.clone(), Round::Fast);

    // Someone else's "fast proposal" of the block is no fast proposal of the super owner.
    let stranger = AccountSecretKey::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
    let mut by_stranger = block.clone();
    by_stranger.authenticated_owner = stranger.public();
    let by_stranger = BlockProposal::new(by_stranger, Round::Fast, &stranger);
    assert_eq!(
        local.take_in_fast_proposal(by_stranger).await.unwrap_err(),
        NodeError::UnauthorizedOwner
    );
    // A forged signature.
    let mut forged = fast.clone();
    forged.signature = stranger.sign(&fast.content);
    assert_eq!(
        local.take_in_fast_proposal(forged).await.unwrap_err(),
        NodeError::InvalidSignature(CryptoError::InvalidSignature)
    );
    // The blob the block publishes is missing: asked for, then welcome.
    assert_eq!(
        local.take_in_fast_proposal(fast.clone()).await.unwrap_err(),
        NodeError::BlobsNotFound(vec![blob.id()])
    );
    local.upload_blob(blob.clone()).await.unwrap();
    assert!(local.take_in_fast_proposal(fast.clone()).await.unwrap());
    let state = local.chain_state(net.chains[1]).await.unwrap();
    assert_eq!(state.manager().fast_proposal(), Some(&fast));

    // A second fast proposal at the height (the super owner equivocated) is not kept.
    let other = net.block(1, vec![]).await;
    let other = net.proposal(1, other, Round::Fast);
    assert!(!local.take_in_fast_proposal(other).await.unwrap());
    let state = local.chain_state(net.chains[1]).await.unwrap();
    assert_eq!(state.manager().fast_proposal(), Some(&fast));
}

#[tokio::test]
async fn a_validator_that_voted_in_the_fast_round_reports_the_proposal() {
    let net = Net::new(4, 2, true).await;
    let block = net.block(1, vec![]).await;
    let fast = net.proposal(1, block, Round::Fast);
    net.workers[0]
        .handle_block_proposal(fast.clone())
        .await
        .unwrap();
    let state = net.workers[0].chain_state(net.chains[1]).await.unwrap();
    assert_eq!(state.manager().fast_proposal(), Some(&fast));
    let query = quorum_core::ChainInfoQuery::new(net.chains[1]).with_manager_values();
    let answer = net.workers[0].handle_chain_info_query(query).await.unwrap();
    let reported = answer.info.manager.requested_proposed.unwrap();
    assert_eq!(reported.fast_original(), Some(fast));
}
