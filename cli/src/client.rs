//! `quorum genesis`, `quorum validator` and `quorum client`: a committee across processes or
//! machines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use quorum_core::{ChainId, ChainInfoQuery, ValidatorNode};
use quorum_node::{Clock, Genesis, SystemClock, Worker, WorkerConfig};
use quorum_store_redb::RedbStorage;
use quorum_transport_tcp::{ClientConfig, TcpValidatorNode};
use quorum_updater::{ChainClient, Options, ValidatorSet};

use crate::error::CliError;
use crate::files::{self, ValidatorConfig, Wallet, GENESIS_FILE, WALLET_FILE};
use crate::setup;
use crate::validator;

/// `quorum genesis`: writes the genesis, one configuration per validator and the wallet.
#[derive(Clone, Debug, clap::Args)]
pub struct GenesisArgs {
    /// Directory to write into.
    #[arg(long)]
    pub dir: PathBuf,
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Number of genesis chains (the first is the admin chain).
    #[arg(long, default_value_t = 4)]
    pub chains: usize,
    /// Host the validators listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the first validator; the others follow.
    #[arg(long, default_value_t = 9100)]
    pub base_port: u16,
    /// Seed for keys.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Writes a committee directory.
pub fn genesis(args: &GenesisArgs) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.dir).map_err(|source| CliError::File {
        path: args.dir.clone(),
        source,
    })?;
    let addresses = (0..args.validators)
        .map(|i| {
            let port = usize::from(args.base_port) + i;
            u16::try_from(port)
                .map(|port| format!("{}:{port}", args.host))
                .map_err(|_| CliError::Usage(format!("port {port} out of range")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let setup = setup::build(addresses, args.chains, args.seed)?;
    files::write(&args.dir.join(GENESIS_FILE), &setup.genesis, "genesis")?;
    for (index, (key, address)) in setup
        .validator_keys
        .iter()
        .zip(&setup.addresses)
        .enumerate()
    {
        let config = ValidatorConfig {
            key: key.clone(),
            listen: address.clone(),
            database: args.dir.join(format!("validator-{index}.redb")),
        };
        files::write(
            &args.dir.join(files::validator_file(index)),
            &config,
            "validator configuration",
        )?;
    }
    let wallet = Wallet {
        chains: setup
            .genesis
            .chains
            .iter()
            .map(|c| c.id())
            .zip(setup.owners.iter().cloned())
            .collect(),
    };
    files::write(&args.dir.join(WALLET_FILE), &wallet, "wallet")?;
    println!(
        "wrote {} (genesis, {} validator configurations, wallet with {} chains)",
        args.dir.display(),
        args.validators,
        args.chains
    );
    Ok(())
}

/// `quorum validator`: serves one validator until interrupted.
#[derive(Clone, Debug, clap::Args)]
pub struct ValidatorArgs {
    /// The validator's configuration file (written by `quorum genesis`).
    #[arg(long)]
    pub config: PathBuf,
    /// The genesis file (default: `genesis.bcs` beside the configuration).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
}

/// Runs a validator until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn validator(args: &ValidatorArgs) -> Result<(), CliError> {
    let config: ValidatorConfig = files::read(&args.config, "validator configuration")?;
    let genesis_path = args
        .genesis
        .clone()
        .unwrap_or_else(|| sibling(&args.config, GENESIS_FILE));
    let genesis: Genesis = files::read(&genesis_path, "genesis")?;
    let worker = validator::open_worker(&config.database, &genesis, config.key.clone()).await?;
    let listener = validator::bind(&config.listen).await?;
    let server = validator::serve(worker, listener)?;
    println!("listening on {}", server.local_addr());
    wait_for_signal().await;
    info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

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

fn sibling(path: &Path, name: &str) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from(name), |dir| dir.join(name))
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
    let wallet: Wallet = files::read(&args.dir.join(WALLET_FILE), "wallet")?;
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
