//! Group commit (DESIGN §4.5.1): the Worker's writes are queued, and every write queued while a
//! commit is in flight goes into the next one, so blocks of different chains that are ready at
//! the same moment share one storage transaction and one fsync.
//!
//! [`Store`] wraps the Worker's storage. Its `write_batch` only queues the batch (and makes it
//! visible to the Store's own reads at once, so that the next request computes on top of it);
//! [`Store::flush`] waits until everything queued so far is committed, and every handler of
//! the Worker flushes before it answers, so nothing is acknowledged, and no vote leaves the
//! node, before it is durable. One commit runs at a time, in a task of its own: a request that
//! gives up while waiting never cancels a commit, and the writes of a commit stay readable
//! until it has landed.
//!
//! A failed commit poisons the store: the writes queued after it were computed on top of it,
//! so they fail too, and so does every later write, until the node is restarted from what its
//! storage holds.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use thiserror::Error;
use tokio::sync::watch;

use quorum_core::{
    Batch, Blob, BlobId, BlobState, BlockHeight, ChainId, ChainState, Committee,
    ConfirmedBlockCertificate, CryptoHash, Epoch, EventId, OutboxEntry, ReceivedEntry, Storage,
    StorageError, StorageErrorKind, Write,
};

use crate::memory::MemoryStorage;
use crate::notifier::Notifier;
use crate::overlay::Overlay;

/// Why a write was refused after a commit failed.
#[derive(Debug, Error)]
#[error("an earlier commit failed ({0}); the node must be restarted from its storage")]
struct Poisoned(String);

/// The Worker's storage with its queue of writes not yet committed.
pub(crate) struct Store<S> {
    storage: Arc<S>,
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Committed chain states, so that reading one costs no storage read.
    states: Mutex<StateCache>,
    /// Batches committed so far (by number, in the order queued).
    committed: watch::Sender<Progress>,
    /// Told what each commit announces once it is durable.
    notifier: Arc<Notifier>,
}

#[derive(Clone, Debug, Default)]
struct Progress {
    committed: u64,
    /// Set once a commit failed: its error, as text.
    poisoned: Option<String>,
}

/// Most chain states kept in [`StateCache`]; past it the cache starts again empty.
const CACHED_CHAIN_STATES: usize = 1_024;

/// Chain states as committed, the most read values of a node. Filled by commits and by reads
/// of the storage; a read fills it only if no commit landed while it read (`commits`), so it
/// never holds a state older than the storage's.
#[derive(Default)]
struct StateCache {
    states: std::collections::HashMap<ChainId, Arc<ChainState>>,
    /// Commits landed so far.
    commits: u64,
}

impl StateCache {
    fn insert(&mut self, state: Arc<ChainState>) {
        if self.states.len() >= CACHED_CHAIN_STATES && !self.states.contains_key(&state.chain_id())
        {
            self.states.clear();
        }
        self.states.insert(state.chain_id(), state);
    }
}

#[derive(Default)]
struct Queue {
    /// Batches queued so far (by number).
    queued: u64,
    /// Writes queued and not yet taken by a commit, in order.
    writes: Vec<Write>,
    /// Batches among them.
    batches: usize,
    /// The same writes, readable.
    current: MemoryStorage,
    /// The writes of the commit in flight, readable until it has landed.
    committing: MemoryStorage,
    /// Whether a commit task runs.
    leader: bool,
}

impl<S: Storage + 'static> Store<S> {
    pub(crate) fn new(storage: S, notifier: Arc<Notifier>) -> Self {
        Store {
            storage: Arc::new(storage),
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                states: Mutex::new(StateCache::default()),
                committed: watch::Sender::new(Progress::default()),
                notifier,
            }),
        }
    }

    /// The storage itself (what is committed, without the queue).
    pub(crate) fn storage(&self) -> &S {
        &self.storage
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while the lock is held; the queue stays consistent.
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn states(&self) -> MutexGuard<'_, StateCache> {
        self.shared
            .states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The queued writes over the storage: what every read sees.
    fn view(&self) -> (MemoryStorage, MemoryStorage) {
        let queue = self.queue();
        (queue.current.clone(), queue.committing.clone())
    }

    /// Queues `batch` (readable at once) and starts a commit if none runs.
    fn enqueue(&self, batch: Batch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let start = {
            let mut queue = self.queue();
            // Checked under the queue's lock: a failed commit marks the store poisoned before
            // it clears the queue, so no batch slips in between to be committed on top of it.
            if let Some(error) = self.shared.committed.borrow().poisoned.clone() {
                return Err(poisoned(error));
            }
            queue.current.apply(&batch);
            queue.writes.extend(batch.writes);
            queue.batches += 1;
            queue.queued += 1;
            !std::mem::replace(&mut queue.leader, true)
        };
        if start {
            tokio::spawn(commit_loop(self.storage.clone(), self.shared.clone()));
        }
        Ok(())
    }

    /// A chain's state as every read sees it, shared with the queue or the cache that holds
    /// it (no copy): queued writes first, then the committed states cached, then the storage.
    pub(crate) async fn shared_chain_state(
        &self,
        chain_id: ChainId,
    ) -> Result<Option<Arc<ChainState>>, StorageError> {
        let (current, committing) = self.view();
        for layer in [current, committing] {
            if let Some(state) = layer.shared_chain_state(chain_id) {
                return Ok(Some(state));
            }
        }
        let commits = {
            let cache = self.states();
            if let Some(state) = cache.states.get(&chain_id) {
                return Ok(Some(state.clone()));
            }
            cache.commits
        };
        let Some(read) = self.storage.read_chain_state(chain_id).await? else {
            return Ok(None);
        };
        let read = Arc::new(read);
        let mut cache = self.states();
        if cache.commits == commits {
            cache.insert(read.clone());
        }
        Ok(Some(read))
    }

    /// Waits until every batch queued so far is committed.
    pub(crate) async fn flush(&self) -> Result<(), StorageError> {
        let target = self.queue().queued;
        let mut progress = self.shared.committed.subscribe();
        let reached = progress
            .wait_for(|p| p.committed >= target || p.poisoned.is_some())
            .await
            .map_err(|_| poisoned("the commit task is gone".to_owned()))?;
        match &reached.poisoned {
            Some(error) if reached.committed < target => Err(poisoned(error.clone())),
            _ => Ok(()),
        }
    }
}

fn poisoned(error: String) -> StorageError {
    StorageError {
        kind: StorageErrorKind::Write,
        source: Box::new(Poisoned(error)),
    }
}

/// Commits what is queued, group after group, until the queue is empty.
async fn commit_loop<S: Storage + 'static>(storage: Arc<S>, shared: Arc<Shared>) {
    loop {
        let (batch, batches, through, states) = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.writes.is_empty() {
                queue.leader = false;
                queue.committing = MemoryStorage::new();
                return;
            }
            let writes = std::mem::take(&mut queue.writes);
            let batches = std::mem::take(&mut queue.batches);
            let states: Vec<Arc<ChainState>> = writes
                .iter()
                .filter_map(|write| match write {
                    Write::ChainState(state) => Some(state.clone()),
                    _ => None,
                })
                .collect();
            // The group's writes stay readable while they commit; new ones go on top.
            queue.committing = std::mem::take(&mut queue.current);
            (Batch { writes }, batches, queue.queued, states)
        };
        // What the group announces, told to subscribers only once it is durable.
        let announced = shared.notifier.announcements(&batch.writes);
        let started = Instant::now();
        // In a task of its own, so that a storage that panics poisons the store instead of
        // leaving every waiter waiting.
        let committing = storage.clone();
        let result = match tokio::spawn(async move { committing.write_batch(batch).await }).await {
            Ok(result) => result,
            Err(failure) => Err(StorageError {
                kind: StorageErrorKind::Write,
                source: Box::new(Poisoned(format!("the commit task failed: {failure}"))),
            }),
        };
        metrics::histogram!("quorum_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("quorum_commit_group_size").record(batches as f64);
        match result {
            Ok(()) => {
                {
                    let mut cache = shared.states.lock().unwrap_or_else(PoisonError::into_inner);
                    cache.commits += 1;
                    for state in states {
                        cache.insert(state);
                    }
                }
                shared.committed.send_modify(|p| p.committed = through);
                shared.notifier.publish(announced);
            }
            Err(error) => {
                tracing::error!(%error, "group commit failed: the node refuses every write from now on");
                // Poisoned first, then the queue cleared (see `Store::enqueue`).
                shared
                    .committed
                    .send_modify(|p| p.poisoned = Some(error.to_string()));
                let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
                *queue = Queue {
                    queued: queue.queued,
                    ..Queue::default()
                };
                return;
            }
        }
    }
}

/// Runs a read on the queued writes over the storage.
macro_rules! read_through {
    ($store:expr, $method:ident ( $($arg:expr),* )) => {{
        let (current, committing) = $store.view();
        let committed = Overlay::with_changes(&*$store.storage, committing);
        Overlay::with_changes(&committed, current).$method($($arg),*).await
    }};
}

#[async_trait]
impl<S: Storage + 'static> Storage for Store<S> {
    async fn read_certificate(
        &self,
        hash: CryptoHash,
    ) -> Result<Option<ConfirmedBlockCertificate>, StorageError> {
        read_through!(self, read_certificate(hash))
    }

    async fn read_certificate_hashes(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<CryptoHash>>, StorageError> {
        read_through!(self, read_certificate_hashes(chain_id, heights))
    }

    async fn read_certificates_by_heights(
        &self,
        chain_id: ChainId,
        heights: &[BlockHeight],
    ) -> Result<Vec<Option<ConfirmedBlockCertificate>>, StorageError> {
        read_through!(self, read_certificates_by_heights(chain_id, heights))
    }

    async fn read_blob(&self, id: BlobId) -> Result<Option<Blob>, StorageError> {
        read_through!(self, read_blob(id))
    }

    async fn missing_blobs(&self, ids: &[BlobId]) -> Result<Vec<BlobId>, StorageError> {
        read_through!(self, missing_blobs(ids))
    }

    async fn read_blob_state(&self, id: BlobId) -> Result<Option<BlobState>, StorageError> {
        read_through!(self, read_blob_state(id))
    }

    async fn read_event(&self, id: &EventId) -> Result<Option<Vec<u8>>, StorageError> {
        read_through!(self, read_event(id))
    }

    async fn read_chain_state(
        &self,
        chain_id: ChainId,
    ) -> Result<Option<ChainState>, StorageError> {
        Ok(self
            .shared_chain_state(chain_id)
            .await?
            .map(Arc::unwrap_or_clone))
    }

    async fn read_committee(&self, epoch: Epoch) -> Result<Option<Committee>, StorageError> {
        read_through!(self, read_committee(epoch))
    }

    async fn read_received_log(
        &self,
        chain_id: ChainId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<ReceivedEntry>, StorageError> {
        read_through!(self, read_received_log(chain_id, from, limit))
    }

    async fn read_outbox(&self, lane: u32, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        read_through!(self, read_outbox(lane, limit))
    }

    /// Queues the batch; it is durable once [`Store::flush`] returns.
    async fn write_batch(&self, batch: Batch) -> Result<(), StorageError> {
        self.enqueue(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use quorum_core::{
        ChainDescription, ChainOrigin, ChainState, ConsensusConfig, Epoch, Timestamp,
    };

    /// A chain state of balance `balance`: a genesis chain's, activated.
    fn state(chain: u8, balance: u64) -> Write {
        let description = ChainDescription {
            origin: ChainOrigin::Genesis(u32::from(chain)),
            owners: BTreeMap::new(),
            super_owner: None,
            epoch: Epoch(0),
            timestamp: Timestamp(0),
            consensus: ConsensusConfig::default(),
            balance,
        };
        let mut state = ChainState::inactive(ChainId(CryptoHash([chain; 32])));
        state.activate(description, Timestamp(0));
        Write::ChainState(Arc::new(state))
    }

    fn chain(chain: u8) -> ChainId {
        ChainId(CryptoHash([chain; 32]))
    }

    #[tokio::test]
    async fn queued_writes_are_read_at_once_and_committed_together() {
        let base = MemoryStorage::new();
        let notifier = Arc::new(Notifier::new(None, Default::default()));
        let store = Store::new(base.clone(), notifier);
        for balance in 1..=3u64 {
            store
                .write_batch(Batch {
                    writes: vec![state(1, balance)],
                })
                .await
                .unwrap();
            let read = store.read_chain_state(chain(1)).await.unwrap().unwrap();
            assert_eq!(read.balance(), balance, "the newest queued write wins");
        }
        store.flush().await.unwrap();
        let durable = base.read_chain_state(chain(1)).await.unwrap().unwrap();
        assert_eq!(durable.balance(), 3);
        assert_eq!(store.shared.committed.borrow().committed, 3);
        let queue = store.queue();
        assert!(queue.writes.is_empty() && !queue.leader);
    }
}
