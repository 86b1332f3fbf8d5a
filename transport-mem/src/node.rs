//! [`MemoryNode`]: a [`ValidatorNode`] in process (a [`Carrier`] of the protocol's requests),
//! with optional BCS round trips and fault injection.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use quorum_core::protocol::{dispatch, dispatch_stream, Carrier, Request, RequestKind, Response};
use quorum_core::{
    BatchOutcome, BlobId, BlobType, ChainId, ChainInfoQuery, ChainInfoResponse, CryptoHash,
    NodeError, Subscription, ValidatorNode, ValidatorPublicKey, ValidatorSecretKey, VoteKind,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::call_stats::CallStats;
use crate::fault::Fault;
use crate::handle::{Admission, FaultHandle};
use crate::notify::{faulty_stream, Faults};
use crate::round_trip::round_trip;
use crate::tamper::{strip_votes, tamper_response, Signers};

/// Mixed into the seed to derive [`Fault::WrongKey`]'s default key, so that drawing it does not
/// consume the fault generator.
const WRONG_KEY_SEED_MIX: u64 = 0x5752_4f4e_475f_4b45;

/// A [`ValidatorNode`] that passes every request in process to another one (normally a
/// Worker), optionally through a BCS round trip, and misbehaves as its [`Fault`] says.
///
/// It is a [`Carrier`]: each [`ValidatorNode`] method becomes a [`Request`], which
/// [`Carrier::carry`] hands to the wrapped node through [`dispatch`], so a request added to the
/// protocol needs no change here.
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
/// A call (a [`Request`]) goes through these steps:
/// 1. it is counted by its [`RequestKind`];
/// 2. the transport faults act ([`Fault::Offline`], [`Fault::Flaky`], [`Fault::CrashAfter`]
///    fail it, [`Fault::Hang`] never answers, [`Fault::Slow`] waits);
/// 3. with BCS on, the [`Request`] is encoded and decoded;
/// 4. the wrapped node handles it ([`dispatch`]), unless [`Fault::FalseBlobsNotFound`] or
///    [`Fault::DontProcessValidated`] answers instead;
/// 5. the vote faults alter the chain information the [`Response`] carries
///    ([`Response::info_mut`]);
/// 6. with BCS on, the [`Response`] is encoded and decoded.
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
    async fn admit(&self, request: RequestKind) -> Result<Fault, NodeError> {
        match self.handle.admit(request) {
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

    /// Steps 3 and 6: `value` as the other side receives it.
    fn wire<T: Serialize + DeserializeOwned>(&self, value: T) -> Result<T, NodeError> {
        if self.bcs {
            round_trip(&value)
        } else {
            Ok(value)
        }
    }

    /// Step 4's exceptions: the answer `fault` gives instead of passing `request` to the
    /// wrapped node, if it does.
    async fn intercept(&self, fault: Fault, request: &Request) -> Option<Response> {
        match fault {
            Fault::FalseBlobsNotFound => self.false_blobs_not_found(request),
            Fault::DontProcessValidated => self.ignore_validated(request).await,
            _ => None,
        }
    }

    /// [`Fault::FalseBlobsNotFound`]: block proposals and certificates are refused with a
    /// false claim; other requests (and an empty batch) are passed on.
    fn false_blobs_not_found(&self, request: &Request) -> Option<Response> {
        let response = match request {
            Request::BlockProposal(proposal) => {
                let mut needed = proposal.block().required_blob_ids();
                if let Some(certificate) = &proposal.validated_block_certificate {
                    needed.extend(certificate.value().block().required_blob_ids());
                }
                Response::BlockProposal(Err(self.blob_not_needed(&needed)))
            }
            // Without the value, no blob is known to be needed.
            Request::LiteCertificate { .. } => {
                Response::LiteCertificate(Err(self.blob_not_needed(&[])))
            }
            Request::ConfirmedCertificate { certificate, .. } => {
                let needed = certificate.value().block().required_blob_ids();
                Response::ConfirmedCertificate(Err(self.blob_not_needed(&needed)))
            }
            Request::ValidatedCertificate(certificate) => {
                let needed = certificate.value().block().required_blob_ids();
                Response::ValidatedCertificate(Err(self.blob_not_needed(&needed)))
            }
            Request::TimeoutCertificate(_) => {
                Response::TimeoutCertificate(Err(self.blob_not_needed(&[])))
            }
            Request::ConfirmedCertificates { certificates, .. } => {
                let needed = certificates.first()?.value().block().required_blob_ids();
                Response::ConfirmedCertificates(Ok(BatchOutcome {
                    processed: 0,
                    info: None,
                    error: Some(self.blob_not_needed(&needed)),
                }))
            }
            _ => return None,
        };
        Some(response)
    }

    /// A false claim for [`Fault::FalseBlobsNotFound`]: a blob id from the seeded generator
    /// that is not among `needed`.
    fn blob_not_needed(&self, needed: &[BlobId]) -> NodeError {
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

    /// [`Fault::DontProcessValidated`]: a validated certificate (full, or lite of kind
    /// `Validated`), or a re-proposal that carries one, is answered with the chain's current
    /// information, without votes (the node neither confirms nor locks through it); other
    /// requests are passed on.
    async fn ignore_validated(&self, request: &Request) -> Option<Response> {
        type Answer = fn(Result<ChainInfoResponse, NodeError>) -> Response;
        let (chain_id, answer): (ChainId, Answer) = match request {
            Request::ValidatedCertificate(certificate) => (
                certificate.value().block().chain_id,
                Response::ValidatedCertificate,
            ),
            Request::LiteCertificate { certificate, .. }
                if certificate.kind == VoteKind::Validated =>
            {
                (certificate.chain_id, Response::LiteCertificate)
            }
            Request::BlockProposal(proposal) if proposal.validated_block_certificate.is_some() => {
                (proposal.block().chain_id, Response::BlockProposal)
            }
            _ => return None,
        };
        tracing::debug!(?chain_id, "fault injected: validated certificate ignored");
        let info = self
            .inner
            .handle_chain_info_query(ChainInfoQuery::new(chain_id))
            .await
            .map(|mut info| {
                strip_votes(&mut info, None, self.key.as_ref());
                info
            });
        Some(answer(info))
    }
}

#[async_trait]
impl Carrier for MemoryNode {
    async fn carry(&self, request: Request) -> Result<Response, NodeError> {
        let fault = self.admit(request.kind()).await?;
        let request = self.wire(request)?;
        let mut response = match self.intercept(fault, &request).await {
            Some(response) => response,
            None => dispatch(self.inner.as_ref(), request).await,
        };
        if let Some(info) = response.info_mut() {
            tamper_response(&fault, self.signers(), info);
        }
        self.wire(response)
    }

    /// A subscription goes through the transport faults like any call; its stream then goes
    /// through the [`NotificationFault`](crate::NotificationFault) in force, envelope by
    /// envelope (and ends if the node goes [`Fault::Offline`], stalls if it hangs).
    async fn carry_subscription(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        let request = self.wire(Request::Subscribe(chains))?;
        self.admit(request.kind()).await?;
        let (response, events) = dispatch_stream(self.inner.as_ref(), request).await;
        let id = match self.wire(response)? {
            Response::Subscribe(answer) => answer?,
            other => return Err(self.malformed(RequestKind::Subscribe, &other)),
        };
        let events = events.ok_or(NodeError::MalformedResponse)?;
        let faults = Faults {
            handle: self.handle.clone(),
            own: self.key.clone(),
            wrong: self.wrong_key.clone(),
            bcs: self.bcs,
        };
        Ok(Subscription {
            id,
            events: faulty_stream(events, faults),
        })
    }
}
