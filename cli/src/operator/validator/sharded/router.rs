//! [`ShardRouter`]: the node a sharded validator's proxy serves (DESIGN §7.1). To a client it
//! is one validator: each request goes to the shard that owns the chain it names, and the
//! requests that name no chain are answered from the tables every shard shares (blobs,
//! certificates by hash) or, for what only a shard holds in memory (uploaded and pending
//! blobs), by asking the shards.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc;

use quorum_core::{
    BatchOutcome, Blob, BlobId, BlockHeight, BlockProposal, ChainId, ChainInfoQuery,
    ChainInfoResponse, ConfirmedBlockCertificate, CrossChainDelivery, CryptoHash, Limit, Limits,
    LiteCertificate, NodeError, NotificationEnvelope, Storage, StreamEvent, Subscription,
    SubscriptionChange, SubscriptionId, TimeoutCertificate, ValidatedBlockCertificate,
    ValidatorNode,
};

use quorum_node::Shard;

/// A validator's node made of shards: each request to the shard that owns its chain
/// ([`Shard::owner_of`]), chain-less reads from the shared tables.
pub(crate) struct ShardRouter {
    /// How many shards: `nodes.len()`.
    count: NonZeroU32,
    nodes: Vec<Arc<dyn ValidatorNode>>,
    tables: Arc<dyn Storage>,
    limits: Limits,
    /// Most events queued for one subscription before the subscriber is told it lagged.
    queue: usize,
    subscriptions: Arc<Mutex<HashMap<SubscriptionId, Routed>>>,
    next_id: AtomicU64,
}

/// A subscription of the proxy: one at each shard that owns some of its chains, merged into
/// one stream.
struct Routed {
    /// The shard subscriptions: shard index → (its id there, how many chains it follows).
    at: HashMap<u32, (SubscriptionId, u64)>,
    /// Where each shard's events go.
    sender: mpsc::Sender<Option<StreamEvent>>,
    /// Events dropped since the last one delivered (the queue was full).
    missed: Arc<AtomicU64>,
}

impl ShardRouter {
    /// The router over `nodes` (shard `i` at index `i`, as many shards as nodes), answering
    /// chain-less reads from `tables`, under the committee's protocol `limits`, with `queue`
    /// events at most queued for one subscription. `None` without nodes (or with more than
    /// `u32::MAX`).
    pub(crate) fn new(
        nodes: Vec<Arc<dyn ValidatorNode>>,
        tables: Arc<dyn Storage>,
        limits: Limits,
        queue: usize,
    ) -> Option<Self> {
        let count = NonZeroU32::new(u32::try_from(nodes.len()).ok()?)?;
        Some(ShardRouter {
            count,
            nodes,
            tables,
            limits,
            queue: queue.max(1),
            subscriptions: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(0),
        })
    }

    /// The shard node that owns `chain`.
    fn node(&self, chain: ChainId) -> &Arc<dyn ValidatorNode> {
        &self.nodes[Shard::owner_of(self.count, chain) as usize]
    }

    /// `chains` grouped by the shard that owns them.
    fn by_shard(&self, chains: Vec<ChainId>) -> HashMap<u32, Vec<ChainId>> {
        let mut groups: HashMap<u32, Vec<ChainId>> = HashMap::new();
        for chain in chains {
            groups
                .entry(Shard::owner_of(self.count, chain))
                .or_default()
                .push(chain);
        }
        groups
    }

    /// Opens a subscription at shard `index` for `chains`, its events forwarded to `routed`'s
    /// stream; returns its id there and how many chains it follows.
    async fn open_at(
        &self,
        index: u32,
        chains: Vec<ChainId>,
        proxy_id: SubscriptionId,
        sender: mpsc::Sender<Option<StreamEvent>>,
        missed: Arc<AtomicU64>,
    ) -> Result<(SubscriptionId, u64), NodeError> {
        let count = chains.len() as u64;
        let subscription = self.nodes[index as usize].subscribe(chains).await?;
        let registry = Arc::clone(&self.subscriptions);
        tokio::spawn(forward(
            subscription.events,
            sender,
            missed,
            registry,
            proxy_id,
        ));
        Ok((subscription.id, count))
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<SubscriptionId, Routed>> {
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Forwards one shard's events into a proxy subscription's queue; a full queue drops the
/// event and counts it. When the shard's stream ends (the shard went away), the proxy's
/// stream ends too, so that the subscriber knows to subscribe again; when the subscriber is
/// gone, the proxy subscription is forgotten.
async fn forward(
    mut events: quorum_core::NotificationStream,
    sender: mpsc::Sender<Option<StreamEvent>>,
    missed: Arc<AtomicU64>,
    registry: Arc<Mutex<HashMap<SubscriptionId, Routed>>>,
    proxy_id: SubscriptionId,
) {
    while let Some(envelope) = events.next().await {
        let lost = match envelope.event {
            StreamEvent::Lagged { missed } => missed,
            event => match sender.try_send(Some(event)) {
                Ok(()) => 0,
                Err(mpsc::error::TrySendError::Full(_)) => 1,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    registry
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&proxy_id);
                    return;
                }
            },
        };
        missed.fetch_add(lost, Ordering::Relaxed);
    }
    // The end of one shard's stream ends the proxy's.
    let _ = sender.send(None).await;
}

/// The proxy's stream: the shards' events in arrival order, renumbered, with a lagged marker
/// wherever events were dropped; it ends at the first shard stream that ends.
fn merged(
    receiver: mpsc::Receiver<Option<StreamEvent>>,
    missed: Arc<AtomicU64>,
) -> quorum_core::NotificationStream {
    let state = (receiver, missed, 0u64, None::<StreamEvent>);
    Box::pin(futures::stream::unfold(
        state,
        |(mut receiver, missed, sequence, held)| async move {
            let event = match held {
                Some(event) => event,
                None => {
                    let event = receiver.recv().await.flatten()?;
                    let dropped = missed.swap(0, Ordering::Relaxed);
                    if dropped > 0 {
                        let marker = StreamEvent::Lagged { missed: dropped };
                        let envelope = NotificationEnvelope {
                            sequence,
                            event: marker,
                        };
                        return Some((envelope, (receiver, missed, sequence + 1, Some(event))));
                    }
                    event
                }
            };
            let envelope = NotificationEnvelope { sequence, event };
            Some((envelope, (receiver, missed, sequence + 1, None)))
        },
    ))
}

#[async_trait]
impl ValidatorNode for ShardRouter {
    async fn handle_block_proposal(
        &self,
        proposal: BlockProposal,
    ) -> Result<ChainInfoResponse, NodeError> {
        let chain = proposal.content.block.chain_id;
        self.node(chain).handle_block_proposal(proposal).await
    }

    async fn handle_lite_certificate(
        &self,
        certificate: LiteCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let chain = certificate.chain_id;
        self.node(chain)
            .handle_lite_certificate(certificate, delivery)
            .await
    }

    async fn handle_confirmed_certificate(
        &self,
        certificate: ConfirmedBlockCertificate,
        delivery: CrossChainDelivery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let chain = certificate.value().block().chain_id;
        self.node(chain)
            .handle_confirmed_certificate(certificate, delivery)
            .await
    }

    async fn handle_validated_certificate(
        &self,
        certificate: ValidatedBlockCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        let chain = certificate.value().block().chain_id;
        self.node(chain)
            .handle_validated_certificate(certificate)
            .await
    }

    async fn handle_timeout_certificate(
        &self,
        certificate: TimeoutCertificate,
    ) -> Result<ChainInfoResponse, NodeError> {
        let chain = certificate.value().inner().chain_id;
        self.node(chain)
            .handle_timeout_certificate(certificate)
            .await
    }

    /// Runs of consecutive certificates of one shard go to it in order; the batch stops
    /// where a shard stopped.
    async fn handle_confirmed_certificates(
        &self,
        certificates: Vec<ConfirmedBlockCertificate>,
        delivery: CrossChainDelivery,
    ) -> Result<BatchOutcome, NodeError> {
        if certificates.len() > self.limits.max_certificates_per_batch {
            return Err(NodeError::LimitExceeded(Limit::BatchSize));
        }
        let mut outcome = BatchOutcome {
            processed: 0,
            info: None,
            error: None,
        };
        let mut rest = certificates;
        while let Some(first) = rest.first() {
            let index = Shard::owner_of(self.count, first.value().block().chain_id);
            let run = rest
                .iter()
                .take_while(|c| Shard::owner_of(self.count, c.value().block().chain_id) == index)
                .count();
            let tail = rest.split_off(run);
            let sent = rest.len();
            let part = self.nodes[index as usize]
                .handle_confirmed_certificates(rest, delivery)
                .await?;
            outcome.processed += part.processed;
            if part.info.is_some() {
                outcome.info = part.info;
            }
            if part.error.is_some() || part.processed < sent {
                outcome.error = part.error;
                break;
            }
            rest = tail;
        }
        Ok(outcome)
    }

    async fn handle_chain_info_query(
        &self,
        query: ChainInfoQuery,
    ) -> Result<ChainInfoResponse, NodeError> {
        let chain = query.chain_id;
        self.node(chain).handle_chain_info_query(query).await
    }

    /// An upload is held by the shard that asked for it (it answered a certificate with
    /// `BlobsNotFound`), which the proxy does not know: every shard is offered it, and it is
    /// accepted if one takes it.
    async fn upload_blob(&self, blob: Blob) -> Result<BlobId, NodeError> {
        let offers = self.nodes.iter().map(|node| node.upload_blob(blob.clone()));
        let answers = futures::future::join_all(offers).await;
        let mut first_error = None;
        for answer in answers {
            match answer {
                Ok(id) => return Ok(id),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.unwrap_or(NodeError::BlobsNotFound(vec![blob.id()])))
    }

    async fn handle_pending_blob(
        &self,
        chain_id: ChainId,
        blob: Blob,
    ) -> Result<ChainInfoResponse, NodeError> {
        self.node(chain_id)
            .handle_pending_blob(chain_id, blob)
            .await
    }

    /// From the shared tables; else from the shard holding it pending for a chain.
    async fn download_blob(&self, blob_id: BlobId) -> Result<Blob, NodeError> {
        if let Some(blob) = self.tables.read_blob(blob_id).await? {
            return Ok(blob);
        }
        let asks = self.nodes.iter().map(|node| node.download_blob(blob_id));
        let answers = futures::future::join_all(asks).await;
        if let Some(blob) = answers
            .into_iter()
            .flatten()
            .find(|blob| blob.id() == blob_id)
        {
            return Ok(blob);
        }
        Err(NodeError::BlobsNotFound(vec![blob_id]))
    }

    async fn missing_blob_ids(&self, blob_ids: Vec<BlobId>) -> Result<Vec<BlobId>, NodeError> {
        if blob_ids.len() > self.limits.max_certificates_per_batch {
            return Err(NodeError::LimitExceeded(Limit::BatchSize));
        }
        Ok(self.tables.missing_blobs(&blob_ids).await?)
    }

    async fn download_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<ConfirmedBlockCertificate, NodeError> {
        self.tables
            .read_certificate(hash)
            .await?
            .ok_or(NodeError::NotFound)
    }

    async fn download_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: Vec<BlockHeight>,
    ) -> Result<Vec<ConfirmedBlockCertificate>, NodeError> {
        self.node(chain_id)
            .download_certificates_by_heights(chain_id, heights)
            .await
    }

    /// One subscription at each shard that owns some of `chains` (at shard 0 when there
    /// are none), their events merged and renumbered.
    async fn subscribe(&self, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        let mut groups = self.by_shard(chains);
        if groups.is_empty() {
            groups.insert(0, Vec::new());
        }
        let id = SubscriptionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (sender, receiver) = mpsc::channel(self.queue);
        let missed = Arc::new(AtomicU64::new(0));
        let mut at = HashMap::new();
        for (index, chains) in groups {
            let opened = self
                .open_at(index, chains, id, sender.clone(), missed.clone())
                .await;
            match opened {
                Ok(place) => {
                    at.insert(index, place);
                }
                Err(error) => {
                    for (index, (shard_id, _)) in at {
                        let _ = self.nodes[index as usize].unsubscribe(shard_id).await;
                    }
                    return Err(error);
                }
            }
        }
        let events = merged(receiver, missed.clone());
        self.registry().insert(id, Routed { at, sender, missed });
        Ok(Subscription { id, events })
    }

    async fn change_subscription(
        &self,
        id: SubscriptionId,
        change: SubscriptionChange,
    ) -> Result<u64, NodeError> {
        let (places, sender, missed) = {
            let registry = self.registry();
            let routed = registry
                .get(&id)
                .ok_or(NodeError::UnknownSubscription(id))?;
            (
                routed.at.clone(),
                routed.sender.clone(),
                routed.missed.clone(),
            )
        };
        let mut adds = self.by_shard(change.add);
        let mut removes = self.by_shard(change.remove);
        let mut changed = places.clone();
        let touched: std::collections::BTreeSet<u32> =
            adds.keys().chain(removes.keys()).copied().collect();
        for index in touched {
            let add = adds.remove(&index).unwrap_or_default();
            let remove = removes.remove(&index).unwrap_or_default();
            let place = match places.get(&index) {
                Some((shard_id, _)) => {
                    let change = SubscriptionChange { add, remove };
                    let count = self.nodes[index as usize]
                        .change_subscription(*shard_id, change)
                        .await?;
                    (*shard_id, count)
                }
                None if add.is_empty() => continue,
                None => {
                    self.open_at(index, add, id, sender.clone(), missed.clone())
                        .await?
                }
            };
            changed.insert(index, place);
        }
        let total = changed.values().map(|(_, count)| count).sum();
        if let Some(routed) = self.registry().get_mut(&id) {
            routed.at = changed;
        }
        Ok(total)
    }

    async fn unsubscribe(&self, id: SubscriptionId) -> Result<(), NodeError> {
        let routed = self
            .registry()
            .remove(&id)
            .ok_or(NodeError::UnknownSubscription(id))?;
        for (index, (shard_id, _)) in routed.at {
            // A shard that lost the subscription already (it restarted) has nothing to close.
            let _ = self.nodes[index as usize].unsubscribe(shard_id).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
