//! Background catch-up of lagging validators (DESIGN §5.6): what a quorum call left a
//! validator without is delivered afterwards by one worker per validator, with one upload in
//! flight, targets merged per chain (the highest height wins), paused while the validator is
//! in its cooldown, and each job bounded by [`Options::background_catch_up`]. Memory stays
//! bounded by validators × chains, however many blocks a slow validator misses.
//!
//! [`Options::background_catch_up`]: crate::Options::background_catch_up

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::debug;

use quorum_core::{BlockHeight, ChainId, Storage, ValidatorPublicKey};

use crate::updater::ValidatorUpdater;

#[derive(Debug, Default)]
struct Queue {
    targets: BTreeMap<ChainId, BlockHeight>,
    running: bool,
}

/// The catch-up workers of a process, one per validator, shared by the clients that share
/// a local node.
#[derive(Debug, Default)]
pub struct CatchUp {
    queues: Arc<Mutex<BTreeMap<ValidatorPublicKey, Queue>>>,
}

impl CatchUp {
    /// Chains queued for `validator`, with their targets.
    pub fn queued(&self, validator: &ValidatorPublicKey) -> Vec<(ChainId, BlockHeight)> {
        self.queues
            .lock()
            .ok()
            .and_then(|queues| {
                queues
                    .get(validator)
                    .map(|queue| queue.targets.iter().map(|(c, h)| (*c, *h)).collect())
            })
            .unwrap_or_default()
    }

    /// Whether a worker runs for `validator`.
    pub fn is_running(&self, validator: &ValidatorPublicKey) -> bool {
        self.queues
            .lock()
            .ok()
            .is_some_and(|queues| queues.get(validator).is_some_and(|queue| queue.running))
    }

    /// Asks that the validator of `updater` reach `target` on `chain_id`, after what is queued
    /// already; starts its worker if none runs (this needs a tokio runtime; without one
    /// nothing is queued).
    pub fn enqueue<S: Storage + 'static>(
        &self,
        updater: ValidatorUpdater<S>,
        chain_id: ChainId,
        target: BlockHeight,
    ) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let key = updater.remote.public_key;
        let start = {
            let Ok(mut queues) = self.queues.lock() else {
                return;
            };
            let queue = queues.entry(key).or_default();
            let entry = queue.targets.entry(chain_id).or_default();
            *entry = (*entry).max(target);
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(run(self.queues.clone(), updater));
        }
    }
}

/// One validator's worker: takes all its queued targets at once, as one job, until none is
/// left.
async fn run<S: Storage + 'static>(
    queues: Arc<Mutex<BTreeMap<ValidatorPublicKey, Queue>>>,
    updater: ValidatorUpdater<S>,
) {
    let key = updater.remote.public_key;
    let budget = updater.options.background_catch_up;
    loop {
        // Paused while the validator cools down: nothing is sent to a suspect then.
        let pause = updater.remote.health.cooldown_left();
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let targets = {
            let Ok(mut queues) = queues.lock() else {
                return;
            };
            let Some(queue) = queues.get_mut(&key) else {
                return;
            };
            if queue.targets.is_empty() {
                queues.remove(&key);
                return;
            }
            std::mem::take(&mut queue.targets)
        };
        // Each job has a budget of its own: a fresh updater. Every queued chain goes in one
        // job, in an order their cross-chain messages allow.
        let job = updater.fresh();
        let chains = targets.len();
        let sent = tokio::time::timeout(budget, job.catch_up(targets)).await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(error)) => debug!(validator = ?key, chains, %error, "catch-up failed"),
            Err(_) => debug!(validator = ?key, chains, "catch-up ran out of time"),
        }
    }
}
