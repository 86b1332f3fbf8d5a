//! `quorum demo`: a committee on this machine, a workload of cross-chain transfers, a validator
//! that starts late and one stopped mid-run, and the updater bringing them back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::{info, warn};

use quorum_core::{ChainId, ChainInfoQuery, ValidatorNode};
use quorum_node::{MemoryStorage, SystemClock, Worker, WorkerConfig};
use quorum_transport_mem::{Fault, MemoryNode};
use quorum_transport_tcp::{ClientConfig, Server, ServerConfig, TcpValidatorNode};
use quorum_updater::{ChainClient, Options, RemoteNode, ValidatorSet};

use crate::config::Limits;
use crate::error::CliError;
use crate::setup::{self, CommitteeSetup};
use crate::summary::Summary;
use crate::validator::{self, RedbWorker};

/// The transports the demo can run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Loopback TCP, one server per validator.
    Tcp,
    /// In process, through BCS round trips.
    Mem,
}

/// Settings of the demo.
#[derive(Clone, Debug, clap::Args)]
pub struct DemoArgs {
    /// Validators in the committee.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Blocks to commit in all.
    #[arg(long, default_value_t = 200)]
    pub blocks: usize,
    /// Chains to spread them over (each pays the next).
    #[arg(long, default_value_t = 4)]
    pub chains: usize,
    /// Validators that misbehave (at most f): the first starts late, the others are stopped
    /// mid-run and restarted from their data.
    #[arg(long, default_value_t = 1)]
    pub faults: usize,
    /// Transport between client and validators.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// Where validators keep their redb databases (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Derive every key from this seed, so that runs are reproducible (insecure: the demo's
    /// keys are made in one place, for demos only). Default: the operating system's random
    /// source.
    #[arg(long = "insecure-seed", visible_alias = "seed")]
    pub insecure_seed: Option<u64>,
}

/// One validator of the demo and how it is reached.
struct DemoValidator {
    name: String,
    database: PathBuf,
    key: quorum_core::ValidatorSecretKey,
    address: String,
    worker: Option<Arc<RedbWorker>>,
    server: Option<Server>,
    mem: Option<MemoryNode>,
    history: Vec<&'static str>,
}

impl DemoValidator {
    async fn start(
        &mut self,
        genesis: &quorum_node::Genesis,
        transport: Transport,
    ) -> Result<(), CliError> {
        match transport {
            Transport::Tcp => {
                let worker = validator::open_worker(
                    &self.database,
                    genesis,
                    self.key.clone(),
                    &Limits::default(),
                )
                .await?;
                let listener = validator::bind(&self.address).await?;
                self.server = Some(validator::serve(worker, listener, ServerConfig::default())?);
            }
            Transport::Mem => {
                if let Some(node) = &self.mem {
                    node.set_fault(Fault::Honest);
                }
            }
        }
        Ok(())
    }

    async fn stop(&mut self, transport: Transport) {
        match transport {
            Transport::Tcp => {
                if let Some(server) = self.server.take() {
                    server.shutdown().await;
                }
                self.worker = None;
            }
            Transport::Mem => {
                if let Some(node) = &self.mem {
                    node.set_fault(Fault::Offline);
                }
            }
        }
    }
}

fn options() -> Options {
    Options {
        request_timeout: Duration::from_secs(3),
        deadline: Duration::from_secs(20),
        background_catch_up: Duration::from_secs(10),
        ..Options::default()
    }
}

/// Runs the demo and returns its summary.
pub async fn run(args: DemoArgs) -> Result<Summary, CliError> {
    if args.validators == 0 || args.chains < 2 || args.blocks == 0 {
        return Err(CliError::Usage(
            "the demo needs validators ≥ 1, chains ≥ 2 and blocks ≥ 1".into(),
        ));
    }
    let f = (args.validators - 1) / 3;
    if args.faults > f {
        return Err(CliError::Usage(format!(
            "{} faulty validators is more than f = {f} for {} validators",
            args.faults, args.validators
        )));
    }
    let temporary = tempfile::tempdir().map_err(|source| CliError::File {
        path: PathBuf::from("tmp"),
        source,
    })?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_owned());
    std::fs::create_dir_all(&data_dir).map_err(|source| CliError::File {
        path: data_dir.clone(),
        source,
    })?;

    // Addresses: bind now to learn free ports; listeners are re-bound when each server starts.
    let mut addresses = Vec::new();
    for _ in 0..args.validators {
        let listener = validator::bind("127.0.0.1:0").await?;
        let address = listener
            .local_addr()
            .map_err(quorum_transport_tcp::TransportError::from)?;
        addresses.push(address.to_string());
    }
    let CommitteeSetup {
        validator_keys,
        addresses,
        owners,
        genesis,
    } = setup::all_in_one(addresses, args.chains, args.insecure_seed)?;
    let admin = genesis
        .admin_chain()
        .ok_or_else(|| CliError::Usage("no chains".into()))?;
    let chains: Vec<ChainId> = genesis.chains.iter().map(|c| c.id()).collect();

    let validators = ValidatorSet::new();
    let mut nodes: Vec<DemoValidator> = Vec::new();
    for (index, (key, address)) in validator_keys.iter().zip(&addresses).enumerate() {
        let database = data_dir.join(format!("validator-{index}.redb"));
        let mut node = DemoValidator {
            name: format!("validator-{index}"),
            database,
            key: key.clone(),
            address: address.clone(),
            worker: None,
            server: None,
            mem: None,
            history: Vec::new(),
        };
        match args.transport {
            Transport::Tcp => {
                let remote = TcpValidatorNode::new(address.clone(), ClientConfig::default())?;
                validators.insert(key.public(), Arc::new(remote));
            }
            Transport::Mem => {
                let worker = validator::open_worker(
                    &node.database,
                    &genesis,
                    key.clone(),
                    &Limits::default(),
                )
                .await?;
                let memory = MemoryNode::new(
                    worker.clone() as Arc<dyn ValidatorNode>,
                    Some(key.clone()),
                    index as u64,
                )
                .with_bcs(true);
                validators.insert(key.public(), Arc::new(memory.clone()));
                node.worker = Some(worker);
                node.mem = Some(memory);
            }
        }
        nodes.push(node);
    }
    // The last `faults` validators misbehave: the first of them starts late.
    let faulty: Vec<usize> = (args.validators - args.faults..args.validators).collect();
    let late = faulty.first().copied();
    let stopped: Vec<usize> = faulty.iter().skip(1).copied().collect();
    for (index, node) in nodes.iter_mut().enumerate() {
        if Some(index) == late {
            node.history.push("started late");
            if args.transport == Transport::Mem {
                node.stop(args.transport).await;
            }
            continue;
        }
        node.start(&genesis, args.transport).await?;
    }

    let local = Arc::new(Worker::new(
        MemoryStorage::new(),
        None,
        Arc::new(SystemClock),
        WorkerConfig::new(admin),
    ));
    genesis
        .initialize(local.storage(), quorum_node::Clock::now(&SystemClock))
        .await?;
    let first = ChainClient::new(
        chains[0],
        Some(owners[0].clone()),
        local.clone(),
        validators.clone(),
        options(),
    );
    let clients: Vec<ChainClient<MemoryStorage>> = chains
        .iter()
        .zip(&owners)
        .map(|(chain, owner)| first.for_chain(*chain, Some(owner.clone())))
        .collect();

    let progress = ProgressBar::new(args.blocks as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} blocks {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, client) in clients.iter().enumerate() {
        let client = client.clone();
        let recipient = chains[(index + 1) % chains.len()];
        let quota = args.blocks / args.chains + usize::from(index < args.blocks % args.chains);
        let done = done.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            for _ in 0..quota {
                client.transfer(recipient, 1).await?;
                done.fetch_add(1, Ordering::SeqCst);
                progress.inc(1);
            }
            Ok::<(), quorum_updater::ChainClientError>(())
        });
    }

    // Faults follow the progress of the workload.
    let mut late_started = false;
    let mut stopped_now = false;
    let mut restarted = false;
    let mut failure = None;
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => {
                if let Some(Ok(Err(error))) = joined {
                    failure = Some(error);
                }
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        let fraction = done.load(Ordering::SeqCst) as f64 / args.blocks as f64;
        if !late_started && fraction >= 1.0 / 3.0 {
            late_started = true;
            if let Some(index) = late {
                progress.set_message(format!("{} joins", nodes[index].name));
                nodes[index].start(&genesis, args.transport).await?;
            }
        }
        if !stopped_now && fraction >= 0.4 {
            stopped_now = true;
            for &index in &stopped {
                progress.set_message(format!("{} stopped", nodes[index].name));
                nodes[index].stop(args.transport).await;
                nodes[index].history.push("stopped mid-run");
            }
        }
        if !restarted && fraction >= 0.7 {
            restarted = true;
            for &index in &stopped {
                progress.set_message(format!("{} restarted", nodes[index].name));
                nodes[index].start(&genesis, args.transport).await?;
                nodes[index].history.push("restarted");
            }
        }
    }
    progress.finish_with_message("workload done");
    if let Some(error) = failure {
        return Err(error.into());
    }
    let elapsed = started.elapsed();
    // Make sure every validator that misbehaved is started, then bring everyone fully up to date.
    if !late_started {
        if let Some(index) = late {
            nodes[index].start(&genesis, args.transport).await?;
        }
    }
    if stopped_now && !restarted {
        for &index in &stopped {
            nodes[index].start(&genesis, args.transport).await?;
        }
    }
    for chain in &chains {
        for (validator, error) in first.update_validators(*chain).await? {
            warn!(?validator, %error, "final catch-up failed");
        }
    }
    let committee = local.committee(quorum_core::Epoch(0)).await?;
    let stats = first.stats().clone();
    let remotes = validators.remotes(&committee);
    let mut validators_state = Vec::new();
    let mut out_of_sync = Vec::new();
    for (node, remote) in nodes.iter().zip(sorted(&remotes, &validator_keys)) {
        let in_sync = in_sync(&local, &remote, &chains).await;
        if !in_sync {
            out_of_sync.push(node.name.clone());
        }
        let history = if node.history.is_empty() {
            "honest throughout".to_string()
        } else {
            node.history.join(", ")
        };
        validators_state.push((node.name.clone(), history, in_sync));
    }
    for node in &mut nodes {
        node.stop(args.transport).await;
    }
    info!(data_dir = %data_dir.display(), "demo finished");
    let summary = Summary {
        validators: args.validators,
        chains: args.chains,
        transport: match args.transport {
            Transport::Tcp => "tcp",
            Transport::Mem => "in-process",
        },
        blocks: args.blocks,
        elapsed,
        timings: first.timings(),
        recoveries: stats.snapshot(),
        max_skew_micros: stats.max_skew(),
        validators_state,
    };
    if !out_of_sync.is_empty() {
        println!("{}", summary.render());
        return Err(CliError::OutOfSync(out_of_sync.join(", ")));
    }
    Ok(summary)
}

/// The remotes in the order of `keys`.
fn sorted(remotes: &[RemoteNode], keys: &[quorum_core::ValidatorSecretKey]) -> Vec<RemoteNode> {
    keys.iter()
        .filter_map(|key| {
            remotes
                .iter()
                .find(|r| r.public_key == key.public())
                .cloned()
        })
        .collect()
}

/// Whether `remote` has every chain exactly as the local node has it.
async fn in_sync(local: &Worker<MemoryStorage>, remote: &RemoteNode, chains: &[ChainId]) -> bool {
    for chain in chains {
        let Ok(state) = local.chain_state(*chain).await else {
            return false;
        };
        match remote
            .node
            .handle_chain_info_query(ChainInfoQuery::new(*chain))
            .await
        {
            Ok(response) => {
                if response.info.next_block_height != state.next_height
                    || response.info.block_hash != state.tip_hash
                {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}
