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
use quorum_node::testnet::{TestNet, START};
use quorum_node::{Clock, MemoryStorage, Worker, WorkerConfig};

/// Memory storage whose commits take `delay` (an fsync), counted.
struct SlowStorage {
    inner: MemoryStorage,
    delay: Duration,
    commits: Arc<AtomicUsize>,
}

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
        self.commits.fetch_add(1, Ordering::SeqCst);
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
            (answer.info.next_block_height, durable.next_height)
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
