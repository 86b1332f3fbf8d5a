//! [`Listener`]: follows chains on what validators push (DESIGN §4.7.1, §5.8 "Listening").
//!
//! One subscription per validator for the whole process, whatever the number of chains
//! followed: following or leaving a chain changes the subscriptions' chain sets. Each
//! validator has a task that keeps its subscription alive (resubscribing with backoff, its
//! circuit breaker open after repeated failures) and checks what arrives: the envelopes'
//! numbering ([`SequenceCheck`]) and the validator's signature. A gap, a replay, an
//! out-of-order envelope or a bad signature is not the validator's fault as far as anyone can
//! prove (the envelopes are not signed, the path is not authenticated): the task counts it,
//! resubscribes and has every followed chain synchronized. A valid hint goes to the sync task
//! (`listener/sync.rs`), which synchronizes the chain from the validators and then checks the
//! hint against what it learned; a signed hint that proves false marks its validator
//! Byzantine. Nothing changes in the local node because of a hint's content: only syncs
//! change it, and the [`ListenEvent`]s report what they changed.

mod sync;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use quorum_core::{
    BlockHeight, ChainId, CryptoHash, Epoch, Notification, ReceivedEntry, Round, SequenceCheck,
    SequenceVerdict, Storage, StreamEvent, Subscription, SubscriptionChange, SubscriptionId,
    ValidatorPublicKey,
};
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::chain_client::{ChainClient, ChainClientError};
use crate::options::ListenOptions;
use crate::remote::RemoteNode;

use sync::Syncer;

/// Events a [`Listener`] buffers for its reader; beyond, its syncs wait for the reader.
const EVENT_BUFFER: usize = 1_024;

/// What a [`Listener`] reports: what its syncs changed in the local node, and the state of
/// its subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenEvent {
    /// A block of a followed chain is now in the local node.
    NewBlock {
        /// The chain.
        chain_id: ChainId,
        /// The block's height.
        height: BlockHeight,
        /// Its certificate's hash.
        hash: CryptoHash,
    },
    /// A bundle sent to a followed chain is now in its local inbox.
    Received {
        /// The receiving chain.
        chain_id: ChainId,
        /// The sending block.
        entry: ReceivedEntry,
    },
    /// A followed chain moved to another round at the same height.
    NewRound {
        /// The chain.
        chain_id: ChainId,
        /// Its next block height.
        height: BlockHeight,
        /// Its round now.
        round: Round,
    },
    /// A subscription to the validator is open (again).
    Connected(ValidatorPublicKey),
    /// The subscription to the validator ended or could not be opened; the listener tries
    /// again.
    Disconnected {
        /// The validator.
        validator: ValidatorPublicKey,
        /// Why, for the log.
        reason: String,
    },
    /// A hint the validator signed proved false: it is marked Byzantine and its hints are
    /// ignored for [`ListenOptions::byzantine_cooldown`].
    FalseHint {
        /// The validator.
        validator: ValidatorPublicKey,
        /// What it announced.
        hint: Notification,
    },
}

/// Follows a set of chains on the notifications of every validator (see the module's
/// documentation). Dropping it stops every subscription and sync.
pub struct Listener {
    chains: watch::Sender<Arc<BTreeSet<ChainId>>>,
    _tasks: JoinSet<()>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("chains", &self.chains.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Starts following `chains` with `client`'s local node, validators and options (the
    /// client's own chain is not added). The validators are the committee of the latest epoch
    /// the local node knows, and then the members of every later epoch its syncs learn of.
    /// Returns the listener and its events, a stream that ends when the listener is dropped.
    pub async fn start<S: Storage + 'static>(
        client: &ChainClient<S>,
        chains: impl IntoIterator<Item = ChainId>,
    ) -> Result<(Listener, BoxStream<'static, ListenEvent>), ChainClientError> {
        let admin = client.local().chain_state(client.admin_chain()).await?;
        let epoch = sync::latest_epoch(client.local(), admin.epoch()).await;
        let (_, remotes) = client.committee_and_remotes(epoch).await?;
        let (chains, watched) = watch::channel(Arc::new(chains.into_iter().collect()));
        let (events, received) = mpsc::channel(EVENT_BUFFER);
        let options = client.options().listen.clone();
        let (epochs, new_epochs) = watch::channel(epoch);
        let syncer = Arc::new(Syncer::new(
            client.clone(),
            watched.clone(),
            events.clone(),
            options.clone(),
            epochs,
        ));
        let mut tasks = JoinSet::new();
        tasks.spawn(Arc::clone(&syncer).run());
        let committees = Committees {
            client: client.clone(),
            chains: watched,
            syncer,
            events,
            options,
            subscribed: BTreeSet::new(),
            subscribers: JoinSet::new(),
        };
        tasks.spawn(committees.run(remotes, new_epochs));
        Ok((
            Listener {
                chains,
                _tasks: tasks,
            },
            events_of(received),
        ))
    }

    /// Follows `chain` too (its sync starts at once).
    pub fn follow(&self, chain: ChainId) {
        self.chains.send_if_modified(|chains| {
            if chains.contains(&chain) {
                return false;
            }
            Arc::make_mut(chains).insert(chain);
            true
        });
    }

    /// Stops following `chain`.
    pub fn leave(&self, chain: ChainId) {
        self.chains.send_if_modified(|chains| {
            if !chains.contains(&chain) {
                return false;
            }
            Arc::make_mut(chains).remove(&chain);
            true
        });
    }

    /// The chains followed.
    pub fn chains(&self) -> Vec<ChainId> {
        self.chains.borrow().iter().copied().collect()
    }
}

/// Keeps one subscriber per validator of the committee, adding the members of each new
/// epoch the local node learns (an old member's subscription stays while it serves).
struct Committees<S> {
    client: ChainClient<S>,
    chains: watch::Receiver<Arc<BTreeSet<ChainId>>>,
    syncer: Arc<Syncer<S>>,
    events: mpsc::Sender<ListenEvent>,
    options: ListenOptions,
    subscribed: BTreeSet<ValidatorPublicKey>,
    subscribers: JoinSet<()>,
}

impl<S: Storage + 'static> Committees<S> {
    async fn run(mut self, remotes: Vec<RemoteNode>, mut epochs: watch::Receiver<Epoch>) {
        self.subscribe(remotes);
        while epochs.changed().await.is_ok() {
            let epoch = *epochs.borrow_and_update();
            match self.client.committee_and_remotes(epoch).await {
                Ok((_, remotes)) => {
                    info!(?epoch, "listening to the committee of a new epoch");
                    self.subscribe(remotes);
                }
                Err(error) => warn!(?epoch, %error, "cannot reach the new epoch's committee"),
            }
        }
    }

    /// Starts a subscriber for each of `remotes` not subscribed to yet.
    fn subscribe(&mut self, remotes: Vec<RemoteNode>) {
        for remote in remotes {
            if !self.subscribed.insert(remote.public_key) {
                continue;
            }
            let seed = self.options.seed ^ self.subscribed.len() as u64;
            let subscriber = Subscriber {
                remote,
                chains: self.chains.clone(),
                syncer: Arc::clone(&self.syncer),
                events: self.events.clone(),
                options: self.options.clone(),
                request_timeout: self.client.options().request_timeout,
                rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            };
            self.subscribers.spawn(subscriber.run());
        }
    }
}

/// Why a subscription was left.
enum Left {
    /// Its stream ended (the validator or the connection went away).
    Ended,
    /// Something arrived that calls for a new subscription and a sync of everything.
    Suspicious(&'static str),
    /// The chain set could not be changed on it.
    ChangeFailed(String),
    /// The listener is gone.
    Stopped,
}

/// One validator's subscription, kept alive.
struct Subscriber<S> {
    remote: RemoteNode,
    chains: watch::Receiver<Arc<BTreeSet<ChainId>>>,
    syncer: Arc<Syncer<S>>,
    events: mpsc::Sender<ListenEvent>,
    options: ListenOptions,
    request_timeout: Duration,
    rng: rand_chacha::ChaCha8Rng,
}

impl<S: Storage + 'static> Subscriber<S> {
    async fn run(mut self) {
        let validator = self.remote.public_key;
        let mut failures = 0u32;
        loop {
            let chains = self.chains.borrow_and_update().clone();
            let opened = tokio::time::timeout(
                self.request_timeout,
                self.remote.node.subscribe(chains.iter().copied().collect()),
            )
            .await;
            let reason = match opened {
                Ok(Ok(subscription)) => {
                    let opened_at = tokio::time::Instant::now();
                    info!(?validator, "subscribed");
                    if self
                        .events
                        .send(ListenEvent::Connected(validator))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    // Whatever happened while we were not subscribed.
                    self.syncer.sync_all();
                    let left = self.read(subscription, chains).await;
                    // A subscription that did not last counts as a failure, so that a
                    // validator (or a path) that keeps ending them cannot make the listener
                    // subscribe and sync everything again and again.
                    if opened_at.elapsed() >= self.options.stable_after {
                        failures = 0;
                    }
                    failures = failures.saturating_add(1);
                    match left {
                        Left::Stopped => return,
                        Left::Ended => "the subscription ended".to_owned(),
                        Left::ChangeFailed(error) => format!("changing its chains failed: {error}"),
                        Left::Suspicious(what) => {
                            metrics::counter!("quorum_notifications_invalid_total", "reason" => what)
                                .increment(1);
                            debug!(
                                ?validator,
                                what, "resubscribing after a suspicious notification"
                            );
                            format!("resubscribing after a {what}")
                        }
                    }
                }
                Ok(Err(error)) => {
                    failures = failures.saturating_add(1);
                    format!("subscription refused: {error}")
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    format!("no answer within {:?}", self.request_timeout)
                }
            };
            let disconnected = ListenEvent::Disconnected {
                validator,
                reason: reason.clone(),
            };
            if self.events.send(disconnected).await.is_err() {
                return;
            }
            let delay = if failures >= self.options.breaker_failures.max(1) {
                warn!(?validator, failures, "circuit breaker open: {reason}");
                self.options.breaker_cooldown
            } else {
                self.options
                    .resubscribe
                    .delay(failures.max(1), &mut self.rng)
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// Reads `subscription` (opened for `subscribed`) until it must be left.
    async fn read(
        &mut self,
        mut subscription: Subscription,
        mut subscribed: Arc<BTreeSet<ChainId>>,
    ) -> Left {
        let mut sequence = SequenceCheck::new();
        loop {
            tokio::select! {
                changed = self.chains.changed() => {
                    if changed.is_err() {
                        return Left::Stopped;
                    }
                    let wanted = self.chains.borrow_and_update().clone();
                    let change = SubscriptionChange {
                        add: wanted.difference(&subscribed).copied().collect(),
                        remove: subscribed.difference(&wanted).copied().collect(),
                    };
                    let changed = tokio::time::timeout(
                        self.request_timeout,
                        self.remote.node.change_subscription(subscription.id, change),
                    )
                    .await;
                    match changed {
                        Ok(Ok(_)) => subscribed = wanted,
                        Ok(Err(error)) => return Left::ChangeFailed(error.to_string()),
                        Err(_) => return Left::ChangeFailed("no answer".to_owned()),
                    }
                }
                item = subscription.events.next() => {
                    let Some(envelope) = item else {
                        return Left::Ended;
                    };
                    match sequence.observe(envelope.sequence) {
                        SequenceVerdict::InOrder => {}
                        SequenceVerdict::Gap { .. } => return self.suspicious(subscription.id, "gap").await,
                        SequenceVerdict::Stale => return self.suspicious(subscription.id, "replay").await,
                    }
                    match envelope.event {
                        StreamEvent::Lagged { missed } => {
                            debug!(validator = ?self.remote.public_key, missed, "lagged: syncing every chain");
                            self.syncer.sync_all();
                        }
                        StreamEvent::Notification(signed) => {
                            if signed.check(&self.remote.public_key).is_err() {
                                return self.suspicious(subscription.id, "bad_signature").await;
                            }
                            self.syncer.hint(&self.remote, signed.notification);
                        }
                    }
                }
            }
        }
    }

    /// Leaves a subscription on which something suspicious arrived: closed at the
    /// validator (best effort) and every chain synced.
    async fn suspicious(&self, id: SubscriptionId, what: &'static str) -> Left {
        let closing = self.remote.node.unsubscribe(id);
        drop(tokio::time::timeout(self.request_timeout, closing).await);
        self.syncer.sync_all();
        Left::Suspicious(what)
    }
}

/// The events `received` brings, as a stream that ends once every sender is gone.
fn events_of(received: mpsc::Receiver<ListenEvent>) -> BoxStream<'static, ListenEvent> {
    futures::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|event| (event, received))
    })
    .boxed()
}
