//! `quorum client`: operations on the chains of a committee running across processes or
//! machines.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use quorum_core::{ChainId, ChainInfoQuery, ValidatorNode};
use quorum_node::{Clock, Genesis, SystemClock, Worker, WorkerConfig};
use quorum_store_redb::RedbStorage;
use quorum_transport_tcp::{ClientConfig, TcpValidatorNode};
use quorum_updater::{ChainClient, Options, ValidatorSet};

use crate::error::CliError;
use crate::files::{self, Wallet, GENESIS_FILE, WALLET_FILE};
use crate::keys;

/// Before the process exits, brings every validator up to date on `chain_id` (a command-line
/// client has no background to leave that to), and says which could not be reached.
async fn report_lagging(
    base: &ChainClient<RedbStorage>,
    chain_id: ChainId,
) -> Result<(), CliError> {
    for (validator, error) in base.update_validators(chain_id).await? {
        eprintln!("warning: validator {validator} not updated: {error}");
    }
    Ok(())
}

/// `quorum client`: operations on the committee's chains.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientArgs {
    /// The committee directory (genesis and wallet).
    #[arg(long)]
    pub dir: PathBuf,
    /// The client's own database (default: `client.redb` in the directory).
    #[arg(long)]
    pub database: Option<PathBuf>,
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
    /// Prints every chain's height and balance as the client knows it, after synchronizing.
    Info,
}

/// Runs a client command.
pub async fn client(args: &ClientArgs) -> Result<(), CliError> {
    let genesis: Genesis = files::read(&args.dir.join(GENESIS_FILE), "genesis")?;
    let wallet_path = args.dir.join(WALLET_FILE);
    if let Err(error) = keys::check_private(&wallet_path) {
        warn!(%error, "the wallet holds the chains' owner keys");
    }
    let wallet: Wallet = files::read(&wallet_path, "wallet")?;
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| args.dir.join("client.redb"));
    let storage = RedbStorage::open(&database)?;
    let admin = genesis.initialize(&storage, SystemClock.now()).await?;
    let local = Arc::new(Worker::new(
        storage,
        None,
        Arc::new(SystemClock),
        WorkerConfig::new(admin),
    ));
    let validators = ValidatorSet::new();
    for (key, info) in genesis.committee.validators() {
        let node = TcpValidatorNode::new(info.address.clone(), ClientConfig::default())?;
        validators.insert(*key, Arc::new(node));
    }
    let options = Options {
        request_timeout: Duration::from_secs(3),
        deadline: Duration::from_secs(20),
        background_catch_up: Duration::ZERO,
        ..Options::default()
    };
    let chain = |index: usize| -> Result<(ChainId, quorum_core::AccountSecretKey), CliError> {
        wallet.chains.get(index).cloned().ok_or_else(|| {
            CliError::Usage(format!(
                "no chain {index} in the wallet ({} chains)",
                wallet.chains.len()
            ))
        })
    };
    let (first_chain, first_owner) = chain(0)?;
    let base = ChainClient::new(
        first_chain,
        Some(first_owner),
        local.clone(),
        validators.clone(),
        options,
    );
    // Learn what other clients committed: every chain of the wallet.
    for (chain_id, _) in &wallet.chains {
        base.synchronize_chain(*chain_id).await?;
    }
    match &args.command {
        ClientCommand::Transfer { from, to, amount } => {
            let (from_id, owner) = chain(*from)?;
            let (to_id, _) = chain(*to)?;
            let certificate = base
                .for_chain(from_id, Some(owner))
                .transfer(to_id, *amount)
                .await?;
            report_lagging(&base, from_id).await?;
            println!(
                "transferred {amount} from chain {from} to chain {to} at height {}",
                certificate.value().block().height.0
            );
        }
        ClientCommand::Receive { chain: index } => {
            let (chain_id, owner) = chain(*index)?;
            let certificate = base
                .for_chain(chain_id, Some(owner))
                .receive_messages()
                .await?;
            report_lagging(&base, chain_id).await?;
            println!(
                "chain {index} committed height {}",
                certificate.value().block().height.0
            );
        }
        ClientCommand::Info => {
            for (index, (chain_id, _)) in wallet.chains.iter().enumerate() {
                let state = local.chain_state(*chain_id).await?;
                println!(
                    "chain {index} {chain_id} height {} balance {}",
                    state.next_height.0, state.balance
                );
                for (key, info) in genesis.committee.validators() {
                    let node =
                        TcpValidatorNode::new(info.address.clone(), ClientConfig::default())?;
                    let answer = node
                        .handle_chain_info_query(ChainInfoQuery::new(*chain_id))
                        .await;
                    let status = match answer {
                        Ok(response) => format!("height {}", response.info.next_block_height.0),
                        Err(error) => format!("unreachable ({error})"),
                    };
                    println!("  validator {key:?} at {}: {status}", info.address);
                }
            }
        }
    }
    Ok(())
}
