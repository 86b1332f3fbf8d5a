//! Keys and signatures (ed25519), single and batch verification.
//!
//! # The verification rule
//!
//! A node that accepts a signature another node refuses splits the committee, so every path
//! through this module accepts the same signatures:
//!
//! * **Keys.** Every key must be a canonical encoding of a point of prime order: weak
//!   (small-order) keys and keys with a torsion component are refused when a committee is built
//!   ([`ValidatorPublicKey::check_strong`]), when a key is prepared for batches
//!   ([`PreparedKey::decode`]) and by every single check, validator and account keys alike
//!   (`verify_strict` alone would accept a mixed-order key that a batch refuses). The twelve
//!   edge cases of ed25519-speccheck are refused on every path (`tests/speccheck.rs`).
//! * **Single signatures** use ed25519-dalek's `verify_strict`: `S` canonical, `R` canonical and
//!   not of small order, and the cofactorless equation `R = [S]B − [k]A` exactly.
//! * **Batches** (certificates) first apply the same byte-level checks to each `R` (canonical,
//!   not of small order; cheap table look-ups), then ed25519-dalek's batch equation. Its random
//!   coefficients are derived from a transcript of the whole batch, so every node checking the
//!   same certificate reaches the same verdict. With prime-order keys a batch accepts exactly the
//!   signatures `verify_strict` accepts, with one residual case: a signer that knows its secret
//!   key may add a small-order component to its *own* `R` (not of small order as a whole), which
//!   a batch accepts with probability 1/8 (the same verdict on every node, the coefficients being
//!   derived from the batch). Such a signature is still a genuine vote of the key owner, so it can
//!   never add weight the signer did not give; ruling it out would cost a scalar multiplication
//!   per signature, which is what batching saves.
//! * When a batch fails, the bad signers are found by bisection (`O(b·log n)` batches for `b`
//!   bad signatures); a failing sub-batch whose halves both pass falls back to `verify_strict` on
//!   its members, so the named signers are always exactly those a single check refuses.
//!
//! Messages signed are always the 32-byte [`CryptoHash`] of a [`BcsHashable`] value, which
//! carries the value type's domain separator.

use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::hash::{BcsHashable, CryptoHash};

/// Length of a public key, in bytes.
pub const PUBLIC_KEY_LENGTH: usize = 32;
/// Length of a signature, in bytes.
pub const SIGNATURE_LENGTH: usize = 64;

/// Why a key or signature was refused.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
pub enum CryptoError {
    /// The bytes are not the encoding of a curve point.
    #[error("malformed public key")]
    MalformedKey,
    /// The key is of small order or has a torsion component, or is not canonically encoded.
    #[error("weak public key (small order, torsion component or non-canonical encoding)")]
    WeakKey,
    /// The signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
}

/// The y-coordinates (sign bit cleared, little-endian) of the eight points of small order.
///
/// A point has small order exactly when its y-coordinate is one of these; checked against
/// curve25519-dalek's `EIGHT_TORSION` in the tests.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    // y = 0 (order 4)
    [0; 32],
    // y = 1 (identity)
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    // y = p − 1 (order 2)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // order 8
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    // order 8
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Whether 32 bytes are a canonical point encoding of a point that is not of small order, as
/// far as bytes tell: the y-coordinate is below p = 2^255 − 19 and is not that of a small-order
/// point. (Whether the point exists on the curve at all is left to the equation check.)
fn r_bytes_acceptable(r: &[u8; 32]) -> bool {
    let mut y = *r;
    y[31] &= 0x7f;
    // y >= p exactly when y = 2^255 - 19 + t for t in 0..19: bytes ed..ff, ff.., 7f.
    let non_canonical = y[0] >= 0xed && y[1..31].iter().all(|&b| b == 0xff) && y[31] == 0x7f;
    !non_canonical && !SMALL_ORDER_Y.contains(&y)
}

macro_rules! public_key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Holds only the 32 encoded bytes (cheap to copy, compare and hash); the point is
        /// decoded when a signature is checked, or once per member when a committee is built.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name([u8; PUBLIC_KEY_LENGTH]);

        impl $name {
            /// The key from its encoded bytes. Whether they encode a usable point is checked
            /// when it is used ([`Self::verify`]) or admitted to a committee
            /// ([`Self::check_strong`]).
            pub fn from_bytes(bytes: [u8; PUBLIC_KEY_LENGTH]) -> Self {
                $name(bytes)
            }

            /// The key's bytes.
            pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LENGTH] {
                &self.0
            }

            /// Checks the key is strong: a canonical encoding of a point of prime order (no
            /// small-order or torsion component).
            pub fn check_strong(&self) -> Result<(), CryptoError> {
                check_strong(&self.0)
            }

            /// Verifies `signature` over `value` with `verify_strict` semantics.
            pub fn verify<T: BcsHashable + ?Sized>(
                &self,
                value: &T,
                signature: &Signature,
            ) -> Result<(), CryptoError> {
                self.verify_hash(&CryptoHash::new(value), signature)
            }

            /// Verifies `signature` over a hash already computed.
            ///
            /// The key must be strong, as on every other path ([`PreparedKey::decode`]): a key
            /// of mixed order that `verify_strict` alone would accept is refused
            /// ([`CryptoError::WeakKey`]), so a single check and a batch never disagree.
            pub fn verify_hash(&self, hash: &CryptoHash, signature: &Signature) -> Result<(), CryptoError> {
                PreparedKey::decode(&self.0)?.verify_hash(hash, signature)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for byte in &self.0 {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for byte in &self.0[..4] {
                    write!(f, "{byte:02x}")?;
                }
                write!(f, "…")
            }
        }
    };
}

fn check_strong(bytes: &[u8; PUBLIC_KEY_LENGTH]) -> Result<(), CryptoError> {
    let compressed = CompressedEdwardsY(*bytes);
    let point = compressed.decompress().ok_or(CryptoError::MalformedKey)?;
    if point.compress() != compressed || point.is_small_order() || !point.is_torsion_free() {
        return Err(CryptoError::WeakKey);
    }
    Ok(())
}

/// A public key decoded once, for repeated verification (committees keep one per member).
///
/// Only strong keys can be prepared: a weak or mixed-order key is where single and batch
/// verdicts may differ, so `verify_batch`, which takes prepared keys, never meets one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreparedKey(VerifyingKey);

impl PreparedKey {
    /// Decodes the point of a key, refusing malformed keys ([`CryptoError::MalformedKey`]) and
    /// weak ones: small order, a torsion component, or a non-canonical encoding
    /// ([`CryptoError::WeakKey`]).
    pub fn decode(bytes: &[u8; PUBLIC_KEY_LENGTH]) -> Result<Self, CryptoError> {
        check_strong(bytes)?;
        VerifyingKey::from_bytes(bytes)
            .map(PreparedKey)
            .map_err(|_| CryptoError::MalformedKey)
    }

    /// The key this was decoded from, as a validator's key.
    pub fn public(&self) -> ValidatorPublicKey {
        ValidatorPublicKey(self.0.to_bytes())
    }

    /// Verifies `signature` over `hash` with `verify_strict` semantics.
    pub fn verify_hash(&self, hash: &CryptoHash, signature: &Signature) -> Result<(), CryptoError> {
        self.0
            .verify_strict(hash.as_bytes(), &signature.0)
            .map_err(|_| CryptoError::InvalidSignature)
    }
}

public_key_type!(
    /// A validator's public key. Ordered by its bytes, which is the committee's order.
    ValidatorPublicKey
);
public_key_type!(
    /// A chain owner's public key.
    AccountPublicKey
);

macro_rules! secret_key_type {
    ($(#[$doc:meta])* $name:ident, $public:ident) => {
        $(#[$doc])*
        pub struct $name(SigningKey);

        impl $name {
            /// Generates a key from a cryptographically secure random source.
            pub fn generate<R: rand_core::CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
                $name(SigningKey::generate(rng))
            }

            /// The key from its 32 secret bytes.
            pub fn from_bytes(bytes: &[u8; 32]) -> Self {
                $name(SigningKey::from_bytes(bytes))
            }

            /// The 32 secret bytes (for key files; handle with care).
            pub fn to_bytes(&self) -> [u8; 32] {
                self.0.to_bytes()
            }

            /// The matching public key.
            pub fn public(&self) -> $public {
                $public(self.0.verifying_key().to_bytes())
            }

            /// Signs the hash of `value`.
            pub fn sign<T: BcsHashable + ?Sized>(&self, value: &T) -> Signature {
                self.sign_hash(&CryptoHash::new(value))
            }

            /// Signs a hash already computed.
            pub fn sign_hash(&self, hash: &CryptoHash) -> Signature {
                Signature(self.0.sign(hash.as_bytes()))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(public: {:?})", stringify!($name), self.public())
            }
        }

        impl Clone for $name {
            fn clone(&self) -> Self {
                $name(self.0.clone())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.to_bytes().serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let bytes = <[u8; 32]>::deserialize(deserializer)?;
                Ok($name::from_bytes(&bytes))
            }
        }
    };
}

secret_key_type!(
    /// A validator's signing key.
    ValidatorSecretKey,
    ValidatorPublicKey
);
secret_key_type!(
    /// A chain owner's signing key.
    AccountSecretKey,
    AccountPublicKey
);

/// An ed25519 signature (by a validator or a chain owner).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

/// A validator's signature.
pub type ValidatorSignature = Signature;
/// A chain owner's signature.
pub type AccountSignature = Signature;

impl Signature {
    /// A signature from its 64 bytes (`R ‖ S`); validity is checked at verification.
    pub fn from_bytes(bytes: &[u8; SIGNATURE_LENGTH]) -> Self {
        Signature(ed25519_dalek::Signature::from_bytes(bytes))
    }

    /// The 64 bytes `R ‖ S`.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LENGTH] {
        self.0.to_bytes()
    }
}

impl core::hash::Hash for Signature {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.to_bytes().hash(state);
    }
}

impl PartialOrd for Signature {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Signature {
    fn cmp(&self, other: &Self) -> Ordering {
        self.to_bytes().cmp(&other.to_bytes())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        for byte in &bytes[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…")
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.to_bytes();
        let mut tuple = serializer.serialize_tuple(SIGNATURE_LENGTH)?;
        for byte in &bytes {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{SIGNATURE_LENGTH} signature bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
                let mut bytes = [0u8; SIGNATURE_LENGTH];
                for (i, byte) in bytes.iter_mut().enumerate() {
                    *byte = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature::from_bytes(&bytes))
            }
        }
        deserializer.deserialize_tuple(SIGNATURE_LENGTH, BytesVisitor)
    }
}

/// One signature to verify, owned, so that checks gathered from several requests can be
/// verified together ([`verify_signatures`]).
///
/// Only a [`PreparedKey`] (a strong key) can sign a check: with such keys a batch accepts what
/// `verify_strict` accepts but for the residual case of this module's documentation, a signer
/// adding a small-order component to its own `R`. In a batch gathered from several requests
/// the verdict on such a signature depends on the batch; it can only ever concern the signer's
/// own vote or proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureCheck {
    signer: PreparedKey,
    hash: CryptoHash,
    signature: Signature,
}

impl SignatureCheck {
    /// A check that `signer` signed `hash` with `signature`.
    pub fn new(signer: PreparedKey, hash: CryptoHash, signature: Signature) -> Self {
        SignatureCheck {
            signer,
            hash,
            signature,
        }
    }
}

/// Verifies every signature of `checks` in one batch (the batch rule of this module).
///
/// On failure returns the indices (ascending) of exactly the bad ones, found by bisection.
pub fn verify_signatures(checks: &[SignatureCheck]) -> Result<(), Vec<usize>> {
    let items: Vec<BatchItem<'_>> = checks
        .iter()
        .map(|check| BatchItem {
            signer: &check.signer,
            hash: &check.hash,
            signature: &check.signature,
        })
        .collect();
    verify_batch(&items)
}

/// One signature to check in a batch: the signer, the signed hash and the signature.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchItem<'a> {
    /// The signer's decoded key.
    pub signer: &'a PreparedKey,
    /// The signed hash.
    pub hash: &'a CryptoHash,
    /// The signature.
    pub signature: &'a Signature,
}

/// Checks every signature of `items` in one batch.
///
/// On failure returns the indices (ascending) of exactly the bad signatures, found by bisection.
pub(crate) fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), Vec<usize>> {
    // Byte-level checks on R first: a bad R is a bad signature, no equation needed.
    let mut bad: Vec<usize> = Vec::new();
    let mut candidates: Vec<usize> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if r_bytes_acceptable(item.signature.0.r_bytes()) {
            candidates.push(index);
        } else {
            bad.push(index);
        }
    }
    if !batch_equation_holds(items, &candidates) {
        bisect(items, &candidates, &mut bad);
    }
    if bad.is_empty() {
        Ok(())
    } else {
        bad.sort_unstable();
        Err(bad)
    }
}

fn batch_equation_holds(items: &[BatchItem<'_>], indices: &[usize]) -> bool {
    if indices.is_empty() {
        return true;
    }
    let messages: Vec<&[u8]> = indices
        .iter()
        .map(|&i| &items[i].hash.as_bytes()[..])
        .collect();
    let signatures: Vec<ed25519_dalek::Signature> =
        indices.iter().map(|&i| items[i].signature.0).collect();
    let keys: Vec<VerifyingKey> = indices.iter().map(|&i| items[i].signer.0).collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

/// Finds the bad signatures among `indices`, whose batch is known to fail.
fn bisect(items: &[BatchItem<'_>], indices: &[usize], bad: &mut Vec<usize>) {
    if indices.len() == 1 {
        bad.push(indices[0]);
        return;
    }
    let (left, right) = indices.split_at(indices.len() / 2);
    let before = bad.len();
    for half in [left, right] {
        if !batch_equation_holds(items, half) {
            bisect(items, half, bad);
        }
    }
    if bad.len() == before {
        // Both halves pass while the whole fails: only signatures whose R carries a small-order
        // component can do that. Settle it with the strict single check.
        for &index in indices {
            let item = &items[index];
            if item.signer.verify_hash(item.hash, item.signature).is_err() {
                bad.push(index);
            }
        }
    }
}

#[cfg(test)]
mod tests;
