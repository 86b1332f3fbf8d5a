//! `quorum chaos` (DESIGN §10.1): a committee of `quorum validator` processes, each behind a
//! fault proxy, clients transferring all along, and a seeded schedule of overlapping faults;
//! then every fault is healed and the checker says what held.
//!
//! The run, in order:
//! 1. keys, genesis and every validator's directory drawn from the seed
//!    ([`committee`]); the validators started, each from its own redb database;
//! 2. the workload ([`workload`]) and the schedule ([`injector`]) run together for
//!    `--duration`; the schedule ends healed;
//! 3. the clients are stopped (each finishes its operation), every validator is put back
//!    (running, resumed, proxy passing, clock true), and the checker's client ([`verify`]) brings every validator up to date
//!    (within `--catch-up-window`), commits a block on every chain (within
//!    `--progress-bound`), brings them up to date again, and asks each what it holds;
//! 4. the validators are stopped with SIGTERM, their logs searched for panics, and
//!    [`quorum_chaos::check`] judges the six invariants. The report is printed (and written
//!    as JSON with `--report`); on a violation the seed and the schedule are printed and the
//!    command fails.

mod committee;
mod injector;
mod processes;
mod verify;
mod workload;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use quorum_chaos::{check, Evidence, Journal, ProcessOutcome, Report, Schedule, ScheduleConfig};
use quorum_core::{ChainId, ValidatorPublicKey};
use quorum_transport_tcp::TcpValidatorNode;
use quorum_updater::ValidatorSet;

// The clients' options and transport settings are the demo's (1 s requests, a 20 s deadline),
// so that a faulty validator is routed around quickly.
use crate::demo::{client_config, options as client_options};
use crate::error::CliError;
use committee::ChaosCommittee;
use verify::Checker;
use workload::Workload;

/// Settings of `quorum chaos`.
#[derive(Clone, Debug, clap::Args)]
pub struct ChaosArgs {
    /// The seed of keys, schedule and workload; the same seed replays the same schedule.
    /// Default: drawn from the operating system's random source (and printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long faults are injected, in seconds (the checker runs after).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Validators in the committee (equal stakes); at most (n - 1) / 3 are faulty at once.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Clients of the workload: a third of them (at least one pair) in pairs on chains with
    /// two owners, proposing at the same time; the others alone on a chain each.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// The last validator runs the Byzantine testing mode throughout (equivocating votes,
    /// false `BlobsNotFound`, wrong-round claims); it counts as one of the f faulty, so with 4
    /// validators no other validator is faulted. The checker asks only the honest ones.
    #[arg(long)]
    pub byzantine: bool,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Keep the validators' directories and the journals here (default: a temporary
    /// directory, removed at the end).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// After healing, how long the checker may take to bring every validator up to date, in
    /// seconds.
    #[arg(long, default_value_t = 60)]
    pub catch_up_window: u64,
    /// After healing, how long each chain may take to commit a new block, in seconds.
    #[arg(long, default_value_t = 30)]
    pub progress_bound: u64,
}

/// A validator set reaching each key at its address.
fn remote_set(addresses: &[(ValidatorPublicKey, String)]) -> Result<ValidatorSet, CliError> {
    let validators = ValidatorSet::new();
    for (key, address) in addresses {
        let node = TcpValidatorNode::new(address.clone(), client_config())?;
        validators.insert(*key, Arc::new(node));
    }
    Ok(validators)
}

/// Runs `quorum chaos`; fails with [`CliError::ChaosFailed`] when an invariant was violated.
pub async fn run(args: ChaosArgs) -> Result<(), CliError> {
    let seed = args.seed.unwrap_or_else(rand::random);
    // The last validator in committee order is the Byzantine one.
    let byzantine = args.byzantine.then(|| args.validators.saturating_sub(1));
    let config = ScheduleConfig {
        validators: args.validators,
        clients: args.clients,
        duration: Duration::from_secs(args.duration),
        byzantine,
        ..ScheduleConfig::default()
    };
    let schedule = Schedule::draw(seed, &config)?;
    if args.clients == 0 {
        return Err(CliError::NoClients);
    }
    println!(
        "chaos: seed {seed}, {} validators, {} clients, {} s, {} faults scheduled",
        args.validators,
        args.clients,
        args.duration,
        schedule.faults.len()
    );
    let temporary = tempfile::tempdir().map_err(|source| CliError::File {
        path: PathBuf::from("tmp"),
        source,
    })?;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_owned());
    std::fs::create_dir_all(&dir).map_err(|source| CliError::File {
        path: dir.clone(),
        source,
    })?;
    let mut committee =
        ChaosCommittee::prepare(&dir, seed, args.validators, args.clients, byzantine).await?;
    let outcome = run_prepared(&args, seed, &schedule, &dir, &mut committee).await;
    // Whatever happened, no validator outlives the run.
    for member in &mut committee.members {
        member.process.kill().await;
    }
    let report = outcome?;
    println!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, report.to_json()).map_err(|source| CliError::File {
            path: path.clone(),
            source,
        })?;
    }
    if report.passed() {
        Ok(())
    } else {
        Err(CliError::ChaosFailed {
            seed,
            violated: report.verdicts.iter().filter(|v| !v.held()).count(),
        })
    }
}

/// Stops every validator process; what went wrong with the processes: those that panicked
/// (the clients' `panicked` and the validators') and those that had to be killed.
async fn stop_processes(
    members: &mut [committee::Member],
    panicked: Vec<(String, String)>,
) -> ProcessOutcome {
    let mut processes = ProcessOutcome {
        panicked,
        left_running: Vec::new(),
    };
    for member in members {
        if !member.process.stop().await {
            processes.left_running.push(member.process.name.clone());
        }
        if let Some(line) = member.process.panic_line() {
            processes.panicked.push((member.process.name.clone(), line));
        }
    }
    processes
}

/// Steps 1 to 4 of the [module documentation](self) on a prepared committee.
async fn run_prepared(
    args: &ChaosArgs,
    seed: u64,
    schedule: &Schedule,
    dir: &std::path::Path,
    committee: &mut ChaosCommittee,
) -> Result<Report, CliError> {
    for member in &mut committee.members {
        member.process.start().await?;
    }
    let chain_ids: Vec<ChainId> = committee.chains.iter().map(|chain| chain.id).collect();
    let addresses = committee
        .members
        .iter()
        .map(|member| (member.key.public(), member.proxy.local_addr().to_string()))
        .collect();
    // The checker's client follows the chains all along (as an explorer would), so that after
    // healing it only fetches what it missed: the time to sync is the validators'.
    let checker = Arc::new(Checker::new(&committee.genesis, &committee.members).await?);
    let following = tokio::spawn(Arc::clone(&checker).follow(chain_ids.clone()));
    let mut workload = Workload::start(
        &committee.clients,
        chain_ids.clone(),
        &committee.genesis,
        addresses,
        dir.to_owned(),
        seed,
    )?;
    let duration = Duration::from_secs(args.duration);
    let started = Instant::now();
    injector::run(
        schedule,
        started,
        duration,
        &mut committee.members,
        &mut workload,
    )
    .await;
    workload.stop().await;
    // The schedule ends healed; this makes sure of it. A validator that does not come back
    // shows as unreachable to the checker.
    let not_started = injector::heal_all(&mut committee.members).await;
    let healed = Instant::now();
    info!(?not_started, "every fault healed");
    following.abort();

    let window = Duration::from_secs(args.catch_up_window);
    let synced = checker.catch_up(&chain_ids, window).await;
    let heal_to_sync = synced.map(|_| healed.elapsed());
    let checker_journal = dir.join("checker.journal");
    let progress_bound = Duration::from_secs(args.progress_bound);
    let progress = checker
        .progress(
            &committee.chains,
            progress_bound,
            args.clients,
            &mut Journal::open(&checker_journal)?,
        )
        .await?;
    checker.catch_up(&chain_ids, window).await;
    let views = checker.observe_all(&committee.members, &chain_ids).await;

    let panicked = std::mem::take(&mut workload.panicked);
    let processes = stop_processes(&mut committee.members, panicked).await;
    let mut journal = Vec::new();
    for path in workload.journals().iter().chain([&checker_journal]) {
        journal.extend(Journal::read(path)?);
    }
    let evidence = Evidence {
        genesis: committee.genesis_balances(),
        validators: views,
        journal,
        progress,
        progress_bound,
        processes,
    };
    let acknowledged = evidence.journal.len();
    Ok(Report {
        seed,
        validators: args.validators,
        clients: args.clients,
        byzantine: args.byzantine.then(|| args.validators.saturating_sub(1)),
        duration_secs: duration.as_secs_f64(),
        acknowledged,
        failed_attempts: workload.counters.failed.load(Ordering::Relaxed),
        faults_by_kind: schedule
            .counts_by_kind()
            .into_iter()
            .map(|(kind, count)| (kind.to_owned(), count))
            .collect(),
        heal_to_sync_secs: heal_to_sync.map(|took| took.as_secs_f64()),
        schedule: schedule.clone(),
        verdicts: check(&evidence),
    })
}
