//! Building a genesis: from a committee of public keys (across machines), or with every key
//! made in one place (the demo and tests).

use std::collections::BTreeMap;

use rand::rngs::{OsRng, StdRng};
use rand::{CryptoRng, RngCore, SeedableRng};

use quorum_core::{
    AccountSecretKey, ChainDescription, ChainOrigin, Committee, ConsensusConfig, Epoch, TimeDelta,
    Timestamp, ValidatorInfo, ValidatorSecretKey,
};
use quorum_node::Genesis;
use quorum_transport_quic::NetworkKey;

use crate::error::CliError;

/// Balance every genesis chain starts with.
pub const INITIAL_BALANCE: u64 = 1_000_000;

/// Consensus settings of the chains the program creates: two multi-leader rounds, then
/// single-leader rounds starting at a 2 s timeout growing by 1 s per round.
pub fn consensus() -> ConsensusConfig {
    ConsensusConfig {
        multi_leader_rounds: 2,
        fast_round_duration: TimeDelta::from_secs(1),
        base_timeout: TimeDelta::from_secs(2),
        timeout_increment: TimeDelta::from_secs(1),
    }
}

/// Whether the genesis chains' single owner may commit in the fast round (DESIGN §4.3).
///
/// In the fast round a proposal gets confirmed votes at once: one round of votes per block
/// instead of two, which is how a chain with one owner runs best. Validators that voted for a
/// fast proposal are locked on its block, so the owner is trusted not to propose two blocks
/// at one height in the fast round: only its own chain could stall if it did. Without the
/// fast round every block goes through a validated and a confirmed certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FastRound {
    /// Each genesis chain's owner is its super owner: blocks start in the fast round.
    #[default]
    Enabled,
    /// No super owner: blocks start in the first multi-leader round (two phases).
    Disabled,
}

impl std::fmt::Display for FastRound {
    /// How blocks are agreed, as the demo's summary says it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FastRound::Enabled => "fast round",
            FastRound::Disabled => "two phases",
        })
    }
}

/// The `--no-fast-round` flag of every command that makes a genesis (`demo`, `genesis`,
/// `dev-genesis`).
#[derive(Clone, Copy, Debug, Default, clap::Args)]
pub struct RoundArgs {
    /// Start every block in the first multi-leader round (two rounds of votes per block)
    /// instead of the fast round of the chain's single owner.
    #[arg(long)]
    pub no_fast_round: bool,
}

impl RoundArgs {
    /// [`FastRound::Disabled`] when `--no-fast-round` is set.
    pub fn fast_round(self) -> FastRound {
        if self.no_fast_round {
            FastRound::Disabled
        } else {
            FastRound::Enabled
        }
    }
}

/// A committee whose every key was made in one place, with its genesis.
///
/// Insecure: whoever ran the set-up holds every validator's key. For the demo and tests only;
/// a committee across machines is built from public keys ([`genesis_for`]).
#[derive(Debug)]
pub struct CommitteeSetup {
    /// Validator keys, in committee (key) order.
    pub validator_keys: Vec<ValidatorSecretKey>,
    /// Their network keys (DESIGN §6.2), in the same order; the committee lists each public
    /// half.
    pub network_keys: Vec<NetworkKey>,
    /// Their addresses, in the same order.
    pub addresses: Vec<String>,
    /// Chain owners, one per genesis chain (the first chain is the admin chain).
    pub owners: Vec<AccountSecretKey>,
    /// The genesis.
    pub genesis: Genesis,
}

/// Creates equal-weight validators at `addresses` and `chains` genesis chains, every key made
/// here (insecure: for demos and tests). The keys come from the operating system's random
/// source, or from `insecure_seed` when given (the same seed gives the same keys).
pub fn all_in_one(
    addresses: Vec<String>,
    chains: usize,
    fast_round: FastRound,
    insecure_seed: Option<u64>,
) -> Result<CommitteeSetup, CliError> {
    match insecure_seed {
        Some(seed) => all_in_one_from(
            addresses,
            chains,
            fast_round,
            &mut StdRng::seed_from_u64(seed),
        ),
        None => all_in_one_from(addresses, chains, fast_round, &mut OsRng),
    }
}

fn all_in_one_from<R: RngCore + CryptoRng>(
    addresses: Vec<String>,
    chains: usize,
    fast_round: FastRound,
    rng: &mut R,
) -> Result<CommitteeSetup, CliError> {
    if addresses.is_empty() {
        return Err(CliError::NoValidators);
    }
    check_chains(chains)?;
    let mut validator_keys: Vec<ValidatorSecretKey> = addresses
        .iter()
        .map(|_| ValidatorSecretKey::generate(rng))
        .collect();
    validator_keys.sort_by_key(ValidatorSecretKey::public);
    let owners: Vec<AccountSecretKey> = (0..chains)
        .map(|_| AccountSecretKey::generate(rng))
        .collect();
    // Drawn last, so that a seed gives the keys and chains it gave before network keys.
    let network_keys: Vec<NetworkKey> = addresses
        .iter()
        .map(|_| crate::keys::generate_network_key(rng))
        .collect();
    let members: BTreeMap<_, _> = validator_keys
        .iter()
        .zip(&addresses)
        .zip(&network_keys)
        .map(|((key, address), network)| {
            (
                key.public(),
                ValidatorInfo {
                    votes: 1,
                    address: address.clone(),
                    network_key: Some(network.public()),
                },
            )
        })
        .collect();
    let committee = Committee::new(members)?;
    Ok(CommitteeSetup {
        validator_keys,
        network_keys,
        addresses,
        genesis: genesis(committee, &owners, fast_round),
        owners,
    })
}

/// The genesis of `committee` (built from public keys only) with `chains` chains whose owner
/// keys are made here from the operating system's random source; returns the owner keys (the
/// wallet of whoever runs the genesis) with it.
pub fn genesis_for(
    committee: Committee,
    chains: usize,
    fast_round: FastRound,
) -> Result<(Genesis, Vec<AccountSecretKey>), CliError> {
    check_chains(chains)?;
    let owners: Vec<AccountSecretKey> = (0..chains)
        .map(|_| AccountSecretKey::generate(&mut OsRng))
        .collect();
    Ok((genesis(committee, &owners, fast_round), owners))
}

fn check_chains(chains: usize) -> Result<(), CliError> {
    if chains == 0 {
        return Err(CliError::NoChains);
    }
    Ok(())
}

/// The genesis of `committee` with one chain per owner, in order (the first is the admin chain),
/// each owner its chain's super owner when `fast_round` is enabled.
fn genesis(committee: Committee, owners: &[AccountSecretKey], fast_round: FastRound) -> Genesis {
    let chains = owners
        .iter()
        .enumerate()
        .map(|(index, owner)| {
            let super_owner = (fast_round == FastRound::Enabled).then(|| owner.public());
            genesis_chain(index, std::slice::from_ref(owner), super_owner)
        })
        .collect();
    Genesis { committee, chains }
}

/// Genesis chain `index`, owned by `owners` (weight 1 each), with [`consensus`] and
/// [`INITIAL_BALANCE`]; a fast round for `super_owner`, if any.
pub fn genesis_chain(
    index: usize,
    owners: &[AccountSecretKey],
    super_owner: Option<quorum_core::AccountPublicKey>,
) -> ChainDescription {
    ChainDescription {
        origin: ChainOrigin::Genesis(index as u32),
        owners: owners.iter().map(|owner| (owner.public(), 1)).collect(),
        super_owner,
        epoch: Epoch(0),
        timestamp: Timestamp(0),
        consensus: consensus(),
        balance: INITIAL_BALANCE,
    }
}
