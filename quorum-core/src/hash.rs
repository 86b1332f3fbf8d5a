//! `CryptoHash` and domain-separated hashing of canonical encodings.

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::encoding::{self, EncodeError};

/// Length of a [`CryptoHash`], in bytes.
pub const HASH_LENGTH: usize = 32;

/// A SHA-256 digest identifying a value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct CryptoHash(pub [u8; HASH_LENGTH]);

/// A type whose values are hashed (and signed) over their canonical BCS bytes.
///
/// `DOMAIN` is unique per type and is hashed before the bytes, so that a value of one type can
/// never be taken for (or signed as) a value of another whose encoding happens to coincide.
pub trait BcsHashable: Serialize {
    /// The domain separator of this type; must be unique across the workspace.
    const DOMAIN: &'static str;
}

/// Prefix of every domain separator, so Quorum hashes never collide with other protocols'.
const DOMAIN_PREFIX: &[u8] = b"quorum::";

/// Prefix of the hash given to a value that has no canonical encoding (see [`CryptoHash::new`]).
const UNENCODABLE_PREFIX: &[u8] = b"quorum-unencodable::";

impl CryptoHash {
    /// Hashes `value`: `SHA-256("quorum::" ‖ DOMAIN ‖ "::" ‖ BCS(value))`.
    ///
    /// Fails only if the value has no BCS encoding (floats, unsized sequences), which a type of
    /// this workspace never has; see [`CryptoHash::new`] for the infallible form.
    pub fn try_new<T: BcsHashable + ?Sized>(value: &T) -> Result<Self, EncodeError> {
        let mut sink = HashSink::new(Self::hasher_for(T::DOMAIN));
        encoding::encode_into(value, &mut sink)?;
        Ok(CryptoHash(sink.finalize()))
    }

    /// Hashes `value` like [`CryptoHash::try_new`].
    ///
    /// The types of this workspace always encode: their fields are integers, byte strings,
    /// sequences with known lengths and maps. Should a user type fail to encode, the result is a
    /// hash under a separate prefix that no encodable value of any type can produce, so a failure
    /// is never confused with a real value (and never panics).
    pub fn new<T: BcsHashable + ?Sized>(value: &T) -> Self {
        match Self::try_new(value) {
            Ok(hash) => hash,
            Err(_) => {
                let mut hasher = Sha256::new();
                hasher.update(UNENCODABLE_PREFIX);
                hasher.update(T::DOMAIN.as_bytes());
                CryptoHash(hasher.finalize().into())
            }
        }
    }

    /// Hashes raw bytes under a domain separator (for blob contents and tests).
    pub fn of_bytes(domain: &str, bytes: &[u8]) -> Self {
        let mut hasher = Self::hasher_for(domain);
        hasher.update(bytes);
        CryptoHash(hasher.finalize().into())
    }

    fn hasher_for(domain: &str) -> Sha256 {
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN_PREFIX);
        hasher.update(domain.as_bytes());
        hasher.update(b"::");
        hasher
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LENGTH] {
        &self.0
    }
}

impl fmt::Display for CryptoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CryptoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits are plenty to tell hashes apart in logs.
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…")
    }
}

/// Size of the buffer in front of the hasher, in bytes: an encoding is made of many small
/// writes (a length, an integer, a tag), and one hasher update per write costs more than the
/// hashing itself.
const HASH_BUFFER_BYTES: usize = 256;

/// A [`Sink`](encoding::Sink) that gathers small writes before handing them to SHA-256.
struct HashSink {
    hasher: Sha256,
    buffer: [u8; HASH_BUFFER_BYTES],
    len: usize,
}

impl HashSink {
    fn new(hasher: Sha256) -> Self {
        HashSink {
            hasher,
            buffer: [0; HASH_BUFFER_BYTES],
            len: 0,
        }
    }

    fn flush(&mut self) {
        self.hasher.update(&self.buffer[..self.len]);
        self.len = 0;
    }

    fn finalize(mut self) -> [u8; HASH_LENGTH] {
        self.flush();
        self.hasher.finalize().into()
    }
}

impl encoding::Sink for HashSink {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Fast path: most writes are a few bytes that fit.
        if let Some(space) = self.buffer.get_mut(self.len..self.len + bytes.len()) {
            space.copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        if self.len + bytes.len() > HASH_BUFFER_BYTES {
            self.flush();
        }
        if bytes.len() >= HASH_BUFFER_BYTES {
            self.hasher.update(bytes);
        } else {
            self.buffer[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }
}

/// A value together with its hash, computed once.
///
/// Serialises as the bare value; deserialising recomputes the hash, so a peer can never attach
/// a hash that does not match.
#[derive(Clone, Debug)]
pub struct Hashed<T> {
    value: T,
    hash: CryptoHash,
}

impl<T: BcsHashable> Hashed<T> {
    /// Wraps `value`, hashing it.
    pub fn new(value: T) -> Self {
        let hash = CryptoHash::new(&value);
        Hashed { value, hash }
    }
}

impl<T> Hashed<T> {
    /// The value's hash.
    pub fn hash(&self) -> CryptoHash {
        self.hash
    }
    /// The value.
    pub fn inner(&self) -> &T {
        &self.value
    }
    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> PartialEq for Hashed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
    }
}

impl<T> Eq for Hashed<T> {}

impl<T> core::hash::Hash for Hashed<T> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.hash.hash(state);
    }
}

impl<T> core::ops::Deref for Hashed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Serialize> Serialize for Hashed<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, T: BcsHashable + Deserialize<'de>> Deserialize<'de> for Hashed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = T::deserialize(deserializer)?;
        Ok(Hashed::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[derive(Serialize)]
    struct A(u64);
    impl BcsHashable for A {
        const DOMAIN: &'static str = "A";
    }
    #[derive(Serialize)]
    struct B(u64);
    impl BcsHashable for B {
        const DOMAIN: &'static str = "B";
    }

    #[test]
    fn domains_separate_equal_encodings() {
        assert_ne!(CryptoHash::new(&A(5)), CryptoHash::new(&B(5)));
        assert_eq!(CryptoHash::new(&A(5)), CryptoHash::new(&A(5)));
    }

    #[test]
    fn hash_is_sha256_of_domain_and_bcs() {
        let mut input: Vec<u8> = b"quorum::A::".to_vec();
        input.extend_from_slice(&bcs::to_bytes(&A(0x1122)).unwrap());
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(CryptoHash::new(&A(0x1122)).0, expected);
    }

    #[test]
    fn buffered_hashing_of_large_and_fragmented_values() {
        // A long byte string, then many small fields: crosses the buffer both ways.
        #[derive(Serialize)]
        struct Long(u8, #[serde(with = "serde_bytes")] Vec<u8>);
        impl BcsHashable for Long {
            const DOMAIN: &'static str = "Long";
        }
        let long = Long(0, (0..1_000u32).map(|i| i as u8).collect());
        let fields: Vec<(u8, u64, bool)> = (0..300u32)
            .map(|i| (i as u8, u64::from(i), i % 2 == 0))
            .collect();
        for bytes in [
            bcs::to_bytes(&long).unwrap(),
            bcs::to_bytes(&fields).unwrap(),
        ] {
            assert!(bytes.len() > HASH_BUFFER_BYTES);
        }
        let mut input: Vec<u8> = b"quorum::Long::".to_vec();
        input.extend_from_slice(&bcs::to_bytes(&long).unwrap());
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(CryptoHash::new(&long).0, expected);
        #[derive(Serialize)]
        struct Fields(Vec<(u8, u64, bool)>);
        impl BcsHashable for Fields {
            const DOMAIN: &'static str = "Fields";
        }
        let mut input: Vec<u8> = b"quorum::Fields::".to_vec();
        input.extend_from_slice(&bcs::to_bytes(&fields).unwrap());
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(CryptoHash::new(&Fields(fields)).0, expected);
    }

    #[test]
    fn sha256_known_answer() {
        // FIPS 180-2 test vector "abc".
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        assert_eq!(
            hex::encode(digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hashed_roundtrip_recomputes() {
        let h = Hashed::new(A(9));
        let bytes = bcs::to_bytes(&h).unwrap();
        assert_eq!(bytes, bcs::to_bytes(&A(9)).unwrap());
    }
}
