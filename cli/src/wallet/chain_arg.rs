//! Chains as the commands name them: a wallet index or a chain id in hex.

use std::str::FromStr;

use quorum_core::{ChainId, CryptoHash, HASH_LENGTH};

/// A chain named on the command line: its index in the wallet, or its id in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainArg {
    /// The chain at this index of the wallet.
    Index(usize),
    /// The chain with this id.
    Id(ChainId),
}

/// As the user wrote it: the index, or the id in hex.
impl std::fmt::Display for ChainArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainArg::Index(index) => write!(f, "{index}"),
            ChainArg::Id(chain_id) => write!(f, "{}", chain_id.0),
        }
    }
}

/// Why a chain argument is neither a wallet index nor a chain id.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is neither a wallet index nor a chain id ({} hex digits)", HASH_LENGTH * 2)]
pub struct ChainArgError {
    text: String,
}

impl FromStr for ChainArg {
    type Err = ChainArgError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(index) = text.parse::<usize>() {
            return Ok(ChainArg::Index(index));
        }
        let error = || ChainArgError {
            text: text.to_owned(),
        };
        let bytes = hex::decode(text).map_err(|_| error())?;
        let hash = <[u8; HASH_LENGTH]>::try_from(bytes.as_slice()).map_err(|_| error())?;
        Ok(ChainArg::Id(ChainId(CryptoHash(hash))))
    }
}

/// A chain id as the commands print it and take it: 64 hex digits.
pub fn chain_hex(chain_id: &ChainId) -> String {
    chain_id.0.to_string()
}
