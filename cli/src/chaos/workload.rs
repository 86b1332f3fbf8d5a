//! The workload of a chaos run: one task per client, each with its own local node and its own
//! connections, as separate client processes would have, transferring to random chains and
//! taking in what it receives. Every block a client sees certified goes into its journal,
//! synced to disk, before the client counts it.
//!
//! A client restart aborts the client's task wherever it is (mid-operation, mid-sync) and
//! starts a new one with nothing in memory but its key: a fresh local node that learns its
//! chain from the validators, as a killed and restarted client process would.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::debug;

use quorum_chaos::{Acknowledgement, Journal};
use quorum_core::ChainId;
use quorum_node::Genesis;
use quorum_updater::{ChainClient, ValidatorSet};

use super::committee::ClientPlan;
use super::{client_options, remote_set};
use crate::demo::keyless_local;
use crate::error::CliError;

/// Every how many operations a client synchronizes its chain and what it received.
const SYNC_EVERY: u64 = 4;
/// How long a client pauses after a failed operation.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How long a stopping client may finish its operation before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// What the clients have done so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Operations acknowledged (and journaled).
    pub acknowledged: AtomicUsize,
    /// Operations that failed (and were tried again).
    pub failed: AtomicUsize,
}

/// Everything a client task needs, kept to start it again.
#[derive(Clone)]
struct ClientSetup {
    plan: ClientPlan,
    chains: Vec<ChainId>,
    genesis: Genesis,
    admin: ChainId,
    addresses: Vec<(quorum_core::ValidatorPublicKey, String)>,
    journal: PathBuf,
    seed: u64,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
}

/// The running clients.
pub struct Workload {
    setups: Vec<ClientSetup>,
    tasks: Vec<JoinHandle<()>>,
    restarts: Vec<u64>,
    stop: watch::Sender<bool>,
    /// What they did.
    pub counters: Arc<Counters>,
    /// Clients whose task panicked, with what it said.
    pub panicked: Vec<(String, String)>,
}

impl Workload {
    /// Starts one task per client of `plans`. `addresses` are the validators' committee
    /// addresses (their proxies); journals go into `journal_dir`.
    pub fn start(
        plans: &[ClientPlan],
        chains: Vec<ChainId>,
        genesis: &Genesis,
        addresses: Vec<(quorum_core::ValidatorPublicKey, String)>,
        journal_dir: PathBuf,
        seed: u64,
    ) -> Result<Workload, CliError> {
        let admin = genesis.admin_chain().ok_or(CliError::NoChains)?;
        let (stop, stopped) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let setups: Vec<ClientSetup> = plans
            .iter()
            .map(|plan| ClientSetup {
                plan: plan.clone(),
                chains: chains.clone(),
                genesis: genesis.clone(),
                admin,
                addresses: addresses.clone(),
                journal: journal_dir.join(format!("client-{}.journal", plan.index)),
                seed,
                counters: counters.clone(),
                stop: stopped.clone(),
            })
            .collect();
        let tasks = setups
            .iter()
            .map(|setup| tokio::spawn(run_client(setup.clone(), 0)))
            .collect();
        Ok(Workload {
            restarts: vec![0; setups.len()],
            setups,
            tasks,
            stop,
            counters,
            panicked: Vec::new(),
        })
    }

    /// The journal files, one per client.
    pub fn journals(&self) -> Vec<PathBuf> {
        self.setups
            .iter()
            .map(|setup| setup.journal.clone())
            .collect()
    }

    /// Kills client `index` wherever it is and starts it again with nothing in memory.
    pub async fn restart(&mut self, index: usize) {
        let (Some(task), Some(setup)) = (self.tasks.get_mut(index), self.setups.get(index)) else {
            return;
        };
        task.abort();
        let old = std::mem::replace(task, tokio::spawn(std::future::pending()));
        if let Err(error) = old.await {
            if error.is_panic() {
                self.panicked
                    .push((format!("client-{index}"), format!("{error}")));
            }
        }
        self.restarts[index] += 1;
        *task = tokio::spawn(run_client(setup.clone(), self.restarts[index]));
    }

    /// Tells every client to stop after its operation, waits (each at most
    /// [`STOP_GRACE`]), and aborts the rest.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        for (index, task) in self.tasks.iter_mut().enumerate() {
            match tokio::time::timeout(STOP_GRACE, &mut *task).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) if error.is_panic() => self
                    .panicked
                    .push((format!("client-{index}"), format!("{error}"))),
                Ok(Err(_)) => {}
                Err(_) => {
                    debug!(client = index, "client still busy at the end; aborted");
                    task.abort();
                }
            }
        }
    }
}

/// One client's life: until told to stop, transfers a small amount to a random other chain,
/// every few operations first synchronizing its chain and its received messages (which the
/// next block consumes).
async fn run_client(setup: ClientSetup, incarnation: u64) {
    let index = setup.plan.index;
    let mut rng = StdRng::seed_from_u64(
        setup.seed ^ (index as u64).rotate_left(32) ^ incarnation.rotate_left(48),
    );
    let client = match new_client(&setup).await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(client = index, %error, "client could not start");
            return;
        }
    };
    let mut journal = match Journal::open(&setup.journal) {
        Ok(journal) => journal,
        Err(error) => {
            tracing::error!(client = index, %error, "client has no journal");
            return;
        }
    };
    let others: Vec<ChainId> = setup
        .chains
        .iter()
        .copied()
        .filter(|chain| *chain != setup.plan.chain)
        .collect();
    let mut operations = 0u64;
    while !*setup.stop.borrow() {
        if operations.is_multiple_of(SYNC_EVERY) {
            if let Err(error) = client.synchronize_from_validators().await {
                debug!(client = index, %error, "sync failed");
            }
        }
        operations += 1;
        let recipient = others[rng.gen_range(0..others.len())];
        let amount = rng.gen_range(1..=5);
        match client.transfer(recipient, amount).await {
            Ok(certificate) => {
                let block = certificate.value().inner().block();
                let acknowledgement = Acknowledgement {
                    client: index,
                    chain: block.chain_id,
                    height: block.height,
                    hash: certificate.hash(),
                };
                // The journal syncs to disk before the operation counts.
                let written = tokio::task::block_in_place(|| journal.append(&acknowledgement));
                if let Err(error) = written {
                    tracing::error!(client = index, %error, "journal write failed; client stops");
                    return;
                }
                setup.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                debug!(client = index, %error, "transfer failed");
                setup.counters.failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// A client with a fresh local node and its own connections.
async fn new_client(
    setup: &ClientSetup,
) -> Result<ChainClient<quorum_node::MemoryStorage>, CliError> {
    let local = keyless_local(&setup.genesis, setup.admin).await?;
    let validators: ValidatorSet = remote_set(&setup.addresses)?;
    Ok(ChainClient::new(
        setup.plan.chain,
        Some(setup.plan.owner.clone()),
        local,
        validators,
        client_options(),
    ))
}
