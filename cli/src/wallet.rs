//! The wallet of `quorum client` (DESIGN §5.8): the chains a user follows, each with its
//! owner's public key when the wallet holds that owner's secret key, and every owner key it
//! holds.
//!
//! The wallet is a redb database (`wallet.redb`, mode 0600) read one chain at a time, so that
//! a command on one chain costs the same with 3 chains in the wallet or 100,000: nothing is
//! read or decoded beyond what the command names, and a secret key is decoded (a scalar
//! multiplication) only when it signs. Every change is one redb transaction, committed
//! durably: a crash leaves the wallet as before or after it, and no key is ever lost. Commands
//! hold the directory's wallet lock ([`WalletLock`]) from start to end, so two commands on
//! one wallet never interleave.
//!
//! `wallet.bcs` is the portable form that `genesis` and `dev-genesis` write (the genesis
//! chains with their owner keys); the first command on a directory without `wallet.redb`
//! imports it (either of its two layouts), and it is not read again.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use quorum_core::{
    AccountPublicKey, AccountSecretKey, ChainId, CryptoHash, ValidatorPublicKey, HASH_LENGTH,
};

use crate::error::{CliError, WalletDbError};
use crate::files::SECRET_FILE_MODE;

/// Name of the wallet database in a client directory (mode 0600: it holds owner keys).
pub const WALLET_DB_FILE: &str = "wallet.redb";
/// Name of the portable wallet file in a committee directory (mode 0600), imported once.
pub const WALLET_FILE: &str = "wallet.bcs";

/// Facts about the wallet: name → value.
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");
/// Followed chains by wallet index → BCS of a [`StoredChain`].
const CHAINS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("chains");
/// Wallet index of each followed chain: chain id → index.
const INDEX: TableDefinition<'static, &[u8; 32], u64> = TableDefinition::new("index");
/// Owner keys: public key → secret key.
const KEYS: TableDefinition<'static, &[u8; 32], &[u8; 32]> = TableDefinition::new("keys");
/// Where the client stopped reading each validator's received log of each chain: (chain id,
/// validator key) → index.
const CURSORS: TableDefinition<'static, (&[u8; 32], &[u8; 32]), u64> =
    TableDefinition::new("received_cursors");
/// The [`META`] key of the admin chain's id.
const ADMIN_CHAIN: &str = "admin_chain";

/// One followed chain as stored.
#[derive(Serialize, Deserialize)]
struct StoredChain {
    chain_id: ChainId,
    /// The owner whose key the wallet holds, if any.
    owner: Option<AccountPublicKey>,
}

macro_rules! redb_errors {
    ($($kind:ty),*) => {$(
        impl From<$kind> for WalletDbError {
            fn from(error: $kind) -> Self {
                WalletDbError::Redb(Box::new(error.into()))
            }
        }
    )*};
}

redb_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The wallet database of a client directory.
pub struct Wallet {
    database: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wallet({})", self.path.display())
    }
}

impl Wallet {
    /// Makes a new wallet database in `dir` for the committee whose admin chain is `admin`,
    /// holding `portable`'s chains and keys; refuses an existing one.
    pub fn create(dir: &Path, admin: ChainId, portable: &PortableWallet) -> Result<Self, CliError> {
        let path = dir.join(WALLET_DB_FILE);
        // Mode 0600 from the start: the file never exists readable by others.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SECRET_FILE_MODE)
            .open(&path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => CliError::AlreadyExists { path: path.clone() },
                _ => CliError::File {
                    path: path.clone(),
                    source,
                },
            })?;
        let wallet = Wallet {
            database: Database::create(&path).map_err(|e| db_error(&path, e))?,
            path,
        };
        wallet
            .write(|tables| {
                tables
                    .meta
                    .insert(ADMIN_CHAIN, admin.0.as_bytes().as_slice())?;
                for key in &portable.keys {
                    tables
                        .keys
                        .insert(key.public().as_bytes(), &key.to_bytes())?;
                }
                for chain in &portable.chains {
                    add_chain(tables, chain.chain_id, chain.owner.as_ref())?;
                }
                Ok(())
            })
            .map(|_| wallet)
    }

    /// Opens the wallet database of `dir`. Without one, imports `wallet.bcs` (the admin chain
    /// from `admin`, asked only then); without either, `NoWallet`.
    pub fn open(
        dir: &Path,
        admin: impl FnOnce() -> Result<ChainId, CliError>,
    ) -> Result<Self, CliError> {
        let path = dir.join(WALLET_DB_FILE);
        if path.exists() {
            let database = Database::open(&path).map_err(|e| db_error(&path, e))?;
            return Ok(Wallet { database, path });
        }
        let portable_path = dir.join(WALLET_FILE);
        if !portable_path.exists() {
            return Err(CliError::NoWallet(dir.to_owned()));
        }
        let portable = PortableWallet::load(&portable_path)?;
        Wallet::create(dir, admin()?, &portable)
    }

    /// The admin chain of the wallet's committee.
    pub fn admin_chain(&self) -> Result<ChainId, CliError> {
        self.read(|txn| {
            let meta = txn.open_table(META)?;
            let value = meta.get(ADMIN_CHAIN)?.ok_or(WalletDbError::NoAdminChain)?;
            chain_id_from(value.value()).ok_or(WalletDbError::Corrupted("admin chain"))
        })
    }

    /// How many chains the wallet follows.
    pub fn len(&self) -> Result<usize, CliError> {
        self.read(|txn| {
            let chains = txn.open_table(CHAINS)?;
            Ok(usize::try_from(chains.len()?).unwrap_or(usize::MAX))
        })
    }

    /// Every followed chain, in wallet order (for commands on the whole wallet).
    pub fn chains(&self) -> Result<Vec<ChainId>, CliError> {
        self.read(|txn| {
            let chains = txn.open_table(CHAINS)?;
            let mut out = Vec::new();
            for item in chains.iter()? {
                let (_, value) = item?;
                out.push(decode_chain(value.value())?.chain_id);
            }
            Ok(out)
        })
    }

    /// The wallet index of `chain_id`, if it follows it.
    pub fn index_of(&self, chain_id: ChainId) -> Result<Option<u64>, CliError> {
        self.read(|txn| {
            let index = txn.open_table(INDEX)?;
            Ok(index.get(chain_id.0.as_bytes())?.map(|v| v.value()))
        })
    }

    /// The chain an argument names: an index must be in the wallet; an id need not be.
    pub fn resolve(&self, arg: ChainArg) -> Result<ChainId, CliError> {
        match arg {
            ChainArg::Id(chain_id) => Ok(chain_id),
            ChainArg::Index(index) => {
                let found = self.read(|txn| {
                    let chains = txn.open_table(CHAINS)?;
                    let key = u64::try_from(index).unwrap_or(u64::MAX);
                    let value = chains.get(key)?;
                    value
                        .map(|value| decode_chain(value.value()).map(|c| c.chain_id))
                        .transpose()
                })?;
                match found {
                    Some(chain_id) => Ok(chain_id),
                    None => Err(CliError::NoSuchChain {
                        index,
                        chains: self.len()?,
                    }),
                }
            }
        }
    }

    /// The chain an argument names with the owner key the wallet holds for it, or `NotOwned`.
    pub fn owned(&self, arg: ChainArg) -> Result<(ChainId, AccountSecretKey), CliError> {
        let chain_id = self.resolve(arg)?;
        self.owner_of(chain_id)?
            .map(|owner| (chain_id, owner))
            .ok_or(CliError::NotOwned(chain_hex(&chain_id)))
    }

    /// The owner key the wallet holds for `chain_id` (decoded now).
    pub fn owner_of(&self, chain_id: ChainId) -> Result<Option<AccountSecretKey>, CliError> {
        let owner = self.read(|txn| {
            let index = txn.open_table(INDEX)?;
            let Some(position) = index.get(chain_id.0.as_bytes())?.map(|v| v.value()) else {
                return Ok(None);
            };
            let chains = txn.open_table(CHAINS)?;
            let value = chains
                .get(position)?
                .ok_or(WalletDbError::Corrupted("chain"))?;
            Ok(decode_chain(value.value())?.owner)
        })?;
        match owner {
            Some(public) => self.secret_of(&public),
            None => Ok(None),
        }
    }

    /// The secret key the wallet holds for `public` (decoded now).
    pub fn secret_of(
        &self,
        public: &AccountPublicKey,
    ) -> Result<Option<AccountSecretKey>, CliError> {
        self.read(|txn| {
            let keys = txn.open_table(KEYS)?;
            Ok(keys
                .get(public.as_bytes())?
                .map(|secret| AccountSecretKey::from_bytes(secret.value())))
        })
    }

    /// The received-log cursors kept for `chain_id` (see `ChainClient::received_cursors`).
    pub fn cursors(&self, chain_id: ChainId) -> Result<Vec<(ValidatorPublicKey, u64)>, CliError> {
        self.read(|txn| {
            let cursors = match txn.open_table(CURSORS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(error) => return Err(error.into()),
            };
            let chain = chain_id.0.as_bytes();
            let mut out = Vec::new();
            for item in cursors.range((chain, &[0u8; 32])..=(chain, &[u8::MAX; 32]))? {
                let (key, value) = item?;
                out.push((
                    ValidatorPublicKey::from_bytes(*key.value().1),
                    value.value(),
                ));
            }
            Ok(out)
        })
    }

    /// Keeps the received-log cursors of `chain_id`.
    pub fn save_cursors(
        &self,
        chain_id: ChainId,
        cursors: &[(ValidatorPublicKey, u64)],
    ) -> Result<(), CliError> {
        self.write(|tables| {
            for (validator, at) in cursors {
                tables
                    .cursors
                    .insert((chain_id.0.as_bytes(), validator.as_bytes()), *at)?;
            }
            Ok(())
        })
    }

    /// Keeps an owner key.
    pub fn add_key(&self, key: &AccountSecretKey) -> Result<(), CliError> {
        self.write(|tables| {
            tables
                .keys
                .insert(key.public().as_bytes(), &key.to_bytes())?;
            Ok(())
        })
    }

    /// Follows `chain_id` (or, if it is followed already without a key, gives it `owner`),
    /// keeping `owner`'s key. Returns its index.
    pub fn add_chain(
        &self,
        chain_id: ChainId,
        owner: Option<&AccountSecretKey>,
    ) -> Result<u64, CliError> {
        self.write(|tables| add_chain(tables, chain_id, owner))
    }

    fn read<T>(
        &self,
        body: impl FnOnce(&redb::ReadTransaction) -> Result<T, WalletDbError>,
    ) -> Result<T, CliError> {
        let run = || -> Result<T, WalletDbError> {
            let txn = self.database.begin_read()?;
            body(&txn)
        };
        run().map_err(|source| CliError::Wallet {
            path: self.path.clone(),
            source: Box::new(source),
        })
    }

    fn write<T>(
        &self,
        body: impl FnOnce(&mut Tables<'_>) -> Result<T, WalletDbError>,
    ) -> Result<T, CliError> {
        let run = || -> Result<T, WalletDbError> {
            let txn = self.database.begin_write()?;
            let result = {
                let mut tables = Tables {
                    meta: txn.open_table(META)?,
                    chains: txn.open_table(CHAINS)?,
                    index: txn.open_table(INDEX)?,
                    keys: txn.open_table(KEYS)?,
                    cursors: txn.open_table(CURSORS)?,
                };
                body(&mut tables)?
            };
            txn.commit()?;
            Ok(result)
        };
        run().map_err(|source| CliError::Wallet {
            path: self.path.clone(),
            source: Box::new(source),
        })
    }
}

/// The tables of a write transaction.
struct Tables<'txn> {
    meta: redb::Table<'txn, &'static str, &'static [u8]>,
    chains: redb::Table<'txn, u64, &'static [u8]>,
    index: redb::Table<'txn, &'static [u8; 32], u64>,
    keys: redb::Table<'txn, &'static [u8; 32], &'static [u8; 32]>,
    cursors: redb::Table<'txn, (&'static [u8; 32], &'static [u8; 32]), u64>,
}

fn add_chain(
    tables: &mut Tables<'_>,
    chain_id: ChainId,
    owner: Option<&AccountSecretKey>,
) -> Result<u64, WalletDbError> {
    if let Some(key) = owner {
        tables
            .keys
            .insert(key.public().as_bytes(), &key.to_bytes())?;
    }
    let existing = tables.index.get(chain_id.0.as_bytes())?.map(|v| v.value());
    let (position, known_owner) = match existing {
        Some(position) => {
            let stored = tables
                .chains
                .get(position)?
                .ok_or(WalletDbError::Corrupted("chain"))?;
            (position, decode_chain(stored.value())?.owner)
        }
        None => (tables.chains.len()?, None),
    };
    let stored = StoredChain {
        chain_id,
        owner: known_owner.or(owner.map(AccountSecretKey::public)),
    };
    let bytes = bcs::to_bytes(&stored).map_err(|_| WalletDbError::Corrupted("chain"))?;
    tables.chains.insert(position, bytes.as_slice())?;
    tables.index.insert(chain_id.0.as_bytes(), position)?;
    Ok(position)
}

fn decode_chain(bytes: &[u8]) -> Result<StoredChain, WalletDbError> {
    bcs::from_bytes(bytes).map_err(|_| WalletDbError::Corrupted("chain"))
}

fn chain_id_from(bytes: &[u8]) -> Option<ChainId> {
    <[u8; HASH_LENGTH]>::try_from(bytes)
        .ok()
        .map(|hash| ChainId(CryptoHash(hash)))
}

fn db_error(path: &Path, error: impl Into<redb::Error>) -> CliError {
    CliError::Wallet {
        path: path.to_owned(),
        source: Box::new(WalletDbError::Redb(Box::new(error.into()))),
    }
}

mod chain_arg;
mod lock;
mod portable;
#[cfg(test)]
mod tests;

pub use chain_arg::{chain_hex, ChainArg};
pub use lock::WalletLock;
pub use portable::{PortableWallet, WalletChain};
