//! The Worker's subscribers and what it pushes to them (DESIGN §4.7.1).
//!
//! [`Notifier`] keeps, per subscription, the chains it follows and a queue bounded in entries
//! and bytes ([`NotificationConfig`]). The group commit (`worker/store.rs`) hands it the
//! writes of each commit once they are durable; it turns the writes of watched chains into
//! notifications (a stored certificate is a new block, a received-log entry a new incoming
//! bundle, a chain state in another round at the same height a new round), signs each once,
//! and queues it for every subscription of its chain. A subscription whose queue is full
//! loses the notification and its stream says so with one `Lagged { missed }` marker; nothing
//! waits for a slow subscriber, and nothing is signed for a chain nobody follows.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use quorum_core::{
    first_round, BlockHeight, ChainId, ChainState, NodeError, Notification, NotificationEnvelope,
    NotificationKind, Round, SignedNotification, StreamEvent, Subscription, SubscriptionChange,
    SubscriptionId, SubscriptionLimit, ValidatorSecretKey, Write,
};

/// Bounds of the Worker's subscriptions. Every byte a subscriber can make the node hold is
/// under one of them: a queue holds at most `min(queue_entries, queue_bytes /
/// NotificationEnvelope::MAX_ENCODED_BYTES)` notifications, and the node at most
/// `max_subscriptions` queues and `max_chains` followed chains (about 200 bytes each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationConfig {
    /// Most notifications queued for one subscription (default 128).
    pub queue_entries: usize,
    /// Most bytes of notifications queued for one subscription, counted at their encoded size
    /// (default 32 KiB).
    pub queue_bytes: usize,
    /// Most subscriptions open at the node (default 2,048).
    pub max_subscriptions: usize,
    /// Most chains one subscription follows (default 100,000).
    pub max_chains_per_subscription: usize,
    /// Most chains followed at the node, counted once per subscription that follows them
    /// (default 200,000; each costs the node about 200 bytes at its peak).
    pub max_chains: usize,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        NotificationConfig {
            queue_entries: 128,
            queue_bytes: 32 << 10,
            max_subscriptions: 2_048,
            max_chains_per_subscription: 100_000,
            max_chains: 200_000,
        }
    }
}

impl NotificationConfig {
    /// Entries a queue holds, the byte bound included (at least one).
    fn queue_capacity(&self) -> usize {
        self.queue_entries
            .min(self.queue_bytes / NotificationEnvelope::MAX_ENCODED_BYTES)
            .max(1)
    }
}

/// One item waiting in a subscriber's queue.
#[derive(Clone, Copy, Debug)]
enum Item {
    Event(SignedNotification),
    /// Notifications dropped here because the queue was full.
    Lagged(u64),
}

/// A subscriber's queue, shared by the notifier and the subscriber's stream.
#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Notifications queued (markers not counted).
    events: usize,
    /// The next envelope's number.
    sequence: u64,
    /// Set when the subscription is closed: the stream ends after what is queued.
    closed: bool,
    waker: Option<Waker>,
}

struct Subscriber {
    queue: Mutex<Queue>,
}

impl Subscriber {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event`, or counts it missed if the queue holds `capacity` already. Returns
    /// whether it was queued.
    fn push(&self, event: SignedNotification, capacity: usize) -> bool {
        let mut queue = self.queue();
        if queue.closed {
            return false;
        }
        let queued = if queue.events < capacity {
            queue.items.push_back(Item::Event(event));
            queue.events += 1;
            true
        } else {
            match queue.items.back_mut() {
                Some(Item::Lagged(missed)) => *missed = missed.saturating_add(1),
                _ => queue.items.push_back(Item::Lagged(1)),
            }
            false
        };
        if let Some(waker) = queue.waker.take() {
            waker.wake();
        }
        queued
    }

    fn close(&self) {
        let mut queue = self.queue();
        queue.closed = true;
        if let Some(waker) = queue.waker.take() {
            waker.wake();
        }
    }
}

/// Who follows what.
#[derive(Default)]
struct Registry {
    next_id: u64,
    subscribers: HashMap<SubscriptionId, (Arc<Subscriber>, HashSet<ChainId>)>,
    by_chain: HashMap<ChainId, Vec<SubscriptionId>>,
    /// Chains followed, once per subscription.
    chains: usize,
    /// The last (height, round) seen of each followed chain, to tell a new round.
    rounds: HashMap<ChainId, (BlockHeight, Round)>,
}

impl Registry {
    fn add_chain(&mut self, id: SubscriptionId, chain: ChainId) {
        self.by_chain.entry(chain).or_default().push(id);
        self.chains += 1;
    }

    fn remove_chain(&mut self, id: SubscriptionId, chain: ChainId) {
        if let Some(ids) = self.by_chain.get_mut(&chain) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_chain.remove(&chain);
                self.rounds.remove(&chain);
            }
        }
        self.chains = self.chains.saturating_sub(1);
    }

    fn remove(&mut self, id: SubscriptionId) -> Option<Arc<Subscriber>> {
        let (subscriber, chains) = self.subscribers.remove(&id)?;
        for chain in chains {
            self.remove_chain(id, chain);
        }
        Some(subscriber)
    }
}

/// A validator's subscriptions and the notifications it pushes to them: what the Worker uses
/// (its group commit calls [`Notifier::announcements`] before a commit and
/// [`Notifier::publish`] once it is durable). Usable on its own by a validator of another
/// make. Every bound is a [`NotificationConfig`] field.
pub struct Notifier {
    key: Option<ValidatorSecretKey>,
    config: NotificationConfig,
    registry: Mutex<Registry>,
}

impl Notifier {
    /// A notifier that signs with `key` (without one it refuses every subscription).
    pub fn new(key: Option<ValidatorSecretKey>, config: NotificationConfig) -> Self {
        Notifier {
            key,
            config,
            registry: Mutex::new(Registry::default()),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscriptions open.
    pub fn open(&self) -> usize {
        self.registry().subscribers.len()
    }

    /// Opens a subscription to `chains` (duplicates count once), or refuses it naming the cap
    /// it would pass.
    pub fn subscribe(self: &Arc<Self>, chains: Vec<ChainId>) -> Result<Subscription, NodeError> {
        if self.key.is_none() {
            return Err(NodeError::NotificationsUnavailable);
        }
        let chains: HashSet<ChainId> = chains.into_iter().collect();
        if chains.len() > self.config.max_chains_per_subscription {
            return Err(refused(SubscriptionLimit::ChainsPerSubscription));
        }
        let mut registry = self.registry();
        if registry.subscribers.len() >= self.config.max_subscriptions {
            return Err(refused(SubscriptionLimit::Subscriptions));
        }
        if registry.chains.saturating_add(chains.len()) > self.config.max_chains {
            return Err(refused(SubscriptionLimit::Chains));
        }
        let id = SubscriptionId(registry.next_id);
        registry.next_id += 1;
        for chain in &chains {
            registry.add_chain(id, *chain);
        }
        let subscriber = Arc::new(Subscriber {
            queue: Mutex::new(Queue::default()),
        });
        registry
            .subscribers
            .insert(id, (Arc::clone(&subscriber), chains));
        metrics::gauge!("quorum_subscriptions_open").set(registry.subscribers.len() as f64);
        Ok(Subscription {
            id,
            events: Box::pin(SubscriberStream {
                id,
                subscriber,
                notifier: Arc::downgrade(self),
            }),
        })
    }

    /// Adds and removes chains of subscription `id`; returns how many it follows now.
    pub fn change(&self, id: SubscriptionId, change: SubscriptionChange) -> Result<u64, NodeError> {
        let mut registry = self.registry();
        let Some((_, chains)) = registry.subscribers.get(&id) else {
            return Err(NodeError::UnknownSubscription(id));
        };
        let add: HashSet<ChainId> = change
            .add
            .into_iter()
            .filter(|chain| !chains.contains(chain))
            .collect();
        let remove: HashSet<ChainId> = change
            .remove
            .into_iter()
            .filter(|chain| chains.contains(chain) && !add.contains(chain))
            .collect();
        let after = chains.len() + add.len() - remove.len();
        if after > self.config.max_chains_per_subscription {
            return Err(refused(SubscriptionLimit::ChainsPerSubscription));
        }
        if registry.chains + add.len() - remove.len() > self.config.max_chains {
            return Err(refused(SubscriptionLimit::Chains));
        }
        for chain in &remove {
            registry.remove_chain(id, *chain);
        }
        for chain in &add {
            registry.add_chain(id, *chain);
        }
        if let Some((_, chains)) = registry.subscribers.get_mut(&id) {
            chains.retain(|chain| !remove.contains(chain));
            chains.extend(add);
        }
        Ok(after as u64)
    }

    /// Closes subscription `id`: its stream ends after what is queued.
    pub fn unsubscribe(&self, id: SubscriptionId) -> Result<(), NodeError> {
        let mut registry = self.registry();
        let subscriber = registry
            .remove(id)
            .ok_or(NodeError::UnknownSubscription(id))?;
        metrics::gauge!("quorum_subscriptions_open").set(registry.subscribers.len() as f64);
        drop(registry);
        subscriber.close();
        Ok(())
    }

    /// Forgets subscription `id` once its stream is dropped.
    fn dropped(&self, id: SubscriptionId) {
        let mut registry = self.registry();
        if registry.remove(id).is_some() {
            metrics::gauge!("quorum_subscriptions_open").set(registry.subscribers.len() as f64);
        }
    }

    /// What the writes of one commit announce to the chains someone follows: computed before
    /// the commit, published with [`Notifier::publish`] once it is durable.
    pub fn announcements(&self, writes: &[Write]) -> Vec<Notification> {
        let mut registry = self.registry();
        if registry.by_chain.is_empty() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for write in writes {
            match write {
                Write::Certificate(certificate)
                    if registry
                        .by_chain
                        .contains_key(&certificate.value().block().chain_id) =>
                {
                    let block = certificate.value().block();
                    found.push(Notification {
                        chain_id: block.chain_id,
                        kind: NotificationKind::NewBlock {
                            height: block.height,
                            hash: certificate.hash(),
                        },
                    });
                }
                Write::ReceivedLog(chain_id, _, entry)
                    if registry.by_chain.contains_key(chain_id) =>
                {
                    found.push(Notification {
                        chain_id: *chain_id,
                        kind: NotificationKind::NewIncomingBundle {
                            origin: entry.origin,
                            height: entry.height,
                        },
                    });
                }
                Write::ChainState(state) => {
                    if let Some(notification) = new_round(&mut registry, state) {
                        found.push(notification);
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// Signs each notification once and queues it for every subscription of its chain.
    pub fn publish(&self, notifications: Vec<Notification>) {
        let Some(key) = &self.key else {
            return;
        };
        let capacity = self.config.queue_capacity();
        for notification in notifications {
            let targets: Vec<Arc<Subscriber>> = {
                let registry = self.registry();
                let Some(ids) = registry.by_chain.get(&notification.chain_id) else {
                    continue;
                };
                ids.iter()
                    .filter_map(|id| registry.subscribers.get(id))
                    .map(|(subscriber, _)| Arc::clone(subscriber))
                    .collect()
            };
            let signed = SignedNotification::new(notification, key);
            let kind = notification.kind.name();
            for subscriber in targets {
                if subscriber.push(signed, capacity) {
                    metrics::counter!("quorum_notifications_sent_total", "kind" => kind)
                        .increment(1);
                } else {
                    metrics::counter!("quorum_notifications_lagged_total").increment(1);
                }
            }
        }
    }
}

/// A new round of a followed chain: the state is in another round than last seen at the same
/// height, or, seen for the first time, past its height's first round.
fn new_round(registry: &mut Registry, state: &ChainState) -> Option<Notification> {
    let chain_id = state.chain_id();
    if !registry.by_chain.contains_key(&chain_id) {
        return None;
    }
    let height = state.next_height();
    let round = state.manager().current_round();
    let previous = registry.rounds.insert(chain_id, (height, round));
    let changed = match previous {
        Some((seen_height, seen_round)) => seen_height == height && seen_round != round,
        None => state
            .known_description()
            .is_some_and(|description| round != first_round(description)),
    };
    changed.then_some(Notification {
        chain_id,
        kind: NotificationKind::NewRound { height, round },
    })
}

fn refused(limit: SubscriptionLimit) -> NodeError {
    metrics::counter!("quorum_subscriptions_refused_total", "cap" => limit.name()).increment(1);
    NodeError::SubscriptionLimit(limit)
}

/// The stream of one subscription; dropping it closes the subscription.
struct SubscriberStream {
    id: SubscriptionId,
    subscriber: Arc<Subscriber>,
    notifier: Weak<Notifier>,
}

impl futures_core::Stream for SubscriberStream {
    type Item = NotificationEnvelope;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut queue = self.subscriber.queue();
        let event = match queue.items.pop_front() {
            Some(Item::Event(event)) => {
                queue.events -= 1;
                StreamEvent::Notification(event)
            }
            Some(Item::Lagged(missed)) => StreamEvent::Lagged { missed },
            None if queue.closed => return Poll::Ready(None),
            None => {
                queue.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
        };
        let sequence = queue.sequence;
        queue.sequence += 1;
        Poll::Ready(Some(NotificationEnvelope { sequence, event }))
    }
}

impl Drop for SubscriberStream {
    fn drop(&mut self) {
        if let Some(notifier) = self.notifier.upgrade() {
            notifier.dropped(self.id);
        }
    }
}

#[cfg(test)]
mod tests;
