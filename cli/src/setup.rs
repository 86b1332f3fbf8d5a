//! Building a committee: keys, addresses, chains and the genesis.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::SeedableRng;

use quorum_core::{
    AccountSecretKey, ChainDescription, ChainOrigin, Committee, ConsensusConfig, Epoch, TimeDelta,
    Timestamp, ValidatorInfo, ValidatorSecretKey,
};
use quorum_node::Genesis;

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

/// Everything a committee on one machine or across machines starts from.
#[derive(Debug)]
pub struct CommitteeSetup {
    /// Validator keys, in committee (key) order.
    pub validator_keys: Vec<ValidatorSecretKey>,
    /// Their addresses, in the same order.
    pub addresses: Vec<String>,
    /// Chain owners, one per genesis chain (the first chain is the admin chain).
    pub owners: Vec<AccountSecretKey>,
    /// The genesis.
    pub genesis: Genesis,
}

/// Creates `validators` equal-weight validators at `addresses` and `chains` genesis chains, from
/// a seed (the same seed gives the same keys).
pub fn build(addresses: Vec<String>, chains: usize, seed: u64) -> Result<CommitteeSetup, CliError> {
    if addresses.is_empty() {
        return Err(CliError::Usage(
            "a committee needs at least one validator".into(),
        ));
    }
    if chains == 0 {
        return Err(CliError::Usage(
            "at least one chain (the admin chain) is needed".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut validator_keys: Vec<ValidatorSecretKey> = addresses
        .iter()
        .map(|_| ValidatorSecretKey::generate(&mut rng))
        .collect();
    validator_keys.sort_by_key(ValidatorSecretKey::public);
    let members: BTreeMap<_, _> = validator_keys
        .iter()
        .zip(&addresses)
        .map(|(key, address)| {
            (
                key.public(),
                ValidatorInfo {
                    votes: 1,
                    address: address.clone(),
                },
            )
        })
        .collect();
    let committee = Committee::new(members).map_err(|e| CliError::Usage(e.to_string()))?;
    let owners: Vec<AccountSecretKey> = (0..chains)
        .map(|_| AccountSecretKey::generate(&mut rng))
        .collect();
    let descriptions = owners
        .iter()
        .enumerate()
        .map(|(index, owner)| ChainDescription {
            origin: ChainOrigin::Genesis(index as u32),
            owners: BTreeMap::from([(owner.public(), 1)]),
            super_owner: None,
            epoch: Epoch(0),
            timestamp: Timestamp(0),
            consensus: consensus(),
            balance: INITIAL_BALANCE,
        })
        .collect();
    Ok(CommitteeSetup {
        validator_keys,
        addresses,
        owners,
        genesis: Genesis {
            committee,
            chains: descriptions,
        },
    })
}
