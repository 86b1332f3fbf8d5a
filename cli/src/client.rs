//! `quorum client`: a wallet over a committee running across processes or machines
//! (DESIGN §5.8). Each command is a short-lived process: it takes the wallet's lock, restores
//! the validators' health records the previous command saved, probes the validators,
//! synchronizes the chains it names (and only those), does its work, gives the catch-up
//! workers a bounded final update phase ([`crate::client::update_phase`]), and saves the health
//! records for the next command.
//!
//! Chains are named by their index in the wallet or by their id (64 hex digits).
//!
//! The client wing: `session` (a command's local node, wallet and validators), `probe`,
//! `update_phase` and `health_file` (the validators' health across commands), `info` and
//! `watch` (the commands that read).

pub(crate) mod health_file;
pub(crate) mod info;
pub(crate) mod probe;
pub(crate) mod session;
pub(crate) mod update_phase;
pub(crate) mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use quorum_core::{AccountPublicKey, AccountSecretKey, ChainId};
use quorum_node::Genesis;
use rand::rngs::OsRng;

use crate::error::CliError;
use crate::files::{self, GENESIS_FILE};

use crate::keys;

use crate::wallet::{chain_hex, ChainArg, PortableWallet, Wallet, WalletLock, WALLET_DB_FILE};
use session::{Session, SessionSettings, DEFAULT_REQUEST_TIMEOUT_MS};
use update_phase::DEFAULT_UPDATE_BUDGET_MS;

/// Longest a command waits for another command on the same wallet to finish (30 s).
const WALLET_LOCK_WAIT: Duration = Duration::from_secs(30);

/// `quorum client`: operations on the committee's chains.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientArgs {
    /// The client directory: the committee's genesis, the wallet and the client's database.
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

/// Client operations. A chain is its wallet index or its id in hex.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Makes a new, empty wallet in the directory (created if missing) for the committee of
    /// a genesis file.
    Init {
        /// The committee's `genesis.bcs` (copied into the directory).
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Makes an owner key, keeps it in the wallet, and prints its public key.
    NewOwner,
    /// Opens a chain from one the wallet owns, prints its id and adds it to the wallet.
    OpenChain {
        /// The chain whose block opens the new one.
        #[arg(long)]
        from: ChainArg,
        /// The new chain's owner (a public key in hex; default: the owner of `--from`). The
        /// wallet keeps the chain's key when it holds this owner's.
        #[arg(long, conflicts_with = "owners")]
        owner: Option<String>,
        /// The new chain's owners, each `KEY` or `KEY:WEIGHT` (its weight in single-leader
        /// rounds, default 1), instead of `--owner`. The wallet keeps the chain's key when it
        /// holds one of theirs.
        #[arg(long, num_args = 1..)]
        owners: Vec<String>,
        /// An owner who may also propose in the fast round (one round of votes per block),
        /// whether or not it is among `--owners`.
        #[arg(long)]
        super_owner: Option<String>,
    },
    /// Follows a chain by its id: adds it to the wallet (with its owner key when the wallet
    /// holds one of its owners') and synchronizes it.
    Follow {
        /// The chain's id.
        chain: ChainArg,
    },
    /// Synchronizes chains from the validators: their blocks, and everything other chains
    /// sent them.
    Sync {
        /// Only this chain (default: every chain of the wallet).
        #[arg(long)]
        chain: Option<ChainArg>,
    },
    /// Prints the balance of chains after synchronizing them, and what waits in their inbox.
    Balance {
        /// Only this chain (default: every chain of the wallet).
        #[arg(long)]
        chain: Option<ChainArg>,
    },
    /// Sends tokens from a chain the wallet owns to any chain.
    Transfer {
        /// Paying chain.
        #[arg(long)]
        from: ChainArg,
        /// Receiving chain.
        #[arg(long)]
        to: ChainArg,
        /// Amount.
        #[arg(long)]
        amount: u64,
    },
    /// Commits a block on a chain that takes in everything sent to it (a closed chain returns
    /// it to the senders).
    Receive {
        /// The chain.
        #[arg(long)]
        chain: ChainArg,
    },
    /// Closes a chain the wallet owns; its balance goes to `--beneficiary`.
    CloseChain {
        /// The chain.
        #[arg(long)]
        chain: ChainArg,
        /// The chain that receives the balance (required unless it is zero).
        #[arg(long)]
        beneficiary: Option<ChainArg>,
    },
    /// Prints every chain's height and balance as the client knows it, after synchronizing,
    /// what every validator says of each, and every validator's health.
    Info,
    /// Prints each committed block, incoming payment and round change of chains as the
    /// validators announce them, until Ctrl-C. Holds the wallet while it runs.
    Watch(crate::client::watch::WatchArgs),
}

/// Runs a client command.
pub async fn client(args: &ClientArgs) -> Result<(), CliError> {
    if let ClientCommand::Init { genesis } = &args.command {
        return init(&args.dir, genesis);
    }
    let _lock = WalletLock::acquire(&args.dir, WALLET_LOCK_WAIT)?;
    let settings = SessionSettings {
        dir: args.dir.clone(),
        database: args.database.clone(),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        update_budget: Duration::from_millis(args.update_budget_ms),
    };
    let session = Session::open(&settings).await?;
    let result = run(&session, &args.command).await;
    session.save_health();
    session.close().await;
    result
}

/// `init`: the genesis (checked to decode) and an empty wallet, nothing written over.
fn init(dir: &Path, genesis_path: &Path) -> Result<(), CliError> {
    let genesis: Genesis = files::read(genesis_path, "genesis")?;
    std::fs::create_dir_all(dir).map_err(|source| CliError::File {
        path: dir.to_owned(),
        source,
    })?;
    let _lock = WalletLock::acquire(dir, WALLET_LOCK_WAIT)?;
    let admin = genesis.admin_chain().ok_or(CliError::NoChains)?;
    let target = dir.join(GENESIS_FILE);
    files::ensure_absent([target.as_path(), dir.join(WALLET_DB_FILE).as_path()])?;
    files::write(&target, &genesis, "genesis")?;
    Wallet::create(dir, admin, &PortableWallet::default())?;
    println!(
        "empty wallet for a committee of {} validators in {}",
        genesis.committee.validators().count(),
        dir.display()
    );
    Ok(())
}

async fn run(session: &Session, command: &ClientCommand) -> Result<(), CliError> {
    let remotes = session.remotes();
    probe::spawn(&remotes, session.admin_chain(), &session.options);
    match command {
        ClientCommand::Init { .. } => return Ok(()),
        ClientCommand::Info => return info::info(session).await,
        ClientCommand::Watch(args) => return crate::client::watch::watch(session, args).await,
        ClientCommand::NewOwner => {
            let key = AccountSecretKey::generate(&mut OsRng);
            session.wallet.add_key(&key)?;
            println!("{}", key.public());
            return Ok(());
        }
        ClientCommand::OpenChain {
            from,
            owner,
            owners,
            super_owner,
        } => open_chain(session, *from, owner, owners, super_owner).await?,
        ClientCommand::Follow { chain } => follow(session, *chain).await?,
        ClientCommand::Sync { chain } | ClientCommand::Balance { chain } => {
            let chains = named_or_all(&session.wallet, *chain)?;
            session.synchronize(&chains, true).await?;
            if matches!(command, ClientCommand::Balance { .. }) {
                print_balances(session, &chains).await?;
            } else {
                println!("synchronized {} chains", chains.len());
            }
        }
        ClientCommand::Transfer { from, to, amount } => {
            let (from_id, owner) = session.wallet.owned(*from)?;
            let to_id = session.wallet.resolve(*to)?;
            session.synchronize(&[from_id], false).await?;
            let client = session.base.for_chain(from_id, Some(owner));
            let certificate = client.transfer(to_id, *amount).await?;
            println!(
                "transferred {amount} from chain {from} to chain {to} at height {}",
                certificate.value().block().height.0
            );
        }
        ClientCommand::Receive { chain } => {
            let (chain_id, owner) = session.wallet.owned(*chain)?;
            session.synchronize(&[chain_id], true).await?;
            let client = session.base.for_chain(chain_id, Some(owner));
            let certificate = client.receive_messages().await?;
            println!(
                "chain {chain} committed height {} taking in {} bundles",
                certificate.value().block().height.0,
                certificate.value().block().incoming_bundles.len()
            );
        }
        ClientCommand::CloseChain { chain, beneficiary } => {
            let (chain_id, owner) = session.wallet.owned(*chain)?;
            let beneficiary = beneficiary
                .map(|arg| session.wallet.resolve(arg))
                .transpose()?;
            session.synchronize(&[chain_id], false).await?;
            let client = session.base.for_chain(chain_id, Some(owner));
            let certificate = client.close_chain(beneficiary).await?;
            println!(
                "chain {chain} closed at height {}",
                certificate.value().block().height.0
            );
        }
    }
    let left = update_phase::run(session.base.catch_up(), &remotes, session.update_budget).await;
    update_phase::report(&left, session.update_budget);
    Ok(())
}

/// The chain an optional argument names, else every chain of the wallet.
fn named_or_all(wallet: &Wallet, chain: Option<ChainArg>) -> Result<Vec<ChainId>, CliError> {
    match chain {
        Some(arg) => Ok(vec![wallet.resolve(arg)?]),
        None => wallet.chains(),
    }
}

/// `open-chain`: the new chain's id on standard output.
async fn open_chain(
    session: &Session,
    from: ChainArg,
    owner: &Option<String>,
    owners: &[String],
    super_owner: &Option<String>,
) -> Result<(), CliError> {
    let (from_id, from_owner) = session.wallet.owned(from)?;
    let mut weights = BTreeMap::new();
    for text in owners {
        let (key, weight) = parse_owner(text)?;
        weights.insert(key, weight);
    }
    if weights.is_empty() {
        let key = match owner {
            Some(text) => keys::parse_account_key(text)?,
            None => from_owner.public(),
        };
        weights.insert(key, 1);
    }
    let super_owner = super_owner
        .as_deref()
        .map(keys::parse_account_key)
        .transpose()?;
    session.synchronize(&[from_id], false).await?;
    let client = session.base.for_chain(from_id, Some(from_owner));
    let consensus = session
        .local
        .chain_state(from_id)
        .await?
        .description()?
        .consensus
        .clone();
    let (chain_id, _) = client
        .open_chain_with_owners(weights.clone(), super_owner, consensus)
        .await?;
    let mut secret = None;
    for public in weights.keys().chain(super_owner.iter()) {
        secret = session.wallet.secret_of(public)?;
        if secret.is_some() {
            break;
        }
    }
    session.wallet.add_chain(chain_id, secret.as_ref())?;
    println!("{}", chain_hex(&chain_id));
    Ok(())
}

/// An owner written `KEY` or `KEY:WEIGHT`, the weight at least 1 (default 1).
fn parse_owner(text: &str) -> Result<(AccountPublicKey, u64), CliError> {
    let (key, weight) = match text.split_once(':') {
        Some((key, weight)) => {
            let weight = weight
                .parse::<u64>()
                .ok()
                .filter(|weight| *weight > 0)
                .ok_or_else(|| CliError::OwnerWeight(text.to_owned()))?;
            (key, weight)
        }
        None => (text, 1),
    };
    Ok((keys::parse_account_key(key)?, weight))
}

/// `follow`: the chain is added once it is known to the validators (its description checked
/// against its id), with the key of the first of its owners the wallet holds.
async fn follow(session: &Session, chain: ChainArg) -> Result<(), CliError> {
    let ChainArg::Id(chain_id) = chain else {
        return Err(CliError::FollowNeedsId);
    };
    session.synchronize(&[chain_id], true).await?;
    let state = session.local.chain_state(chain_id).await?;
    let description = state.description()?;
    let mut owner = None;
    for public in description
        .owners
        .keys()
        .chain(description.super_owner.iter())
    {
        owner = session.wallet.secret_of(public)?;
        if owner.is_some() {
            break;
        }
    }
    let owned = owner.is_some();
    let index = session.wallet.add_chain(chain_id, owner.as_ref())?;
    println!(
        "following chain {} as wallet chain {index}{}",
        chain_hex(&chain_id),
        if owned { " (owned)" } else { "" }
    );
    Ok(())
}

/// One line per chain: its index, id, height, balance, and the credits waiting in its inbox.
async fn print_balances(session: &Session, chains: &[ChainId]) -> Result<(), CliError> {
    for chain_id in chains {
        let state = session.local.chain_state(*chain_id).await?;
        let waiting: u64 = state
            .inboxes()
            .values()
            .flat_map(|inbox| inbox.bundles().values())
            .flatten()
            .map(|message| match message {
                quorum_core::Message::Credit { amount }
                | quorum_core::Message::Return { amount } => *amount,
            })
            .fold(0u64, u64::saturating_add);
        let index = session
            .wallet
            .index_of(*chain_id)?
            .map_or_else(|| "-".to_owned(), |i| i.to_string());
        println!(
            "chain {index} {} height {} balance {} waiting {waiting}{}",
            chain_hex(chain_id),
            state.next_height().0,
            state.balance(),
            if state.is_closed() { " closed" } else { "" }
        );
    }
    Ok(())
}
