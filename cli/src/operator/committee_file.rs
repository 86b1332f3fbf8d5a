//! The committee file: the public keys, addresses and weights of the validators, gathered from
//! each machine's `quorum keygen`, from which `quorum genesis` builds the committee. It holds
//! no secret.
//!
//! ```toml
//! chains = 3            # genesis chains (the first is the admin chain); default 4
//!
//! [[validators]]
//! public_key = "3f0c…"  # 64 hex digits, from the validator's `validator.pub`
//! network_key = "9a1e…" # 64 hex digits, printed by its `quorum keygen`; needed for QUIC
//! address = "quic://10.0.0.1:9100"  # or "tcp://10.0.0.1:9100"; a bare host:port is TCP
//! votes = 1             # weight; default 1
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use quorum_core::{Committee, NetworkPublicKey, ValidatorInfo, ValidatorPublicKey};

use crate::address::Scheme;

use crate::error::CliError;
use crate::operator::validator_config::read_toml;

/// Genesis chains when the committee file does not say.
pub const DEFAULT_GENESIS_CHAINS: usize = 4;
/// A validator's weight when the committee file does not say.
pub const DEFAULT_VOTES: u64 = 1;

/// What a committee file is called in error messages.
const WHAT: &str = "committee file";

/// A committee file's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeFile {
    /// Genesis chains to create, owned by keys the genesis writes into its wallet (default
    /// [`DEFAULT_GENESIS_CHAINS`]).
    #[serde(default = "default_chains")]
    pub chains: usize,
    /// The validators.
    pub validators: Vec<Member>,
}

/// One validator of a committee file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The validator's public key, as 64 hex digits.
    #[serde(with = "crate::keys::hex_public_key")]
    pub public_key: ValidatorPublicKey,
    /// The key its QUIC server proves it holds (DESIGN §6.2); without one it is reachable
    /// over TCP only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::keys::hex_network_key"
    )]
    pub network_key: Option<NetworkPublicKey>,
    /// Where clients reach it: `host:port` or `tcp://host:port` over TCP, `quic://host:port`
    /// over QUIC.
    pub address: String,
    /// Its weight (default [`DEFAULT_VOTES`]).
    #[serde(default = "default_votes")]
    pub votes: u64,
}

fn default_chains() -> usize {
    DEFAULT_GENESIS_CHAINS
}

fn default_votes() -> u64 {
    DEFAULT_VOTES
}

impl CommitteeFile {
    /// Reads the committee file at `path`.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        read_toml(path, WHAT)
    }

    /// The committee the file describes: every key strong, none twice, every address
    /// `host:port` with a transport we have (a QUIC one with a network key), some weight.
    /// `path` names the file in errors.
    pub fn committee(&self, path: &Path) -> Result<Committee, CliError> {
        let path = PathBuf::from(path);
        let mut members = BTreeMap::new();
        for member in &self.validators {
            match crate::address::parse(&member.address) {
                None => {
                    return Err(CliError::BadAddress {
                        path,
                        key: member.public_key,
                        address: member.address.clone(),
                    })
                }
                Some((Scheme::Quic, _)) if member.network_key.is_none() => {
                    return Err(CliError::QuicWithoutNetworkKey {
                        path,
                        key: member.public_key,
                        address: member.address.clone(),
                    })
                }
                Some(_) => {}
            }
            let info = ValidatorInfo {
                votes: member.votes,
                address: member.address.clone(),
                network_key: member.network_key,
            };
            if members.insert(member.public_key, info).is_some() {
                return Err(CliError::DuplicateValidator {
                    path,
                    key: member.public_key,
                });
            }
        }
        Committee::new(members).map_err(|source| CliError::Committee { path, source })
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::OsRng;

    use quorum_core::ValidatorSecretKey;

    use super::*;

    fn member(address: &str) -> Member {
        Member {
            public_key: ValidatorSecretKey::generate(&mut OsRng).public(),
            network_key: address
                .starts_with("quic://")
                .then(|| crate::keys::generate_network_key(&mut OsRng).public()),
            address: address.into(),
            votes: 1,
        }
    }

    #[test]
    fn round_trip_and_committee() {
        let file = CommitteeFile {
            chains: 2,
            validators: (0..4)
                .map(|i| match i % 2 {
                    0 => member(&format!("127.0.0.1:{}", 9100 + i)),
                    _ => member(&format!("quic://127.0.0.1:{}", 9100 + i)),
                })
                .collect(),
        };
        let text = toml::to_string(&file).unwrap();
        let back: CommitteeFile = toml::from_str(&text).unwrap();
        assert_eq!(back, file);
        let committee = back.committee(Path::new("c.toml")).unwrap();
        assert_eq!(committee.validators().len(), 4);
        for member in &file.validators {
            let info = committee
                .validators()
                .find(|(key, _)| **key == member.public_key);
            assert_eq!(
                info.map(|(_, info)| info.network_key),
                Some(member.network_key)
            );
        }
    }

    #[test]
    fn defaults_apply() {
        let key = ValidatorSecretKey::generate(&mut OsRng).public();
        let text = format!("[[validators]]\npublic_key = \"{key}\"\naddress = \"h:1\"\n");
        let file: CommitteeFile = toml::from_str(&text).unwrap();
        assert_eq!(file.chains, DEFAULT_GENESIS_CHAINS);
        assert_eq!(file.validators[0].votes, DEFAULT_VOTES);
    }

    #[test]
    fn bad_committees_are_refused() {
        let path = Path::new("c.toml");
        let one = member("127.0.0.1:1");
        let twice = CommitteeFile {
            chains: 1,
            validators: vec![one.clone(), one],
        };
        assert!(matches!(
            twice.committee(path),
            Err(CliError::DuplicateValidator { .. })
        ));
        let no_port = CommitteeFile {
            chains: 1,
            validators: vec![member("127.0.0.1")],
        };
        assert!(matches!(
            no_port.committee(path),
            Err(CliError::BadAddress { .. })
        ));
        let mut keyless = member("quic://127.0.0.1:1");
        keyless.network_key = None;
        let keyless = CommitteeFile {
            chains: 1,
            validators: vec![keyless],
        };
        assert!(matches!(
            keyless.committee(path),
            Err(CliError::QuicWithoutNetworkKey { .. })
        ));
        let empty = CommitteeFile {
            chains: 1,
            validators: vec![],
        };
        assert!(matches!(
            empty.committee(path),
            Err(CliError::Committee { .. })
        ));
    }
}
