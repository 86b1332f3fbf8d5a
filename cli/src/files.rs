//! The files a committee across machines shares: genesis, validator configurations and the
//! client's wallet. All are BCS-encoded.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use quorum_core::{AccountSecretKey, ChainId, ValidatorSecretKey};

use crate::error::CliError;

/// Name of the genesis file in a committee directory.
pub const GENESIS_FILE: &str = "genesis.bcs";
/// Name of the wallet file in a committee directory.
pub const WALLET_FILE: &str = "wallet.bcs";

/// The configuration of one validator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidatorConfig {
    /// The validator's signing key.
    pub key: ValidatorSecretKey,
    /// Address to listen on, e.g. `127.0.0.1:9100`.
    pub listen: String,
    /// The redb database file.
    pub database: PathBuf,
}

/// The chains a client owns.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Wallet {
    /// Each owned chain with its owner key, in genesis order.
    pub chains: Vec<(ChainId, AccountSecretKey)>,
}

/// The file name of validator `index`'s configuration.
pub fn validator_file(index: usize) -> String {
    format!("validator-{index}.bcs")
}

/// Writes `value` to `path` as BCS.
pub fn write<T: Serialize>(path: &Path, value: &T, what: &'static str) -> Result<(), CliError> {
    let bytes = bcs::to_bytes(value).map_err(|e| CliError::Format {
        path: path.to_owned(),
        what,
        reason: e.to_string(),
    })?;
    std::fs::write(path, bytes).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })
}

/// Reads a BCS value from `path`.
pub fn read<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, CliError> {
    let bytes = std::fs::read(path).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })?;
    bcs::from_bytes(&bytes).map_err(|e| CliError::Format {
        path: path.to_owned(),
        what,
        reason: e.to_string(),
    })
}
