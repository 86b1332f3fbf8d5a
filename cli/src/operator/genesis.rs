//! `quorum genesis` (a committee across machines, from public keys) and `quorum dev-genesis`
//! (every key made in one place: insecure, for demos and tests).
//!
//! Both write, into one directory: `genesis.bcs` (what validators and clients load; the same
//! file goes to every machine), `genesis.toml` (a readable copy of it for checking) and
//! `wallet.bcs` (the genesis chains' owner keys, mode 0600, for the client). `dev-genesis` also
//! writes each validator's key file (mode 0600) and TOML configuration.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tracing::{info, warn};

use quorum_core::AccountSecretKey;
use quorum_node::Genesis;

use crate::address::Layout;
use crate::error::CliError;
use crate::files::{self, GENESIS_COPY_FILE, GENESIS_FILE};
use crate::keys;
use crate::operator::committee_file::{CommitteeFile, Member};
use crate::operator::setup;
use crate::operator::validator_config::ValidatorConfig;
use crate::wallet::{PortableWallet, WalletChain, WALLET_FILE};

/// `quorum genesis`: the genesis of a committee across machines.
#[derive(Clone, Debug, clap::Args)]
pub struct GenesisArgs {
    /// The committee file (TOML): each validator's public key (from its `quorum keygen`),
    /// address and weight, and the number of genesis chains.
    #[arg(long)]
    pub committee: PathBuf,
    /// Directory to write `genesis.bcs`, `genesis.toml` and `wallet.bcs` into.
    #[arg(long)]
    pub dir: PathBuf,
    /// Whether blocks start in the fast round.
    #[command(flatten)]
    pub rounds: setup::RoundArgs,
}

/// Builds the genesis from a committee file of public keys: no validator secret is involved.
pub fn genesis(args: &GenesisArgs) -> Result<(), CliError> {
    let file = CommitteeFile::load(&args.committee)?;
    let committee = file.committee(&args.committee)?;
    let (genesis, owners) = setup::genesis_for(committee, file.chains, args.rounds.fast_round())?;
    write_committee_dir(&args.dir, &genesis, owners, &[])?;
    println!(
        "wrote {dir}/{GENESIS_FILE} ({} validators, {} chains; copy it beside each \
         validator's configuration), {dir}/{GENESIS_COPY_FILE} and {dir}/{WALLET_FILE} (the \
         chains' owner keys, mode 0600)",
        file.validators.len(),
        file.chains,
        dir = args.dir.display(),
    );
    Ok(())
}

/// `quorum dev-genesis`: insecure: for demos and tests.
#[derive(Clone, Debug, clap::Args)]
pub struct DevGenesisArgs {
    /// Directory to write into.
    #[arg(long)]
    pub dir: PathBuf,
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Number of genesis chains (the first is the admin chain).
    #[arg(long, default_value_t = 4)]
    pub chains: usize,
    /// Whether blocks start in the fast round.
    #[command(flatten)]
    pub rounds: setup::RoundArgs,
    /// Host the validators listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the first validator; the others follow.
    #[arg(long, default_value_t = 9100)]
    pub base_port: u16,
    /// Transport of the validators: `tcp`, `quic` (each known by its network key, DESIGN
    /// §6.2), or `mixed` (the first half TCP, the others QUIC).
    #[arg(long, value_enum, default_value_t = Layout::Tcp)]
    pub transport: Layout,
    /// Derive every key from this seed, so that the same seed gives the same committee.
    /// Insecure: anyone who knows the seed has every key. Default: the operating system's
    /// random source (different keys on every run).
    #[arg(long)]
    pub insecure_seed: Option<u64>,
}

/// The key file of validator `index` in a `dev-genesis` directory.
pub fn dev_key_file(index: usize) -> String {
    format!("validator-{index}.key")
}

/// The network key file of validator `index` in a `dev-genesis` directory.
pub fn dev_network_key_file(index: usize) -> String {
    format!("validator-{index}.network.key")
}

/// The configuration file of validator `index` in a `dev-genesis` directory.
pub fn dev_config_file(index: usize) -> String {
    format!("validator-{index}.toml")
}

/// Writes a whole committee with every key made here.
pub fn dev_genesis(args: &DevGenesisArgs) -> Result<(), CliError> {
    let addresses = (0..args.validators)
        .map(|i| {
            let port = usize::from(args.base_port) + i;
            u16::try_from(port)
                .map(|port| {
                    let host_port = format!("{}:{port}", args.host);
                    args.transport.address(i, args.validators, &host_port)
                })
                .map_err(|_| CliError::PortOutOfRange(port))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let setup = setup::all_in_one(
        addresses,
        args.chains,
        args.rounds.fast_round(),
        args.insecure_seed,
    )?;
    let validator_files: Vec<PathBuf> = (0..args.validators)
        .flat_map(|i| [dev_key_file(i), dev_network_key_file(i), dev_config_file(i)])
        .map(|name| args.dir.join(name))
        .collect();
    write_committee_dir(&args.dir, &setup.genesis, setup.owners, &validator_files)?;
    // Files are numbered in committee order, like `genesis.committee.validators()`.
    let members = setup.validator_keys.iter().zip(&setup.network_keys);
    for (index, ((key, network_key), address)) in members.zip(&setup.addresses).enumerate() {
        let key_file = dev_key_file(index);
        keys::write_validator_key(&args.dir.join(&key_file), key)?;
        let network_key_file = dev_network_key_file(index);
        keys::write_network_key(&args.dir.join(&network_key_file), network_key)?;
        let mut config = ValidatorConfig::new(
            address.clone(),
            PathBuf::from(format!("validator-{index}.redb")),
            PathBuf::from(key_file),
            PathBuf::from(GENESIS_FILE),
        );
        config.network_key_file = Some(PathBuf::from(network_key_file));
        files::write_new(&args.dir.join(dev_config_file(index)), &config.to_toml()?)?;
    }
    match args.insecure_seed {
        Some(seed) => warn!(
            seed,
            "every key derives from --insecure-seed: for tests only"
        ),
        None => warn!("every key of this committee was made on this machine: for demos only"),
    }
    println!(
        "wrote {} (insecure, for demos and tests: genesis, {} validator keys and \
         configurations, wallet with {} chains)",
        args.dir.display(),
        args.validators,
        args.chains
    );
    Ok(())
}

/// Writes `genesis.bcs`, its readable copy and the wallet into `dir`, after checking that
/// none of them nor any of `also_new` exists yet (nothing is written if one does).
fn write_committee_dir(
    dir: &Path,
    genesis: &Genesis,
    owners: Vec<AccountSecretKey>,
    also_new: &[PathBuf],
) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::File {
        path: dir.to_owned(),
        source,
    })?;
    let genesis_path = dir.join(GENESIS_FILE);
    let copy_path = dir.join(GENESIS_COPY_FILE);
    let wallet_path = dir.join(WALLET_FILE);
    files::ensure_absent(
        [&genesis_path, &copy_path, &wallet_path]
            .into_iter()
            .chain(also_new)
            .map(PathBuf::as_path),
    )?;
    files::write(&genesis_path, genesis, "genesis")?;
    files::write_new(&copy_path, &readable(genesis)?)?;
    let wallet = PortableWallet {
        chains: genesis
            .chains
            .iter()
            .zip(owners)
            .map(|(description, owner)| WalletChain {
                chain_id: description.id(),
                owner: Some(owner),
            })
            .collect(),
        keys: Vec::new(),
    };
    files::write_private(&wallet_path, &wallet.encode(&wallet_path)?)?;
    info!(dir = %dir.display(), "wrote genesis");
    Ok(())
}

/// The readable copy of a genesis.
#[derive(Serialize)]
struct ReadableGenesis {
    validators: Vec<Member>,
    chains: Vec<ReadableChain>,
}

/// A genesis chain in the readable copy.
#[derive(Serialize)]
struct ReadableChain {
    id: String,
    owners: Vec<String>,
    balance: u64,
}

/// The genesis as TOML, for operators to check before starting their validator.
fn readable(genesis: &Genesis) -> Result<String, CliError> {
    let copy = ReadableGenesis {
        validators: genesis
            .committee
            .validators()
            .map(|(key, info)| Member {
                public_key: *key,
                network_key: info.network_key,
                address: info.address.clone(),
                votes: info.votes,
            })
            .collect(),
        chains: genesis
            .chains
            .iter()
            .map(|chain| ReadableChain {
                id: chain.id().0.to_string(),
                owners: chain.owners.keys().map(ToString::to_string).collect(),
                balance: chain.balance,
            })
            .collect(),
    };
    let body = toml::to_string(&copy).map_err(|source| CliError::TomlWrite {
        what: "genesis copy",
        source,
    })?;
    Ok(format!(
        "# A readable copy of {GENESIS_FILE}, for checking: validators and clients load \
         {GENESIS_FILE}.\n\n{body}"
    ))
}
