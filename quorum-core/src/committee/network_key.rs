//! [`NetworkPublicKey`]: the key a validator's secure transport proves it holds (DESIGN §6.2),
//! listed in its committee entry beside its address.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoError, PreparedKey};

/// A validator's network public key: an ed25519 key apart from the one that signs its votes.
/// Its secure transport (QUIC with TLS 1.3) proves in every handshake that it holds the secret
/// half, and clients accept exactly this key for it. Written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NetworkPublicKey(pub [u8; 32]);

impl fmt::Display for NetworkPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NetworkPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkPublicKey({self})")
    }
}

/// Why a text is not a network public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkKeyError {
    /// Not 64 hexadecimal digits.
    #[error("a network key is 64 hexadecimal digits")]
    NotHex,
    /// 32 bytes, but no point of the curve: no ed25519 key.
    #[error("not an ed25519 public key")]
    NotAKey,
    /// A point of small order, with a torsion component, or not canonically encoded: refused
    /// as validator keys are (anyone could sign for a key of small order).
    #[error("a weak ed25519 key (small order, torsion component or non-canonical encoding)")]
    Weak,
}

impl FromStr for NetworkPublicKey {
    type Err = NetworkKeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| NetworkKeyError::NotHex)?;
        PreparedKey::decode(&bytes).map_err(|error| match error {
            CryptoError::WeakKey => NetworkKeyError::Weak,
            _ => NetworkKeyError::NotAKey,
        })?;
        Ok(NetworkPublicKey(bytes))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use alloc::string::ToString;

    use super::*;

    #[test]
    fn text_round_trips_and_bad_text_is_refused() {
        let secret = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let key = NetworkPublicKey(secret.verifying_key().to_bytes());
        let text = key.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<NetworkPublicKey>(), Ok(key));
        assert_eq!(
            "zz".parse::<NetworkPublicKey>(),
            Err(NetworkKeyError::NotHex)
        );
        assert_eq!(
            "00".repeat(31).parse::<NetworkPublicKey>(),
            Err(NetworkKeyError::NotHex)
        );
        // The identity point (small order), as the speccheck cases name it.
        let identity = alloc::format!("01{}", "00".repeat(31));
        assert_eq!(
            identity.parse::<NetworkPublicKey>(),
            Err(NetworkKeyError::Weak)
        );
    }
}
