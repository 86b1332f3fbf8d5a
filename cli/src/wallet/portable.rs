//! The portable wallet, `wallet.bcs`: what `genesis` and `dev-genesis` write (the genesis
//! chains with their owner keys), imported once into the wallet database.

use std::path::Path;

use serde::{Deserialize, Serialize};

use quorum_core::{AccountSecretKey, ChainId};

use crate::error::CliError;

/// The first bytes of a portable wallet of the current layout (older files start with their
/// chain count).
const MAGIC: [u8; 4] = *b"QWL2";

/// One chain of a portable wallet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WalletChain {
    /// The chain.
    pub chain_id: ChainId,
    /// Its owner key, when the wallet holds one.
    pub owner: Option<AccountSecretKey>,
}

/// The portable wallet (`wallet.bcs`): chains with their owner keys, and spare keys.
#[derive(Clone, Debug, Default)]
pub struct PortableWallet {
    /// The chains, in wallet order.
    pub chains: Vec<WalletChain>,
    /// Owner keys no chain uses yet.
    pub keys: Vec<AccountSecretKey>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    magic: [u8; 4],
    chains: Vec<WalletChain>,
    keys: Vec<AccountSecretKey>,
}

/// The layout before wallets kept keys apart: owned chains only.
#[derive(Deserialize)]
struct Legacy {
    chains: Vec<(ChainId, AccountSecretKey)>,
}

impl PortableWallet {
    /// The file content.
    pub fn encode(&self, path: &Path) -> Result<Vec<u8>, CliError> {
        let stored = Stored {
            magic: MAGIC,
            chains: self.chains.clone(),
            keys: self.keys.clone(),
        };
        bcs::to_bytes(&stored).map_err(|e| format_error(path, &e))
    }

    /// Reads a portable wallet (either layout).
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let bytes = std::fs::read(path).map_err(|source| CliError::File {
            path: path.to_owned(),
            source,
        })?;
        if bytes.starts_with(&MAGIC) {
            let stored: Stored = bcs::from_bytes(&bytes).map_err(|e| format_error(path, &e))?;
            return Ok(PortableWallet {
                chains: stored.chains,
                keys: stored.keys,
            });
        }
        let legacy: Legacy = bcs::from_bytes(&bytes).map_err(|e| format_error(path, &e))?;
        Ok(PortableWallet {
            chains: legacy
                .chains
                .into_iter()
                .map(|(chain_id, owner)| WalletChain {
                    chain_id,
                    owner: Some(owner),
                })
                .collect(),
            keys: Vec::new(),
        })
    }
}

fn format_error(path: &Path, error: &bcs::Error) -> CliError {
    CliError::Format {
        path: path.to_owned(),
        what: "wallet",
        reason: error.to_string(),
    }
}
