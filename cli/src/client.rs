//! `quorum client`: operations on the chains of a committee running across processes or
//! machines. Each command is a short-lived process: it restores the validators' health
//! records the previous command saved, probes the validators, synchronizes the wallet's chains,
//! does its work, gives the catch-up workers a bounded final update phase
//! ([`crate::update_phase`]), and saves the health records for the next command.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::CliError;
use crate::info;
use crate::probe;
use crate::session::{Session, SessionSettings, DEFAULT_REQUEST_TIMEOUT_MS};
use crate::update_phase::{self, DEFAULT_UPDATE_BUDGET_MS};

/// `quorum client`: operations on the committee's chains.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientArgs {
    /// The committee directory (genesis and wallet).
    #[arg(long)]
    pub dir: PathBuf,
    /// The client's own database (default: `client.redb` in the directory). The validators'
    /// health records are kept beside it (`client-health.toml`).
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// Longest time, in milliseconds, the command spends after its result bringing validators
    /// up to date; what is left, the next client or the validators' own catch-up delivers.
    #[arg(long, global = true, default_value_t = DEFAULT_UPDATE_BUDGET_MS)]
    pub update_budget_ms: u64,
    /// Timeout, in milliseconds, of one request to one validator (a suspect one gets at most
    /// the updater's 500 ms probe timeout).
    #[arg(long, global = true, default_value_t = DEFAULT_REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// Client operations; chains are named by their index in the wallet.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Sends tokens from one chain to another.
    Transfer {
        /// Paying chain.
        #[arg(long)]
        from: usize,
        /// Receiving chain.
        #[arg(long)]
        to: usize,
        /// Amount.
        #[arg(long)]
        amount: u64,
    },
    /// Commits a block on a chain that takes in the tokens waiting in its inbox.
    Receive {
        /// The chain.
        #[arg(long)]
        chain: usize,
    },
    /// Prints every chain's height and balance as the client knows it, after synchronizing,
    /// what every validator says of each, and every validator's health.
    Info,
}

/// Runs a client command.
pub async fn client(args: &ClientArgs) -> Result<(), CliError> {
    let settings = SessionSettings {
        dir: args.dir.clone(),
        database: args.database.clone(),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        update_budget: Duration::from_millis(args.update_budget_ms),
    };
    let session = Session::open(&settings).await?;
    let result = run(&session, &args.command).await;
    session.save_health();
    result
}

async fn run(session: &Session, command: &ClientCommand) -> Result<(), CliError> {
    let (chain_id, owner) = match command {
        ClientCommand::Info => return info::info(session).await,
        ClientCommand::Transfer { from, to, .. } => {
            session.chain(*to)?;
            session.chain(*from)?
        }
        ClientCommand::Receive { chain } => session.chain(*chain)?,
    };
    let remotes = session.remotes();
    probe::spawn(&remotes, session.admin_chain(), &session.options);
    session.synchronize(&[chain_id]).await?;
    let client = session.base.for_chain(chain_id, Some(owner));
    match command {
        ClientCommand::Transfer { from, to, amount } => {
            let (to_id, _) = session.chain(*to)?;
            let certificate = client.transfer(to_id, *amount).await?;
            println!(
                "transferred {amount} from chain {from} to chain {to} at height {}",
                certificate.value().block().height.0
            );
        }
        ClientCommand::Receive { chain } => {
            let certificate = client.receive_messages().await?;
            println!(
                "chain {chain} committed height {}",
                certificate.value().block().height.0
            );
        }
        ClientCommand::Info => {}
    }
    let left = update_phase::run(session.base.catch_up(), &remotes, session.update_budget).await;
    update_phase::report(&left, session.update_budget);
    Ok(())
}
