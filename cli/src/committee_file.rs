//! The committee file: the public keys, addresses and weights of the validators, gathered from
//! each machine's `quorum keygen`, from which `quorum genesis` builds the committee. It holds
//! no secret.
//!
//! ```toml
//! chains = 3            # genesis chains (the first is the admin chain); default 4
//!
//! [[validators]]
//! public_key = "3f0c…"  # 64 hex digits, from the validator's `validator.pub`
//! address = "10.0.0.1:9100"
//! votes = 1             # weight; default 1
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use quorum_core::{Committee, ValidatorInfo, ValidatorPublicKey};

use crate::config::read_toml;
use crate::error::CliError;

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
    /// Where clients reach it, `host:port`.
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

/// Whether `address` has the form `host:port` with a non-empty host and a port number.
fn is_host_port(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

impl CommitteeFile {
    /// Reads the committee file at `path`.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        read_toml(path, WHAT)
    }

    /// The committee the file describes: every key strong, none twice, every address
    /// `host:port`, some weight. `path` names the file in errors.
    pub fn committee(&self, path: &Path) -> Result<Committee, CliError> {
        let path = PathBuf::from(path);
        let mut members = BTreeMap::new();
        for member in &self.validators {
            if !is_host_port(&member.address) {
                return Err(CliError::BadAddress {
                    path,
                    key: member.public_key,
                    address: member.address.clone(),
                });
            }
            let info = ValidatorInfo {
                votes: member.votes,
                address: member.address.clone(),
                network_key: None,
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
            address: address.into(),
            votes: 1,
        }
    }

    #[test]
    fn round_trip_and_committee() {
        let file = CommitteeFile {
            chains: 2,
            validators: (0..4)
                .map(|i| member(&format!("127.0.0.1:{}", 9100 + i)))
                .collect(),
        };
        let text = toml::to_string(&file).unwrap();
        let back: CommitteeFile = toml::from_str(&text).unwrap();
        assert_eq!(back, file);
        let committee = back.committee(Path::new("c.toml")).unwrap();
        assert_eq!(committee.validators().len(), 4);
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
