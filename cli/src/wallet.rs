//! The wallet of `quorum client` (DESIGN §5.8): the chains a user follows, each with its
//! owner key when the user owns it, and the owner keys made for chains yet to be opened.
//!
//! The file (`wallet.bcs`, mode 0600) is written atomically: a new file beside it, synced,
//! renamed over the old one, and the directory synced, so that a crash leaves the old wallet or
//! the new one, never a mix, and no key is ever lost. Commands that change it hold the
//! directory's wallet lock ([`WalletLock`]) from reading it to writing it, so two commands on
//! one wallet never lose each other's changes. Wallets written before keys could be kept
//! apart (a list of owned chains) are still read.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use quorum_core::{AccountPublicKey, AccountSecretKey, ChainId, CryptoHash, HASH_LENGTH};

use crate::error::CliError;
use crate::files::SECRET_FILE_MODE;

/// Name of the wallet file in a client directory (mode 0600: it holds the owners' keys).
pub const WALLET_FILE: &str = "wallet.bcs";
/// Name of the lock file beside the wallet.
pub const WALLET_LOCK_FILE: &str = "wallet.lock";
/// The first bytes of a wallet file of this format (older files start with their chain count).
const MAGIC: [u8; 4] = *b"QWL2";
/// How often a command waiting for the wallet lock tries again.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// One chain the wallet follows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WalletChain {
    /// The chain.
    pub chain_id: ChainId,
    /// Its owner key, when the wallet holds one.
    pub owner: Option<AccountSecretKey>,
}

/// The chains a client follows and the owner keys it holds.
#[derive(Clone, Debug, Default)]
pub struct Wallet {
    /// The followed chains, in the order they were added (their wallet indices).
    pub chains: Vec<WalletChain>,
    /// Owner keys made with `new-owner`, whether or not a chain uses them yet.
    pub keys: Vec<AccountSecretKey>,
}

/// The file's layout.
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

/// Why a chain argument is neither an index nor a chain id.
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

impl Wallet {
    /// Reads the wallet at `path` (either layout).
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let bytes = std::fs::read(path).map_err(|source| CliError::File {
            path: path.to_owned(),
            source,
        })?;
        if bytes.starts_with(&MAGIC) {
            let stored: Stored = bcs::from_bytes(&bytes).map_err(|e| format_error(path, &e))?;
            return Ok(Wallet {
                chains: stored.chains,
                keys: stored.keys,
            });
        }
        let legacy: Legacy = bcs::from_bytes(&bytes).map_err(|e| format_error(path, &e))?;
        Ok(Wallet {
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

    /// The wallet's file content (for `path`'s error messages).
    pub fn encode(&self, path: &Path) -> Result<Vec<u8>, CliError> {
        let stored = Stored {
            magic: MAGIC,
            chains: self.chains.clone(),
            keys: self.keys.clone(),
        };
        bcs::to_bytes(&stored).map_err(|e| format_error(path, &e))
    }

    /// Writes the wallet to `path` atomically and durably (see the module's documentation).
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        write_atomically(path, &self.encode(path)?)
    }

    /// The chain an argument names: an index must be in the wallet; an id need not be.
    pub fn resolve(&self, arg: ChainArg) -> Result<ChainId, CliError> {
        match arg {
            ChainArg::Id(chain_id) => Ok(chain_id),
            ChainArg::Index(index) => {
                self.chains
                    .get(index)
                    .map(|chain| chain.chain_id)
                    .ok_or(CliError::NoSuchChain {
                        index,
                        chains: self.chains.len(),
                    })
            }
        }
    }

    /// The chain an argument names with the owner key the wallet holds for it, or
    /// `NotOwned`.
    pub fn owned(&self, arg: ChainArg) -> Result<(ChainId, AccountSecretKey), CliError> {
        let chain_id = self.resolve(arg)?;
        self.owner_of(chain_id)
            .map(|owner| (chain_id, owner))
            .ok_or(CliError::NotOwned(chain_hex(&chain_id)))
    }

    /// The owner key the wallet holds for `chain_id`.
    pub fn owner_of(&self, chain_id: ChainId) -> Option<AccountSecretKey> {
        self.chains
            .iter()
            .find(|chain| chain.chain_id == chain_id)
            .and_then(|chain| chain.owner.clone())
    }

    /// The secret key the wallet holds for `public`, among its keys and its chains' owners.
    pub fn secret_of(&self, public: &AccountPublicKey) -> Option<AccountSecretKey> {
        self.keys
            .iter()
            .chain(self.chains.iter().filter_map(|chain| chain.owner.as_ref()))
            .find(|key| key.public() == *public)
            .cloned()
    }

    /// Adds `chain_id` (or, if it is there already without a key, gives it `owner`). Returns
    /// its index.
    pub fn add_chain(&mut self, chain_id: ChainId, owner: Option<AccountSecretKey>) -> usize {
        if let Some(index) = self.chains.iter().position(|c| c.chain_id == chain_id) {
            if let Some(chain) = self.chains.get_mut(index) {
                if chain.owner.is_none() {
                    chain.owner = owner;
                }
            }
            return index;
        }
        self.chains.push(WalletChain { chain_id, owner });
        self.chains.len() - 1
    }
}

fn format_error(path: &Path, error: &bcs::Error) -> CliError {
    CliError::Format {
        path: path.to_owned(),
        what: "wallet",
        reason: error.to_string(),
    }
}

/// Writes `bytes` to `path` through a new file beside it (mode 0600), synced, renamed over
/// `path`, and the directory synced.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let file_error = |path: &Path| {
        let path = path.to_owned();
        move |source| CliError::File { path, source }
    };
    let temporary = path.with_extension("bcs.new");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(SECRET_FILE_MODE)
        .open(&temporary)
        .map_err(file_error(&temporary))?;
    file.write_all(bytes).map_err(file_error(&temporary))?;
    file.sync_all().map_err(file_error(&temporary))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(file_error(path))?;
    let directory = path.parent().unwrap_or_else(|| Path::new("."));
    File::open(directory)
        .and_then(|dir| dir.sync_all())
        .map_err(file_error(directory))
}

/// The wallet lock of a directory, held while a command reads and then writes the wallet
/// (an advisory lock on [`WALLET_LOCK_FILE`], released when dropped or when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct WalletLock {
    _file: File,
}

impl WalletLock {
    /// Takes the lock of `dir`, waiting at most `wait` for another command to release it
    /// (`WalletBusy` then).
    pub fn acquire(dir: &Path, wait: Duration) -> Result<Self, CliError> {
        let path: PathBuf = dir.join(WALLET_LOCK_FILE);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(SECRET_FILE_MODE)
            .open(&path)
            .map_err(|source| CliError::File {
                path: path.clone(),
                source,
            })?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WalletLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(CliError::WalletBusy(dir.to_owned()))
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(CliError::File { path, source })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn key(seed: u64) -> AccountSecretKey {
        AccountSecretKey::generate(&mut rand::rngs::StdRng::seed_from_u64(seed))
    }

    fn chain(byte: u8) -> ChainId {
        ChainId(CryptoHash([byte; 32]))
    }

    #[test]
    fn a_wallet_round_trips_and_the_old_layout_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WALLET_FILE);
        let mut wallet = Wallet::default();
        wallet.keys.push(key(1));
        assert_eq!(wallet.add_chain(chain(1), Some(key(2))), 0);
        assert_eq!(wallet.add_chain(chain(2), None), 1);
        // Following again attaches a key, and keeps the index.
        assert_eq!(wallet.add_chain(chain(2), Some(key(1))), 1);
        wallet.save(&path).unwrap();
        let read = Wallet::load(&path).unwrap();
        assert_eq!(read.chains.len(), 2);
        assert_eq!(
            read.owner_of(chain(2)).map(|k| k.public()),
            Some(key(1).public())
        );
        assert_eq!(read.keys.len(), 1);
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            SECRET_FILE_MODE
        );

        let legacy = bcs::to_bytes(&vec![(chain(3), key(3))]).unwrap();
        std::fs::write(&path, legacy).unwrap();
        let read = Wallet::load(&path).unwrap();
        assert_eq!(read.chains.len(), 1);
        assert_eq!(
            read.owner_of(chain(3)).map(|k| k.public()),
            Some(key(3).public())
        );
    }

    #[test]
    fn chain_arguments_are_indices_or_ids() {
        assert_eq!("3".parse::<ChainArg>().unwrap(), ChainArg::Index(3));
        let hex = chain_hex(&chain(0xab));
        assert_eq!(hex.parse::<ChainArg>().unwrap(), ChainArg::Id(chain(0xab)));
        for bad in ["", "-1", "abc", &hex[..62], "zz"] {
            assert!(bad.parse::<ChainArg>().is_err(), "{bad:?}");
        }
        let wallet = Wallet::default();
        assert!(matches!(
            wallet.resolve(ChainArg::Index(0)),
            Err(CliError::NoSuchChain {
                index: 0,
                chains: 0
            })
        ));
        assert!(matches!(
            wallet.owned(ChainArg::Id(chain(1))),
            Err(CliError::NotOwned(_))
        ));
    }

    #[test]
    fn a_second_holder_of_the_lock_waits_then_is_told_the_wallet_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let first = WalletLock::acquire(dir.path(), Duration::ZERO).unwrap();
        let second = WalletLock::acquire(dir.path(), Duration::from_millis(50));
        assert!(matches!(second, Err(CliError::WalletBusy(_))));
        drop(first);
        WalletLock::acquire(dir.path(), Duration::ZERO).unwrap();
    }
}
