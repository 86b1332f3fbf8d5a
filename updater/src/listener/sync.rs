//! The listener's syncs: hints and "sync everything" requests are queued per chain, merged
//! while they wait, and served by one task, a few chains at a time. A chain is synchronized
//! only for what its hints call for and the local node does not hold yet: the same block
//! announced by every validator costs one sync, and a block costs no received-log read. Every
//! hint is then checked against what the local node holds or, failing that, against the
//! validator that signed it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::StreamExt;
use quorum_core::{
    BlockHeight, ChainId, ChainInfoQuery, ConfirmedBlockCertificate, CrossChainDelivery, Epoch,
    Notification, NotificationKind, Round, Storage, ValidatorNode, ValidatorPublicKey,
};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::ListenEvent;
use crate::chain_client::ChainClient;
use crate::options::ListenOptions;
use crate::remote::RemoteNode;

/// Heights whose hashes one read of the local node asks for, when reporting new blocks.
const HEIGHTS_PER_READ: u64 = 256;

/// What a hint proved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// It is true.
    True,
    /// Its signer announced something that is not so.
    False,
    /// Nothing could be proven (no answer, an epoch the local node does not know).
    Unknown,
}

#[derive(Default)]
struct Queue {
    /// Chains to synchronize, with the hints to check afterwards.
    chains: BTreeMap<ChainId, Vec<(RemoteNode, Notification)>>,
    /// Every followed chain is to be synchronized.
    all: bool,
    /// Validators whose hints are ignored, until when.
    ignored: HashMap<ValidatorPublicKey, Instant>,
}

/// The sync side of a listener (see the module's documentation).
pub(super) struct Syncer<S> {
    client: ChainClient<S>,
    chains: watch::Receiver<Arc<BTreeSet<ChainId>>>,
    events: mpsc::Sender<ListenEvent>,
    options: ListenOptions,
    queue: Mutex<Queue>,
    wake: Notify,
    /// The admin chain's epoch in the local node, told to the listener when a sync moves it.
    epochs: watch::Sender<Epoch>,
}

impl<S: Storage + 'static> Syncer<S> {
    pub(super) fn new(
        client: ChainClient<S>,
        chains: watch::Receiver<Arc<BTreeSet<ChainId>>>,
        events: mpsc::Sender<ListenEvent>,
        options: ListenOptions,
        epochs: watch::Sender<Epoch>,
    ) -> Self {
        Syncer {
            client,
            chains,
            events,
            options,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            epochs,
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a sync of the hint's chain, if it is followed and its signer is not ignored.
    pub(super) fn hint(&self, remote: &RemoteNode, hint: Notification) {
        if !self.chains.borrow().contains(&hint.chain_id) {
            return;
        }
        let mut queue = self.queue();
        if let Some(until) = queue.ignored.get(&remote.public_key) {
            if Instant::now() < *until {
                metrics::counter!("quorum_notifications_ignored_total").increment(1);
                return;
            }
            queue.ignored.remove(&remote.public_key);
        }
        let hints = queue.chains.entry(hint.chain_id).or_default();
        if hints.len() < self.options.hints_per_chain {
            hints.push((remote.clone(), hint));
        }
        drop(queue);
        self.wake.notify_one();
    }

    /// Queues a sync of every followed chain.
    pub(super) fn sync_all(&self) {
        self.queue().all = true;
        self.wake.notify_one();
    }

    /// Serves the queue until the listener is dropped.
    pub(super) async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            loop {
                let batch = self.take();
                if batch.is_empty() {
                    break;
                }
                futures::stream::iter(batch)
                    .for_each_concurrent(self.options.syncs_in_flight.max(1), |(chain, hints)| {
                        self.sync_chain(chain, hints)
                    })
                    .await;
                self.note_epoch().await;
            }
        }
    }

    /// Tells the listener if the syncs made the local node learn the committee of a later
    /// epoch (a certificate of a later epoch makes a sync bring the admin chain up to date).
    async fn note_epoch(&self) {
        let known = *self.epochs.borrow();
        let latest = latest_epoch(self.client.local(), known).await;
        if latest > known {
            self.epochs.send_replace(latest);
        }
    }

    /// What is queued now, emptied.
    fn take(&self) -> BTreeMap<ChainId, Vec<(RemoteNode, Notification)>> {
        let mut queue = self.queue();
        let mut batch = std::mem::take(&mut queue.chains);
        if std::mem::take(&mut queue.all) {
            for chain in self.chains.borrow().iter() {
                batch.entry(*chain).or_default();
            }
        }
        batch
    }

    /// Synchronizes `chain` (unless the local node covers every hint already), reports what
    /// changed, and checks the hints.
    async fn sync_chain(&self, chain: ChainId, hints: Vec<(RemoteNode, Notification)>) {
        let local = self.client.local();
        let Ok(before) = local.chain_state(chain).await else {
            return;
        };
        // What the hints call for that the local node does not hold yet: the chain's blocks
        // (a block or a round), its received log (a bundle). A sync of everything has no
        // hints and calls for both.
        let (mut blocks, mut bundles) = (hints.is_empty(), hints.is_empty());
        for (_, hint) in &hints {
            if self.local_verdict(hint).await.is_none() {
                match hint.kind {
                    NotificationKind::NewIncomingBundle { .. } => bundles = true,
                    NotificationKind::NewBlock { .. } | NotificationKind::NewRound { .. } => {
                        blocks = true
                    }
                }
            }
        }
        let mut received = Vec::new();
        let client = self.client.for_chain(chain, None);
        if blocks && !self.take_next_block(chain, &hints).await {
            if let Err(error) = client.synchronize_chain(chain).await {
                debug!(?chain, %error, "listener: chain sync incomplete");
            }
        }
        if bundles {
            match client.synchronize_received_log(chain).await {
                Ok(sync) => received = sync.received,
                Err(error) => debug!(?chain, %error, "listener: received-log sync incomplete"),
            }
        }
        if let Ok(after) = local.chain_state(chain).await {
            let (from, to) = (before.next_height(), after.next_height());
            if to > from {
                self.report_blocks(chain, from, to).await;
            } else if after.manager().current_round() != before.manager().current_round() {
                self.send(ListenEvent::NewRound {
                    chain_id: chain,
                    height: to,
                    round: after.manager().current_round(),
                })
                .await;
            }
        }
        for entry in received {
            self.send(ListenEvent::Received {
                chain_id: chain,
                entry,
            })
            .await;
        }
        for (remote, hint) in hints {
            let verdict = match self.local_verdict(&hint).await {
                Some(verdict) => verdict,
                None => self.remote_verdict(&remote, &hint).await,
            };
            if verdict == Verdict::False {
                self.false_hint(&remote, hint).await;
            }
        }
    }

    /// The cheap sync of the common case: a hint announces the block right after the local
    /// node's tip. That block's certificate is downloaded from the validator that announced it
    /// and given to the local node, which checks it against its committee like any
    /// certificate. Whether the local node took it; if not, the caller synchronizes the chain
    /// from the validators.
    async fn take_next_block(&self, chain: ChainId, hints: &[(RemoteNode, Notification)]) -> bool {
        let local = self.client.local();
        let Ok(state) = local.chain_state(chain).await else {
            return false;
        };
        let next = state.next_height();
        let Some((remote, hash)) = hints.iter().find_map(|(remote, hint)| match hint.kind {
            NotificationKind::NewBlock { height, hash } if height == next => Some((remote, hash)),
            _ => None,
        }) else {
            return false;
        };
        let Some(certificates) = self.download(remote, chain, next).await else {
            return false;
        };
        let Some(certificate) = certificates
            .into_iter()
            .find(|certificate| certificate.hash() == hash)
        else {
            return false;
        };
        local
            .handle_confirmed_certificate(certificate, CrossChainDelivery::NonBlocking)
            .await
            .is_ok()
    }

    /// Reports the blocks of `chain` from `from` to `to` (excluded) as the local node holds
    /// them, and the time from the last one's timestamp to now.
    async fn report_blocks(&self, chain: ChainId, from: BlockHeight, to: BlockHeight) {
        let storage = self.client.local().storage();
        let mut start = from.0;
        while start < to.0 {
            let end = start.saturating_add(HEIGHTS_PER_READ).min(to.0);
            let heights: Vec<BlockHeight> = (start..end).map(BlockHeight).collect();
            let Ok(hashes) = storage.read_certificate_hashes(chain, &heights).await else {
                return;
            };
            for (height, hash) in heights.into_iter().zip(hashes) {
                if let Some(hash) = hash {
                    self.send(ListenEvent::NewBlock {
                        chain_id: chain,
                        height,
                        hash,
                    })
                    .await;
                }
            }
            start = end;
        }
        let last = BlockHeight(to.0 - 1);
        if let Ok(certificates) = storage.read_certificates_by_heights(chain, &[last]).await {
            if let Some(Some(certificate)) = certificates.first() {
                let now = self.client.now();
                let age = now
                    .0
                    .saturating_sub(certificate.value().block().timestamp.0);
                metrics::histogram!("quorum_notification_latency_seconds").record(age as f64 / 1e6);
            }
        }
    }

    async fn send(&self, event: ListenEvent) {
        // The listener's owner may have stopped reading; nothing more to do then.
        drop(self.events.send(event).await);
    }

    /// What the local node proves of `hint`, if it holds what the hint is about.
    async fn local_verdict(&self, hint: &Notification) -> Option<Verdict> {
        let local = self.client.local();
        match hint.kind {
            NotificationKind::NewBlock { height, hash } => {
                let hashes = local
                    .storage()
                    .read_certificate_hashes(hint.chain_id, &[height])
                    .await
                    .ok()?;
                let held = hashes.into_iter().next().flatten()?;
                Some(if held == hash {
                    Verdict::True
                } else {
                    Verdict::False
                })
            }
            NotificationKind::NewIncomingBundle { origin, height } => {
                let certificates = local
                    .storage()
                    .read_certificates_by_heights(origin, &[height])
                    .await
                    .ok()?;
                let certificate = certificates.into_iter().next().flatten()?;
                Some(pays(&certificate, hint.chain_id))
            }
            NotificationKind::NewRound { height, round } => {
                let state = local.chain_state(hint.chain_id).await.ok()?;
                past(
                    state.next_height(),
                    state.manager().current_round(),
                    height,
                    round,
                )
                .then_some(Verdict::True)
            }
        }
    }

    /// What the validator that signed `hint` proves of it, asked directly.
    async fn remote_verdict(&self, remote: &RemoteNode, hint: &Notification) -> Verdict {
        let timeout = self.client.options().request_timeout;
        match hint.kind {
            NotificationKind::NewBlock { height, hash } => {
                let Some(certificates) = self.download(remote, hint.chain_id, height).await else {
                    return Verdict::Unknown;
                };
                match self.certified(certificates, hint.chain_id, height).await {
                    Some(Ok(certificate)) if certificate.hash() == hash => Verdict::True,
                    Some(Ok(_)) | Some(Err(())) => Verdict::False,
                    None => Verdict::Unknown,
                }
            }
            NotificationKind::NewIncomingBundle { origin, height } => {
                let Some(certificates) = self.download(remote, origin, height).await else {
                    return Verdict::Unknown;
                };
                match self.certified(certificates, origin, height).await {
                    Some(Ok(certificate)) => pays(&certificate, hint.chain_id),
                    Some(Err(())) => Verdict::False,
                    None => Verdict::Unknown,
                }
            }
            NotificationKind::NewRound { height, round } => {
                let asked = remote
                    .node
                    .handle_chain_info_query(ChainInfoQuery::new(hint.chain_id));
                let Ok(Ok(response)) = tokio::time::timeout(timeout, asked).await else {
                    return Verdict::Unknown;
                };
                if response.info.chain_id != hint.chain_id || remote.check_info(&response).is_err()
                {
                    return Verdict::Unknown;
                }
                let info = &response.info;
                if past(
                    info.next_block_height,
                    info.manager.current_round,
                    height,
                    round,
                ) {
                    Verdict::True
                } else {
                    Verdict::False
                }
            }
        }
    }

    /// What `remote` gives for the certificate of `chain` at `height`, within the request
    /// timeout; `None` if it did not answer.
    async fn download(
        &self,
        remote: &RemoteNode,
        chain: ChainId,
        height: BlockHeight,
    ) -> Option<Vec<ConfirmedBlockCertificate>> {
        let timeout = self.client.options().request_timeout;
        let asked = remote
            .node
            .download_certificates_by_heights(chain, vec![height]);
        tokio::time::timeout(timeout, asked).await.ok()?.ok()
    }

    /// The certificate of `chain` at `height` among `certificates`, checked against its
    /// epoch's committee: `Err` if there is none or it does not check, `None` if the local
    /// node does not know the epoch.
    async fn certified(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        chain: ChainId,
        height: BlockHeight,
    ) -> Option<Result<ConfirmedBlockCertificate, ()>> {
        let Some(certificate) = certificates.into_iter().find(|certificate| {
            let block = certificate.value().block();
            block.chain_id == chain && block.height == height
        }) else {
            return Some(Err(()));
        };
        let epoch = certificate.value().block().epoch;
        let committee = self.client.local().committee(epoch).await.ok()?;
        Some(
            certificate
                .check(&committee)
                .map(|()| certificate)
                .map_err(|_| ()),
        )
    }

    /// `remote` signed a false hint: marked Byzantine, its hints ignored for a while.
    async fn false_hint(&self, remote: &RemoteNode, hint: Notification) {
        warn!(validator = ?remote.public_key, ?hint, "validator signed a false notification");
        remote.health.record_violation();
        metrics::counter!("quorum_notifications_invalid_total", "reason" => "false_hint")
            .increment(1);
        let until = Instant::now() + self.options.byzantine_cooldown;
        self.queue().ignored.insert(remote.public_key, until);
        self.send(ListenEvent::FalseHint {
            validator: remote.public_key,
            hint,
        })
        .await;
    }
}

/// The latest epoch from `from` on whose committee `local` knows.
pub(super) async fn latest_epoch<S: Storage + 'static>(
    local: &quorum_node::Worker<S>,
    from: Epoch,
) -> Epoch {
    let mut epoch = from;
    while let Some(next) = epoch.0.checked_add(1).map(Epoch) {
        if local.committee(next).await.is_err() {
            break;
        }
        epoch = next;
    }
    epoch
}

/// Whether `certificate` sends a bundle to `chain`.
fn pays(certificate: &ConfirmedBlockCertificate, chain: ChainId) -> Verdict {
    let pays = certificate
        .value()
        .outcome()
        .messages
        .iter()
        .any(|bundle| bundle.recipient == chain);
    if pays {
        Verdict::True
    } else {
        Verdict::False
    }
}

/// Whether a chain at `(height, round)` is at or past `(hinted_height, hinted_round)`.
fn past(
    height: BlockHeight,
    round: Round,
    hinted_height: BlockHeight,
    hinted_round: Round,
) -> bool {
    height > hinted_height || (height == hinted_height && round >= hinted_round)
}
