//! The Worker: the reference validator's state machine driver (DESIGN §4.5).
//!
//! It loads chain state from a [`Storage`], applies the pure rules of `quorum-core`
//! ([`execute_block`], [`ChainManager`](quorum_core::ChainManager)), persists every change in one atomic batch, and signs
//! votes when it holds a validator key. Without a key it is a client's local node: it executes
//! and stores certified blocks but never votes.
//!
//! Concurrency: certificate and proposal signatures are checked before any lock is taken, those
//! of concurrent requests together in one batch (`worker/verifier.rs`); every state change
//! then runs under one worker-wide lock, which also makes cross-chain delivery (writing the
//! recipients' inboxes) atomic with the sender's block. The lock covers computing the change
//! and queueing its writes, not the commit: writes queued while a commit is in flight share
//! the next one (group commit, `worker/store.rs`), and each answer waits for the commit that
//! holds its writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use tokio::sync::Mutex;

use quorum_core::{
    epoch_event_id, execute_block, AccountPublicKey, BatchOutcome, Blob, BlobId, Block,
    BlockHeight, BlockProposal, BlockValue, Certificate, CertificateError, CertificateValue,
    ChainId, ChainInfo, ChainInfoQuery, ChainInfoResponse, ChainState, Committee,
    ConfirmedBlockCertificate, CrossChainDelivery, CryptoError, CryptoHash, Epoch, Limit,
    LiteCertificate, LiteVote, NodeError, PreparedKey, Storage, Subscription, SubscriptionChange,
    SubscriptionId, TimeoutCertificate, ValidatedBlockCertificate, ValidatorNode,
    ValidatorPublicKey, ValidatorSecretKey,
};

mod ahead;
mod apply;
mod consensus;
mod fast_proposal;
mod follow;
mod held_blobs;
mod outbox;
mod queries;
mod received;
mod store;
mod verifier;

use held_blobs::HeldBlobs;
use store::Store;
use verifier::Verifier;

use crate::clock::Clock;
use crate::notifier::Notifier;

mod config;

pub use config::*;

/// What the Worker holds in memory only.
#[derive(Default)]
struct Volatile {
    /// Blobs held until a block needs them.
    held: HeldBlobs,
}

/// A validator (with a key) or a client's local node (without), over storage `S`.
pub struct Worker<S> {
    /// The storage, with the writes queued for the next group commit.
    store: Store<S>,
    key: Option<ValidatorSecretKey>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    volatile: Mutex<Volatile>,
    committees: RwLock<BTreeMap<Epoch, Arc<Committee>>>,
    /// Verifies the signatures of concurrent requests together (`worker/verifier.rs`).
    verifier: Arc<Verifier>,
    /// Owners' keys as decoded for verification (`None`: not a strong key), so that a chain's
    /// proposals do not each pay the decoding and its strength check (a scalar
    /// multiplication). At most [`OWNER_KEYS_CACHED`] entries; past it the cache starts again.
    owner_keys: std::sync::Mutex<HashMap<AccountPublicKey, Option<PreparedKey>>>,
    /// The subscriptions, told by the group commit what each commit announces.
    notifier: Arc<Notifier>,
}

/// Most owner keys the Worker keeps decoded. A peer proposing with many keys only makes the
/// cache start again empty; each entry is about 200 bytes.
pub(crate) const OWNER_KEYS_CACHED: usize = 4_096;

impl<S> std::fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field(
                "validator",
                &self.key.as_ref().map(ValidatorSecretKey::public),
            )
            .field("admin_chain", &self.config.admin_chain)
            .finish_non_exhaustive()
    }
}

impl<S: Storage + 'static> Worker<S> {
    /// A worker over `storage`; it signs votes if `key` is given.
    pub fn new(
        storage: S,
        key: Option<ValidatorSecretKey>,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
    ) -> Self {
        let notifier = Arc::new(Notifier::new(key.clone(), config.notifications.clone()));
        Worker {
            store: Store::new(storage, Arc::clone(&notifier)),
            notifier,
            key,
            clock,
            config,
            volatile: Mutex::new(Volatile::default()),
            committees: RwLock::new(BTreeMap::new()),
            verifier: Arc::new(Verifier::default()),
            owner_keys: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// What the node stores, as the node itself reads it: what is committed, and over it the
    /// writes queued for the next group commit (every answer of the node waits until its own
    /// writes are committed). A write through it is queued the same way.
    pub fn storage(&self) -> &dyn Storage {
        &self.store
    }

    /// The storage itself: only what is committed.
    pub fn committed_storage(&self) -> &S {
        self.store.storage()
    }

    /// Waits until what `result`'s handler wrote is durable, then hands `result` on: nothing
    /// is acknowledged, and no vote leaves the node, before its writes are committed.
    async fn durable<T>(&self, result: Result<T, NodeError>) -> Result<T, NodeError> {
        self.store.flush().await?;
        result
    }

    /// The validator's public key, if this worker votes.
    pub fn public_key(&self) -> Option<ValidatorPublicKey> {
        self.key.as_ref().map(ValidatorSecretKey::public)
    }

    /// Subscriptions to this node's notifications open now.
    pub fn subscriptions(&self) -> usize {
        self.notifier.open()
    }

    /// The settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A chain's state, or an inactive placeholder: shared with the node (the state as the
    /// node holds it, queued writes included, without a copy). `Arc::unwrap_or_clone` gives an
    /// owned copy to change.
    pub async fn chain_state(&self, chain_id: ChainId) -> Result<Arc<ChainState>, NodeError> {
        Ok(self
            .store
            .shared_chain_state(chain_id)
            .await?
            .unwrap_or_else(|| Arc::new(ChainState::inactive(chain_id))))
    }

    /// A chain's state to change: an owned copy of [`Worker::chain_state`].
    async fn owned_chain_state(&self, chain_id: ChainId) -> Result<ChainState, NodeError> {
        chain_state_in(&self.store, chain_id).await
    }

    /// The committee of `epoch`; `EventsNotFound` for the admin chain's announcement of it if
    /// this node does not know it yet.
    pub async fn committee(&self, epoch: Epoch) -> Result<Arc<Committee>, NodeError> {
        if let Ok(cache) = self.committees.read() {
            if let Some(committee) = cache.get(&epoch) {
                return Ok(committee.clone());
            }
        }
        let committee = self.store.read_committee(epoch).await?.ok_or_else(|| {
            NodeError::EventsNotFound(vec![epoch_event_id(self.config.admin_chain, epoch)])
        })?;
        let committee = Arc::new(committee);
        if let Ok(mut cache) = self.committees.write() {
            cache.insert(epoch, committee.clone());
        }
        Ok(committee)
    }

    /// Executes `block` without voting or storing anything, with `extra_blobs` available besides
    /// what the node knows: how a client computes the outcome of the block it proposes.
    pub async fn stage_block_execution(
        &self,
        block: &Block,
        extra_blobs: &[Blob],
    ) -> Result<BlockValue, NodeError> {
        let volatile = self.volatile.lock().await;
        let state = self.chain_state(block.chain_id).await?;
        let mut inputs = self.gather_inputs(&self.store, &volatile, block).await?;
        for blob in extra_blobs {
            inputs
                .blobs
                .entry(blob.id())
                .or_insert_with(|| blob.clone());
        }
        let execution = execute_block(&state, block, &inputs)?;
        Ok(BlockValue {
            block: block.clone(),
            outcome: execution.outcome,
        })
    }

    /// The answer to a proposal, a certificate or a blob: unsigned. The votes it may carry are
    /// signed each on its own, and only the answers to chain-info queries are signed as a whole
    /// (DESIGN §4.2); a signature here would cost one more ed25519 signature (and the hashing of
    /// the whole information) per request on the hot path.
    fn response(&self, state: &ChainState, with_values: bool) -> ChainInfoResponse {
        ChainInfoResponse::new(self.info(state, with_values), None)
    }

    fn info(&self, state: &ChainState, with_values: bool) -> ChainInfo {
        ChainInfo {
            chain_id: state.chain_id(),
            epoch: state.known_description().map(|_| state.epoch()),
            description: state.known_description().cloned(),
            next_block_height: state.next_height(),
            block_hash: state.tip_hash(),
            timestamp: state.timestamp(),
            state_hash: state.state_hash(),
            balance: state.balance(),
            manager: state.manager().info(with_values),
            requested_certificate_hashes: Vec::new(),
            requested_received_log: Vec::new(),
            received_log_len: state.received_log_len(),
        }
    }

    /// Checks a confirmed certificate against its epoch's committee, unless the node already
    /// has a block at that height (then there is nothing to do).
    async fn check_confirmed(
        &self,
        certificate: &ConfirmedBlockCertificate,
        signatures: Signatures,
    ) -> Result<bool, NodeError> {
        let Some(committee) = self.committee_if_new(certificate).await? else {
            return Ok(false);
        };
        self.check_certificate(certificate, &committee, signatures)
            .await?;
        Ok(true)
    }

    /// The committee to check a confirmed certificate against (its epoch's), or `None` if the
    /// node already has a block at that height. Refuses a certificate of an inactive chain.
    async fn committee_if_new(
        &self,
        certificate: &ConfirmedBlockCertificate,
    ) -> Result<Option<Arc<Committee>>, NodeError> {
        let block = certificate.value().block();
        let state = self.chain_state(block.chain_id).await?;
        state.description()?;
        if block.height < state.next_height() {
            return Ok(None);
        }
        Ok(Some(self.committee(block.epoch).await?))
    }

    /// Processes a confirmed certificate the caller assembled from votes it checked one by
    /// one as they arrived (a client and its own local node): the signers and their weight are
    /// checked, the signatures are not verified a second time (DESIGN §4.5.1, verify once).
    /// Never for a certificate that came from elsewhere.
    pub async fn handle_assembled_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(
            self.confirmed_certificate(certificate, Signatures::CheckedByCaller)
                .await,
        )
        .await
    }

    /// Records a proposal the caller signed itself (a client and its own local node): the
    /// proposer's signature is not verified (DESIGN §4.5.1, verify once); everything else is
    /// checked as for any proposal. Never for a proposal that came from elsewhere.
    pub async fn handle_own_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(self.do_handle_block_proposal(proposal, Ok(())).await)
            .await
    }

    /// Records a validated certificate the caller assembled from votes it checked one by one
    /// (see [`Worker::handle_assembled_confirmed_certificate`]).
    pub async fn handle_assembled_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(
            self.validated_certificate(certificate, Signatures::CheckedByCaller)
                .await,
        )
        .await
    }

    /// After a certificate was answered with `BlobsNotFound`: uploads of those blobs are now
    /// welcome (for a while); no other blob may be uploaded.
    fn note_wanted<T>(&self, volatile: &mut Volatile, result: &Result<T, NodeError>) {
        if let Err(NodeError::BlobsNotFound(ids)) = result {
            let limits = self.config.held_limits();
            volatile.held.want(ids, self.clock.now(), &limits);
        }
    }

    /// After a proposal an owner signed, or a validated certificate, was answered with
    /// `BlobsNotFound(missing)`: the blobs of `missing` that `block` publishes are now welcome
    /// as pending blobs of its chain (for a while); no other pending blob is.
    fn want_published(&self, volatile: &mut Volatile, block: &Block, missing: &[BlobId]) {
        let published = block.published_blob_ids();
        let wanted: Vec<BlobId> = missing
            .iter()
            .filter(|id| published.contains(id))
            .copied()
            .collect();
        let limits = self.config.held_limits();
        volatile
            .held
            .want_pending(block.chain_id, &wanted, self.clock.now(), &limits);
    }

    fn check_blob_size(&self, blob: &Blob) -> Result<(), NodeError> {
        if blob.content.len() > self.config.limits.max_blob_bytes {
            return Err(NodeError::LimitExceeded(Limit::BlobSize));
        }
        Ok(())
    }

    async fn missing_for_block(
        &self,
        volatile: &Volatile,
        block: &Block,
    ) -> Result<Vec<BlobId>, NodeError> {
        let inputs = self.gather_inputs(&self.store, volatile, block).await?;
        Ok(block
            .required_blob_ids()
            .into_iter()
            .filter(|id| !inputs.blobs.contains_key(id))
            .collect())
    }
}

/// Whether a certificate's signatures are still to be verified.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Signatures {
    /// They came with the certificate: verify them, except `own` if it is among them: this
    /// node's own latest vote at the chain's height, which it made and so need not verify
    /// again (DESIGN §4.5.1, verify once).
    Unchecked {
        /// This node's latest vote at the certificate's height, if any.
        own: Option<LiteVote>,
    },
    /// The caller verified each as a vote: check only the signers and their weight.
    CheckedByCaller,
}

impl<S: Storage + 'static> Worker<S> {
    /// Checks `certificate` against `committee`, its signatures only if still unchecked: those
    /// with the signatures of concurrent requests, in one batch (`worker/verifier.rs`).
    async fn check_certificate<T: CertificateValue>(
        &self,
        certificate: &Certificate<T>,
        committee: &Committee,
        signatures: Signatures,
    ) -> Result<(), CertificateError> {
        let own = match signatures {
            Signatures::Unchecked { own } => own,
            Signatures::CheckedByCaller => return certificate.check_signers(committee),
        };
        let mut pending = certificate.pending_signatures(committee, own.as_ref())?;
        let outcome = self.verifier.verify(pending.take_checks()).await;
        pending.finish(outcome)
    }

    /// Checks a certificate that came from elsewhere against the committee of `epoch`
    /// (`EventsNotFound` for an epoch this node does not know), every signature verified.
    async fn check_from_elsewhere<T: CertificateValue>(
        &self,
        certificate: &Certificate<T>,
        epoch: Epoch,
    ) -> Result<(), NodeError> {
        let committee = self.committee(epoch).await?;
        let unchecked = Signatures::Unchecked { own: None };
        self.check_certificate(certificate, &committee, unchecked)
            .await?;
        Ok(())
    }

    /// The outcome of checking a proposal's signature ([`BlockProposal::check_signature`]),
    /// verified with the signatures of concurrent requests when the owner's key is strong.
    async fn check_proposal_signature(&self, proposal: &BlockProposal) -> Result<(), CryptoError> {
        let Some(owner) = self.owner_key(proposal.owner()) else {
            return proposal.check_signature();
        };
        let check = proposal.signature_check(&owner)?;
        self.verifier
            .verify(vec![check])
            .await
            .map_err(|_| CryptoError::InvalidSignature)
    }

    /// `owner` decoded for verification, `None` if it is not a strong key.
    fn owner_key(&self, owner: AccountPublicKey) -> Option<PreparedKey> {
        let mut cache = self
            .owner_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(prepared) = cache.get(&owner) {
            return *prepared;
        }
        if cache.len() >= OWNER_KEYS_CACHED {
            cache.clear();
        }
        let prepared = PreparedKey::decode(owner.as_bytes()).ok();
        cache.insert(owner, prepared);
        prepared
    }
}

/// A chain's state in `storage`, or an inactive placeholder.
async fn chain_state_in(storage: &dyn Storage, chain_id: ChainId) -> Result<ChainState, NodeError> {
    Ok(storage
        .read_chain_state(chain_id)
        .await?
        .unwrap_or_else(|| ChainState::inactive(chain_id)))
}

/// The state of `chain_id` in `states`, loaded from `storage` on first use: the states a batch
/// changes besides its own chain's (recipients, opened chains), each read once.
async fn state_in<'a>(
    states: &'a mut BTreeMap<ChainId, ChainState>,
    storage: &dyn Storage,
    chain_id: ChainId,
) -> Result<&'a mut ChainState, NodeError> {
    Ok(match states.entry(chain_id) {
        std::collections::btree_map::Entry::Occupied(slot) => slot.into_mut(),
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(chain_state_in(storage, chain_id).await?)
        }
    })
}

/// Every handler that may write answers only once what it wrote is durable.
#[async_trait]
impl<S: Storage + 'static> ValidatorNode for Worker<S> {
    async fn handle_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        let signature = self.check_proposal_signature(&proposal).await;
        self.take_in_owed_for([&proposal.content.block]).await;
        self.durable(self.do_handle_block_proposal(proposal, signature).await)
            .await
    }

    async fn handle_lite_certificate(
        &self,
        certificate: LiteCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.take_in_owed_for_pending(certificate.chain_id).await;
        self.durable(self.do_handle_lite_certificate(certificate, delivery).await)
            .await
    }

    async fn handle_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        _delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.take_in_owed_for([certificate.value().block()]).await;
        self.durable(
            self.confirmed_certificate(certificate, Signatures::Unchecked { own: None })
                .await,
        )
        .await
    }

    async fn handle_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.take_in_owed_for([certificate.value().block()]).await;
        self.durable(
            self.validated_certificate(certificate, Signatures::Unchecked { own: None })
                .await,
        )
        .await
    }

    async fn handle_timeout_certificate(
        &self,
        certificate: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(self.do_handle_timeout_certificate(certificate).await)
            .await
    }

    async fn handle_confirmed_certificates(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        _delivery: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError> {
        let blocks: Vec<&Block> = certificates.iter().map(|c| c.value().block()).collect();
        self.take_in_owed_for(blocks).await;
        self.durable(
            self.do_handle_confirmed_certificates(certificates, _delivery)
                .await,
        )
        .await
    }

    async fn handle_chain_info_query(
        &self,
        query: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.durable(self.do_handle_chain_info_query(query).await)
            .await
    }

    async fn upload_blob(&self, blob: Blob) -> Result<BlobId, NodeError> {
        self.do_upload_blob(blob).await
    }

    async fn handle_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.do_handle_pending_blob(chain_id, blob, false).await
    }

    async fn download_blob(&self, blob_id: BlobId) -> Result<Blob, NodeError> {
        self.do_download_blob(blob_id).await
    }

    async fn missing_blob_ids(&self, blob_ids: Vec<BlobId>) -> Result<Vec<BlobId>, NodeError> {
        self.do_missing_blob_ids(blob_ids).await
    }

    async fn download_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        self.do_download_certificate(hash).await
    }

    async fn download_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        self.do_download_certificates_by_heights(chain_id, heights)
            .await
    }

    /// Opens a subscription (only a worker with a validator key pushes notifications).
    async fn subscribe(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        self.notifier.subscribe(chains)
    }

    async fn change_subscription(
        &self,
        id: SubscriptionId,
        change: SubscriptionChange,
    ) -> Result<u64, NodeError> {
        self.notifier.change(id, change)
    }

    async fn unsubscribe(&self, id: SubscriptionId) -> Result<(), NodeError> {
        self.notifier.unsubscribe(id)
    }
}
