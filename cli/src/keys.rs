//! Key files: a validator's secret key in its own private file, its public key in hex, and the
//! `quorum keygen` command that makes them from the operating system's random source.
//!
//! A secret key file holds the 32 secret bytes as 64 hex digits and a newline. It is created
//! with mode [`SECRET_FILE_MODE`](crate::files::SECRET_FILE_MODE) from the start (never widened then narrowed) and never
//! overwritten; a validator refuses to load one that group or others can access
//! ([`read_validator_key`]).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tracing::info;

use quorum_core::{AccountPublicKey, ValidatorPublicKey, ValidatorSecretKey, PUBLIC_KEY_LENGTH};
use quorum_transport_quic::NetworkKey;

use crate::error::{CliError, KeyFormatError};
use crate::files::write_private;

/// Permission bits that must be clear on a secret key file: any access by group or others.
pub const GROUP_OTHER_BITS: u32 = 0o077;
/// Length of a secret key, in bytes.
pub const SECRET_KEY_LENGTH: usize = 32;

/// Name of the secret key file `quorum keygen` writes.
pub const KEY_FILE: &str = "validator.key";
/// Name of the public key file `quorum keygen` writes.
pub const PUBLIC_KEY_FILE: &str = "validator.pub";
/// Name of the network key file `quorum keygen` writes: the secret the validator's QUIC
/// server proves it holds (DESIGN §6.2).
pub const NETWORK_KEY_FILE: &str = "network.key";
/// Name of the configuration file `quorum keygen --listen` writes.
pub const CONFIG_FILE: &str = "validator.toml";
/// Name of the database file the configuration `quorum keygen --listen` writes points to.
pub const DATABASE_FILE: &str = "validator.redb";

/// Decodes `expected` bytes written in hex (surrounding whitespace ignored).
fn decode_hex<const N: usize>(text: &str) -> Result<[u8; N], KeyFormatError> {
    let bytes = hex::decode(text.trim())?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| KeyFormatError::Length {
        expected: N,
        found: bytes.len(),
    })
}

/// Parses a validator public key written as 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<ValidatorPublicKey, KeyFormatError> {
    decode_hex::<PUBLIC_KEY_LENGTH>(text).map(ValidatorPublicKey::from_bytes)
}

/// Parses a chain owner's public key written as 64 hex digits.
pub fn parse_account_key(text: &str) -> Result<AccountPublicKey, KeyFormatError> {
    decode_hex::<PUBLIC_KEY_LENGTH>(text).map(AccountPublicKey::from_bytes)
}

/// Serde helpers writing a [`ValidatorPublicKey`] as a hex string, for TOML files
/// (`#[serde(with = "crate::keys::hex_public_key")]`).
pub mod hex_public_key {
    use serde::{Deserialize, Deserializer, Serializer};

    use quorum_core::ValidatorPublicKey;

    /// Writes the key as 64 hex digits.
    pub fn serialize<S: Serializer>(key: &ValidatorPublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(key)
    }

    /// Reads a key written as 64 hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ValidatorPublicKey, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_public_key(&text)
            .map_err(|e| serde::de::Error::custom(format!("invalid public key: {e}")))
    }
}

/// Serde helpers writing an optional [`NetworkPublicKey`](quorum_core::NetworkPublicKey) as a
/// hex string, for TOML files (`#[serde(default, with = "crate::keys::hex_network_key")]`).
pub mod hex_network_key {
    use serde::{Deserialize, Deserializer, Serializer};

    use quorum_core::NetworkPublicKey;

    /// Writes the key as 64 hex digits.
    pub fn serialize<S: Serializer>(
        key: &Option<NetworkPublicKey>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match key {
            Some(key) => s.collect_str(key),
            None => s.serialize_none(),
        }
    }

    /// Reads a key written as 64 hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<NetworkPublicKey>, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("invalid network key: {e}")))
    }
}

/// Writes a new network key file (mode 0600 from the start, never overwriting).
pub fn write_network_key(path: &Path, key: &NetworkKey) -> Result<(), CliError> {
    let mut text = hex::encode(key.to_bytes());
    text.push('\n');
    write_private(path, text.as_bytes())?;
    info!(path = %path.display(), public = %key.public(), "wrote network key");
    Ok(())
}

/// Reads a network key file, first checking that only its owner can access it.
pub fn read_network_key(path: &Path) -> Result<NetworkKey, CliError> {
    Ok(NetworkKey::from_bytes(read_secret(path)?))
}

/// A new network key drawn from `rng`.
pub fn generate_network_key<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> NetworkKey {
    let mut seed = [0u8; SECRET_KEY_LENGTH];
    rng.fill_bytes(&mut seed);
    NetworkKey::from_bytes(seed)
}

/// Writes a new secret key file (mode 0600 from the start, never overwriting).
pub fn write_validator_key(path: &Path, key: &ValidatorSecretKey) -> Result<(), CliError> {
    let mut text = hex::encode(key.to_bytes());
    text.push('\n');
    write_private(path, text.as_bytes())?;
    info!(path = %path.display(), public = %key.public(), "wrote validator key");
    Ok(())
}

/// Refuses a secret file that group or others can access.
pub fn check_private(path: &Path) -> Result<(), CliError> {
    let metadata = std::fs::metadata(path).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & GROUP_OTHER_BITS != 0 {
        return Err(CliError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Reads a secret key file, first checking that only its owner can access it.
pub fn read_validator_key(path: &Path) -> Result<ValidatorSecretKey, CliError> {
    Ok(ValidatorSecretKey::from_bytes(&read_secret(path)?))
}

/// The 32 secret bytes of a private key file, written in hex.
fn read_secret(path: &Path) -> Result<[u8; SECRET_KEY_LENGTH], CliError> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })?;
    decode_hex::<SECRET_KEY_LENGTH>(&text).map_err(|source| CliError::KeyFormat {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use rand::rngs::OsRng;

    use super::*;

    #[test]
    fn key_file_round_trip_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let key = ValidatorSecretKey::generate(&mut OsRng);
        write_validator_key(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, crate::files::SECRET_FILE_MODE);
        assert_eq!(read_validator_key(&path).unwrap().public(), key.public());
        assert!(matches!(
            write_validator_key(&path, &key),
            Err(CliError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn bad_hex_is_refused_with_its_reason() {
        assert!(matches!(
            parse_public_key("zz"),
            Err(KeyFormatError::Hex(_))
        ));
        assert!(matches!(
            parse_public_key("abcd"),
            Err(KeyFormatError::Length {
                expected: 32,
                found: 2
            })
        ));
        let key = ValidatorSecretKey::generate(&mut OsRng).public();
        assert_eq!(parse_public_key(&format!(" {key}\n")).unwrap(), key);
    }
}
