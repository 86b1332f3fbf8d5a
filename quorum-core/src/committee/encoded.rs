//! [`EncodedCommittee`]: a committee as it travels inside a block, as its canonical bytes.
//!
//! Decoding a [`Committee`] decompresses and checks every key (tens of microseconds each), so a
//! frame full of committees would cost a validator far more time than its bytes took to send.
//! Inside blocks a committee is therefore carried as bytes, which cost what they weigh to
//! receive, hash and sign; it is decoded only when the block executes, on the admin chain,
//! after the proposal's signature and the block's limits were checked, and never with more
//! than [`Limits::max_committee_members`](crate::Limits::max_committee_members) members.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::{Committee, CommitteeError, NetworkPublicKey, ValidatorInfo, MAX_MEMBERS};
use crate::crypto::ValidatorPublicKey;

/// A committee's canonical encoding (the bytes of its committee blob), decoded on demand.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EncodedCommittee(#[serde(with = "serde_bytes")] Vec<u8>);

impl EncodedCommittee {
    /// The encoding of `committee`.
    pub fn new(committee: &Committee) -> Self {
        EncodedCommittee(encode(committee))
    }

    /// The bytes, as they are hashed into the committee blob.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes (never a valid committee).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Decodes and checks the committee: at most
    /// [`Limits::max_committee_members`](crate::Limits::max_committee_members) members (counted
    /// before any key is decoded), strong keys, a weight that fits, and canonical bytes (the
    /// committee's own encoding, so that its blob id is the one every node computes).
    pub fn decode(&self) -> Result<Committee, CommitteeError> {
        let mut reader = Reader(&self.0);
        let members = reader.length()?;
        if members > MAX_MEMBERS {
            return Err(CommitteeError::TooManyMembers {
                members,
                max: MAX_MEMBERS,
            });
        }
        let mut validators = BTreeMap::new();
        for _ in 0..members {
            let key = ValidatorPublicKey::from_bytes(reader.array()?);
            let votes = u64::from_le_bytes(reader.array()?);
            let length = reader.length()?;
            let address = String::from_utf8(reader.take(length)?.to_vec())
                .map_err(|_| CommitteeError::Malformed)?;
            let network_key = match reader.array::<1>()? {
                [0] => None,
                [1] => Some(NetworkPublicKey(reader.array()?)),
                _ => return Err(CommitteeError::Malformed),
            };
            validators.insert(
                key,
                ValidatorInfo {
                    votes,
                    address,
                    network_key,
                },
            );
        }
        if !reader.0.is_empty() {
            return Err(CommitteeError::Malformed);
        }
        let committee = Committee::new(validators)?;
        if encode(&committee) != self.0 {
            return Err(CommitteeError::Malformed);
        }
        Ok(committee)
    }
}

fn encode(committee: &Committee) -> Vec<u8> {
    // Keys, integers and strings in a map always encode.
    crate::encoding::to_bytes(committee).unwrap_or_default()
}

/// Reads the committee's BCS layout: a ULEB128 count, then per member 32 key bytes, a
/// little-endian `u64` weight, a ULEB128-prefixed UTF-8 address and an optional network key
/// (a 0 byte, or a 1 byte and 32 key bytes).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], CommitteeError> {
        if count > self.0.len() {
            return Err(CommitteeError::Malformed);
        }
        let (head, rest) = self.0.split_at(count);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CommitteeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A ULEB128 length of at most 32 bits (BCS lengths fit in `u32`).
    fn length(&mut self) -> Result<usize, CommitteeError> {
        let mut value: u64 = 0;
        for shift in (0..35).step_by(7) {
            let [byte] = self.array::<1>()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(
                    u32::try_from(value).map_err(|_| CommitteeError::Malformed)?,
                )
                .map_err(|_| CommitteeError::Malformed);
            }
        }
        Err(CommitteeError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::crypto::ValidatorSecretKey;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn committee(n: usize, seed: u64) -> Committee {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let validators = (0..n)
            .map(|i| {
                let key = ValidatorSecretKey::generate(&mut rng).public();
                let info = ValidatorInfo {
                    votes: i as u64 + 1,
                    address: alloc::format!("127.0.0.1:{}", 9000 + i),
                    network_key: None,
                };
                (key, info)
            })
            .collect();
        Committee::new(validators).unwrap()
    }

    #[test]
    fn round_trips_and_matches_bcs() {
        let committee = committee(7, 1);
        let encoded = EncodedCommittee::new(&committee);
        assert_eq!(encoded.as_bytes(), bcs::to_bytes(&committee).unwrap());
        assert_eq!(encoded.decode().unwrap(), committee);
        // Through BCS as an operation carries it: the same bytes back.
        let wire = bcs::to_bytes(&encoded).unwrap();
        let back: EncodedCommittee = bcs::from_bytes(&wire).unwrap();
        assert_eq!(back, encoded);
    }

    #[test]
    fn too_many_members_are_refused_before_any_key_is_decoded() {
        // A count above the cap with no members behind it: refused on the count alone.
        let mut bytes = Vec::new();
        let mut count = (MAX_MEMBERS + 1) as u32;
        while count >= 0x80 {
            bytes.push((count as u8 & 0x7f) | 0x80);
            count >>= 7;
        }
        bytes.push(count as u8);
        assert_eq!(
            EncodedCommittee(bytes).decode(),
            Err(CommitteeError::TooManyMembers {
                members: MAX_MEMBERS + 1,
                max: MAX_MEMBERS
            })
        );
    }

    #[test]
    fn non_canonical_and_truncated_bytes_are_malformed() {
        let committee = committee(3, 2);
        let bytes = EncodedCommittee::new(&committee).0;
        // Members out of key order.
        let member = (bytes.len() - 1) / 3;
        let mut swapped = alloc::vec![bytes[0]];
        swapped.extend_from_slice(&bytes[1 + member..1 + 2 * member]);
        swapped.extend_from_slice(&bytes[1..1 + member]);
        swapped.extend_from_slice(&bytes[1 + 2 * member..]);
        assert_eq!(
            EncodedCommittee(swapped).decode(),
            Err(CommitteeError::Malformed)
        );
        for cut in 0..bytes.len() {
            assert!(EncodedCommittee(bytes[..cut].to_vec()).decode().is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            EncodedCommittee(longer).decode(),
            Err(CommitteeError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = EncodedCommittee(bytes).decode();
        }

        #[test]
        fn every_committee_round_trips(n in 1usize..12, seed in any::<u64>()) {
            let committee = committee(n, seed);
            prop_assert_eq!(EncodedCommittee::new(&committee).decode().unwrap(), committee);
        }
    }
}
