//! `quorum demo`'s settings and their checks, and the loopback addresses it serves on.

use std::path::PathBuf;

use super::fault_plan::FaultPlan;
use super::free_ports;
use super::storage::{Engine, StorageArgs};
use crate::address::{Layout, Scheme};
use crate::error::CliError;
use crate::operator::setup;

/// The transports the demo can run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Loopback TCP, one server per validator.
    Tcp,
    /// In process, through BCS round trips.
    Mem,
    /// Loopback QUIC with TLS 1.3, one server per validator, each known by its network key.
    Quic,
    /// Half the validators over TCP, the other half over QUIC: a committee that mixes
    /// transports, each client picking per validator (DESIGN §6.2).
    Mixed,
}

impl Transport {
    /// The transport validator `index` of `count` is reached over; `None` in process.
    pub fn scheme(self, index: usize, count: usize) -> Option<Scheme> {
        let layout = match self {
            Transport::Tcp => Layout::Tcp,
            Transport::Mem => return None,
            Transport::Quic => Layout::Quic,
            Transport::Mixed => Layout::Mixed,
        };
        Some(layout.scheme(index, count))
    }

    /// Its name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Mem => "in-process",
            Transport::Quic => "quic",
            Transport::Mixed => "tcp+quic",
        }
    }
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
    /// Whether blocks start in the fast round.
    #[command(flatten)]
    pub rounds: setup::RoundArgs,
    /// Validators that misbehave (at most f): a number (the first starts late, the others are
    /// stopped mid-run and restarted from their data), or kinds, one validator each, among
    /// `late`, `restart` and `hang` (stops answering mid-run, connections still accepted, then
    /// answers again), e.g. `--faults hang` or `--faults late,hang`; `none` for no fault.
    #[arg(long, default_value = "1")]
    pub faults: FaultPlan,
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
    /// Serve the client's and the validators' metrics in Prometheus text format at
    /// `http://ADDR/metrics` while the demo runs.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Where validators keep their data.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Refuses a demo too small to show anything, or with more faults than the committee
/// tolerates.
pub(super) fn check_args(args: &DemoArgs) -> Result<(), CliError> {
    if args.validators == 0 || args.chains < 2 || args.blocks == 0 {
        return Err(CliError::DemoTooSmall {
            validators: args.validators,
            chains: args.chains,
            blocks: args.blocks,
        });
    }
    let f = (args.validators - 1) / 3;
    if args.faults.len() > f {
        return Err(CliError::TooManyFaults {
            faulty: args.faults.len(),
            plan: args.faults.to_string(),
            tolerated: f,
            validators: args.validators,
        });
    }
    if args.storage.storage == Engine::Postgres && args.transport != Transport::Tcp {
        return Err(CliError::DemoPostgresNeedsTcp);
    }
    Ok(())
}

/// `count` loopback addresses with free ports, each with the scheme `transport` gives its
/// validator (`quic://` for QUIC, whose port is a free UDP one).
pub(crate) async fn free_addresses_over(
    transport: Transport,
    count: usize,
) -> Result<Vec<String>, CliError> {
    let mut addresses = Vec::new();
    for index in 0..count {
        let address = match transport.scheme(index, count) {
            Some(Scheme::Quic) => free_ports::free_quic_address()?,
            _ => free_ports::free_tcp_address().await?,
        };
        addresses.push(address);
    }
    Ok(addresses)
}
