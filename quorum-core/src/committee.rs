//! Committees of validators, their weights and the two thresholds.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::crypto::{CryptoError, PreparedKey, ValidatorPublicKey};
use crate::hash::BcsHashable;
use crate::limits::Limits;

mod encoded;
mod network_key;

pub use encoded::EncodedCommittee;
pub use network_key::{NetworkKeyError, NetworkPublicKey};

/// Most members of a committee: [`Limits::max_committee_members`], fixed at its default
/// because committees are checked where no `Limits` is at hand (serde decoding).
const MAX_MEMBERS: usize = Limits::DEFAULT.max_committee_members;
/// Longest member address: [`Limits::max_validator_address_bytes`], fixed at its default.
const MAX_ADDRESS_BYTES: usize = Limits::DEFAULT.max_validator_address_bytes;

/// A reconfiguration epoch: the index of the committee in force.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Epoch(pub u32);

impl Epoch {
    /// The epoch after this one, or `None` at the end of the range.
    pub fn next(self) -> Option<Epoch> {
        self.0.checked_add(1).map(Epoch)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {}", self.0)
    }
}

/// What the committee knows of one validator.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// The validator's weight (stake). Zero is allowed: such a validator is never asked and
    /// never counted.
    pub votes: u64,
    /// Where the validator is reached: `host:port` or `tcp://host:port` over TCP,
    /// `quic://host:port` over QUIC (DESIGN §6.2).
    pub address: String,
    /// The key its secure transport proves it holds; without one it is reachable over TCP
    /// only.
    pub network_key: Option<NetworkPublicKey>,
}

/// Why a committee could not be built.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
pub enum CommitteeError {
    /// The sum of weights does not fit in a `u64`.
    #[error("total weight overflows u64")]
    WeightOverflow,
    /// No validator has a non-zero weight.
    #[error("committee has no weight")]
    NoWeight,
    /// More members than [`Limits::max_committee_members`].
    #[error("committee of {members} members exceeds the maximum of {max}")]
    TooManyMembers {
        /// Members given.
        members: usize,
        /// The maximum.
        max: usize,
    },
    /// A member's address is longer than [`Limits::max_validator_address_bytes`].
    #[error("a validator address of {bytes} bytes exceeds the maximum of {max}")]
    AddressTooLong {
        /// The address's length, in bytes.
        bytes: usize,
        /// The maximum, in bytes.
        max: usize,
    },
    /// The bytes of an [`EncodedCommittee`] are not a committee's canonical encoding.
    #[error("malformed committee encoding")]
    Malformed,
    /// A validator key is weak or malformed (see the crypto module's verification rule).
    #[error("validator {key} has an unacceptable key: {error}")]
    BadKey {
        /// The key.
        key: ValidatorPublicKey,
        /// Why it was refused.
        error: CryptoError,
    },
    /// A validator's network key is weak or malformed: the same rule as its signing key, since
    /// anyone could sign a handshake for a key of small order.
    #[error("validator {key} has an unacceptable network key: {error}")]
    BadNetworkKey {
        /// The validator.
        key: ValidatorPublicKey,
        /// Why its network key was refused.
        error: CryptoError,
    },
}

/// A weighted set of validators with the BFT thresholds derived from its total weight.
///
/// With total weight `N`: quorum = ⌊2N/3⌋ + 1 and validity = N − quorum + 1. For `N = 3f + 1`
/// equal weights these are `2f + 1` and `f + 1`. Two quorums always share an honest validator
/// (if at most `f` weight is faulty), and a validity-sized set always contains one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    members: BTreeMap<ValidatorPublicKey, Member>,
    /// The members and their weights in key order, with the first eight bytes of each key as
    /// a big-endian integer: a look-up compares integers, not 32-byte keys.
    index: Vec<(u64, ValidatorPublicKey, u64)>,
    total_votes: u64,
    quorum_threshold: u64,
    validity_threshold: u64,
}

/// A member: its public information and its key decoded once for signature checks.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) info: ValidatorInfo,
    pub(crate) key: PreparedKey,
}

impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        // The decoded key is a function of the map key, so the information decides.
        self.info == other.info
    }
}

impl Eq for Member {}

/// The first eight bytes of a key as a big-endian integer: ordered like the keys themselves.
fn key_prefix(key: &ValidatorPublicKey) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&key.as_bytes()[..8]);
    u64::from_be_bytes(prefix)
}

/// Computes `(quorum, validity)` for a total weight, without overflow.
pub(crate) fn thresholds(total_votes: u64) -> (u64, u64) {
    // 2·total fits in u128; the quotient fits back in u64 since it is at most total.
    let quorum = (2 * u128::from(total_votes) / 3) as u64 + 1;
    // For total >= 1, quorum <= total, so this is exactly total - quorum + 1 (and for the
    // meaningless total 0 it gives 1 rather than underflowing).
    let validity = total_votes.saturating_sub(quorum) + 1;
    (quorum, validity)
}

impl Committee {
    /// Builds a committee, checking that it has at most [`Limits::max_committee_members`] (of
    /// [`Limits::DEFAULT`]) members, each address at most
    /// [`Limits::max_validator_address_bytes`] long, that the total weight fits and is non-zero and that every
    /// key, network keys included, is strong (prime order, canonical).
    pub fn new(
        validators: BTreeMap<ValidatorPublicKey, ValidatorInfo>,
    ) -> Result<Self, CommitteeError> {
        if validators.len() > MAX_MEMBERS {
            return Err(CommitteeError::TooManyMembers {
                members: validators.len(),
                max: MAX_MEMBERS,
            });
        }
        let mut total: u64 = 0;
        let mut members = BTreeMap::new();
        for (key, info) in validators {
            if info.address.len() > MAX_ADDRESS_BYTES {
                return Err(CommitteeError::AddressTooLong {
                    bytes: info.address.len(),
                    max: MAX_ADDRESS_BYTES,
                });
            }
            let bad_key = |error| CommitteeError::BadKey { key, error };
            // Decoding refuses weak and mixed-order keys.
            let prepared = PreparedKey::decode(key.as_bytes()).map_err(bad_key)?;
            if let Some(network) = &info.network_key {
                PreparedKey::decode(&network.0)
                    .map_err(|error| CommitteeError::BadNetworkKey { key, error })?;
            }
            total = total
                .checked_add(info.votes)
                .ok_or(CommitteeError::WeightOverflow)?;
            members.insert(
                key,
                Member {
                    info,
                    key: prepared,
                },
            );
        }
        if total == 0 {
            return Err(CommitteeError::NoWeight);
        }
        let (quorum_threshold, validity_threshold) = thresholds(total);
        let index = members
            .iter()
            .map(|(key, member)| (key_prefix(key), *key, member.info.votes))
            .collect();
        Ok(Committee {
            members,
            index,
            total_votes: total,
            quorum_threshold,
            validity_threshold,
        })
    }

    /// Sum of all weights.
    pub fn total_votes(&self) -> u64 {
        self.total_votes
    }

    /// Weight needed for a quorum (2f+1).
    pub fn quorum_threshold(&self) -> u64 {
        self.quorum_threshold
    }

    /// Weight that is guaranteed to include an honest validator (f+1).
    pub fn validity_threshold(&self) -> u64 {
        self.validity_threshold
    }

    /// The weight of `key`, zero if it is not a member.
    pub fn weight(&self, key: &ValidatorPublicKey) -> u64 {
        self.members.get(key).map_or(0, |member| member.info.votes)
    }

    /// The member's information.
    pub fn info(&self, key: &ValidatorPublicKey) -> Option<&ValidatorInfo> {
        self.members.get(key).map(|member| &member.info)
    }

    /// The position of `key` among the members in key order (as in
    /// [`Committee::validators`]), if it is a member.
    pub fn position(&self, key: &ValidatorPublicKey) -> Option<usize> {
        let prefix = key_prefix(key);
        let start = self.index.partition_point(|(p, _, _)| *p < prefix);
        self.index[start..]
            .iter()
            .take_while(|(p, _, _)| *p == prefix)
            .position(|(_, member, _)| member == key)
            .map(|offset| start + offset)
    }

    /// The member at `position` (in key order) and its weight.
    pub fn member_at(&self, position: usize) -> Option<(&ValidatorPublicKey, u64)> {
        self.index
            .get(position)
            .map(|(_, key, votes)| (key, *votes))
    }

    /// The key of member `key` as the committee decoded it once, to verify its signatures
    /// without decoding it again.
    pub fn prepared_key(&self, key: &ValidatorPublicKey) -> Option<&PreparedKey> {
        self.members.get(key).map(|member| &member.key)
    }

    pub(crate) fn member(&self, key: &ValidatorPublicKey) -> Option<&Member> {
        self.members.get(key)
    }

    /// All members, including zero-weight ones, in key order.
    pub fn validators(
        &self,
    ) -> impl ExactSizeIterator<Item = (&ValidatorPublicKey, &ValidatorInfo)> + '_ {
        self.members.iter().map(|(key, member)| (key, &member.info))
    }

    /// The members that count: non-zero weight, in key order.
    pub fn voting_members(
        &self,
    ) -> impl Iterator<Item = (&ValidatorPublicKey, &ValidatorInfo)> + '_ {
        self.validators().filter(|(_, info)| info.votes > 0)
    }

    /// The members and their information, as given to [`Committee::new`].
    pub fn to_map(&self) -> BTreeMap<ValidatorPublicKey, ValidatorInfo> {
        self.validators()
            .map(|(key, info)| (*key, info.clone()))
            .collect()
    }

    /// Number of members (including zero-weight ones).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the committee has no members (never true for a built committee).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl core::hash::Hash for Committee {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        for (key, info) in self.validators() {
            key.hash(state);
            info.hash(state);
        }
    }
}

impl BcsHashable for Committee {
    const DOMAIN: &'static str = "Committee";
}

impl Serialize for Committee {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.validators())
    }
}

impl<'de> Deserialize<'de> for Committee {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let validators = BTreeMap::deserialize(deserializer)?;
        Committee::new(validators).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ValidatorSecretKey;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn equal_committee(n: usize) -> Committee {
        let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
        let validators = (0..n)
            .map(|i| {
                let key = ValidatorSecretKey::generate(&mut rng).public();
                (
                    key,
                    ValidatorInfo {
                        votes: 1,
                        address: i.to_string(),
                        network_key: None,
                    },
                )
            })
            .collect();
        Committee::new(validators).unwrap()
    }

    #[test]
    fn thresholds_for_totals_1_to_1000() {
        for total in 1..=1000u64 {
            let (quorum, validity) = thresholds(total);
            assert_eq!(quorum, 2 * total / 3 + 1, "total {total}");
            assert_eq!(validity, total - quorum + 1, "total {total}");
            // Two quorums intersect in more than the faulty weight (N - quorum).
            assert!(2 * quorum > total + (total - quorum), "total {total}");
            assert!(quorum <= total);
        }
    }

    #[test]
    fn thresholds_for_3f_plus_1_validators() {
        for f in 0..=20usize {
            let committee = equal_committee(3 * f + 1);
            assert_eq!(committee.quorum_threshold(), 2 * f as u64 + 1);
            assert_eq!(committee.validity_threshold(), f as u64 + 1);
        }
    }

    #[test]
    fn overflow_is_an_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let validators: BTreeMap<_, _> = (0..2)
            .map(|_| {
                let key = ValidatorSecretKey::generate(&mut rng).public();
                (
                    key,
                    ValidatorInfo {
                        votes: u64::MAX,
                        address: String::new(),
                        network_key: None,
                    },
                )
            })
            .collect();
        assert_eq!(
            Committee::new(validators),
            Err(CommitteeError::WeightOverflow)
        );
        // The thresholds of the largest total do not overflow.
        let (quorum, validity) = thresholds(u64::MAX);
        assert_eq!(quorum, (2 * u128::from(u64::MAX) / 3) as u64 + 1);
        assert_eq!(validity, u64::MAX - quorum + 1);
    }

    #[test]
    fn zero_weights_are_members_but_not_voters() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let keys: Vec<_> = (0..3)
            .map(|_| ValidatorSecretKey::generate(&mut rng).public())
            .collect();
        let validators = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    *k,
                    ValidatorInfo {
                        votes: i as u64,
                        address: String::new(),
                        network_key: None,
                    },
                )
            })
            .collect();
        let committee = Committee::new(validators).unwrap();
        assert_eq!(committee.len(), 3);
        assert_eq!(committee.voting_members().count(), 2);
        assert_eq!(committee.total_votes(), 3);
        let none = BTreeMap::from([(
            keys[0],
            ValidatorInfo {
                votes: 0,
                address: String::new(),
                network_key: None,
            },
        )]);
        assert_eq!(Committee::new(none), Err(CommitteeError::NoWeight));
    }

    #[test]
    fn weak_network_key_is_refused() {
        let key = ValidatorSecretKey::generate(&mut ChaCha8Rng::seed_from_u64(9)).public();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let validators = BTreeMap::from([(
            key,
            ValidatorInfo {
                votes: 1,
                address: String::new(),
                network_key: Some(NetworkPublicKey(identity)),
            },
        )]);
        assert!(matches!(
            Committee::new(validators),
            Err(CommitteeError::BadNetworkKey { .. })
        ));
    }

    #[test]
    fn weak_key_is_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = ValidatorPublicKey::from_bytes(identity);
        let validators = BTreeMap::from([(
            weak,
            ValidatorInfo {
                votes: 1,
                address: String::new(),
                network_key: None,
            },
        )]);
        assert!(matches!(
            Committee::new(validators),
            Err(CommitteeError::BadKey { .. })
        ));
    }

    #[test]
    fn positions_follow_key_order() {
        let committee = equal_committee(50);
        for (position, (key, _)) in committee.validators().enumerate() {
            assert_eq!(committee.position(key), Some(position));
            assert_eq!(committee.member_at(position), Some((key, 1)));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1234);
        let stranger = ValidatorSecretKey::generate(&mut rng).public();
        assert_eq!(committee.position(&stranger), None);
        assert_eq!(committee.member_at(50), None);
    }

    #[test]
    fn serde_roundtrip_revalidates() {
        let committee = equal_committee(4);
        let bytes = bcs::to_bytes(&committee).unwrap();
        let back: Committee = bcs::from_bytes(&bytes).unwrap();
        assert_eq!(back, committee);
    }
}
