//! The checker can fail (issue 23, must-show 1): on a committee in process, after real
//! transfers, each violation is planted into a copy of one validator's store (a fork, an
//! acknowledged transfer gone, minted tokens) and the checker, asking the validators through
//! the `ValidatorNode` trait as `quorum chaos` does over TCP, names it under its invariant.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quorum_chaos::{
    check, observe, Acknowledgement, Evidence, GatherConfig, Invariant, ProcessOutcome,
    ValidatorView, Violation,
};
use quorum_core::{
    execute_block, Batch, BlockHeight, BlockValue, ChainId, ConfirmedBlock,
    ConfirmedBlockCertificate, CrossChainDelivery, ExecutionInputs, Message, Round, ValidatorNode,
    Write,
};
use quorum_node::{MemoryStorage, Worker};
use quorum_testkit::TokioTestNet;

/// A committee of four after chain 1 paid chain 2 twice; the journal of both transfers, and
/// a copy of validator 0's store taken between them.
struct Scene {
    net: TokioTestNet,
    journal: Vec<Acknowledgement>,
    before_second: Arc<Worker<MemoryStorage>>,
}

fn acknowledgement(certificate: &ConfirmedBlockCertificate) -> Acknowledgement {
    let block = certificate.value().inner().block();
    Acknowledgement {
        client: 1,
        chain: block.chain_id,
        height: block.height,
        hash: certificate.hash(),
    }
}

/// A new validator with validator 0's key whose store holds what validator 0's holds now:
/// every certificate of every chain, applied again in order.
async fn copy_of_validator_0(net: &TokioTestNet) -> Arc<Worker<MemoryStorage>> {
    let copy = net.new_worker(Some(net.secrets[0].clone())).await;
    for chain in &net.chains {
        let state = net.workers[0].chain_state(*chain).await.unwrap();
        let heights: Vec<BlockHeight> = (0..state.next_height().0).map(BlockHeight).collect();
        let certificates = net.workers[0]
            .download_certificates_by_heights(*chain, heights)
            .await
            .unwrap();
        for certificate in certificates {
            copy.handle_confirmed_certificate(certificate, CrossChainDelivery::Blocking)
                .await
                .unwrap();
        }
    }
    copy
}

async fn scene() -> Scene {
    let net = TokioTestNet::new(4, 3, false).await;
    let (one, two) = (net.client(1), net.chains[2]);
    let first = one.transfer(two, 10).await.unwrap();
    net.settle().await;
    let before_second = copy_of_validator_0(&net).await;
    let second = one.transfer(two, 5).await.unwrap();
    net.settle().await;
    Scene {
        journal: vec![acknowledgement(&first), acknowledgement(&second)],
        net,
        before_second,
    }
}

/// The checker's verdicts on validators `nodes`, with the scene's journal.
async fn verdicts_on(
    scene: &Scene,
    nodes: &[(&str, &dyn ValidatorNode)],
) -> Vec<(Invariant, Vec<Violation>)> {
    let mut views: Vec<ValidatorView> = Vec::new();
    for (name, node) in nodes {
        views.push(
            observe(
                (*name).to_owned(),
                *node,
                &scene.net.chains,
                &scene.net.committee,
                GatherConfig::default(),
            )
            .await,
        );
    }
    let evidence = Evidence {
        genesis: scene
            .net
            .genesis
            .chains
            .iter()
            .map(|description| (description.id(), description.balance))
            .collect::<BTreeMap<ChainId, u64>>(),
        validators: views,
        journal: scene.journal.clone(),
        progress: Vec::new(),
        progress_bound: Duration::from_secs(30),
        processes: ProcessOutcome::default(),
    };
    check(&evidence)
        .into_iter()
        .filter(|verdict| !verdict.held())
        .map(|verdict| (verdict.invariant, verdict.violations))
        .collect()
}

/// The scene's validators, validator 0 replaced by `zero`.
fn committee_with<'a>(
    scene: &'a Scene,
    zero: &'a Worker<MemoryStorage>,
) -> Vec<(&'static str, &'a dyn ValidatorNode)> {
    let mut nodes: Vec<(&'static str, &'a dyn ValidatorNode)> = vec![("validator-0", zero)];
    for (name, worker) in ["validator-1", "validator-2", "validator-3"]
        .into_iter()
        .zip(&scene.net.workers[1..])
    {
        nodes.push((name, worker.as_ref()));
    }
    nodes
}

#[tokio::test(start_paused = true)]
async fn the_honest_committee_holds_every_invariant() {
    let scene = scene().await;
    let copy = copy_of_validator_0(&scene.net).await;
    assert_eq!(
        verdicts_on(&scene, &committee_with(&scene, &copy)).await,
        vec![]
    );
}

#[tokio::test(start_paused = true)]
async fn a_fork_written_into_a_copy_of_a_store_is_named() {
    let scene = scene().await;
    let copy = copy_of_validator_0(&scene.net).await;
    // Another block at chain 1's height 1, certified by the committee's keys.
    let chain = scene.net.chains[1];
    let real = copy
        .download_certificates_by_heights(chain, vec![BlockHeight(1)])
        .await
        .unwrap()
        .remove(0);
    let mut value = real.value().inner().0.clone();
    value.block.timestamp.0 += 1;
    let forged = scene
        .net
        .test_committee()
        .certify(ConfirmedBlock(value), Round::MultiLeader(0));
    assert_ne!(forged.hash(), real.hash());
    let mut batch = Batch::new();
    batch.push(Write::Certificate(Arc::new(forged)));
    copy.storage().write_batch(batch).await.unwrap();

    let violated = verdicts_on(&scene, &committee_with(&scene, &copy)).await;
    assert_eq!(violated[0].0, Invariant::NoFork, "{violated:?}");
    assert!(
        matches!(&violated[0].1[..], [Violation::Fork { height: 1, holders, .. }] if holders.len() == 4),
        "{violated:?}"
    );
    // The acknowledged block is not the one the copy holds.
    assert_eq!(violated[1].0, Invariant::AcknowledgedCommitted);
    assert!(matches!(
        &violated[1].1[..],
        [Violation::AcknowledgedReplaced { height: 1, .. }]
    ));
}

#[tokio::test(start_paused = true)]
async fn an_acknowledged_transfer_deleted_is_named() {
    let scene = scene().await;
    // Validator 0's store as it was before the second transfer: the acknowledged block at
    // height 1 is gone from it.
    let violated = verdicts_on(&scene, &committee_with(&scene, &scene.before_second)).await;
    assert_eq!(violated.len(), 1, "{violated:?}");
    assert_eq!(violated[0].0, Invariant::AcknowledgedCommitted);
    assert_eq!(
        violated[0].1,
        vec![Violation::AcknowledgedMissing {
            validator: "validator-0".into(),
            client: 1,
            chain: scene.net.chains[1].0.to_string()[..8].to_owned(),
            height: 1,
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn minted_tokens_written_into_a_copy_of_a_store_are_named() {
    let scene = scene().await;
    let copy = copy_of_validator_0(&scene.net).await;
    // Chain 2 consumes 1,000 that the admin chain never sent (it has no block at all), in a
    // block certified by the committee's keys, its state executed by the pure rules.
    let (chain, origin) = (scene.net.chains[2], scene.net.chains[0]);
    let mut state = copy.chain_state(chain).await.unwrap().as_ref().clone();
    let messages = vec![Message::Credit { amount: 1_000 }];
    state.receive_bundle(origin, BlockHeight(0), messages.clone());
    let block = quorum_core::Block {
        chain_id: chain,
        epoch: state.epoch(),
        height: state.next_height(),
        timestamp: quorum_core::Timestamp(state.timestamp().0 + 1_000),
        previous_block_hash: state.tip_hash(),
        authenticated_owner: scene.net.owners[2].public(),
        incoming_bundles: vec![quorum_core::IncomingBundle {
            origin,
            height: BlockHeight(0),
            messages,
        }],
        operations: Vec::new(),
    };
    let execution = execute_block(&state, &block, &ExecutionInputs::default()).unwrap();
    let certificate = scene.net.test_committee().certify(
        ConfirmedBlock(BlockValue {
            block,
            outcome: execution.outcome,
        }),
        Round::MultiLeader(0),
    );
    let mut minted = execution.state;
    let at = minted.timestamp();
    minted.seal(certificate.hash(), at);
    assert_eq!(minted.balance(), state.balance() + 1_000);
    let mut batch = Batch::new();
    batch.push(Write::Certificate(Arc::new(certificate)));
    batch.push(Write::ChainState(Arc::new(minted)));
    copy.storage().write_batch(batch).await.unwrap();

    let violated = verdicts_on(&scene, &committee_with(&scene, &copy)).await;
    assert_eq!(violated.len(), 1, "{violated:?}");
    assert_eq!(violated[0].0, Invariant::SupplyConserved);
    let violations = &violated[0].1;
    assert!(violations.iter().any(|v| matches!(
        v,
        Violation::ConsumedNeverSent { height: 0, amount: 1_000, validator, .. } if validator == "validator-0"
    )));
    assert!(violations.iter().any(|v| matches!(
        v,
        Violation::SupplyChanged { expected, found, .. } if i128::from(*expected) + 1_000 == *found
    )));
}
