//! `quorum`: run a committee on one machine (`demo`) or across machines (`genesis`,
//! `validator`, `client`). Logs go through `tracing` (set `RUST_LOG`, e.g. `RUST_LOG=debug`).

mod client;
mod demo;
mod error;
mod files;
mod setup;
mod summary;
mod validator;

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
    /// Writes the files of a committee across processes or machines.
    Genesis(client::GenesisArgs),
    /// Runs one validator from its configuration until interrupted.
    Validator(client::ValidatorArgs),
    /// Client operations against a running committee.
    Client(client::ClientArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
            Command::Genesis(args) => client::genesis(&args),
            Command::Validator(args) => client::validator(&args).await,
            Command::Client(args) => client::client(&args).await,
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
