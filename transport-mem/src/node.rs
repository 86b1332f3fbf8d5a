//! [`MemoryNode`]: a [`ValidatorNode`] in process, with optional BCS round trips and fault
//! injection.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use quorum_core::{
    BatchOutcome, Blob, BlobId, BlobType, BlockHeight, BlockProposal, ChainId, ChainInfoQuery,
    ChainInfoResponse, ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, LiteCertificate,
    NodeError, TimeoutCertificate, ValidatedBlockCertificate, ValidatorNode, ValidatorPublicKey,
    ValidatorSecretKey, VoteKind,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::round_trip;
use crate::fault::Fault;
use crate::handle::{Admission, FaultHandle};
use crate::stats::{CallStats, Method};
use crate::tamper::{strip_votes, tamper_response, Signers};

/// Mixed into the seed to derive [`Fault::WrongKey`]'s default key, so that drawing it does not
/// consume the fault generator.
const WRONG_KEY_SEED_MIX: u64 = 0x5752_4f4e_475f_4b45;

/// A [`ValidatorNode`] that passes every request in process to another one (normally a
/// Worker), optionally through a BCS round trip, and misbehaves as its [`Fault`] says.
///
/// * Built with [`MemoryNode::new`], then the builder methods [`MemoryNode::with_bcs`],
///   [`MemoryNode::with_fault`] and [`MemoryNode::with_wrong_key`].
/// * Switch the fault at run time with [`MemoryNode::set_fault`], or from anywhere with a
///   [`FaultHandle`] ([`MemoryNode::handle`]); read what the node was asked with
///   [`MemoryNode::stats`].
/// * Deterministic: every random choice ([`Fault::Flaky`], the blob ids of
///   [`Fault::FalseBlobsNotFound`], the default key of [`Fault::WrongKey`]) comes from a ChaCha
///   generator seeded at construction, so the same seed and the same sequence of calls give the
///   same behaviour. Delays use `tokio::time`, so tests with paused time are deterministic too.
///
/// A call goes through these steps:
/// 1. it is counted;
/// 2. the transport faults act ([`Fault::Offline`], [`Fault::Flaky`], [`Fault::CrashAfter`]
///    fail it, [`Fault::Hang`] never answers, [`Fault::Slow`] waits);
/// 3. with BCS on, the request is encoded and decoded;
/// 4. the wrapped node handles it, unless [`Fault::FalseBlobsNotFound`] or
///    [`Fault::DontProcessValidated`] answers instead;
/// 5. the vote faults alter the response;
/// 6. with BCS on, the response (or error) is encoded and decoded.
///
/// Clones share the wrapped node and the fault state: they are the same node.
#[derive(Clone)]
pub struct MemoryNode {
    inner: Arc<dyn ValidatorNode>,
    key: Option<ValidatorSecretKey>,
    wrong_key: ValidatorSecretKey,
    bcs: bool,
    handle: FaultHandle,
}

impl fmt::Debug for MemoryNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryNode")
            .field("validator", &self.public_key())
            .field("bcs", &self.bcs)
            .field("fault", &self.handle.fault())
            .finish_non_exhaustive()
    }
}

impl MemoryNode {
    /// A node that passes requests to `inner`, honest for now, without BCS round trips.
    ///
    /// `key` is the validator's secret key (the one `inner` signs with): the faults that sign
    /// in the validator's name ([`Fault::Equivocate`], and the faults that change a response and
    /// so sign it again) need it. Without it, an altered response loses its signature and
    /// `Equivocate` removes votes instead of forging them.
    ///
    /// `seed` seeds the generator behind every random choice.
    pub fn new(inner: Arc<dyn ValidatorNode>, key: Option<ValidatorSecretKey>, seed: u64) -> Self {
        let wrong_key =
            ValidatorSecretKey::generate(&mut ChaCha8Rng::seed_from_u64(seed ^ WRONG_KEY_SEED_MIX));
        MemoryNode {
            inner,
            key,
            wrong_key,
            bcs: false,
            handle: FaultHandle::new(Fault::Honest, seed),
        }
    }

    /// Whether every request and response goes through a BCS encode→decode round trip (off by
    /// default). A value that does not survive it fails the call with
    /// `NodeError::Transport(TransportErrorKind::Codec)`.
    pub fn with_bcs(mut self, enabled: bool) -> Self {
        self.bcs = enabled;
        self
    }

    /// Starts with `fault` in force instead of [`Fault::Honest`].
    pub fn with_fault(self, fault: Fault) -> Self {
        self.handle.set_fault(fault);
        self
    }

    /// The key [`Fault::WrongKey`] signs with (by default one derived from the seed, outside
    /// any committee). Give another validator's key to make this node relay that validator's
    /// votes as its own.
    pub fn with_wrong_key(mut self, key: ValidatorSecretKey) -> Self {
        self.wrong_key = key;
        self
    }

    /// A handle on this node's fault and counts, to keep after the node is handed away.
    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
    }

    /// Puts `fault` in force for the calls that start from now on (see
    /// [`FaultHandle::set_fault`]).
    pub fn set_fault(&self, fault: Fault) {
        self.handle.set_fault(fault);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        self.handle.fault()
    }

    /// What the node was asked so far.
    pub fn stats(&self) -> CallStats {
        self.handle.stats()
    }

    /// The wrapped node.
    pub fn inner(&self) -> &Arc<dyn ValidatorNode> {
        &self.inner
    }

    /// The validator's public key, if the node was given its secret key.
    pub fn public_key(&self) -> Option<ValidatorPublicKey> {
        self.key.as_ref().map(ValidatorSecretKey::public)
    }

    /// The public key [`Fault::WrongKey`] signs as.
    pub fn wrong_public_key(&self) -> ValidatorPublicKey {
        self.wrong_key.public()
    }

    /// Whether BCS round trips are on.
    pub fn bcs(&self) -> bool {
        self.bcs
    }

    fn signers(&self) -> Signers<'_> {
        Signers {
            own: self.key.as_ref(),
            wrong: &self.wrong_key,
        }
    }

    /// Steps 1 and 2: counts the call and applies the transport faults; returns the fault the
    /// call is then served under.
    async fn admit(&self, method: Method) -> Result<Fault, NodeError> {
        match self.handle.admit(method) {
            Admission::Fail(kind) => Err(NodeError::Transport(kind)),
            Admission::Hang => std::future::pending().await,
            Admission::Serve { delay, fault } => {
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                Ok(fault)
            }
        }
    }

    /// Step 3: the request as the node receives it.
    fn request<T: Serialize + DeserializeOwned>(&self, request: T) -> Result<T, NodeError> {
        if self.bcs {
            round_trip(&request)
        } else {
            Ok(request)
        }
    }

    /// Step 6: the answer as the client receives it.
    fn answer<T: Serialize + DeserializeOwned>(
        &self,
        answer: Result<T, NodeError>,
    ) -> Result<T, NodeError> {
        if self.bcs {
            round_trip(&answer)?
        } else {
            answer
        }
    }

    /// Step 5 for a chain information response.
    fn tamper(
        &self,
        fault: &Fault,
        answer: Result<ChainInfoResponse, NodeError>,
    ) -> Result<ChainInfoResponse, NodeError> {
        answer.map(|response| tamper_response(fault, self.signers(), response))
    }

    /// A false claim for [`Fault::FalseBlobsNotFound`]: a blob id from the seeded generator
    /// that is not among `needed`.
    fn false_blobs_not_found(&self, needed: &[BlobId]) -> NodeError {
        let needed: BTreeSet<BlobId> = needed.iter().copied().collect();
        loop {
            let id = BlobId {
                hash: CryptoHash(self.handle.random_bytes()),
                blob_type: BlobType::Data,
            };
            if !needed.contains(&id) {
                tracing::debug!(?id, "fault injected: false BlobsNotFound");
                return NodeError::BlobsNotFound(vec![id]);
            }
        }
    }

    /// [`Fault::DontProcessValidated`]: the chain's current information, without votes.
    async fn ignore_validated(&self, chain_id: ChainId) -> Result<ChainInfoResponse, NodeError> {
        tracing::debug!(?chain_id, "fault injected: validated certificate ignored");
        let response = self
            .inner
            .handle_chain_info_query(ChainInfoQuery::new(chain_id))
            .await?;
        Ok(strip_votes(response, None, self.key.as_ref()))
    }
}

#[async_trait]
impl ValidatorNode for MemoryNode {
    async fn handle_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        let fault = self.admit(Method::HandleBlockProposal).await?;
        let proposal = self.request(proposal)?;
        let answer = if fault == Fault::FalseBlobsNotFound {
            let mut needed = proposal.block().required_blob_ids();
            if let Some(certificate) = &proposal.validated_block_certificate {
                needed.extend(certificate.value().block().required_blob_ids());
            }
            Err(self.false_blobs_not_found(&needed))
        } else {
            self.inner.handle_block_proposal(proposal).await
        };
        self.answer(self.tamper(&fault, answer))
    }

    async fn handle_lite_certificate(
        &self,
        certificate: LiteCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let fault = self.admit(Method::HandleLiteCertificate).await?;
        let (certificate, delivery) = self.request((certificate, delivery))?;
        let answer = match fault {
            // Without the value, no blob is known to be needed.
            Fault::FalseBlobsNotFound => Err(self.false_blobs_not_found(&[])),
            Fault::DontProcessValidated if certificate.kind == VoteKind::Validated => {
                self.ignore_validated(certificate.chain_id).await
            }
            _ => {
                self.inner
                    .handle_lite_certificate(certificate, delivery)
                    .await
            }
        };
        self.answer(self.tamper(&fault, answer))
    }

    async fn handle_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let fault = self.admit(Method::HandleConfirmedCertificate).await?;
        let (certificate, delivery) = self.request((certificate, delivery))?;
        let answer = if fault == Fault::FalseBlobsNotFound {
            Err(self.false_blobs_not_found(&certificate.value().block().required_blob_ids()))
        } else {
            self.inner
                .handle_confirmed_certificate(certificate, delivery)
                .await
        };
        self.answer(self.tamper(&fault, answer))
    }

    async fn handle_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        let fault = self.admit(Method::HandleValidatedCertificate).await?;
        let certificate = self.request(certificate)?;
        let answer = match fault {
            Fault::FalseBlobsNotFound => {
                Err(self.false_blobs_not_found(&certificate.value().block().required_blob_ids()))
            }
            Fault::DontProcessValidated => {
                self.ignore_validated(certificate.value().block().chain_id)
                    .await
            }
            _ => self.inner.handle_validated_certificate(certificate).await,
        };
        self.answer(self.tamper(&fault, answer))
    }

    async fn handle_timeout_certificate(
        &self,
        certificate: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        let fault = self.admit(Method::HandleTimeoutCertificate).await?;
        let certificate = self.request(certificate)?;
        let answer = if fault == Fault::FalseBlobsNotFound {
            Err(self.false_blobs_not_found(&[]))
        } else {
            self.inner.handle_timeout_certificate(certificate).await
        };
        self.answer(self.tamper(&fault, answer))
    }

    async fn handle_confirmed_certificates(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        delivery: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError> {
        let fault = self.admit(Method::HandleConfirmedCertificates).await?;
        let (certificates, delivery) = self.request((certificates, delivery))?;
        let answer = match certificates.first() {
            Some(first) if fault == Fault::FalseBlobsNotFound => {
                let needed = first.value().block().required_blob_ids();
                Ok(BatchOutcome {
                    processed: 0,
                    info: None,
                    error: Some(self.false_blobs_not_found(&needed)),
                })
            }
            _ => {
                self.inner
                    .handle_confirmed_certificates(certificates, delivery)
                    .await
            }
        };
        let answer = answer.map(|mut outcome| {
            outcome.info = outcome
                .info
                .map(|info| tamper_response(&fault, self.signers(), info));
            outcome
        });
        self.answer(answer)
    }

    async fn handle_chain_info_query(
        &self,
        query: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let fault = self.admit(Method::HandleChainInfoQuery).await?;
        let query = self.request(query)?;
        let answer = self.inner.handle_chain_info_query(query).await;
        self.answer(self.tamper(&fault, answer))
    }

    async fn upload_blob(&self, blob: Blob) -> Result<BlobId, NodeError> {
        self.admit(Method::UploadBlob).await?;
        let blob = self.request(blob)?;
        let answer = self.inner.upload_blob(blob).await;
        self.answer(answer)
    }

    async fn handle_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
    ) -> Result<ChainInfoResponse, NodeError> {
        let fault = self.admit(Method::HandlePendingBlob).await?;
        let (chain_id, blob) = self.request((chain_id, blob))?;
        let answer = self.inner.handle_pending_blob(chain_id, blob).await;
        self.answer(self.tamper(&fault, answer))
    }

    async fn download_blob(&self, blob_id: BlobId) -> Result<Blob, NodeError> {
        self.admit(Method::DownloadBlob).await?;
        let blob_id = self.request(blob_id)?;
        let answer = self.inner.download_blob(blob_id).await;
        self.answer(answer)
    }

    async fn missing_blob_ids(&self, blob_ids: Vec<BlobId>) -> Result<Vec<BlobId>, NodeError> {
        self.admit(Method::MissingBlobIds).await?;
        let blob_ids = self.request(blob_ids)?;
        let answer = self.inner.missing_blob_ids(blob_ids).await;
        self.answer(answer)
    }

    async fn download_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        self.admit(Method::DownloadCertificate).await?;
        let hash = self.request(hash)?;
        let answer = self.inner.download_certificate(hash).await;
        self.answer(answer)
    }

    async fn download_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        self.admit(Method::DownloadCertificatesByHeights).await?;
        let (chain_id, heights) = self.request((chain_id, heights))?;
        let answer = self
            .inner
            .download_certificates_by_heights(chain_id, heights)
            .await;
        self.answer(answer)
    }
}
