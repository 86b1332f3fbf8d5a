//! The demo's measure of notification latency (DESIGN §4.7.1): from a validator's commit of a
//! block to a listening client's verified report of it.
//!
//! A listening client with a local node of its own follows a few of the demo's chains
//! ([`Listener`]). Beside it, the probe subscribes to every validator directly and notes when
//! each block was first announced: a validator announces a block as soon as it is durable,
//! and in process the announcement arrives at once, so that moment stands for the commit. The
//! latency of a block is the time from there to the listener's `NewBlock` event, which comes
//! after the listener's own sync has downloaded and checked the block.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use quorum_core::{BlockHeight, ChainId, Epoch, NotificationKind, StreamEvent};
use quorum_node::Genesis;
use quorum_updater::{ChainClient, ListenEvent, Listener, Options, ValidatorSet};
use tokio::task::JoinSet;

use crate::error::CliError;

/// Blocks remembered while waiting for the listener's report, at most: beyond, the oldest
/// half is forgotten (a block the listener never reports is then not counted).
const REMEMBERED_BLOCKS: usize = 100_000;

#[derive(Default)]
struct Seen {
    first: HashMap<(ChainId, BlockHeight), Instant>,
    latencies: Vec<Duration>,
}

/// A listening client and the probe's own subscriptions (see the module's documentation).
pub struct NotifyProbe {
    seen: Arc<Mutex<Seen>>,
    _listener: Listener,
    _tasks: JoinSet<()>,
}

impl NotifyProbe {
    /// Starts following `chains` of the committee of `genesis`, reached through `validators`.
    pub async fn start(
        genesis: &Genesis,
        admin: ChainId,
        validators: &ValidatorSet,
        chains: Vec<ChainId>,
        options: Options,
    ) -> Result<Self, CliError> {
        let local = super::keyless_local(genesis, admin).await?;
        let committee = local.committee(Epoch(0)).await?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut tasks = JoinSet::new();
        for remote in validators.remotes(&committee) {
            let Ok(mut subscription) = remote.node.subscribe(chains.clone()).await else {
                continue;
            };
            let seen = Arc::clone(&seen);
            tasks.spawn(async move {
                while let Some(envelope) = subscription.events.next().await {
                    let StreamEvent::Notification(signed) = envelope.event else {
                        continue;
                    };
                    let NotificationKind::NewBlock { height, .. } = signed.notification.kind else {
                        continue;
                    };
                    if signed.check(&remote.public_key).is_err() {
                        continue;
                    }
                    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                    if seen.first.len() >= REMEMBERED_BLOCKS {
                        seen.first.clear();
                    }
                    let key = (signed.notification.chain_id, height);
                    seen.first.entry(key).or_insert_with(Instant::now);
                }
            });
        }
        let client = ChainClient::new(chains[0], None, local, validators.clone(), options);
        let (listener, mut events) = Listener::start(&client, chains).await?;
        let recorded = Arc::clone(&seen);
        tasks.spawn(async move {
            while let Some(event) = events.next().await {
                let ListenEvent::NewBlock {
                    chain_id, height, ..
                } = event
                else {
                    continue;
                };
                let mut seen = recorded.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(first) = seen.first.remove(&(chain_id, height)) {
                    seen.latencies.push(first.elapsed());
                }
            }
        });
        Ok(NotifyProbe {
            seen,
            _listener: listener,
            _tasks: tasks,
        })
    }

    /// The latencies measured so far, one per block the listener reported.
    pub fn latencies(&self) -> Vec<Duration> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .latencies
            .clone()
    }
}
