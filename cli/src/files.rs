//! Writing files safely (never over an existing one; secrets with mode 0600 from the start),
//! and the binary files of a committee: the genesis every machine loads and the client's
//! wallet (see [`crate::wallet`]), both BCS-encoded. (What an operator edits is TOML: see [`crate::operator::validator_config`] and
//! [`crate::operator::committee_file`].)

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CliError;

/// Permission bits of every file holding a secret (validator keys, wallets): read and write by
/// the owner only.
pub const SECRET_FILE_MODE: u32 = 0o600;

/// Name of the genesis file in a committee directory.
pub const GENESIS_FILE: &str = "genesis.bcs";
/// Name of the readable copy of the genesis in a committee directory (for checking; what
/// validators and clients load is [`GENESIS_FILE`]).
pub const GENESIS_COPY_FILE: &str = "genesis.toml";
/// Creates `path` with mode [`SECRET_FILE_MODE`] and writes `bytes`; refuses to overwrite an
/// existing file ([`CliError::AlreadyExists`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    write_fresh(path, bytes, Some(SECRET_FILE_MODE), true)
}

/// Writes `text` to a new file at `path` (mode per the umask); refuses to overwrite.
pub fn write_new(path: &Path, text: &str) -> Result<(), CliError> {
    write_fresh(path, text.as_bytes(), None, false)
}

/// Creates `path` (with `mode` from the start when given), refusing an existing file, writes
/// `bytes`, and syncs them to disk when `sync`.
fn write_fresh(path: &Path, bytes: &[u8], mode: Option<u32>, sync: bool) -> Result<(), CliError> {
    let file_error = |source| CliError::File {
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    if let Some(mode) = mode {
        options.mode(mode);
    }
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => CliError::AlreadyExists {
            path: path.to_owned(),
        },
        _ => file_error(source),
    })?;
    file.write_all(bytes).map_err(file_error)?;
    if sync {
        file.sync_all().map_err(file_error)?;
    }
    Ok(())
}

/// Refuses, before anything is written, if any of `paths` already exists.
pub fn ensure_absent<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<(), CliError> {
    for path in paths {
        if path.symlink_metadata().is_ok() {
            return Err(CliError::AlreadyExists {
                path: path.to_owned(),
            });
        }
    }
    Ok(())
}

fn encode<T: Serialize>(path: &Path, value: &T, what: &'static str) -> Result<Vec<u8>, CliError> {
    bcs::to_bytes(value).map_err(|e| CliError::Format {
        path: path.to_owned(),
        what,
        reason: e.to_string(),
    })
}

/// Writes `value` to `path` as BCS.
pub fn write<T: Serialize>(path: &Path, value: &T, what: &'static str) -> Result<(), CliError> {
    let bytes = encode(path, value, what)?;
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
