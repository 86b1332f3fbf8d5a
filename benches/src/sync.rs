//! A client whose local node holds a chain of [`LAG`] blocks, and validators that lag by all of
//! them (committee of 4).

use std::sync::Arc;

use quorum_core::{
    BlockHeight, ChainId, ConfirmedBlockCertificate, CrossChainDelivery, ValidatorNode,
    ValidatorSecretKey,
};
use quorum_node::{Clock, Genesis, MemoryStorage, SystemClock, Worker, WorkerConfig};
use quorum_testkit::{TestChain, TestCommittee};
use quorum_updater::{ChainClient, Options, RemoteNode, ValidatorSet, ValidatorUpdater};

use crate::fixtures::committee;
use quorum_testkit::must;

/// How many blocks the validator lags by.
pub const LAG: usize = 1_000;
/// Validators in the committee.
pub const COMMITTEE_SIZE: usize = 4;
/// Certificates per `handle_confirmed_certificates` call when the floor hands them over in
/// batches: the updater's default batch size ([`Options::certificate_upload_batch_size`]).
pub fn direct_batch() -> usize {
    Options::default().certificate_upload_batch_size
}

/// The chain and committee every sync bench uses, and the client's local node.
pub struct SyncFixture {
    /// The committee (it certified every block).
    pub committee: TestCommittee,
    /// Genesis: the committee and two chains (the admin chain, then the synced chain).
    pub genesis: Genesis,
    /// The synced chain.
    pub chain_id: ChainId,
    /// Its [`LAG`] certificates, in height order.
    pub certificates: Vec<ConfirmedBlockCertificate>,
    /// The client's local node (no key), holding all of them.
    pub local: Arc<Worker<MemoryStorage>>,
}

impl SyncFixture {
    /// Builds the chain and the client's local node. Deterministic.
    pub async fn new() -> Self {
        let committee = committee(COMMITTEE_SIZE);
        let admin = TestChain::new(0, 10);
        let mut chain = TestChain::new(1, 11);
        let genesis = Genesis {
            committee: committee.committee.clone(),
            chains: vec![admin.description.clone(), chain.description.clone()],
        };
        let certificates = chain.commit_blocks(&committee, LAG);
        let local = new_worker(&genesis, None).await;
        for batch in certificates.chunks(direct_batch()) {
            let outcome = must(
                local
                    .handle_confirmed_certificates(batch.to_vec(), CrossChainDelivery::NonBlocking)
                    .await,
                "loading the local node",
            );
            assert!(
                outcome.error.is_none(),
                "loading the local node: {outcome:?}"
            );
        }
        let fixture = SyncFixture {
            committee,
            genesis,
            chain_id: chain.id(),
            certificates,
            local,
        };
        fixture.assert_synced(&fixture.local).await;
        fixture
    }

    /// A fresh validator (the committee's first key) at genesis: it lags by [`LAG`] blocks.
    pub async fn lagging_validator(&self) -> Arc<Worker<MemoryStorage>> {
        new_worker(&self.genesis, Some(self.validator_key())).await
    }

    /// The lagging validator's key.
    pub fn validator_key(&self) -> ValidatorSecretKey {
        self.committee.keys[0].clone()
    }

    /// An updater that brings `remote` up to date from the local node, with the default options
    /// (batches of [`Options::certificate_upload_batch_size`]).
    pub fn updater(&self, remote: Arc<dyn ValidatorNode>) -> ValidatorUpdater<MemoryStorage> {
        let remote = RemoteNode::new(self.validator_key().public(), remote);
        // A client of the synced chain, reading nothing from validators: only its updater.
        let client = ChainClient::new(
            self.chain_id,
            None,
            self.local.clone(),
            ValidatorSet::new(),
            Options::default(),
        );
        client.updater(remote)
    }

    /// The height the chain reaches once synced.
    pub fn target(&self) -> BlockHeight {
        BlockHeight(LAG as u64)
    }

    /// Panics unless `worker` holds the whole chain, with the local node's tip.
    pub async fn assert_synced(&self, worker: &Worker<MemoryStorage>) {
        let state = must(worker.chain_state(self.chain_id).await, "reading the chain");
        assert_eq!(
            state.next_height(),
            self.target(),
            "the validator is not synced"
        );
        let last = self
            .certificates
            .last()
            .map(ConfirmedBlockCertificate::hash);
        assert_eq!(state.tip_hash(), last, "the validator's tip differs");
    }
}

/// A Worker over fresh memory storage at genesis, on the system clock.
async fn new_worker(
    genesis: &Genesis,
    key: Option<ValidatorSecretKey>,
) -> Arc<Worker<MemoryStorage>> {
    let storage = MemoryStorage::new();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let admin = must(
        genesis.initialize(&storage, clock.now()).await,
        "initializing the genesis",
    );
    Arc::new(Worker::new(storage, key, clock, WorkerConfig::new(admin)))
}
