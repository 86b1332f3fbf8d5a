//! Group commit (DESIGN §4.5.1): blocks of different chains that reach a Worker at the same
//! moment share storage transactions, and each is answered only once it is durable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use quorum_core::{
    Batch, Blob, BlobId, BlobState, BlockHeight, ChainId, ChainState, Committee,
    ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, Epoch, EventId, Round, Storage,
    StorageError, ValidatorNode,
};
use quorum_node::{Clock, MemoryStorage, Worker, WorkerConfig};
use quorum_testkit::{TestNet, START};

/// Memory storage whose commits take `delay` (an fsync), counted; once `fail_from` commits
/// have been made, every further commit fails.
struct SlowStorage {
    inner: MemoryStorage,
    delay: Duration,
    commits: Arc<AtomicUsize>,
    fail_from: usize,
}

/// The failure of a [`SlowStorage`] commit.
#[derive(Debug, thiserror::Error)]
#[error("the disk is gone")]
struct DiskGone;

#[async_trait]
impl Storage for SlowStorage {
    async fn read_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<Option<ConfirmedBlockCertificate>, StorageError> {
        self.inner.read_certificate(hash).await
    }
    async fn read_certificate_hashes(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<CryptoHash>>, StorageError> {
        self.inner.read_certificate_hashes(chain_id, heights).await
    }
    async fn read_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<ConfirmedBlockCertificate>>, StorageError> {
        self.inner
            .read_certificates_by_heights(chain_id, heights)
            .await
    }
    async fn read_blob(&self, id: BlobId) -> Result<Option<Blob>, StorageError> {
        self.inner.read_blob(id).await
    }
    async fn read_received_log(
        &self,
        chain_id: ChainId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<quorum_core::ReceivedEntry>, StorageError> {
        self.inner.read_received_log(chain_id, from, limit).await
    }
    async fn read_outbox(
        &self,
        lane: u32,
        limit: usize,
    ) -> Result<Vec<quorum_core::OutboxEntry>, StorageError> {
        self.inner.read_outbox(lane, limit).await
    }
    async fn missing_blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobId>, StorageError> {
        self.inner.missing_blobs(ids).await
    }
    async fn read_blob_state(&self, id: BlobId) -> Result<Option<BlobState>, StorageError> {
        self.inner.read_blob_state(id).await
    }
    async fn read_event(&self, id: &EventId) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.read_event(id).await
    }
    async fn read_chain_state(
        &self,
        chain_id: ChainId,
    ) -> Result<Option<ChainState>, StorageError> {
        self.inner.read_chain_state(chain_id).await
    }
    async fn read_committee(&self, epoch: Epoch) -> Result<Option<Committee>, StorageError> {
        self.inner.read_committee(epoch).await
    }
    async fn write_batch(&self, batch: Batch) -> Result<(), StorageError> {
        tokio::time::sleep(self.delay).await;
        if self.commits.fetch_add(1, Ordering::SeqCst) >= self.fail_from {
            return Err(StorageError {
                kind: quorum_core::StorageErrorKind::Write,
                source: Box::new(DiskGone),
            });
        }
        self.inner.write_batch(batch).await
    }
}

#[tokio::test(start_paused = true)]
async fn blocks_of_many_chains_share_commits_and_are_answered_once_durable() {
    const CHAINS: usize = 12;
    let net = TestNet::new(4, CHAINS as u32 + 1, false).await;
    // One block on each chain, certified by the committee.
    let mut certificates = Vec::new();
    for c in 1..=CHAINS {
        let block = net.block(c, vec![]).await;
        certificates.push(net.commit(c, block, Round::MultiLeader(0)).await);
    }

    // A fifth node of the same genesis, over storage whose every commit takes 10 ms.
    let base = MemoryStorage::new();
    let admin = net.genesis.initialize(&base, START).await.unwrap();
    let commits = Arc::new(AtomicUsize::new(0));
    let slow = SlowStorage {
        inner: base.clone(),
        delay: Duration::from_millis(10),
        commits: commits.clone(),
        fail_from: usize::MAX,
    };
    let clock: Arc<dyn Clock> = Arc::new(net.clock.clone());
    let worker = Worker::new(slow, None, clock, WorkerConfig::new(admin));

    // All at once: each answer must find its block in the storage itself (not only queued).
    let answers = certificates.iter().map(|certificate| {
        let worker = &worker;
        let base = base.clone();
        async move {
            let chain = certificate.value().block().chain_id;
            let answer = worker
                .handle_confirmed_certificate(certificate.clone(), CrossChainDelivery::Blocking)
                .await
                .unwrap();
            let durable = base.read_chain_state(chain).await.unwrap().unwrap();
            (answer.info.next_block_height, durable.next_height())
        }
    });
    let heights = futures::future::join_all(answers).await;
    for (answered, durable) in heights {
        assert_eq!(answered, BlockHeight(1));
        assert_eq!(
            durable,
            BlockHeight(1),
            "answered before its block was durable"
        );
    }
    // The first block commits alone; the others, queued meanwhile, share the next commits.
    let commits = commits.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&commits),
        "{commits} commits for {CHAINS} blocks"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_fails_its_requests_and_every_later_write() {
    let net = TestNet::new(4, 3, false).await;
    let mut certificates = Vec::new();
    for c in 1..=2 {
        let block = net.block(c, vec![]).await;
        certificates.push(net.commit(c, block, Round::MultiLeader(0)).await);
    }
    let base = MemoryStorage::new();
    let admin = net.genesis.initialize(&base, START).await.unwrap();
    let slow = SlowStorage {
        inner: base.clone(),
        delay: Duration::from_millis(10),
        commits: Arc::new(AtomicUsize::new(0)),
        fail_from: 0,
    };
    let clock: Arc<dyn Clock> = Arc::new(net.clock.clone());
    let worker = Worker::new(slow, None, clock, WorkerConfig::new(admin));
    let first = worker
        .handle_confirmed_certificate(certificates[0].clone(), CrossChainDelivery::Blocking)
        .await;
    assert!(
        matches!(first, Err(quorum_core::NodeError::Storage(_))),
        "{first:?}"
    );
    // Nothing of it is read back as if it had landed, and later writes are refused.
    let chain = certificates[0].value().block().chain_id;
    assert_eq!(
        worker.chain_state(chain).await.unwrap().next_height(),
        BlockHeight(0)
    );
    let second = worker
        .handle_confirmed_certificate(certificates[1].clone(), CrossChainDelivery::Blocking)
        .await;
    assert!(second.is_err(), "{second:?}");
    assert_eq!(
        base.read_chain_state(chain)
            .await
            .unwrap()
            .unwrap()
            .next_height(),
        BlockHeight(0)
    );
}

mod interleavings {
    use super::*;
    use proptest::prelude::*;
    use quorum_core::{Message, Operation};
    use quorum_node::ManualClock;
    use quorum_testkit::{TestChain, TestCommittee};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const CHAINS: usize = 5;

    /// A node of the fixtures' genesis over memory storage, on a clock that never moves.
    async fn node(
        committee: &TestCommittee,
        chains: &[TestChain],
    ) -> (Worker<MemoryStorage>, MemoryStorage) {
        let storage = MemoryStorage::new();
        let genesis = quorum_node::Genesis {
            committee: committee.committee.clone(),
            chains: chains
                .iter()
                .map(|chain| chain.description.clone())
                .collect(),
        };
        let admin = genesis
            .initialize(&storage, quorum_core::Timestamp(0))
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(quorum_core::Timestamp(0)));
        let worker = Worker::new(storage.clone(), None, clock, WorkerConfig::new(admin));
        (worker, storage)
    }

    /// Every chain's state as stored.
    async fn states(storage: &MemoryStorage, chains: &[TestChain]) -> Vec<ChainState> {
        let mut states = Vec::new();
        for chain in chains {
            states.push(storage.read_chain_state(chain.id()).await.unwrap().unwrap());
        }
        states
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        /// Blocks of five chains paying each other, applied concurrently in a random
        /// interleaving (each chain's blocks in order, the chains racing, commits grouped):
        /// the stored states equal those of applying the same blocks one after the other, and
        /// every bundle sits in its recipient's inbox exactly once.
        #[test]
        fn concurrent_blocks_deliver_every_bundle_exactly_once(
            blocks in proptest::collection::vec(
                proptest::collection::vec((0..CHAINS - 1, 1u64..100), 1..4),
                1..30,
            ),
            seed in any::<u64>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let committee = TestCommittee::new(4, 7);
                let mut chains: Vec<TestChain> =
                    (0..CHAINS).map(|i| TestChain::new(i as u32, 100 + i as u64)).collect();
                let ids: Vec<ChainId> = chains.iter().map(TestChain::id).collect();
                // The blocks, round-robin over the chains: each pays the recipients drawn.
                let mut per_chain: Vec<Vec<ConfirmedBlockCertificate>> = vec![Vec::new(); CHAINS];
                let mut sent = 0usize;
                for (index, transfers) in blocks.iter().enumerate() {
                    let from = index % CHAINS;
                    let operations = transfers
                        .iter()
                        // Never the paying chain itself.
                        .map(|(to, amount)| Operation::Transfer { recipient: ids[(from + 1 + to) % CHAINS], amount: *amount })
                        .collect();
                    sent += transfers.len();
                    per_chain[from].push(chains[from].commit_next(&committee, operations));
                }

                // Sequentially, on one node.
                let (sequential, sequential_storage) = node(&committee, &chains).await;
                for certificates in &per_chain {
                    for certificate in certificates {
                        sequential
                            .handle_confirmed_certificate(certificate.clone(), CrossChainDelivery::Blocking)
                            .await
                            .unwrap();
                    }
                }

                // Concurrently, on another, the chains racing in a seeded order.
                let (concurrent, concurrent_storage) = node(&committee, &chains).await;
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let lanes = per_chain.iter().map(|certificates| {
                    let yields: Vec<usize> = certificates.iter().map(|_| rng.gen_range(0..4)).collect();
                    let concurrent = &concurrent;
                    async move {
                        for (certificate, pause) in certificates.iter().zip(yields) {
                            for _ in 0..pause {
                                tokio::task::yield_now().await;
                            }
                            concurrent
                                .handle_confirmed_certificate(certificate.clone(), CrossChainDelivery::Blocking)
                                .await
                                .unwrap();
                        }
                    }
                });
                futures::future::join_all(lanes).await;

                let expected = states(&sequential_storage, &chains).await;
                let found = states(&concurrent_storage, &chains).await;
                prop_assert_eq!(&found, &expected);
                // Every transfer is one credit in one inbox, once.
                let credits: usize = found
                    .iter()
                    .flat_map(|state| state.inboxes().values())
                    .flat_map(|inbox| inbox.bundles().values())
                    .map(|messages| messages.iter().filter(|m| matches!(m, Message::Credit { .. })).count())
                    .sum();
                prop_assert_eq!(credits, sent);
                Ok(())
            })?;
        }
    }
}
