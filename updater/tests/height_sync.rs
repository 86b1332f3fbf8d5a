//! Issue 27, must-show 3 (second half): a client synchronizes the chains it only needs the
//! height of (a recipient, the admin chain) without their pending values; only the owner sync
//! of its own chain asks for them, of the validators that voted at its height (DESIGN §5.2.4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use quorum_core::protocol::{dispatch, Carrier, Request, Response};
use quorum_core::{ChainId, EncodedCommittee, NodeError, Operation, Round, ValidatorNode};
use quorum_testkit::TokioTestNet;

/// Passes every request on to `inner`, noting the chain of every chain information query
/// that asks for the round's pending values.
struct Recording {
    inner: Arc<dyn ValidatorNode>,
    asked_values: Arc<Mutex<Vec<ChainId>>>,
}

#[async_trait]
impl Carrier for Recording {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        if let Request::ChainInfoQuery(query) = &request {
            if query.request_manager_values {
                self.asked_values.lock().unwrap().push(query.chain_id);
            }
        }
        Ok(dispatch(self.inner.as_ref(), request).await)
    }
}

/// Wraps every validator of `net` in a [`Recording`]; returns what they record.
fn record(net: &TokioTestNet) -> Arc<Mutex<Vec<ChainId>>> {
    let asked_values = Arc::new(Mutex::new(Vec::new()));
    for v in 0..net.workers.len() {
        net.validators.insert(
            net.secrets[v].public(),
            Arc::new(Recording {
                inner: Arc::new(net.nodes[v].clone()) as Arc<dyn ValidatorNode>,
                asked_values: asked_values.clone(),
            }),
        );
    }
    asked_values
}

/// The owner sync asks for the pending values of the validators that voted at the chain's
/// height, and only of them.
#[tokio::test(start_paused = true)]
async fn the_owner_sync_asks_for_pending_values_only_where_a_validator_voted() {
    let net = TokioTestNet::new(4, 3, false).await;
    let block = net.block(1, vec![]).await;
    let proposal = net.proposal(1, block, Round::MultiLeader(0));
    for answer in net.propose(&[0, 2], &proposal).await {
        answer.unwrap();
    }
    let asked_values = record(&net);
    let client = net.client(1);
    client.synchronize_chain(net.chains[1]).await.unwrap();
    let asked = asked_values.lock().unwrap().clone();
    assert_eq!(asked, vec![net.chains[1]; 2]);
    // A client without an owner (read only) asks for none.
    asked_values.lock().unwrap().clear();
    let reader = client.for_chain(net.chains[1], None);
    reader.synchronize_chain(net.chains[1]).await.unwrap();
    assert!(asked_values.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_transfer_does_not_read_another_chains_pending_proposal() {
    let net = TokioTestNet::new(4, 3, false).await;
    // A pending proposal on the admin chain, voted for by every validator, never finished.
    let pending = net
        .block(
            0,
            vec![Operation::CreateCommittee(EncodedCommittee::new(
                &net.committee,
            ))],
        )
        .await;
    let proposal = net.proposal(0, pending, Round::MultiLeader(0));
    for answer in net.propose(&[0, 1, 2, 3], &proposal).await {
        answer.unwrap();
    }
    let asked_values = record(&net);
    let client = net.client(1);
    client.synchronize_from_validators().await.unwrap();
    client.synchronize_chain(net.chains[2]).await.unwrap();
    client.synchronize_chain(net.chains[0]).await.unwrap();
    client.transfer(net.chains[2], 3).await.unwrap();
    let asked = asked_values.lock().unwrap().clone();
    assert!(
        asked.iter().all(|chain| *chain == net.chains[1]),
        "pending values asked of other chains: {asked:?}"
    );
    net.settle().await;
    assert_eq!(net.balance(0, 1).await, net.genesis.chains[1].balance - 3);
}

/// Found by `quorum chaos --seed 1` (issue 23): a fresh client's sync of a chain whose every
/// block consumed a bundle drew all of the batch's cross-chain repairs from one recovery
/// budget, ran out partway through the batch and reported the honest validator it read from
/// as a protocol violation (`RepeatedRecovery`), then downloaded the rest again. Each
/// certificate is its own action, with its own budget (its repairs are bounded by its
/// bundles): the chain comes down in one batch, whatever the budget.
#[tokio::test(start_paused = true)]
async fn a_batch_of_blocks_each_consuming_a_bundle_syncs_in_one_pass() {
    let net = TokioTestNet::new(4, 3, false).await;
    let (one, two) = (net.client(1), net.client(2));
    let blocks = 8;
    for _ in 0..blocks {
        two.transfer(net.chains[1], 1).await.unwrap();
        one.synchronize_from_validators().await.unwrap();
        let certificate = one.transfer(net.chains[0], 1).await.unwrap();
        assert_eq!(certificate.value().block().incoming_bundles.len(), 1);
    }
    net.settle().await;
    let options = quorum_updater::Options {
        recovery_budget: 3,
        ..quorum_testkit::test_options()
    };
    let fresh = quorum_updater::ChainClient::new(
        net.chains[1],
        None,
        net.new_worker(None).await,
        net.validators.clone(),
        options,
    );
    fresh.synchronize_chain(net.chains[1]).await.unwrap();
    assert_eq!(
        fresh.local_next_height().await.unwrap(),
        quorum_core::BlockHeight(blocks)
    );
    let stats = fresh.stats();
    assert_eq!(stats.get(quorum_updater::RecoveryKind::LocalSync), 1);
    assert_eq!(stats.get(quorum_updater::RecoveryKind::CrossChain), blocks);
}
