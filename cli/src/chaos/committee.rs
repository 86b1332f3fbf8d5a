//! The committee of a chaos run: keys and genesis drawn from the seed, each validator's
//! directory and configuration, its process, and the fault proxy clients reach it through.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::SeedableRng;

use quorum_chaos::proxy::{FaultProxy, ProxyHandle};
use quorum_core::{AccountSecretKey, ChainId, Committee, ValidatorInfo, ValidatorSecretKey};
use quorum_node::Genesis;

use super::processes::ValidatorProcess;
use crate::error::CliError;
use crate::files::{self, GENESIS_FILE};
use crate::keys;
use crate::operator::setup::genesis_chain;
use crate::operator::validator_config::ValidatorConfig;

/// A chain of the run and the keys of its owners.
#[derive(Clone, Debug)]
pub struct ChainPlan {
    /// The chain.
    pub id: ChainId,
    /// Its owners (one, or two whose clients propose at the same time).
    pub owners: Vec<AccountSecretKey>,
}

/// A client of the workload: the chain it proposes on, with which owner key.
#[derive(Clone, Debug)]
pub struct ClientPlan {
    /// Its index (`client-N`).
    pub index: usize,
    /// Its chain.
    pub chain: ChainId,
    /// Its owner key on that chain.
    pub owner: AccountSecretKey,
}

/// One validator of the run.
#[derive(Debug)]
pub struct Member {
    /// Its process.
    pub process: ValidatorProcess,
    /// Its key.
    pub key: ValidatorSecretKey,
    /// Where it listens itself.
    pub listen: SocketAddr,
    /// Its clock offset file.
    pub clock_file: PathBuf,
    /// The proxy clients reach it through (the committee's address for it).
    pub proxy: FaultProxy,
    /// The proxy's fault switch.
    pub faults: ProxyHandle,
    /// Whether it runs the Byzantine testing mode (the checker does not ask it).
    pub byzantine: bool,
}

/// Everything a chaos run starts from.
#[derive(Debug)]
pub struct ChaosCommittee {
    /// The validators, in committee order.
    pub members: Vec<Member>,
    /// The genesis.
    pub genesis: Genesis,
    /// Every chain, the admin chain first.
    pub chains: Vec<ChainPlan>,
    /// The workload's clients.
    pub clients: Vec<ClientPlan>,
}

impl ChaosCommittee {
    /// Draws keys from `seed`, starts a proxy per validator (the committee's addresses), and
    /// writes each validator's key, configuration and genesis under `dir`; validator
    /// `byzantine`, if any, will run the Byzantine testing mode. Nothing is started.
    pub async fn prepare(
        dir: &Path,
        seed: u64,
        validators: usize,
        clients: usize,
        byzantine: Option<usize>,
    ) -> Result<ChaosCommittee, CliError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut keys: Vec<ValidatorSecretKey> = (0..validators)
            .map(|_| ValidatorSecretKey::generate(&mut rng))
            .collect();
        keys.sort_by_key(ValidatorSecretKey::public);
        let mut members = Vec::new();
        for (index, key) in keys.into_iter().enumerate() {
            let listen = free_address().await?;
            let proxy = FaultProxy::start(listen).await?;
            let faults = proxy.handle();
            let own = dir.join(format!("validator-{index}"));
            create_dir(&own)?;
            let clock_file = own.join("clock_offset_ms");
            files::write_new(&clock_file, "0\n")?;
            let process = ValidatorProcess::new(
                format!("validator-{index}"),
                own.join("validator.toml"),
                clock_file.clone(),
                own.join("stderr.log"),
                byzantine == Some(index),
            );
            members.push(Member {
                process,
                key,
                listen,
                clock_file,
                proxy,
                faults,
                byzantine: byzantine == Some(index),
            });
        }
        let committee = Committee::new(
            members
                .iter()
                .map(|member| {
                    let info = ValidatorInfo {
                        votes: 1,
                        address: member.proxy.local_addr().to_string(),
                        network_key: None,
                    };
                    (member.key.public(), info)
                })
                .collect(),
        )?;
        let (chains, client_plans) = plan_chains(&mut rng, clients);
        let genesis = genesis(committee, &chains);
        let chains: Vec<ChainPlan> = genesis
            .chains
            .iter()
            .zip(chains)
            .map(|(description, owners)| ChainPlan {
                id: description.id(),
                owners,
            })
            .collect();
        let clients = client_plans
            .into_iter()
            .map(|(index, chain, owner)| ClientPlan {
                index,
                chain: chains[chain].id,
                owner: chains[chain].owners[owner].clone(),
            })
            .collect();
        files::write(&dir.join(GENESIS_FILE), &genesis, "genesis")?;
        for (index, member) in members.iter().enumerate() {
            let own = dir.join(format!("validator-{index}"));
            keys::write_validator_key(&own.join("validator.key"), &member.key)?;
            let config = ValidatorConfig::new(
                member.listen.to_string(),
                PathBuf::from("validator.redb"),
                PathBuf::from("validator.key"),
                Path::new("..").join(GENESIS_FILE),
            );
            files::write_new(&own.join("validator.toml"), &config.to_toml()?)?;
        }
        Ok(ChaosCommittee {
            members,
            genesis,
            chains,
            clients,
        })
    }

    /// Each chain's balance at genesis.
    pub fn genesis_balances(&self) -> BTreeMap<ChainId, u64> {
        self.genesis
            .chains
            .iter()
            .map(|description| (description.id(), description.balance))
            .collect()
    }
}

/// The owners of each chain (the admin chain first, with one owner) and, for each client,
/// its chain and owner: the first clients in pairs on chains with two owners (a third of the
/// clients, rounded down, at least one pair when there are two clients), the others alone on
/// a chain each.
#[allow(clippy::type_complexity)]
fn plan_chains(
    rng: &mut StdRng,
    clients: usize,
) -> (Vec<Vec<AccountSecretKey>>, Vec<(usize, usize, usize)>) {
    let pairs = if clients >= 2 {
        (clients / 3).max(1)
    } else {
        0
    };
    let mut chains = vec![vec![AccountSecretKey::generate(rng)]];
    let mut plans = Vec::new();
    for pair in 0..pairs {
        chains.push(vec![
            AccountSecretKey::generate(rng),
            AccountSecretKey::generate(rng),
        ]);
        plans.push((2 * pair, chains.len() - 1, 0));
        plans.push((2 * pair + 1, chains.len() - 1, 1));
    }
    for index in 2 * pairs..clients {
        chains.push(vec![AccountSecretKey::generate(rng)]);
        plans.push((index, chains.len() - 1, 0));
    }
    (chains, plans)
}

/// The genesis: one chain per entry of `owners`; a chain with one owner has a fast round, a
/// chain with two starts in the multi-leader rounds.
fn genesis(committee: Committee, owners: &[Vec<AccountSecretKey>]) -> Genesis {
    let chains = owners
        .iter()
        .enumerate()
        .map(|(index, keys)| {
            let super_owner = (keys.len() == 1).then(|| keys[0].public());
            genesis_chain(index, keys, super_owner)
        })
        .collect();
    Genesis { committee, chains }
}

/// A loopback address with a free port (bound now to learn the port, released for the
/// validator to bind).
async fn free_address() -> Result<SocketAddr, CliError> {
    let listener = crate::operator::validator::bind("127.0.0.1:0").await?;
    listener
        .local_addr()
        .map_err(|error| CliError::Transport(quorum_transport_tcp::TransportError::from(error)))
}

fn create_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::File {
        path: dir.to_owned(),
        source,
    })
}
