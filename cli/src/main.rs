//! `quorum`: run a committee on one machine (`demo`) or across machines (`keygen` on each,
//! `genesis` from their public keys, `validator`, `client`). Logs go through `tracing` (set
//! `RUST_LOG`, e.g. `RUST_LOG=debug`).

mod address;
mod allocator;
mod chaos;
mod client;
mod demo;
mod error;
mod files;
mod keys;
mod operator;
mod wallet;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Quorum: a client for a stake-weighted committee of BFT validators, with a reference
/// validator.
#[derive(Debug, Parser)]
#[command(name = "quorum", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a committee on this machine with a workload, faults and recoveries, then prints a
    /// summary. Needs no set-up.
    Demo(demo::DemoArgs),
    /// Makes a validator key from the operating system's random source on the machine that
    /// will run the validator (secret key file mode 0600) and prints its public key for the
    /// committee file.
    Keygen(operator::keygen::KeygenArgs),
    /// Builds the genesis of a committee across machines from a committee file (TOML) of
    /// public keys and addresses: no validator secret leaves its machine.
    Genesis(operator::genesis::GenesisArgs),
    /// Writes a whole committee with every key made in one place (insecure: for demos and
    /// tests).
    DevGenesis(operator::genesis::DevGenesisArgs),
    /// Runs one validator from its TOML configuration until interrupted.
    Validator(operator::validator::ValidatorArgs),
    /// Client operations against a running committee.
    Client(client::ClientArgs),
    /// Runs a committee of validator processes under a seeded schedule of overlapping faults
    /// with clients transferring all along, heals everything, and checks that nothing was
    /// lost, forked or double-spent (exits non-zero, printing the seed and the schedule, if
    /// anything was).
    Chaos(chaos::ChaosArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if matches!(cli.command, Command::Validator(_)) {
        allocator::restart_with_validator_settings();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args)
                .await
                .map(|summary| println!("{}", summary.render())),
            Command::Keygen(args) => operator::keygen::keygen(&args),
            Command::Genesis(args) => operator::genesis::genesis(&args),
            Command::DevGenesis(args) => operator::genesis::dev_genesis(&args),
            Command::Validator(args) => operator::validator::run(&args).await,
            Command::Client(args) => client::client(&args).await,
            Command::Chaos(args) => chaos::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
