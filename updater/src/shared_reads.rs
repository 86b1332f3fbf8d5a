//! [`SharedReads`]: identical reads in flight to one validator share one request, and the
//! answers that never change are kept, bounded in bytes (DESIGN §5.8).
//!
//! A process with many chain clients (a wallet syncing many chains, a server of many users)
//! often asks one validator the same thing at once: the same certificate named by several
//! received logs, the same chain's information for several syncs. The first request goes out;
//! the others wait for its answer. Confirmed certificates (by hash, or by chain and height)
//! and blobs (by id) never change once they exist, so the answers are kept, the oldest dropped
//! first past the byte budget. Chain information changes with every block and round: it is
//! shared only while the request is in flight, never kept beyond it. Errors are never kept.
//!
//! What is kept is what this validator said, not what is true: callers verify every
//! certificate and blob as before (a validator that lied is asked no more by the caller).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt, Shared};

use quorum_core::{
    encoded_len, BatchOutcome, Blob, BlobId, BlockHeight, BlockProposal, ChainId, ChainInfoQuery,
    ChainInfoResponse, ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, LiteCertificate,
    NodeError, Subscription, SubscriptionChange, SubscriptionId, TimeoutCertificate,
    ValidatedBlockCertificate, ValidatorNode,
};

/// A read that can be shared while in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ReadKey {
    Certificate(CryptoHash),
    Heights(ChainId, Vec<BlockHeight>),
    Blob(BlobId),
    ChainInfo(ChainInfoQuery),
}

/// An answer that can be kept: it never changes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum KeptKey {
    Certificate(CryptoHash),
    AtHeight(ChainId, BlockHeight),
    Blob(BlobId),
}

#[derive(Clone, Debug)]
enum Answer {
    Certificate(Box<ConfirmedBlockCertificate>),
    Certificates(Vec<ConfirmedBlockCertificate>),
    Blob(Blob),
    ChainInfo(ChainInfoResponse),
}

type InFlight = Shared<BoxFuture<'static, Result<Answer, NodeError>>>;

#[derive(Default)]
struct State {
    /// Each read in flight, with how many callers wait for it.
    in_flight: HashMap<ReadKey, (InFlight, usize)>,
    kept: HashMap<KeptKey, (Answer, usize)>,
    /// Kept keys, oldest first.
    order: VecDeque<KeptKey>,
    kept_bytes: usize,
}

impl State {
    fn keep(&mut self, key: KeptKey, answer: Answer, bytes: usize, budget: usize) {
        if bytes > budget || self.kept.contains_key(&key) {
            return;
        }
        while self.kept_bytes.saturating_add(bytes) > budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, size)) = self.kept.remove(&oldest) {
                self.kept_bytes = self.kept_bytes.saturating_sub(size);
            }
        }
        self.kept_bytes = self.kept_bytes.saturating_add(bytes);
        self.order.push_back(key.clone());
        self.kept.insert(key, (answer, bytes));
    }

    fn kept(&self, key: &KeptKey) -> Option<Answer> {
        self.kept.get(key).map(|(answer, _)| answer.clone())
    }
}

/// A validator reached through `inner`, its identical reads in flight shared and its
/// unchanging answers kept, at most `max_kept_bytes` of them (see the module's
/// documentation). Everything else goes straight to `inner`.
pub(crate) struct SharedReads {
    inner: Arc<dyn ValidatorNode>,
    max_kept_bytes: usize,
    state: Mutex<State>,
}

impl SharedReads {
    /// Shares the reads of `inner`, keeping at most `max_kept_bytes` of answers (their BCS
    /// size; zero keeps nothing and only shares reads in flight).
    pub(crate) fn new(inner: Arc<dyn ValidatorNode>, max_kept_bytes: usize) -> Self {
        SharedReads {
            inner,
            max_kept_bytes,
            state: Mutex::new(State::default()),
        }
    }

    /// Bytes of answers kept now.
    #[cfg(test)]
    pub(crate) fn kept_bytes(&self) -> usize {
        self.state().kept_bytes
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while the lock is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read` once for all the identical reads in flight. A read is shared only while
    /// someone waits for it: once it has answered, or once every caller gave up on it (a
    /// request to a hung validator), the next identical read is a new request.
    async fn shared(
        &self,
        key: ReadKey,
        read: impl FnOnce(Arc<dyn ValidatorNode>) -> BoxFuture<'static, Result<Answer, NodeError>>,
    ) -> Result<Answer, NodeError> {
        let future = {
            let mut state = self.state();
            match state.in_flight.get_mut(&key) {
                Some((future, waiters)) => {
                    *waiters += 1;
                    future.clone()
                }
                None => {
                    let future = read(self.inner.clone()).shared();
                    state.in_flight.insert(key.clone(), (future.clone(), 1));
                    future
                }
            }
        };
        let waiter = Waiter {
            reads: self,
            key,
            future: future.clone(),
            answered: false,
        };
        let answer = future.await;
        let mut waiter = waiter;
        waiter.answered = true;
        answer
    }

    fn keep_certificate(&self, certificate: &ConfirmedBlockCertificate) {
        let bytes = encoded_len(certificate).unwrap_or(usize::MAX);
        let block = certificate.value().block();
        let mut state = self.state();
        let answer = Answer::Certificate(Box::new(certificate.clone()));
        state.keep(
            KeptKey::Certificate(certificate.hash()),
            answer.clone(),
            bytes,
            self.max_kept_bytes,
        );
        state.keep(
            KeptKey::AtHeight(block.chain_id, block.height),
            answer,
            bytes,
            self.max_kept_bytes,
        );
    }
}

/// One caller waiting for a shared read; see [`SharedReads::shared`].
struct Waiter<'a> {
    reads: &'a SharedReads,
    key: ReadKey,
    future: InFlight,
    answered: bool,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut state = self.reads.state();
        let Some((current, waiters)) = state.in_flight.get_mut(&self.key) else {
            return;
        };
        if !current.ptr_eq(&self.future) {
            return;
        }
        *waiters = waiters.saturating_sub(1);
        // Answered: later reads ask again. Abandoned by all: nobody joins a stale request.
        if self.answered || *waiters == 0 {
            state.in_flight.remove(&self.key);
        }
    }
}

fn unexpected() -> NodeError {
    NodeError::MalformedResponse
}

#[async_trait]
impl ValidatorNode for SharedReads {
    async fn handle_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.inner.handle_block_proposal(proposal).await
    }

    async fn handle_lite_certificate(
        &self,
        certificate: LiteCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.inner
            .handle_lite_certificate(certificate, delivery)
            .await
    }

    async fn handle_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.inner
            .handle_confirmed_certificate(certificate, delivery)
            .await
    }

    async fn handle_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.inner.handle_validated_certificate(certificate).await
    }

    async fn handle_timeout_certificate(
        &self,
        certificate: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.inner.handle_timeout_certificate(certificate).await
    }

    async fn handle_confirmed_certificates(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        delivery: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError> {
        self.inner
            .handle_confirmed_certificates(certificates, delivery)
            .await
    }

    async fn handle_chain_info_query(
        &self,
        query: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let key = ReadKey::ChainInfo(query.clone());
        let answer = self
            .shared(key, move |node| {
                async move {
                    node.handle_chain_info_query(query)
                        .await
                        .map(Answer::ChainInfo)
                }
                .boxed()
            })
            .await?;
        match answer {
            Answer::ChainInfo(response) => Ok(response),
            _ => Err(unexpected()),
        }
    }

    async fn upload_blob(&self, blob: Blob) -> Result<BlobId, NodeError> {
        self.inner.upload_blob(blob).await
    }

    async fn handle_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.inner.handle_pending_blob(chain_id, blob).await
    }

    async fn download_blob(&self, blob_id: BlobId) -> Result<Blob, NodeError> {
        if let Some(Answer::Blob(blob)) = self.state().kept(&KeptKey::Blob(blob_id)) {
            return Ok(blob);
        }
        let answer = self
            .shared(ReadKey::Blob(blob_id), move |node| {
                async move { node.download_blob(blob_id).await.map(Answer::Blob) }.boxed()
            })
            .await?;
        let Answer::Blob(blob) = answer else {
            return Err(unexpected());
        };
        let bytes = blob.content.len();
        self.state().keep(
            KeptKey::Blob(blob_id),
            Answer::Blob(blob.clone()),
            bytes,
            self.max_kept_bytes,
        );
        Ok(blob)
    }

    async fn missing_blob_ids(&self, blob_ids: Vec<BlobId>) -> Result<Vec<BlobId>, NodeError> {
        self.inner.missing_blob_ids(blob_ids).await
    }

    async fn download_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        if let Some(Answer::Certificate(certificate)) =
            self.state().kept(&KeptKey::Certificate(hash))
        {
            return Ok(*certificate);
        }
        let answer = self
            .shared(ReadKey::Certificate(hash), move |node| {
                async move {
                    node.download_certificate(hash)
                        .await
                        .map(|certificate| Answer::Certificate(Box::new(certificate)))
                }
                .boxed()
            })
            .await?;
        let Answer::Certificate(certificate) = answer else {
            return Err(unexpected());
        };
        self.keep_certificate(&certificate);
        Ok(*certificate)
    }

    async fn download_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        let kept: Option<Vec<ConfirmedBlockCertificate>> = {
            let state = self.state();
            heights
                .iter()
                .map(
                    |height| match state.kept(&KeptKey::AtHeight(chain_id, *height)) {
                        Some(Answer::Certificate(certificate)) => Some(*certificate),
                        _ => None,
                    },
                )
                .collect()
        };
        if let Some(certificates) = kept.filter(|c| !c.is_empty()) {
            return Ok(certificates);
        }
        let key = ReadKey::Heights(chain_id, heights.clone());
        let answer = self
            .shared(key, move |node| {
                async move {
                    node.download_certificates_by_heights(chain_id, heights)
                        .await
                        .map(Answer::Certificates)
                }
                .boxed()
            })
            .await?;
        let Answer::Certificates(certificates) = answer else {
            return Err(unexpected());
        };
        for certificate in &certificates {
            self.keep_certificate(certificate);
        }
        Ok(certificates)
    }

    async fn subscribe(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        self.inner.subscribe(chains).await
    }

    async fn change_subscription(
        &self,
        id: SubscriptionId,
        change: SubscriptionChange,
    ) -> Result<u64, NodeError> {
        self.inner.change_subscription(id, change).await
    }

    async fn unsubscribe(&self, id: SubscriptionId) -> Result<(), NodeError> {
        self.inner.unsubscribe(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use quorum_core::protocol::RequestKind;
    use quorum_testkit::TokioTestNet;
    use quorum_transport_mem::{Fault, MemoryNode};

    #[tokio::test(start_paused = true)]
    async fn identical_reads_in_flight_share_one_request_and_certificates_are_kept() {
        let net = TokioTestNet::new(4, 2, false).await;
        let certificate = net.client(1).transfer(net.chains[0], 1).await.unwrap();
        let chain = net.chains[1];
        let node = MemoryNode::new(
            net.workers[0].clone() as Arc<dyn ValidatorNode>,
            Some(net.secrets[0].clone()),
            9,
        );
        node.set_fault(Fault::Slow(std::time::Duration::from_millis(10)));
        let handle = node.handle();
        let count = |kind| handle.stats().calls(kind);
        let shared = SharedReads::new(Arc::new(node), 1 << 20);
        let query = ChainInfoQuery::new(chain);
        let heights = vec![BlockHeight(0)];
        let (a, b, c, d) = tokio::join!(
            shared.handle_chain_info_query(query.clone()),
            shared.handle_chain_info_query(query.clone()),
            shared.download_certificates_by_heights(chain, heights.clone()),
            shared.download_certificates_by_heights(chain, heights.clone()),
        );
        assert_eq!(a.unwrap(), b.unwrap());
        assert_eq!(c.unwrap(), d.unwrap());
        assert_eq!(count(RequestKind::ChainInfoQuery), 1);
        assert_eq!(count(RequestKind::DownloadCertificatesByHeights), 1);
        // Kept: asked again, by height or by hash, nothing goes out.
        let again = shared
            .download_certificates_by_heights(chain, heights)
            .await;
        assert_eq!(again.unwrap(), vec![certificate.clone()]);
        let by_hash = shared.download_certificate(certificate.hash()).await;
        assert_eq!(by_hash.unwrap(), certificate);
        assert_eq!(count(RequestKind::DownloadCertificatesByHeights), 1);
        assert_eq!(count(RequestKind::DownloadCertificate), 0);
        // Chain information is never kept: a later query goes out.
        shared.handle_chain_info_query(query).await.unwrap();
        assert_eq!(count(RequestKind::ChainInfoQuery), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_abandoned_by_every_caller_is_not_joined_later() {
        let net = TokioTestNet::new(4, 2, false).await;
        let node = MemoryNode::new(
            net.workers[0].clone() as Arc<dyn ValidatorNode>,
            Some(net.secrets[0].clone()),
            9,
        );
        node.set_fault(Fault::Hang);
        let handle = node.handle();
        let shared = SharedReads::new(Arc::new(node), 1 << 20);
        let query = ChainInfoQuery::new(net.chains[1]);
        let gave_up = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            shared.handle_chain_info_query(query.clone()),
        )
        .await;
        assert!(gave_up.is_err(), "the hung validator does not answer");
        handle.set_fault(Fault::Honest);
        let answer = shared.handle_chain_info_query(query).await.unwrap();
        assert_eq!(answer.info.chain_id, net.chains[1]);
        assert!(shared.state().in_flight.is_empty());
    }

    #[tokio::test]
    async fn kept_answers_stay_within_their_byte_budget_and_errors_are_not_kept() {
        let net = TokioTestNet::new(4, 2, false).await;
        let client = net.client(1);
        let mut certificates = Vec::new();
        for _ in 0..4 {
            certificates.push(client.transfer(net.chains[0], 1).await.unwrap());
        }
        let one = encoded_len(&certificates[0]).unwrap();
        let budget = one * 5 / 2;
        let shared = SharedReads::new(net.workers[0].clone() as Arc<dyn ValidatorNode>, budget);
        for certificate in &certificates {
            shared
                .download_certificate(certificate.hash())
                .await
                .unwrap();
            assert!(shared.kept_bytes() <= budget);
        }
        assert!(shared.kept_bytes() > 0);
        let missing = shared.download_certificate(CryptoHash([7; 32])).await;
        assert_eq!(missing, Err(NodeError::NotFound));
        assert!(shared.state().kept.keys().all(|key| !matches!(
            key,
            KeptKey::Certificate(hash) if *hash == CryptoHash([7; 32])
        )));
        // The oldest were dropped for the newest: the last one is kept, the first is not.
        let state = shared.state();
        assert!(state
            .kept
            .contains_key(&KeptKey::Certificate(certificates[3].hash())));
        assert!(!state
            .kept
            .contains_key(&KeptKey::Certificate(certificates[0].hash())));
    }
}
