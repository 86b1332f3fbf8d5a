//! `quorum demo`: a committee on this machine, a workload of cross-chain transfers, validators
//! that misbehave (one that starts late, one stopped mid-run, one that stops answering; see
//! [`fault_plan`]), and the updater bringing them back.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::{info, warn};

use quorum_core::{
    AccountSecretKey, ChainId, ChainInfoQuery, ValidatorInfo, ValidatorNode, ValidatorSecretKey,
};
use quorum_node::{Genesis, MemoryStorage, SystemClock, Worker, WorkerConfig};
use quorum_transport_mem::MemoryNode;
use quorum_transport_tcp::ClientConfig;
use quorum_updater::{ChainClient, Options, RemoteNode, ValidatorSet};

use crate::address::{Clients, Scheme};
use crate::demo::summary::{Summary, ValidatorRow};
use crate::error::CliError;
use crate::operator::setup::{self, CommitteeSetup};
use crate::operator::validator;
use crate::operator::validator_config::LimitsConfig;
use fault_plan::{FaultKind, FAULT_AT, LATE_START_AT, RECOVER_AT};
use health_watch::HealthWatch;
use member::DemoValidator;
use notify_probe::NotifyProbe;

mod args;
mod fault_plan;
mod free_ports;
mod health_watch;
mod member;
mod notify_probe;
mod storage;
pub(crate) mod summary;

use args::check_args;
use args::free_addresses_over;
pub use args::{DemoArgs, Transport};

/// How often the demo looks at the workload's progress and the validators' health (20 ms).
const TICK: Duration = Duration::from_millis(20);
/// Timeout of one request to one validator in the demo (1 s): short enough that a validator
/// that stops answering is suspect within a few seconds of the workload.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// The clients' options: 1 s requests, a 20 s overall deadline (also `quorum chaos`'s).
pub(crate) fn options() -> Options {
    Options {
        request_timeout: REQUEST_TIMEOUT,
        deadline: Duration::from_secs(20),
        background_catch_up: Duration::from_secs(10),
        ..Options::default()
    }
}

/// The clients' transport settings (also `quorum chaos`'s).
pub(crate) fn client_config() -> ClientConfig {
    ClientConfig {
        request_timeout: REQUEST_TIMEOUT,
        connect_timeout: REQUEST_TIMEOUT,
        ..ClientConfig::default()
    }
}

/// Where a planned fault stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not happened yet.
    Waiting,
    /// The validator is stopped or hung.
    Active,
    /// Over: the validator serves.
    Done,
}

/// One validator's fault and where it stands.
struct Planned {
    index: usize,
    kind: FaultKind,
    stage: Stage,
}

/// Moves `planned` on if the workload has gone `fraction` of the way far enough; returns what
/// happened, for the progress bar.
async fn advance(
    planned: &mut Planned,
    nodes: &mut [DemoValidator],
    fraction: f64,
    genesis: &Genesis,
    transport: Transport,
) -> Result<Option<String>, CliError> {
    let Some(node) = nodes.get_mut(planned.index) else {
        planned.stage = Stage::Done;
        return Ok(None);
    };
    let (stage, event) = match (planned.kind, planned.stage) {
        (FaultKind::Late, Stage::Waiting) if fraction >= LATE_START_AT => {
            node.start(genesis, transport).await?;
            (Stage::Done, None)
        }
        (FaultKind::Restart, Stage::Waiting) if fraction >= FAULT_AT => {
            node.stop(transport).await;
            (Stage::Active, Some("stopped mid-run"))
        }
        (FaultKind::Hang, Stage::Waiting) if fraction >= FAULT_AT => {
            node.hang(transport).await?;
            (Stage::Active, Some("hung mid-run"))
        }
        (FaultKind::Restart, Stage::Active) if fraction >= RECOVER_AT => {
            node.start(genesis, transport).await?;
            (Stage::Done, Some("restarted"))
        }
        (FaultKind::Hang, Stage::Active) if fraction >= RECOVER_AT => {
            node.start(genesis, transport).await?;
            (Stage::Done, Some("answers again"))
        }
        // A validator that starts late or comes back starts at once when the workload ends.
        (_, Stage::Waiting | Stage::Active) if fraction >= 1.0 => {
            node.start(genesis, transport).await?;
            (Stage::Done, None)
        }
        _ => return Ok(None),
    };
    planned.stage = stage;
    Ok(event.map(|event| {
        node.history.push(event);
        format!("{} {event}", node.name)
    }))
}

/// Runs the demo and returns its summary.
pub async fn run(args: DemoArgs) -> Result<Summary, CliError> {
    check_args(&args)?;
    if let Some(address) = args.metrics {
        let bound = crate::operator::metrics_server::serve(address).await?;
        println!("metrics at http://{bound}/metrics");
    }
    // Kept until the demo ends: the databases' directory unless `--data-dir` names one.
    let (_temporary, data_dir) = data_directory(&args)?;
    let addresses = free_addresses_over(args.transport, args.validators).await?;
    let fast_round = args.rounds.fast_round();
    let committee = setup::all_in_one(addresses, args.chains, fast_round, args.insecure_seed)?;
    let admin = committee.genesis.admin_chain().ok_or(CliError::NoChains)?;
    let chains: Vec<ChainId> = committee.genesis.chains.iter().map(|c| c.id()).collect();

    let validators = ValidatorSet::new();
    let database = args.storage.prepare(args.validators).await?;
    let (mut nodes, mut plan) =
        start_validators(&args, &data_dir, &database.places, &committee, &validators).await?;
    let CommitteeSetup {
        validator_keys,
        owners,
        genesis,
        ..
    } = committee;

    let (local, first, clients) =
        local_clients(&genesis, admin, &chains, &owners, &validators).await?;
    // A listening client follows two chains, to measure how soon it learns of their blocks.
    let followed = chains[1..chains.len().min(3)].to_vec();
    let probe = NotifyProbe::start(&genesis, admin, &validators, followed, options()).await?;

    let progress = progress_bar(args.blocks);
    let trips_before = quorum_store_postgres::round_trips();
    let started = Instant::now();
    let (mut tasks, done) = spawn_transfers(&clients, &chains, args.blocks, &progress);

    // Faults follow the progress of the workload; health is watched at every tick.
    let keys: Vec<_> = validator_keys.iter().map(|key| key.public()).collect();
    let mut watches = vec![HealthWatch::default(); nodes.len()];
    let mut last_look = Instant::now();
    let mut failure = None;
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => {
                if let Some(Ok(Err(error))) = joined {
                    failure = Some(error);
                }
            }
            () = tokio::time::sleep(TICK) => {}
        }
        let tick = last_look.elapsed();
        last_look = Instant::now();
        for (watch, key) in watches.iter_mut().zip(&keys) {
            watch.observe(&validators.health(key), tick);
        }
        let fraction = done.load(Ordering::SeqCst) as f64 / args.blocks as f64;
        for planned in &mut plan {
            if let Some(message) =
                advance(planned, &mut nodes, fraction, &genesis, args.transport).await?
            {
                progress.set_message(message);
            }
        }
    }
    progress.finish_with_message("workload done");
    if let Some(error) = failure {
        return Err(error.into());
    }
    let elapsed = started.elapsed();
    // Every validator that misbehaved serves again, then everyone is brought fully up to date.
    for planned in &mut plan {
        while planned.stage != Stage::Done {
            advance(planned, &mut nodes, 1.0, &genesis, args.transport).await?;
        }
    }
    catch_up(&first, &chains).await?;
    let committee = local.committee(quorum_core::Epoch(0)).await?;
    let (rows, out_of_sync) = validator_rows(
        &nodes,
        &validators.remotes(&committee),
        &validator_keys,
        &watches,
        &local,
        &chains,
    )
    .await;
    for node in &mut nodes {
        node.stop(args.transport).await;
    }
    database.finish().await;
    info!(data_dir = %data_dir.display(), "demo finished");
    let mut summary = summarize(&args, elapsed, &first, rows, out_of_sync)?;
    summary.notification_latencies = probe.latencies();
    summary.round_trips_per_block = round_trips_per_block(&args, trips_before);
    Ok(summary)
}

/// On PostgreSQL, the database round trips (reads, writes) per committed block per validator
/// since `before`.
fn round_trips_per_block(
    args: &DemoArgs,
    before: quorum_store_postgres::RoundTrips,
) -> Option<(f64, f64)> {
    if args.storage.storage != storage::Engine::Postgres {
        return None;
    }
    let trips = quorum_store_postgres::round_trips();
    let per_block = (args.blocks * args.validators) as f64;
    Some((
        (trips.reads - before.reads) as f64 / per_block,
        (trips.writes - before.writes) as f64 / per_block,
    ))
}

/// The directory of the validators' databases: `--data-dir`, or a temporary directory,
/// removed when the returned handle is dropped.
fn data_directory(args: &DemoArgs) -> Result<(tempfile::TempDir, PathBuf), CliError> {
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
    Ok((temporary, data_dir))
}

/// The demo's summary; an error naming the validators left out of sync, after printing it.
fn summarize(
    args: &DemoArgs,
    elapsed: Duration,
    client: &ChainClient<MemoryStorage>,
    rows: Vec<ValidatorRow>,
    out_of_sync: Vec<String>,
) -> Result<Summary, CliError> {
    let stats = client.stats().clone();
    let summary = Summary {
        validators: args.validators,
        chains: args.chains,
        rounds: args.rounds.fast_round(),
        transport: args.transport.name(),
        storage: args.storage.describe(),
        blocks: args.blocks,
        elapsed,
        timings: client.timings(),
        recoveries: stats.snapshot(),
        max_skew_micros: stats.max_skew(),
        validator_rows: rows,
        notification_latencies: Vec::new(),
        round_trips_per_block: None,
    };
    if !out_of_sync.is_empty() {
        println!("{}", summary.render());
        return Err(CliError::OutOfSync(out_of_sync));
    }
    Ok(summary)
}

/// The client side: a keyless local node on `genesis`, and one client per chain (the first
/// chain's client, and all of them) reaching the validators through `validators`.
async fn local_clients(
    genesis: &Genesis,
    admin: ChainId,
    chains: &[ChainId],
    owners: &[AccountSecretKey],
    validators: &ValidatorSet,
) -> Result<
    (
        Arc<Worker<MemoryStorage>>,
        ChainClient<MemoryStorage>,
        Vec<ChainClient<MemoryStorage>>,
    ),
    CliError,
> {
    let local = keyless_local(genesis, admin).await?;
    let first = ChainClient::new(
        chains[0],
        Some(owners[0].clone()),
        local.clone(),
        validators.clone(),
        options(),
    );
    let clients = chains
        .iter()
        .zip(owners)
        .map(|(chain, owner)| first.for_chain(*chain, Some(owner.clone())))
        .collect();
    Ok((local, first, clients))
}

/// A keyless local node in memory on `genesis`, whose admin chain is `admin`.
pub(crate) async fn keyless_local(
    genesis: &Genesis,
    admin: ChainId,
) -> Result<Arc<Worker<MemoryStorage>>, CliError> {
    let local = Arc::new(Worker::new(
        MemoryStorage::new(),
        None,
        Arc::new(SystemClock),
        WorkerConfig::new(admin),
    ));
    genesis
        .initialize(local.storage(), quorum_node::Clock::now(&SystemClock))
        .await?;
    Ok(local)
}

/// The workload's progress bar, of `blocks` blocks.
fn progress_bar(blocks: usize) -> ProgressBar {
    let progress = ProgressBar::new(blocks as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} blocks {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress
}

/// The workload: each client transfers to the next chain, `blocks` blocks in all shared
/// between them; with the count of blocks done.
fn spawn_transfers(
    clients: &[ChainClient<MemoryStorage>],
    chains: &[ChainId],
    blocks: usize,
    progress: &ProgressBar,
) -> (
    tokio::task::JoinSet<Result<(), quorum_updater::ChainClientError>>,
    Arc<AtomicUsize>,
) {
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, client) in clients.iter().enumerate() {
        let client = client.clone();
        let recipient = chains[(index + 1) % chains.len()];
        let quota = blocks / clients.len() + usize::from(index < blocks % clients.len());
        let done = done.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            for _ in 0..quota {
                client.transfer(recipient, 1).await?;
                done.fetch_add(1, Ordering::SeqCst);
                progress.inc(1);
            }
            Ok(())
        });
    }
    (tasks, done)
}

/// Brings every validator fully up to date on every chain (failures are logged).
async fn catch_up(client: &ChainClient<MemoryStorage>, chains: &[ChainId]) -> Result<(), CliError> {
    for chain in chains {
        for (validator, error) in client.update_validators(*chain).await? {
            warn!(?validator, %error, "final catch-up failed");
        }
    }
    Ok(())
}

/// Makes the committee's validators (in process over TCP or in memory, each reachable through
/// `validators`), plans the faults of `args` on the last ones, and starts every validator but
/// those that start late.
async fn start_validators(
    args: &DemoArgs,
    data_dir: &Path,
    places: &[Option<storage::Place>],
    committee: &CommitteeSetup,
    validators: &ValidatorSet,
) -> Result<(Vec<DemoValidator>, Vec<Planned>), CliError> {
    let CommitteeSetup {
        validator_keys,
        network_keys,
        addresses,
        genesis,
        ..
    } = committee;
    let mut nodes: Vec<DemoValidator> = Vec::new();
    let clients = Clients::with_timeout(REQUEST_TIMEOUT);
    let members = validator_keys.iter().zip(network_keys).zip(addresses);
    for (index, ((key, network_key), address)) in members.enumerate() {
        let database = data_dir.join(format!("validator-{index}.redb"));
        let mut node = DemoValidator::new(
            format!("validator-{index}"),
            database,
            key.clone(),
            address.clone(),
        );
        node.postgres = places.get(index).cloned().flatten();
        match args.transport.scheme(index, addresses.len()) {
            Some(scheme) => {
                if scheme == Scheme::Quic {
                    node.network_key = Some(network_key.clone());
                }
                let info = ValidatorInfo {
                    votes: 1,
                    address: address.clone(),
                    network_key: Some(network_key.public()),
                };
                validators.insert(key.public(), clients.node(&key.public(), &info)?);
            }
            None => {
                let worker = validator::open_worker(
                    &node.database,
                    genesis,
                    key.clone(),
                    &LimitsConfig::default(),
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
    // The last validators misbehave, in the order of the plan.
    let first_faulty = args.validators - args.faults.len();
    let plan: Vec<Planned> = args
        .faults
        .0
        .iter()
        .enumerate()
        .map(|(i, kind)| Planned {
            index: first_faulty + i,
            kind: *kind,
            stage: Stage::Waiting,
        })
        .collect();
    for (index, node) in nodes.iter_mut().enumerate() {
        if plan
            .iter()
            .any(|p| p.index == index && p.kind == FaultKind::Late)
        {
            node.history.push("started late");
            if args.transport == Transport::Mem {
                node.stop(args.transport).await;
            }
            continue;
        }
        node.start(genesis, args.transport).await?;
    }
    Ok((nodes, plan))
}

/// The summary's row of each validator, and the names of those not in sync with the local
/// node on every chain.
async fn validator_rows(
    nodes: &[DemoValidator],
    remotes: &[RemoteNode],
    validator_keys: &[ValidatorSecretKey],
    watches: &[HealthWatch],
    local: &Arc<Worker<MemoryStorage>>,
    chains: &[ChainId],
) -> (Vec<ValidatorRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut out_of_sync = Vec::new();
    for ((node, remote), watch) in nodes
        .iter()
        .zip(sorted(remotes, validator_keys))
        .zip(watches)
    {
        let in_sync = in_sync(local, &remote, chains).await;
        if !in_sync {
            out_of_sync.push(node.name.clone());
        }
        let history = if node.history.is_empty() {
            "honest throughout".to_string()
        } else {
            node.history.join(", ")
        };
        rows.push(watch.row(node.name.clone(), history, &remote.health, in_sync));
    }
    (rows, out_of_sync)
}

/// The remotes in the order of `keys`.
fn sorted(remotes: &[RemoteNode], keys: &[ValidatorSecretKey]) -> Vec<RemoteNode> {
    keys.iter()
        .filter_map(|key| {
            remotes
                .iter()
                .find(|r| r.public_key == key.public())
                .cloned()
        })
        .collect()
}

/// How many times [`in_sync`] asks a validator about a chain before counting it out of sync.
const IN_SYNC_ATTEMPTS: usize = 3;

/// Whether `remote` has every chain exactly as the local node has it.
pub(crate) async fn in_sync(
    local: &Worker<MemoryStorage>,
    remote: &RemoteNode,
    chains: &[ChainId],
) -> bool {
    for chain in chains {
        let Ok(state) = local.chain_state(*chain).await else {
            return false;
        };
        // A query that fails on a loaded machine (a timeout) says nothing of the validator's
        // state: ask again, a few times.
        let mut answer = None;
        for _ in 0..IN_SYNC_ATTEMPTS {
            let query = ChainInfoQuery::new(*chain);
            if let Ok(response) = remote.node.handle_chain_info_query(query).await {
                answer = Some(response);
                break;
            }
        }
        let Some(response) = answer else {
            return false;
        };
        if response.info.next_block_height != state.next_height()
            || response.info.block_hash != state.tip_hash()
        {
            return false;
        }
    }
    true
}
